"""The ``inversion`` experiment: a federated client shares a gradient, the server reconstructs its images.

Stages: data set → victim model (fresh, DLG-initialised, trained here, or a ``privlab train`` checkpoint) →
defence on the shared gradient → attack (DLG / iDLG / Inverting Gradients) → similarity of each reconstruction to
its original (MSE, PSNR, SSIM, LPIPS when weights are available, classifier agreement) → store and report.

The client's images come from the ``split`` of the data set (``test`` by default: data the victim was not trained
on), chosen by the run's seed. Each batch of ``batch_size`` images is one client gradient and one attack. Inside a
batch, reconstructions are matched to originals by the Hungarian algorithm on MSE before scoring (the attack does not
know the order).

Artifacts in the run folder: ``images/{idx}_{label}_{ori|rec}.png``, ``per_image.csv`` / ``per_image.json`` (one
row per image), ``grid.png`` (originals above, reconstructions below, in attack order), ``pairs.safetensors`` (the
same pairs as uint8 tensors with each image's scores in its JSON metadata: the report's grid sorted by SemSim or
PSNR reads it) and ``attack.json`` (per-batch statistics, the attack's settings and the defence's label, e.g.
``prune 70%``, which the report shows).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, field_validator, model_validator
from torch import nn

from privlab.attack import ATTACKS, build_attack
from privlab.attack import attack_config as resolve_attack_config
from privlab.attack.inversion import gradient_leak_round
from privlab.config import ExperimentSpec, Spec
from privlab.context import RunContext
from privlab.data import LabelledImages
from privlab.data.spec import DatasetSpec, load_split
from privlab.errors import ConfigError, DataMissingError
from privlab.measure.image.matching import align_labels, match_reconstructions
from privlab.models import ModelName, build_model
from privlab.pipelines import PIPELINES
from privlab.protect.gradient import DefenseSpec, GradientDefense, ThreatModel, build_defense, resolve_defense
from privlab.store import MetricRecord, sha256_file
from privlab.train import TrainConfig, evaluate
from privlab.victim import load_checkpoint, reference_classifier, train_or_load

__all__ = ["InversionSpec", "VictimSpec", "run_inversion"]


class VictimSpec(Spec):
    """The model whose gradient is shared."""

    model: ModelName = Field(default="lenet_dlg", description="registered model (privlab models)")
    init: Literal["default", "dlg-uniform"] = Field(
        default="default", description="dlg-uniform: every weight and bias ~ U(−0.5, 0.5), as in the DLG paper"
    )
    checkpoint: str | None = Field(default=None, description="a privlab train checkpoint (model.safetensors)")
    train: TrainConfig | None = Field(default=None, description="train the victim on the train split first")
    normalize: bool = Field(default=True, description="normalize layer with the data set's mean/std first")

    @model_validator(mode="after")
    def _one_source(self) -> VictimSpec:
        if self.checkpoint and self.train is not None:
            raise ConfigError("victim: give either checkpoint or train, not both")
        return self


class InversionSpec(ExperimentSpec):
    """Spec of the ``inversion`` experiment."""

    experiment: Literal["inversion"] = "inversion"
    #: added later: runs recorded before it existed keep their hash
    hash_omit_defaults: ClassVar[tuple[str, ...]] = ("semsim_model", "lpips_weights")
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    split: Literal["train", "test"] = Field(default="test", description="where the client's images come from")
    num_images: int = Field(default=1, ge=1, le=100_000, description="images attacked in total")
    batch_size: int = Field(default=1, ge=1, description="images per shared gradient")
    victim: VictimSpec = Field(default_factory=VictimSpec)
    attack: str = Field(
        default="inverting-gradients", description="dlg | idlg | inverting-gradients | any attack requiring gradients"
    )
    attack_config: dict[str, Any] = Field(default_factory=dict, description="overrides of the attack's settings")
    threat: ThreatModel = Field(default_factory=ThreatModel)
    defense: DefenseSpec = Field(
        default_factory=lambda: resolve_defense(None), description="gradient defence (privlab protections gradient-*)"
    )
    metrics: list[str] = Field(
        default_factory=lambda: ["mse", "psnr", "ssim", "lpips"],
        description="similarity metrics; lpips is skipped with a note when no backbone weights are available",
    )
    lpips_net: Literal["alex", "vgg", "squeeze"] = Field(default="alex", description="LPIPS backbone")
    lpips_weights: str | None = Field(
        default=None,
        description="LPIPS backbone weights (.pth or .safetensors; relative to the working folder) or 'random'; "
        "default: $PRIVLAB_LPIPS_WEIGHTS, then the torch hub cache. A path given here must exist (checked first)",
    )
    reference_classifier: TrainConfig | None = Field(
        default=None, description="train a reference classifier (lenet5) to score classifier agreement"
    )
    semsim_model: str | None = Field(
        default=None,
        description="a SemSim checkpoint (semsim.safetensors of a `privlab run semsim` run; relative to the working "
        "folder): every reconstruction also gets a SemSim score (semsim is added to metrics)",
    )

    @field_validator("attack")
    @classmethod
    def _known_attack(cls, v: str) -> str:
        ATTACKS.entry(v)
        return v

    @model_validator(mode="after")
    def _check(self) -> InversionSpec:
        entry = ATTACKS.entry(self.attack)
        if "gradients" not in entry.meta.get("requires", ()):
            raise ConfigError(f"attack {self.attack!r} is not a gradient-inversion attack (it does not use gradients)")
        resolve_attack_config(self.attack, self.attack_config)  # unknown / bad keys fail here
        if self.num_images % self.batch_size:
            raise ConfigError(f"num_images ({self.num_images}) must be a multiple of batch_size ({self.batch_size})")
        return self


def _victim(spec: InversionSpec, ctx: RunContext, train: LabelledImages) -> nn.Module:
    """The victim: a ``privlab train`` checkpoint, or ``victim.model`` (seeded, optionally DLG-initialised), trained
    on ``train`` through the victim stage when ``victim.train`` is set."""
    v = spec.victim
    if v.checkpoint:
        model, meta = load_checkpoint(v.checkpoint, device=ctx.device)
        if tuple(meta["in_shape"]) != tuple(train.shape):
            raise ConfigError(
                f"victim checkpoint {v.checkpoint} was trained on images {tuple(meta['in_shape'])} but the data set "
                f"gives {tuple(train.shape)}; set dataset.resize to match"
            )
        return model

    def build() -> nn.Module:
        norm = {"mean": train.mean, "std": train.std} if v.normalize else {}
        model = build_model(v.model, train.num_classes, train.shape, **norm)
        if v.init == "dlg-uniform":
            from privlab.models.lenet import dlg_uniform_init_

            dlg_uniform_init_(model)
        return model

    if v.train is None:
        torch.manual_seed(ctx.seed)
        return build().to(ctx.device).eval()
    key_parts = {"dataset": spec.dataset.model_dump(mode="json"), "victim": v.model_dump(mode="json"), "seed": ctx.seed}
    model, _ = train_or_load(
        ctx, role="inversion-victim", model_factory=build, train_data=train, train_config=v.train,
        key_parts=key_parts, init_seed=ctx.seed,
    )  # fmt: skip
    return model


def _reference(spec: InversionSpec, ctx: RunContext, train: LabelledImages) -> nn.Module | None:
    if spec.reference_classifier is None:
        return None
    return reference_classifier(ctx, train, spec.reference_classifier, dataset=spec.dataset.model_dump(mode="json"))


def _semsim_checkpoint(spec: InversionSpec, pool: LabelledImages, device: torch.device | str) -> Path | None:
    """The absolute path of ``spec.semsim_model`` (None when unset), checked before any attack runs: the file exists,
    is a SemSim checkpoint, and was trained on images like ``pool``'s (channels and size). The network is loaded
    through the SemSim metric's cache (:func:`privlab.measure.semsim.score.cached_model`, on ``device``), so scoring
    does not read the file again.

    Raises:
        DataMissingError: no such file (the message says how to make one). FileFormatError: not a SemSim
        checkpoint. ConfigError: trained on images of another channel count or size.
    """
    from privlab.measure.semsim.score import cached_model

    if spec.semsim_model is None:
        return None
    path = Path(spec.semsim_model).expanduser().resolve()
    if not path.is_file():
        raise DataMissingError(
            f"semsim_model: SemSim checkpoint {path} not found. Train one on images like these, e.g. for CIFAR-10 "
            "`privlab run semsim --preset cifar10-cpu --data-root DATA --out runs/semsim` (digits: --preset cpu), "
            "and give its run folder's semsim.safetensors"
        )
    net, _ = cached_model(path, device, source="semsim_model")
    c, h, w = pool.shape
    if (net.in_channels, net.input_size, net.input_size) != (c, h, w):
        raise ConfigError(
            f"semsim_model {path} was trained on {net.in_channels}-channel {net.input_size}×{net.input_size} images "
            f"but the data set gives {c}-channel {h}×{w} images; train SemSim on these images "
            f"(`privlab run semsim` with this dataset, semsim.input_size={h}) or set dataset.resize to match"
        )
    return path


def _cosine(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    dot = sum(float((x * y).sum()) for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(float(x.pow(2).sum()) for x in a))
    nb = math.sqrt(sum(float(y.pow(2).sum()) for y in b))
    return dot / (na * nb) if na > 0 and nb > 0 else float("nan")


def _client_images(spec: InversionSpec, ctx: RunContext) -> tuple[LabelledImages, LabelledImages]:
    """``(train split, the split the client's images come from)``; too few images there is a ConfigError."""
    train = load_split(spec.dataset, "train", ctx)
    pool = train if spec.split == "train" else load_split(spec.dataset, "test", ctx)
    if spec.num_images > len(pool):
        raise ConfigError(f"num_images {spec.num_images} > {len(pool)} images in the {spec.split} split")
    return train, pool


def _victim_accuracy(spec: InversionSpec, ctx: RunContext, model: nn.Module, pool: LabelledImages) -> float | None:
    """Test accuracy of a trained or loaded victim (None for one at initialisation)."""
    if spec.victim.train is None and not spec.victim.checkpoint:
        return None
    test = pool if spec.split == "test" else load_split(spec.dataset, "test", ctx, limited=False)
    return evaluate(model, test, device=ctx.device)["accuracy"]


def _similarity_metrics(
    spec: InversionSpec, pool: LabelledImages, reference: nn.Module | None
) -> tuple[list[str], dict[str, str]]:
    """The metrics that can be computed here, and a note for each one skipped (no LPIPS weights, images too small)."""
    from privlab.measure.image.lpips import lpips_available

    metrics = list(spec.metrics)
    notes: dict[str, str] = {}
    if "lpips" in metrics:
        reason = lpips_available(spec.lpips_net, spec.lpips_weights)
        if reason is not None:
            metrics.remove("lpips")
            notes["lpips"] = f"skipped: {reason}"
    small = min(pool.shape[1:])
    for name in ("ssim", "ms-ssim"):
        if name in metrics and small < 11:
            metrics.remove(name)
            notes[name] = f"skipped: images are {small}×{small}, smaller than the 11×11 SSIM window; set dataset.resize"
    if reference is not None and "classifier" not in metrics:
        metrics.append("classifier")
    if spec.semsim_model is not None and "semsim" not in metrics:
        metrics.append("semsim")
    return metrics, notes


@dataclass
class _Attacked:
    """Every attacked image with its reconstruction (matched to it), true and recovered label, and statistics."""

    x: torch.Tensor
    rec: torch.Tensor
    y: torch.Tensor
    y_rec: torch.Tensor
    y_matched: torch.Tensor
    indices: list[int]
    batch_stats: list[dict[str, Any]]
    cosines: list[float]
    seconds: float


def _attack_batches(
    spec: InversionSpec, ctx: RunContext, model: nn.Module, pool: LabelledImages, defense: GradientDefense,
    attack: Any,
) -> _Attacked:  # fmt: skip
    """One gradient-leak round and one attack per batch of ``batch_size`` images chosen by the run's seed."""
    from privlab.measure.functional.image_similarity import psnr as image_psnr

    order = torch.randperm(len(pool), generator=ctx.generator(1))[: spec.num_images]
    gen_client = ctx.generator(2)
    gen_attack = ctx.generator(3)
    originals, recs, labels, rec_labels, matched_labels, batch_stats, cosines = [], [], [], [], [], [], []
    t_attack = 0.0
    with ctx.progress.task(f"{spec.attack} on {spec.num_images} image(s)", total=spec.num_images) as advance:
        for start in range(0, spec.num_images, spec.batch_size):
            idx = order[start : start + spec.batch_size]
            x, y = pool.batch(idx)
            x, y = x.to(ctx.device), y.to(ctx.device)
            leak = gradient_leak_round(
                model, x, y, spec.threat, defense, gen_client, requires=attack.requires, keep_exact=True
            )
            assert leak.observation.gradients is not None and leak.exact is not None
            cosines.append(_cosine(leak.exact, leak.observation.gradients))
            t0 = time.perf_counter()
            out = attack.run(
                leak.observation, seed=ctx.seed, generator=gen_attack, device=ctx.device, progress=ctx.progress
            )
            t_attack += time.perf_counter() - t0
            rec = out.data.cpu()
            perm = match_reconstructions(x.cpu(), rec)
            rec = rec[perm]
            rl = out.labels.cpu() if out.labels is not None else torch.full((len(idx),), -1)
            # labels are matched as a multiset (order-free) for batch recovery; per image after the image matching
            joint = out.stats.get("label_strategy") in ("joint",)
            rec_labels.append(rl[perm] if joint else align_labels(rl, y.cpu()))
            matched_labels.append(rl[perm])  # the label each matched reconstruction was optimised with
            originals.append(x.cpu())
            recs.append(rec)
            labels.append(y.cpu())
            batch_stats.append({k: v for k, v in out.stats.items() if k != "history"} | {"indices": idx.tolist()})
            advance(len(idx), psnr=float(image_psnr(x.cpu(), rec).mean()))
    return _Attacked(
        torch.cat(originals), torch.cat(recs), torch.cat(labels), torch.cat(rec_labels), torch.cat(matched_labels),
        order.tolist(), batch_stats, cosines, t_attack,
    )  # fmt: skip


def _save_artifacts(
    spec: InversionSpec, ctx: RunContext, a: _Attacked, table: Any, rows: list[dict[str, Any]], notes: dict[str, str],
    attack: Any,
) -> None:  # fmt: skip
    """Image pairs, ``grid.png``, ``per_image.csv``/``.json`` and ``attack.json`` in the run folder."""
    from privlab.data.reconstructions import save_pairs
    from privlab.store.images import save_grid

    save_pairs(ctx.run_dir / "images", a.x, a.rec, a.y, a.indices)
    grid = torch.cat([a.x, a.rec])
    grid_path = save_grid(ctx.run_dir / "grid.png", grid, nrow=len(a.x), scale=max(1, 64 // max(a.x.shape[-2:])))
    rows_meta = {"rows": ["original", "reconstruction"]}
    ctx.store.add_artifact(ctx.run_id, "grid", grid_path, sha256_file(grid_path), rows_meta)
    _save_scored_pairs(ctx, a, table, rows)
    table_path = ctx.run_dir / "per_image.csv"
    table.to_csv(table_path)
    ctx.store.add_artifact(ctx.run_id, "table", table_path, sha256_file(table_path), {"format": "csv"})
    ctx.save_json("per_image", "per_image.json", {"rows": rows, "means": table.means, "notes": notes})
    defense = spec.defense.label()
    attack_json = {"batches": a.batch_stats, "attack_config": attack.config.model_dump(), "defense": defense}
    ctx.save_json("attack", "attack.json", attack_json)  # the report reads the defence's label from here


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] as uint8 ``N×C×H×W`` (as 8-bit PNGs store them)."""
    return x.detach().float().cpu().nan_to_num(0.0).clamp(0, 1).mul(255).round().to(torch.uint8)


def _save_scored_pairs(ctx: RunContext, a: _Attacked, table: Any, rows: list[dict[str, Any]]) -> None:
    """``pairs.safetensors`` (artifact kind ``pairs``): every original and its matched reconstruction with their
    per-image scores, so the report can order and label them without parsing file names.

    Tensors: ``originals`` and ``reconstructions``, uint8 ``N×C×H×W`` (8-bit, as in the PNGs), in attack order.
    Metadata (JSON): ``indices`` (index in the split), ``labels``, ``recovered_labels``, ``scores`` (metric → N
    floats, NaN/inf as null/"inf"), ``units`` and ``higher_is_better`` (metric → True when larger means more similar).
    """
    scores = {m: [_json_float(r.get(m)) for r in table.rows] for m in table.metrics}
    meta = {
        "indices": [int(i) for i in a.indices],
        "labels": [int(v) for v in a.y.tolist()],
        "recovered_labels": [int(r["recovered_label"]) for r in rows],
        "scores": scores,
        "units": {m: table.units.get(m) for m in table.metrics},
        "higher_is_better": {m: table.higher_is_better.get(m) for m in table.metrics},
    }
    tensors = {"originals": _to_uint8(a.x), "reconstructions": _to_uint8(a.rec)}
    ctx.save_tensors("pairs", "pairs.safetensors", tensors, meta)


def _json_float(v: Any) -> float | str | None:
    """A score for JSON: finite floats as they are, ±inf as ``"inf"``/``"-inf"``, NaN or missing as None."""
    if v is None:
        return None
    f = float(v)
    if math.isnan(f):
        return None
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    return f


def _records(
    spec: InversionSpec, ctx: RunContext, a: _Attacked, table: Any, label_correct: torch.Tensor,
    defense: GradientDefense, victim_acc: float | None,
) -> list[MetricRecord]:  # fmt: skip
    """Mean similarity per metric (privacy direction), label accuracy, noise baseline, gradient cosine, costs, ε."""
    steps = 1
    if spec.threat.kind == "fedavg":
        steps = spec.threat.local_steps * math.ceil(spec.batch_size / (spec.threat.local_batch_size or spec.batch_size))
    budget = defense.budget(steps=steps)
    recs_out: list[MetricRecord] = []
    for name, value in table.means.items():
        # the table's direction is a similarity's; for the defender a more similar reconstruction is worse
        similar_up = table.higher_is_better.get(name)
        privacy_hib = None if similar_up is None else not similar_up
        note = "a reconstruction equals its original (MSE 0): PSNR is infinite" if name == "psnr" else None
        recs_out.append(MetricRecord(name, float(value), None, table.units.get(name), "privacy", privacy_hib, note))
    objective = float(torch.tensor([float(b.get("objective", math.nan)) for b in a.batch_stats]).mean())
    zero_grad = "a shared or exact gradient is all zeros (the defence removed all of it): the cosine is undefined"
    recs_out += [
        MetricRecord("label_accuracy", float(label_correct.mean()), None, "fraction", "privacy", False),
        MetricRecord(
            "label_accuracy_matched", float((a.y_matched == a.y).float().mean()), None, "fraction", "privacy", False
        ),
        MetricRecord("psnr_noise_baseline", _noise_baseline(a.x, ctx.generator(4)), None, "dB", "info", None),
        MetricRecord("gradient_cosine", float(torch.tensor(a.cosines).mean()), None, None, "utility", True, zero_grad),
        MetricRecord("attack_seconds", a.seconds, None, "s", "cost", False),
        MetricRecord("attack_objective", objective, None, None, "info", None, "the attack reports no objective value"),
    ]
    restarts = [b for b in a.batch_stats if "restart_losses" in b]
    if restarts:
        recs_out.append(MetricRecord("restarts", float(len(restarts[0]["restart_losses"])), None, None, "info", None))
        batched = float(all(b.get("restart_mode") == "batched" for b in restarts))
        recs_out.append(MetricRecord("restarts_batched", batched, None, None, "info", None))
        if len(restarts) == 1:  # one attacked batch: which restart won (per batch in attack.json otherwise)
            recs_out.append(MetricRecord("restart_best", float(restarts[0]["restart_best"]), None, None, "info", None))
    if victim_acc is not None:
        recs_out.append(MetricRecord("victim_test_accuracy", victim_acc, None, "fraction", "utility", True))
    if budget.epsilon is not None:
        recs_out.append(MetricRecord("epsilon", budget.epsilon, None, None, "privacy", False))
    return recs_out


@PIPELINES.register(
    "inversion", spec=InversionSpec, description="gradient inversion (DLG, iDLG, Inverting Gradients) under defences"
)
def run_inversion(spec: InversionSpec, ctx: RunContext) -> None:
    """Attack ``num_images`` client images through their shared gradients; score and store the reconstructions."""
    from privlab.measure.image import score
    from privlab.measure.image.lpips import resolve_weights

    if "lpips" in spec.metrics and spec.lpips_weights is not None:  # named in the spec: missing is an error (exit 2)
        resolve_weights(spec.lpips_net, spec.lpips_weights)
    train, pool = _client_images(spec, ctx)
    model = _victim(spec, ctx, train)
    victim_acc = _victim_accuracy(spec, ctx, model, pool)
    semsim_model = _semsim_checkpoint(spec, pool, ctx.device)
    reference = _reference(spec, ctx, train)
    metrics, notes = _similarity_metrics(spec, pool, reference)
    defense = build_defense(spec.defense)
    attack = build_attack(spec.attack, spec.attack_config)
    a = _attack_batches(spec, ctx, model, pool, defense, attack)
    table = score(
        a.x, a.rec, metrics, labels=a.y, classifier=reference, lpips_net=spec.lpips_net,
        lpips_weights=spec.lpips_weights, device=ctx.device, indices=a.indices, semsim_model=semsim_model,
    )  # fmt: skip
    label_correct = (a.y_rec == a.y).float()
    rows = []
    for i, row in enumerate(table.rows):
        rows.append({**row, "recovered_label": int(a.y_rec[i]), "label_correct": bool(label_correct[i])})
    notes.update(table.notes)
    _save_artifacts(spec, ctx, a, table, rows, notes, attack)
    ctx.log_many(_records(spec, ctx, a, table, label_correct, defense, victim_acc))


def _noise_baseline(x: torch.Tensor, generator: torch.Generator) -> float:
    """Mean PSNR of uniform-noise images against the originals: what a reconstruction must clearly beat."""
    noise = torch.rand(x.shape, generator=generator)
    from privlab.measure.functional.image_similarity import psnr

    return float(psnr(x, noise).mean())
