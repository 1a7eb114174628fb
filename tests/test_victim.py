import shutil

import pytest
import torch

from privlab.context import RunContext
from privlab.data import load_dataset
from privlab.models import build_model
from privlab.store import Store, load_tensors
from privlab.train import TrainConfig, evaluate
from privlab.victim import cache_key, cache_path, reference_classifier, train_or_load

CFG = TrainConfig(epochs=2, batch_size=32, lr=3e-3)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", "train", limit=200), load_dataset("digits", "test", limit=200)


@pytest.fixture
def ctx(tmp_path):
    with Store(tmp_path) as store:
        yield RunContext(run_id="r", out=tmp_path, run_dir=tmp_path / "r", store=store)


def _get(ctx, train, *, lr=3e-3, model="lenet5", role="victim"):
    cfg = TrainConfig(epochs=2, batch_size=32, lr=lr)
    return train_or_load(
        ctx,
        role=role,
        model_factory=lambda: build_model(model, train.num_classes, train.shape),
        train_data=train,
        train_config=cfg,
        key_parts={"model": "lenet5", "train": cfg.model_dump(mode="json"), "seed": ctx.seed},
        init_seed=ctx.seed,
    )


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_miss_then_hit_gives_the_same_weights(ctx, digits):
    train, test = digits
    m1, info1 = _get(ctx, train)
    assert not info1["cached"] and info1["train_seconds"] > 0
    path = ctx.out / "cache" / "models" / f"victim-{info1['key']}.safetensors"
    assert info1["path"] == str(path) and path.is_file()
    _, meta = load_tensors(path)
    assert meta["role"] == "victim" and meta["key"] == info1["key"] and meta["source"]["seed"] == 0
    m2, info2 = _get(ctx, train)
    assert info2 == {"cached": True, "path": str(path), "key": info1["key"], "train_seconds": 0.0}
    assert _same(m1, m2) and not m2.training
    assert evaluate(m2, test)["accuracy"] > 0.3  # trained, not the initial weights (chance is 0.1)


def test_a_changed_key_part_or_role_is_a_miss(ctx, digits):
    train, _ = digits
    _, info1 = _get(ctx, train)
    _, info2 = _get(ctx, train, lr=1e-3)
    _, info3 = _get(ctx, train, role="reference")
    assert not info2["cached"] and not info3["cached"]
    assert len({info1["key"], info2["key"], info3["key"]}) == 3
    assert len(list((ctx.out / "cache" / "models").glob("*.safetensors"))) == 3
    assert cache_key("a", {"x": 1}) == cache_key("a", {"x": 1}) != cache_key("a", {"x": 2}) != cache_key("b", {"x": 2})


def test_a_corrupt_entry_is_reported_and_rebuilt_as_a_fresh_train(ctx, digits):
    train, _ = digits
    fresh, info = _get(ctx, train)
    path = cache_path(ctx.out, "victim", info["key"])
    path.write_bytes(b"not a safetensors file")
    with pytest.warns(UserWarning, match=rf"model cache .*{info['key']}\.safetensors is unusable .*retraining"):
        rebuilt, info2 = _get(ctx, train)
    assert not info2["cached"] and _same(fresh, rebuilt)
    assert load_tensors(path)[1]["key"] == info["key"]  # overwritten with a good entry
    assert _get(ctx, train)[1]["cached"]


def test_an_entry_with_another_key_or_other_weights_is_rebuilt(ctx, digits):
    train, _ = digits
    fresh, info = _get(ctx, train)
    _, other = _get(ctx, train, lr=1e-3)
    path = cache_path(ctx.out, "victim", info["key"])
    shutil.copyfile(other["path"], path)  # a stale file under this key
    with pytest.warns(UserWarning, match="metadata names role 'victim' and key"):
        rebuilt, _ = _get(ctx, train)
    assert _same(fresh, rebuilt)
    with pytest.warns(UserWarning, match="weights do not fit the model"):
        m, info3 = _get(ctx, train, model="mnist_cnn_shallow")  # same key, another architecture
    assert not info3["cached"] and m[-1].out_features == 10


def test_reference_classifier_is_cached_and_seeded(ctx, digits):
    train, test = digits
    ref = reference_classifier(ctx, train, CFG, dataset={"name": "digits", "train_limit": 200})
    torch.manual_seed(ctx.seed + 1)
    again = reference_classifier(ctx, train, CFG, dataset={"name": "digits", "train_limit": 200})
    assert _same(ref, again) and len(list((ctx.out / "cache" / "models").glob("reference-*"))) == 1
    assert evaluate(ref, test)["accuracy"] > 0.3


def test_fit_fn_replaces_fit_and_its_facts_are_cached(ctx, digits):
    train, test = digits
    calls = []

    def fit_fn(model, data):
        calls.append(len(data))
        from privlab.train import fit

        fit(model, data, TrainConfig(epochs=5, batch_size=32, lr=3e-3), seed=7)
        return {"epsilon": 1.5, "note": "custom"}

    def get():
        return train_or_load(
            ctx,
            role="custom",
            model_factory=lambda: build_model("lenet5", 10, train.shape),
            train_data=train,
            train_config=CFG,
            key_parts={"seed": 7},
            init_seed=7,
            fit_fn=fit_fn,
        )

    m1, info1 = get()
    assert calls == [200] and info1["fit"] == {"epsilon": 1.5, "note": "custom"} and not info1["cached"]
    assert evaluate(m1, test)["accuracy"] > 0.3
    m2, info2 = get()
    assert calls == [200] and info2["cached"] and info2["fit"] == {"epsilon": 1.5, "note": "custom"}
    assert _same(m1, m2)
    _, info3 = _get(ctx, train)  # without fit_fn the info has no "fit"
    assert "fit" not in info3


def test_two_workers_needing_the_same_model_train_it_once(ctx, digits, capsys):
    # two sweep workers on one --out: the lock beside the entry makes the second wait, then load the first's file
    import threading

    train, _ = digits
    infos: list[dict] = []
    start = threading.Barrier(2)

    def worker() -> None:
        start.wait()
        infos.append(_get(ctx, train)[1])

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(i["cached"] for i in infos) == [False, True]  # without the lock both would train
    assert infos[0]["path"] == infos[1]["path"]
    assert "waiting for another process that trains the same victim model" in capsys.readouterr().err
