import math
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from torch import nn

from privlab.errors import ConfigError, FileFormatError
from privlab.protect import PROTECTIONS
from privlab.protect.shredder import (
    BankConfig,
    BankSampler,
    DeployedNoise,
    LaplaceFitSampler,
    LossConfig,
    NoiseBank,
    NoiseConfig,
    ShredderNoise,
    contrastive_term,
    laplace_sample,
    magnitude_term,
    rank_preserving_gaussian,
    shredder_budget,
    shredder_loss,
    snr,
    snr_db,
    snr_per_batch,
    train_noise_bank,
)
from privlab.store import load_tensors, save_tensors


def test_registered_as_activation_protection():
    entry = PROTECTIONS.entry("shredder")
    assert entry.obj is ShredderNoise and entry.meta["kind"] == "activation"


def test_noise_shapes_per_mode():
    shape = (120, 1, 1)
    add = ShredderNoise(shape, NoiseConfig(mode="additive"))
    mul = ShredderNoise(shape, NoiseConfig(mode="multiplicative"))
    both = ShredderNoise(shape, NoiseConfig(mode="combined"))
    assert add.n.shape == shape and add.w is None
    assert mul.w.shape == shape and mul.n is None
    assert both.n.shape == shape and both.w.shape == shape
    a = torch.rand(5, *shape)
    assert torch.allclose(both(a), a * both.w + both.n)
    assert torch.allclose(mul(a), a * mul.w)
    assert sorted(both.tensors()) == ["n", "w"]


def test_laplace_init_statistics():
    # Laplace(loc, b): mean = median = loc, E|x − loc| = b, variance 2b²
    layer = ShredderNoise((200_000,), NoiseConfig(mode="additive", laplace_loc=0.6, laplace_scale=1.2), seed=3)
    n = layer.n.detach().double()
    se = math.sqrt(2 * 1.2**2 / n.numel())
    assert abs(n.mean().item() - 0.6) < 4 * se
    assert abs(n.median().item() - 0.6) < 0.02
    assert abs((n - 0.6).abs().mean().item() - 1.2) < 0.015
    assert abs(n.var().item() - 2 * 1.2**2) < 0.06
    # the same seed gives the same draw; another seed another one
    again = ShredderNoise((200_000,), NoiseConfig(mode="additive", laplace_loc=0.6, laplace_scale=1.2), seed=3)
    assert torch.equal(layer.n, again.n)
    assert not torch.equal(layer.n, ShredderNoise((200_000,), NoiseConfig(mode="additive"), seed=4).n)


def test_laplace_sample_scale_zero_is_loc():
    g = torch.Generator().manual_seed(0)
    assert torch.equal(laplace_sample(torch.tensor([1.5, -2.0]), 0.0, (3, 2), g), torch.tensor([[1.5, -2.0]] * 3))


def test_xavier_init_of_w_matches_v2():
    # (120, 1, 1): fan_in 1, fan_out 120 → σ = √(2/121) ≈ 0.1286 (what the v2 code gets)
    ws = torch.cat(
        [
            ShredderNoise((120, 1, 1), NoiseConfig(mode="multiplicative"), seed=s).w.detach().flatten()
            for s in range(300)
        ]
    )
    assert ws.std().item() == pytest.approx(math.sqrt(2 / 121), rel=0.02)
    assert abs(ws.mean().item()) < 0.004


def _frozen_lenet_parts():
    from privlab.models import build_model
    from privlab.models.split import freeze, split_model

    torch.manual_seed(0)
    model = build_model("lenet5", 2, (1, 32, 32))
    edge, cloud = split_model(model, "relu5")
    return model, freeze(edge), freeze(cloud)


def test_only_the_noise_gets_gradients():
    model, edge, cloud = _frozen_lenet_parts()
    noise = ShredderNoise((120, 1, 1), NoiseConfig(laplace_scale=1.0))
    x, y = torch.rand(8, 1, 32, 32), torch.tensor([0, 1] * 4)
    z = noise(edge(x))
    loss, parts = shredder_loss(
        cloud(z), y, z, noise, LossConfig(contrastive_weight=0.01), torch.roll(torch.arange(8), -1)
    )
    loss.backward()
    assert noise.n.grad is not None and noise.w.grad is not None
    assert noise.n.grad.abs().sum() > 0 and noise.w.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in model.parameters())
    assert set(parts) == {"ce", "contrastive", "magnitude"}


def test_contrastive_term_hand_computed():
    z = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0], [1.0, 1.0]])
    y = torch.tensor([1, 1, 0, 1])
    pair = torch.tensor([1, 2, 3, 0])
    # d = |z0−z1| = 3 (same), |z1−z2| = 4 (diff), |z2−z3| = 4 (diff), |z3−z0| = 1 (same)
    assert contrastive_term(z, y, pair).item() == pytest.approx((3 + 1) - (4 + 4))
    # the loss adds 0.01 × that to the cross-entropy (no magnitude reward)
    logits = torch.tensor([[0.0, 1.0], [2.0, 0.0], [0.5, 0.5], [1.0, 3.0]])
    noise = ShredderNoise((2,), NoiseConfig(mode="additive", laplace_scale=1.0))
    loss, _ = shredder_loss(logits, y, z, noise, LossConfig(contrastive_weight=0.01), pair)
    assert loss.item() == pytest.approx(F.cross_entropy(logits, y).item() + 0.01 * (4 - 8), abs=1e-6)


def test_magnitude_rewards_closed_form():
    noise = ShredderNoise((4,), NoiseConfig(mode="additive"))
    with torch.no_grad():
        noise.n.copy_(torch.tensor([1.0, -2.0, 3.0, -4.0]))
    assert magnitude_term(noise, LossConfig()).item() == 0.0
    cfg = {"magnitude_weight": 0.1}
    assert magnitude_term(noise, LossConfig(magnitude_reward="neg_weight_decay", **cfg)).item() == pytest.approx(
        -0.05 * 30
    )
    assert magnitude_term(noise, LossConfig(magnitude_reward="mean_abs", **cfg)).item() == pytest.approx(-0.25)
    assert magnitude_term(noise, LossConfig(magnitude_reward="log_scale", **cfg)).item() == pytest.approx(
        -0.1 * math.log(2.5)
    )
    # the reward's gradient grows |n|: a descent step moves every element away from 0
    loss = magnitude_term(noise, LossConfig(magnitude_reward="mean_abs", **cfg))
    loss.backward()
    assert torch.equal(torch.sign(-noise.n.grad), torch.sign(noise.n.detach()))


def test_snr_closed_form_and_per_batch():
    a = torch.full((4, 3), 2.0)
    assert snr(a, a + 1.0) == pytest.approx(4.0)  # power 4 / noise power 1
    assert snr(a, a * 0.5) == pytest.approx(4.0 / 1.0)  # a ⊙ w with w = 0.5: noise −1 per element
    assert snr(a, a) == math.inf
    assert snr_db(100.0) == pytest.approx(20.0) and snr_db(0.0) == -math.inf
    # each batch uses its own data (the original computed every batch on the first one)
    clean = torch.cat([torch.full((2, 3), 1.0), torch.full((2, 3), 3.0)])
    noisy = clean + torch.cat([torch.full((2, 3), 1.0), torch.full((2, 3), -1.0)])
    assert snr_per_batch(clean, noisy, 2) == pytest.approx([1.0, 9.0])
    with pytest.raises(ConfigError):
        snr_per_batch(clean, noisy, 0)
    budget = shredder_budget(0.01)
    assert budget.kind == "snr" and budget.details["snr_db"] == pytest.approx(-20.0)


def test_rank_preserving_resampling_keeps_order_and_matches_moments():
    g = torch.Generator().manual_seed(0)
    # a skewed, non-Gaussian source with mean 3 and std 2 (exponential(1) has mean 1, std 1)
    w = (3.0 + 2.0 * (torch.empty(2, 20_000).exponential_(generator=g) - 1.0)).reshape(2, 20_000, 1)
    out = rank_preserving_gaussian(w, torch.Generator().manual_seed(1))
    assert out.shape == w.shape
    order = w.argsort(dim=1, stable=True)
    assert torch.all(out.gather(1, order).diff(dim=1) >= 0)  # in w's order the new values never decrease
    small = torch.tensor([[3.0, -1.0, 2.0, 0.5, 7.0]])
    assert torch.equal(rank_preserving_gaussian(small, torch.Generator().manual_seed(5)).argsort(), small.argsort())
    for row_w, row in zip(w.flatten(1), out.flatten(1), strict=True):
        mu, sd = row_w.mean().item(), row_w.std(unbiased=False).item()
        assert row.mean().item() == pytest.approx(mu, abs=4 * sd / math.sqrt(row.numel()))
        assert row.std().item() == pytest.approx(sd, rel=0.03)
        assert stats.kstest(row.numpy(), "norm", args=(mu, sd)).pvalue > 1e-3  # the values are Gaussian now
    # each draw is new
    again = rank_preserving_gaussian(w, torch.Generator().manual_seed(2))
    assert not torch.equal(again, out)


def _bank(k=4, shape=(6,)):
    g = torch.Generator().manual_seed(0)
    return NoiseBank(
        torch.randn(k, *shape, generator=g) * 5, torch.randn(k, *shape, generator=g), meta={"shape": list(shape)}
    )


def test_bank_sampler_draws_a_bank_entry_and_resamples_w_rank_preservingly():
    bank = _bank()
    n, w = BankSampler(bank).sample(50, torch.Generator().manual_seed(0))
    assert n.shape == w.shape == (50, 6)
    j = [int(torch.nonzero((bank.n == row).all(1))[0]) for row in n]  # every n is one bank row
    assert len(set(j)) > 1
    for row_w, jj in zip(w, j, strict=True):
        assert torch.equal(row_w.argsort(stable=True), bank.w[jj].argsort(stable=True))
        assert not torch.equal(row_w, bank.w[jj])
    n2, w2 = BankSampler(bank, resample_w=False).sample(10, torch.Generator().manual_seed(0))
    assert all(any(torch.equal(r, b) for b in bank.w) for r in w2)


def test_laplace_fit_sampler_fits_elementwise():
    # element 0: samples {0, 2} → loc 1, scale (population std) 1; element 1: {5, 5} → exactly 5
    bank = NoiseBank(torch.tensor([[0.0, 5.0], [2.0, 5.0]]), None)
    n, w = LaplaceFitSampler(bank).sample(40_000, torch.Generator().manual_seed(0))
    assert w is None
    assert n[:, 0].median().item() == pytest.approx(1.0, abs=0.03)
    assert (n[:, 0] - 1).abs().mean().item() == pytest.approx(1.0, abs=0.03)
    assert torch.all(n[:, 1] == 5.0)
    with pytest.raises(ConfigError, match="empty bank"):
        LaplaceFitSampler(NoiseBank(torch.empty(0, 2), None))


def test_deployed_noise_per_image_and_per_batch():
    bank = _bank(k=8)
    a = torch.ones(5, 6)
    per_image = DeployedNoise(BankSampler(bank), "image", seed=0)
    per_batch = DeployedNoise(BankSampler(bank), "batch", seed=0)
    out_b = per_batch(a)
    assert torch.equal(out_b, out_b[:1].expand_as(out_b))
    out_i = per_image(a)
    assert len({tuple(r.tolist()) for r in out_i}) > 1
    per_image.reseed(0)
    assert torch.equal(per_image(a), out_i)  # reproducible after reseeding
    with pytest.raises(ConfigError):
        DeployedNoise(BankSampler(bank), "pixel")  # type: ignore[arg-type]


def test_bank_roundtrip_through_safetensors(tmp_path):
    bank = _bank()
    bank.records = [{"restart": 0, "accepted": True, "val_accuracy": 0.97}]
    save_tensors(tmp_path / "b.safetensors", bank.tensors(), bank.full_meta())
    tensors, meta = load_tensors(tmp_path / "b.safetensors")
    back = NoiseBank.from_tensors(tensors, meta)
    assert torch.equal(back.n, bank.n) and torch.equal(back.w, bank.w)
    assert back.records == bank.records and meta["size"] == 4 and meta["shape"] == [6]
    with pytest.raises(FileFormatError):
        NoiseBank.from_tensors({}, {})


def _toy_cloud():
    # two features; the cloud predicts class 1 when feature 1 > feature 0
    cloud = nn.Sequential(OrderedDict(fc=nn.Linear(2, 2)))
    with torch.no_grad():
        cloud.fc.weight.copy_(torch.eye(2))
        cloud.fc.bias.zero_()
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (400,), generator=g)
    acts = torch.rand(400, 2, generator=g) + 1.5 * F.one_hot(y, 2).float()
    return cloud, acts, y


def test_train_noise_bank_accepts_by_rule_and_leaves_weights_alone():
    cloud, acts, y = _toy_cloud()
    before = {k: v.clone() for k, v in cloud.state_dict().items()}
    cfg = BankConfig(size=3, max_restarts=5, max_epochs=4, min_epochs=2, accuracy_threshold=0.0, batch_size=64)
    bank = train_noise_bank(cloud, acts, y, NoiseConfig(laplace_scale=0.1), LossConfig(contrastive_weight=0.01), cfg)
    assert len(bank) == 3 and bank.n.shape == (3, 2) and bank.w.shape == (3, 2)
    assert [r["epoch"] for r in bank.records] == [2, 2, 2]  # accepted at the first allowed epoch
    assert all(r["accepted"] for r in bank.records) and len(bank.records) == 3
    assert all(torch.equal(v, before[k]) for k, v in cloud.state_dict().items())
    assert bank.meta["shape"] == [2] and "> 0.0" in bank.meta["acceptance"] and len(bank.meta["accuracies"]) == 3
    # an impossible rule: every restart runs to max_epochs and nothing is accepted
    hard = BankConfig(size=2, max_restarts=2, max_epochs=3, accuracy_threshold=1.0, batch_size=64)
    empty = train_noise_bank(cloud, acts, y, NoiseConfig(), LossConfig(), hard)
    assert len(empty) == 0 and [r["epoch"] for r in empty.records] == [3, 3]
    assert not any(r["accepted"] for r in empty.records)


def test_bank_config_rejects_impossible_rule():
    with pytest.raises(ValueError, match="min_epochs"):
        BankConfig(min_epochs=5, max_epochs=3)


def _reference_restart(cloud, z_tr, y_tr, z_va, y_va, rseed, cfg, noise_cfg, loss_cfg):
    # one restart, one-at-a-time, with torch's own Adam (the pre-batching loop, per-restart batch order)
    from privlab.protect.shredder import _order_generator

    noise = ShredderNoise(z_tr.shape[1:], noise_cfg, seed=rseed)
    opt = torch.optim.Adam(noise.parameters(), lr=cfg.lr)
    gen = _order_generator(rseed)
    for epoch in range(1, cfg.max_epochs + 1):
        order = torch.randperm(len(z_tr), generator=gen)
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            z = noise(z_tr[idx])
            pair = torch.roll(torch.arange(len(idx)), -1)
            loss, _ = shredder_loss(cloud(z), y_tr[idx], z, noise, loss_cfg, pair)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            acc = float((cloud(noise(z_va)).argmax(1) == y_va).float().mean())
        if epoch >= cfg.min_epochs and acc > cfg.accuracy_threshold:
            return noise.tensors(), epoch, acc
    return None, cfg.max_epochs, acc


def test_parallel_restarts_match_one_at_a_time_loop():
    cloud, acts, y = _toy_cloud()
    noise_cfg = NoiseConfig(laplace_scale=2.0)
    loss_cfg = LossConfig(contrastive_weight=0.01, magnitude_reward="mean_abs", magnitude_weight=0.1)
    # threshold 0.93 accepts some restarts at different epochs and rejects others (checked below)
    base = {"size": 3, "max_restarts": 9, "max_epochs": 6, "min_epochs": 2, "accuracy_threshold": 0.93}
    base |= {"batch_size": 48, "lr": 0.03}
    banks = [
        train_noise_bank(cloud, acts, y, noise_cfg, loss_cfg, BankConfig(**base, parallel_restarts=r), seed=2)
        for r in (1, 4, 9)
    ]
    seq = banks[0]
    assert len(seq) == 3 and [r["accepted"] for r in seq.records] == [True, True, False, False, False, True]
    assert [r["epoch"] for r in seq.records] == [2, 5, 6, 6, 6, 5]
    for b in banks[1:]:
        assert [(r["restart"], r["accepted"], r["epoch"]) for r in b.records] == [
            (r["restart"], r["accepted"], r["epoch"]) for r in seq.records
        ]
        assert torch.allclose(b.n, seq.n, atol=1e-5) and torch.allclose(b.w, seq.w, atol=1e-5)
    # and against torch.optim.Adam, one restart at a time (same split as train_noise_bank: seed + 4241)
    perm = torch.randperm(400, generator=torch.Generator().manual_seed(2 + 4241))
    va, tr = perm[:80], perm[80:]
    cfg = BankConfig(**base)
    ref = [_reference_restart(cloud, acts[tr], y[tr], acts[va], y[va], 2000 + r, cfg, noise_cfg, loss_cfg)
           for r in range(len(seq.records))]  # fmt: skip
    assert [t is not None for t, _, _ in ref] == [r["accepted"] for r in seq.records]
    assert [e for _, e, _ in ref] == [r["epoch"] for r in seq.records]
    ref_n = torch.stack([t["n"] for t, _, _ in ref if t is not None])
    assert torch.allclose(ref_n, seq.n, atol=1e-5)


def test_bank_divergence_names_the_restart():
    cloud, acts, y = _toy_cloud()
    cfg = BankConfig(size=2, max_restarts=4, max_epochs=2, batch_size=64, parallel_restarts=4)
    loss = LossConfig(magnitude_reward="neg_weight_decay", magnitude_weight=1e38)  # −λ/2·‖n‖² overflows to −inf
    with pytest.raises(ConfigError, match=r"diverged \(loss -inf\) at restart 0, epoch 1; lower bank.lr"):
        train_noise_bank(cloud, acts, y, NoiseConfig(laplace_scale=20.0), loss, cfg)
