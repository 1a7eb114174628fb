"""The ``semsim`` experiment: train SemSim on recognisability labels and measure how well every metric agrees.

Two sources of labels:

- ``manifest:`` — a manifest of human answers (:mod:`privlab.measure.semsim.annotations`, e.g. collected with
  ``privlab semsim annotate``);
- otherwise the **proxy** (no human data ships with privlab): test images (digits, or CIFAR-10 with the
  ``cifar10-cpu`` preset) are reconstructed by gradient-inversion attacks
  at several strengths (``settings:`` — attack, its overrides and a defence on the shared gradient, one sigmoid
  LeNet victim at DLG initialisation), and a reconstruction counts as *recognised* when a reference classifier
  trained on clean images (``reference_model``, a LeNet-5 by default, on the train split, from the victim stage's
  cache; the attacked images come from the test split) predicts its true label. The PNGs and the manifest are
  written to ``proxy/`` in the run folder.

The originals are split (seeded) into a training part and a held-out part; SemSim is trained on the triplets of the
training part (with ``semsim.pretrain: classifier`` its trunk is first trained as a classifier on the CLEAN train
split of ``dataset``; the proxy's originals are test images and its labeller is a separate model); on the held-out
part every metric (MSE, PSNR, SSIM, LPIPS when its weights exist, SemSim) is scored and compared with the labels
(:func:`privlab.measure.semsim.agreement.agreement`).

Artifacts: ``semsim.safetensors`` (the checkpoint), ``heldout_scores.csv`` (one row per held-out reconstruction:
paths as in the manifest, setting, recognised, every metric), ``agreement.json`` (per-setting means, correlations
with bootstrap intervals, ordering accuracies) and, for the proxy, ``proxy/manifest.csv`` with its images.
"""

from __future__ import annotations

import csv
import io
import re
import time
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, field_validator
from torch import nn

from privlab.attack import ATTACKS, build_attack
from privlab.attack.inversion import gradient_leak_round
from privlab.config import ExperimentSpec, Spec
from privlab.context import RunContext
from privlab.data import LabelledImages
from privlab.data.spec import DatasetSpec, load_datasets, load_split
from privlab.errors import ConfigError
from privlab.measure.image.base import similarity_directions
from privlab.measure.semsim.agreement import agreement
from privlab.measure.semsim.annotations import Annotation, Manifest, load_manifest, save_manifest
from privlab.measure.semsim.model import save_semsim
from privlab.measure.semsim.score import semsim_distance
from privlab.measure.semsim.train import SemSimTrainConfig, TripletData, train_semsim
from privlab.models import ModelName, build_model
from privlab.pipelines import PIPELINES
from privlab.protect.gradient import DefenseSpec, ThreatModel, build_defense, resolve_defense
from privlab.store import MetricRecord, sha256_file
from privlab.store.artifacts import atomic_write_text
from privlab.train import TrainConfig, evaluate
from privlab.victim import reference_classifier

__all__ = ["ProxySetting", "SemSimSpec", "run_semsim"]


class ProxySetting(Spec):
    """One attack setting of the proxy: an inversion attack (with overrides) under a defence."""

    name: str = Field(description="setting name (folder name of its PNGs; letters, digits, - _ .)")
    attack: str = Field(default="inverting-gradients", description="dlg | idlg | inverting-gradients")
    attack_config: dict[str, Any] = Field(default_factory=dict, description="overrides, e.g. {iterations: 30}")
    defense: DefenseSpec = Field(default_factory=lambda: resolve_defense(None))

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", v):
            raise ValueError(f"setting name {v!r}: use letters, digits, - _ . (≤ 64 characters)")
        return v

    @field_validator("attack")
    @classmethod
    def _attack(cls, v: str) -> str:
        if "gradients" not in ATTACKS.entry(v).meta.get("requires", ()):
            raise ValueError(f"attack {v!r} is not a gradient-inversion attack")
        return v


def _default_settings() -> list[ProxySetting]:
    return [
        ProxySetting(name="ig-10", attack="inverting-gradients", attack_config={"iterations": 10}),
        ProxySetting(name="ig-30", attack="inverting-gradients", attack_config={"iterations": 30}),
        ProxySetting(
            name="ig-60-shift",
            attack_config={"iterations": 60},
            defense={"name": "augment", "transform": "shift"},
        ),
        ProxySetting(name="ig-60-flip", attack_config={"iterations": 60}, defense={"name": "augment"}),
        ProxySetting(
            name="ig-60-laplace",
            attack_config={"iterations": 60},
            defense={"name": "laplace", "sigma": 0.1},
        ),
        ProxySetting(name="dlg-2", attack="dlg", attack_config={"iterations": 2, "lbfgs_max_iter": 5}),
        ProxySetting(
            name="idlg-5-noise",
            attack="idlg",
            attack_config={"iterations": 5, "lbfgs_max_iter": 5},
            defense={"name": "gaussian", "sigma": 0.01},
        ),
    ]


class SemSimSpec(ExperimentSpec):
    """Spec of the ``semsim`` experiment."""

    experiment: Literal["semsim"] = "semsim"
    #: added later: runs recorded before it existed (LeNet-5 labeller) keep their hash
    hash_omit_defaults: ClassVar[tuple[str, ...]] = ("reference_model",)
    manifest: str | None = Field(default=None, description="human labels (manifest CSV/JSON); none: the proxy")
    dataset: DatasetSpec = Field(default_factory=lambda: DatasetSpec(name="digits", resize=16))
    num_images: int = Field(default=40, ge=2, le=100_000, description="proxy: originals attacked in every setting")
    victim: str = Field(default="lenet_dlg", description="proxy: victim model (fresh, DLG-uniform init for lenet_dlg)")
    settings: list[ProxySetting] = Field(default_factory=_default_settings, description="proxy: attack settings")
    reference_classifier: TrainConfig = Field(
        default_factory=lambda: TrainConfig(epochs=10, lr=0.002), description="proxy: how the labeller is trained"
    )
    reference_model: ModelName = Field(
        default="lenet5", description="proxy: the labeller's architecture (lenet5; fast_cnn for CIFAR-10)"
    )
    train_fraction: float = Field(default=0.5, gt=0, lt=1, description="originals used to train SemSim")
    semsim: SemSimTrainConfig = Field(default_factory=SemSimTrainConfig, description="SemSim network and training")
    metrics: list[str] = Field(
        default_factory=lambda: ["mse", "psnr", "ssim", "lpips"], description="metrics compared with SemSim"
    )
    n_boot: int = Field(default=1000, ge=0, le=100_000, description="bootstrap resamples for the 95 % intervals")

    @field_validator("settings")
    @classmethod
    def _unique(cls, v: list[ProxySetting]) -> list[ProxySetting]:
        names = [s.name for s in v]
        if len(set(names)) != len(names):
            raise ValueError(f"setting names must be unique, got {names}")
        if not v:
            raise ValueError("give at least one setting")
        return v

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, v: list[str]) -> list[str]:
        bad = [m for m in v if m not in ("mse", "psnr", "ssim", "ms-ssim", "lpips")]
        if bad:
            raise ValueError(f"metrics {bad}: choose from mse, psnr, ssim, ms-ssim, lpips (semsim is always added)")
        return v


# -- the proxy ------------------------------------------------------------------------------------------------------
def _proxy_victim(spec: SemSimSpec, ctx: RunContext, train: LabelledImages) -> nn.Module:
    """The attacked model: ``spec.victim`` untrained (seeded with the run's seed; DLG-uniform for ``lenet_dlg``)."""
    from privlab.models.lenet import dlg_uniform_init_

    torch.manual_seed(ctx.seed)
    victim = build_model(spec.victim, train.num_classes, train.shape, mean=train.mean, std=train.std)
    if spec.victim == "lenet_dlg":
        dlg_uniform_init_(victim)
    return victim.to(ctx.device).eval()


def _attack_setting(
    ctx: RunContext, setting: ProxySetting, k: int, victim: nn.Module, x_all: torch.Tensor, y_all: torch.Tensor
) -> torch.Tensor:
    """Reconstructions of every image (one gradient each) under ``setting``, the ``k``-th setting (its generators)."""
    attack = build_attack(setting.attack, setting.attack_config)
    defense = build_defense(setting.defense)
    g_client, g_attack = ctx.generator(100 + 2 * k), ctx.generator(101 + 2 * k)
    threat = ThreatModel()
    recs = []
    with ctx.progress.task(f"proxy {setting.name}", total=len(x_all)) as advance:
        for i in range(len(x_all)):
            x, y = x_all[i : i + 1].to(ctx.device), y_all[i : i + 1].to(ctx.device)
            leak = gradient_leak_round(victim, x, y, threat, defense, g_client, requires=attack.requires)
            out = attack.run(leak.observation, seed=ctx.seed, generator=g_attack, device=ctx.device)
            recs.append(out.data.detach().cpu().clamp(0, 1))
            advance(1)
    return torch.cat(recs)


def _generate_proxy(spec: SemSimSpec, ctx: RunContext) -> tuple[Manifest, dict[str, Any]]:
    """Attack ``num_images`` test digits in every setting, label with the reference classifier, write the manifest."""
    from privlab.data.reconstructions import save_pairs

    train, test = load_datasets(spec.dataset, ctx)
    if spec.num_images > len(test):
        raise ConfigError(f"num_images {spec.num_images} > {len(test)} test images of {spec.dataset.name}")
    ref = reference_classifier(
        ctx, train, spec.reference_classifier, dataset=spec.dataset.model_dump(mode="json"), model=spec.reference_model
    )
    ref_acc = evaluate(ref, test, device=ctx.device)["accuracy"]
    victim = _proxy_victim(spec, ctx, train)
    order = torch.randperm(len(test), generator=ctx.generator(1))[: spec.num_images]
    x_all, y_all = test.batch(order)
    root = ctx.run_dir / "proxy"
    records: list[Annotation] = []
    per_setting: dict[str, float] = {}
    first_oris: list[str] = []
    t0 = time.perf_counter()
    for k, setting in enumerate(spec.settings):
        rec = _attack_setting(ctx, setting, k, victim, x_all, y_all)
        with torch.no_grad():
            ok = (ref(rec.to(ctx.device)).argmax(1).cpu() == y_all).tolist()
        per_setting[setting.name] = sum(ok) / len(ok)
        files = save_pairs(root / setting.name, x_all, rec, y_all, order.tolist())
        if k == 0:  # one original file per image (the first setting's copy), so the split is by image
            first_oris = [files[2 * i].relative_to(root).as_posix() for i in range(spec.num_images)]
        for i in range(spec.num_images):
            rel = files[2 * i + 1].relative_to(root).as_posix()
            records.append(Annotation(first_oris[i], rel, setting.name, bool(ok[i]), "proxy-classifier"))
    path = save_manifest(root / "manifest.csv", records)
    ctx.store.add_artifact(ctx.run_id, "manifest", path, sha256_file(path), {"format": "csv", "proxy": True})
    info = {
        "reference_test_accuracy": ref_acc,
        "generation_seconds": time.perf_counter() - t0,
        "recognised_rate_per_setting": per_setting,
    }
    return load_manifest(path), info


# -- scoring --------------------------------------------------------------------------------------------------------
def _split(manifest: Manifest, fraction: float, generator: torch.Generator) -> tuple[set[str], set[str]]:
    originals = sorted({r.original for r in manifest.records if r.original})
    if len(originals) < 2:
        raise ConfigError(f"manifest {manifest.path} needs at least 2 originals to hold some out for evaluation")
    perm = torch.randperm(len(originals), generator=generator).tolist()
    n_train = min(len(originals) - 1, max(1, round(fraction * len(originals))))
    train = {originals[i] for i in perm[:n_train]}
    return train, set(originals) - train


def _subset(manifest: Manifest, keep: set[str], *, pool: bool) -> Manifest:
    recs = [r for r in manifest.records if r.original in keep or (pool and not r.original)]
    return Manifest(manifest.root, manifest.path, recs)


def _load_pairs(manifest: Manifest) -> tuple[torch.Tensor, torch.Tensor]:
    from privlab.data.reconstructions import read_png

    cache: dict[str, torch.Tensor] = {}

    def img(rel: str) -> torch.Tensor:
        if rel not in cache:
            cache[rel] = read_png(manifest.resolve(rel))
        return cache[rel]

    ori = [img(r.original) for r in manifest.records]
    rec = [img(r.reconstruction) for r in manifest.records]
    shapes = {tuple(t.shape) for t in ori + rec}
    if len(shapes) > 1:  # pixel metrics need one size: bring everything to the largest originals' size
        c = max(s[0] for s in shapes)
        h = max(s[1] for s in shapes)
        w = max(s[2] for s in shapes)

        def fit_to(t: torch.Tensor) -> torch.Tensor:
            t = t.expand(c, -1, -1) if t.shape[0] != c else t
            return torch.nn.functional.interpolate(t[None], size=(h, w), mode="bilinear", antialias=True)[0]

        ori, rec = [fit_to(t) for t in ori], [fit_to(t) for t in rec]
    return torch.stack(ori), torch.stack(rec)


def score_manifest(
    manifest: Manifest, metrics: list[str], model: Any, *, device: Any = None
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Score every row of ``manifest`` that has an original: ``(rows, notes)``; rows carry the manifest columns,
    ``recognised`` as 0/1 and one value per metric (``semsim`` when ``model`` is given)."""
    from privlab.measure.image import score
    from privlab.measure.image.lpips import lpips_available

    manifest = Manifest(manifest.root, manifest.path, [r for r in manifest.records if r.original])
    ori, rec = _load_pairs(manifest)
    names, notes = list(metrics), {}
    if "lpips" in names and lpips_available("alex") is not None:
        names.remove("lpips")
        notes["lpips"] = f"skipped: {lpips_available('alex')}"
    for m in ("ssim", "ms-ssim"):
        if m in names and min(ori.shape[-2:]) < 11:
            names.remove(m)
            notes[m] = f"skipped: images are smaller than the 11×11 SSIM window ({tuple(ori.shape[-2:])})"
    table = score(ori, rec, names, device=device) if names else None
    if table is not None:
        notes.update(table.notes)
    sem = semsim_distance(model, ori, rec) if model is not None else None
    rows = []
    for i, r in enumerate(manifest.records):
        row: dict[str, Any] = {
            "original": r.original,
            "reconstruction": r.reconstruction,
            "setting": r.setting,
            "annotator": r.annotator,
            "recognised": int(r.recognised),
        }
        if table is not None:
            row.update({c: table.rows[i][c] for c in table.metrics})
        if sem is not None:
            row["semsim"] = float(sem[i])
        rows.append(row)
    return rows, notes


def rows_to_csv(rows: list[dict[str, Any]]) -> str:
    """Rows (same keys) as CSV text (text cells that a spreadsheet would run as a formula are quoted with ``'``)."""
    from privlab.store.export import csv_row

    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(csv_row(r) for r in rows)
    return buf.getvalue()


def _train_semsim(
    spec: SemSimSpec, ctx: RunContext, manifest: Manifest, train_m: Manifest, train_originals: int, info: dict[str, Any]
) -> tuple[Any, float]:
    """Train SemSim on the triplets of ``train_m`` (pretrained as a classifier on the CLEAN train split when asked;
    the proxy's originals are test images) and save ``semsim.safetensors``: ``(result, seconds)``."""
    from privlab.data.reconstructions import read_png

    first = manifest.resolve(next(r.original for r in manifest.records if r.original))
    channels = int(read_png(first).shape[0])
    cfg = spec.semsim
    data = TripletData.from_manifest(train_m, in_channels=channels, input_size=cfg.input_size)
    pretrain_data = None
    if cfg.pretrain == "classifier":
        pretrain_data = load_split(spec.dataset, "train", ctx)
        info["pretrain_dataset"] = f"{spec.dataset.name}/train ({len(pretrain_data)} images)"
    t0 = time.perf_counter()
    result = train_semsim(
        data, cfg, seed=ctx.seed, device=ctx.device, progress=ctx.progress, pretrain_data=pretrain_data
    )
    train_seconds = time.perf_counter() - t0
    ckpt = ctx.run_dir / "semsim.safetensors"
    meta = {
        "train_config": cfg.model_dump(),
        "seed": ctx.seed,
        "history": result.history,
        "pretrain_history": result.pretrain_history,
        "manifest": str(manifest.path),
        "train_originals": train_originals,
        "proxy": spec.manifest is None,
    }
    digest = save_semsim(ckpt, result.model, meta)
    ctx.store.add_artifact(ctx.run_id, "checkpoint", ckpt, digest, {"format": "safetensors", "what": "semsim"})
    return result, train_seconds


def _verdict(agr: Any) -> dict[str, Any]:
    """Whether SemSim beats PSNR and SSIM in ordering accuracy and in Spearman correlation (per image)."""
    baselines = [m for m in ("psnr", "ssim") if m in agr.metrics]
    sem = agr.metrics["semsim"]["image"]

    def beats(key: str) -> bool:
        vals = [agr.metrics[b]["image"][key] for b in baselines]
        v = sem[key]["value"] if key == "spearman" else sem[key]
        return all(v > (b["value"] if key == "spearman" else b) for b in vals)

    return {"ordering_accuracy": beats("ordering_accuracy"), "spearman": beats("spearman"), "baselines": baselines}


def _records(
    result: Any, agr: Any, rows: list[dict[str, Any]], train_pairs: int, verdict: dict[str, Any], train_seconds: float,
    info: dict[str, Any],
) -> list[MetricRecord]:  # fmt: skip
    """The run's metrics: training curves, per-metric agreement, held-out rates, verdict and costs."""
    recs: list[MetricRecord] = []
    for h in result.pretrain_history:
        if "train_accuracy" in h:
            step = int(h.get("epoch", 0))
            recs.append(MetricRecord("semsim_pretrain_accuracy", h["train_accuracy"], step, "fraction", "info", True))
    for h in result.history:
        recs.append(MetricRecord("semsim_train_loss", h["loss"], int(h["epoch"]), None, "info", False))
    for m, d in agr.metrics.items():
        recs += [
            MetricRecord(f"{m}_ordering_accuracy", d["image"]["ordering_accuracy"], None, "fraction", "info", True),
            MetricRecord(f"{m}_spearman", d["image"]["spearman"]["value"], None, None, "info", True),
            MetricRecord(f"{m}_setting_spearman", d["setting"]["spearman"]["value"], None, None, "info", True),
            MetricRecord(f"{m}_setting_kendall", d["setting"]["kendall"]["value"], None, None, "info", True),
        ]
    recognised = sum(r["recognised"] for r in rows) / len(rows)
    beats = float(verdict["ordering_accuracy"] and verdict["spearman"])
    recs += [
        MetricRecord("heldout_recognised_rate", recognised, None, "fraction", "info", None),
        MetricRecord("heldout_pairs", float(len(rows)), None, None, "info", None),
        MetricRecord("train_pairs", float(train_pairs), None, None, "info", None),
        MetricRecord("semsim_beats_psnr_ssim", beats, None, None, "info", True),
        MetricRecord("semsim_train_seconds", train_seconds, None, "s", "cost", False),
    ]
    if "reference_test_accuracy" in info:
        recs += [
            MetricRecord("reference_test_accuracy", info["reference_test_accuracy"], None, "fraction", "info", True),
            MetricRecord("proxy_generation_seconds", info["generation_seconds"], None, "s", "cost", False),
        ]
    return recs


@PIPELINES.register(
    "semsim",
    spec=SemSimSpec,
    description="SemSim: train the human-aligned metric and measure every metric's agreement with labels (proxy)",
)
def run_semsim(spec: SemSimSpec, ctx: RunContext) -> None:
    """Labels (manifest or proxy) → split by original → train SemSim → score the held-out part → agreement."""
    info: dict[str, Any] = {"proxy": spec.manifest is None}
    if spec.manifest is None:
        manifest, gen = _generate_proxy(spec, ctx)
        info.update(gen)
    else:
        manifest = load_manifest(Path(spec.manifest))
    train_keys, held_keys = _split(manifest, spec.train_fraction, ctx.generator(7))
    train_m = _subset(manifest, train_keys, pool=True)
    held_m = _subset(manifest, held_keys, pool=False)
    result, train_seconds = _train_semsim(spec, ctx, manifest, train_m, len(train_keys), info)

    rows, notes = score_manifest(held_m, list(spec.metrics), result.model, device=ctx.device)
    scores_path = atomic_write_text(ctx.run_dir / "heldout_scores.csv", rows_to_csv(rows))
    ctx.store.add_artifact(ctx.run_id, "table", scores_path, sha256_file(scores_path), {"format": "csv"})
    directions = similarity_directions()
    metric_names = [m for m in rows[0] if m in directions]
    agr = agreement(rows, {m: directions[m] for m in metric_names}, n_boot=spec.n_boot, seed=ctx.seed)
    verdict = _verdict(agr)
    ctx.save_json(
        "semsim_agreement",
        "agreement.json",
        {
            **agr.as_dict(),
            "summary": agr.summary(),
            "notes": notes,
            "semsim_beats_baselines": verdict,
            "info": info,
            "train_history": result.history,
            "pretrain_history": result.pretrain_history,
            "train_pairs": len(train_m.records),
            "heldout_pairs": len(held_m.records),
        },
    )
    ctx.log_many(_records(result, agr, rows, len(train_m.records), verdict, train_seconds, info))
