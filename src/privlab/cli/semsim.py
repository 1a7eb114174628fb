"""``privlab semsim``: train the SemSim metric, score with it, measure agreement with humans, collect labels."""

from __future__ import annotations

from pathlib import Path

import typer

from privlab.cli import app
from privlab.cli._common import (
    JSON_HELP,
    QUIET_HELP,
    DataRootOption,
    emit_json,
    examples,
    handle_errors,
    print_table,
)

semsim_app = typer.Typer(
    name="semsim",
    help="SemSim: a learned, human-aligned privacy metric for reconstructions (train, score, agreement, annotate).",
    no_args_is_help=True,
)
app.add_typer(semsim_app, name="semsim")


@semsim_app.command(
    "train",
    epilog=examples(
        "privlab semsim train --manifest labels/annotations.csv --out runs/semsim-model",
        "privlab semsim train --manifest m.csv --out model --epochs 100 --width 64 --input-size 32 --sampler psnr",
        "privlab semsim train --manifest m.csv --out model --pretrain classifier --pretrain-dataset digits "
        "--width 8 --input-size 16 --lr 0.002 --augment none --epochs 20",
        "privlab semsim train --manifest m.csv --out model --pretrain my-trunk.safetensors",
    ),
)
@handle_errors
def train_cmd(
    manifest: Path = typer.Option(..., "--manifest", "-m", help="manifest CSV/JSON of recognisability answers"),
    out: Path = typer.Option(..., "--out", "-o", help="folder for semsim.safetensors"),
    epochs: int = typer.Option(100, "--epochs", max=10_000, help="training epochs (paper: 100)"),
    batch_size: int = typer.Option(64, "--batch-size", max=65_536, help="triplets per step"),
    lr: float = typer.Option(0.05, "--lr", max=100, help="SGD learning rate (paper: 0.05)"),
    width: int = typer.Option(64, "--width", max=1024, help="ResNet-18 width; 64 → 512-d embedding (paper)"),
    input_size: int = typer.Option(
        32, "--input-size", max=1024, help="images are resized to this square size (paper: 32)"
    ),
    sampler: str = typer.Option("paper", "--sampler", help="paper (original, recognised, not) or psnr (weighted)"),
    augment: str = typer.Option("crop+flip", "--augment", help="train-time augmentation: crop+flip, crop, none"),
    triplets: int = typer.Option(4, "--triplets-per-original", max=1000, help="triplets drawn per original and epoch"),
    l2: bool = typer.Option(True, "--l2/--no-l2", help="L2-normalise the embeddings (training and scoring)"),
    pretrain: str = typer.Option(
        "none", "--pretrain", help="trunk init: none, classifier (see --pretrain-dataset) or a local .safetensors file"
    ),
    pretrain_dataset: str | None = typer.Option(
        None, "--pretrain-dataset", help="with --pretrain classifier: the data set whose CLEAN train split to use"
    ),
    pretrain_epochs: int = typer.Option(10, "--pretrain-epochs", max=10_000, help="classifier pretraining epochs"),
    data_root: Path | None = typer.Option(None, "--data-root", help="where --pretrain-dataset's files are"),
    seed: int = typer.Option(
        0, "--seed", min=0, max=2**32 - 1, help="seed of initialisation, sampling and augmentation"
    ),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu, cuda"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Train SemSim with the triplet loss (margin 1, p = 2) on every answer of a manifest."""
    from pydantic import ValidationError

    from privlab.context import Progress, resolve_device
    from privlab.data.reconstructions import read_png
    from privlab.errors import ConfigError
    from privlab.measure.semsim import SemSimTrainConfig, TripletData, load_manifest, save_semsim, train_semsim

    try:
        cfg = SemSimTrainConfig(
            epochs=epochs, batch_size=batch_size, lr=lr, width=width, input_size=input_size, sampler=sampler,
            augment=augment, triplets_per_original=triplets, l2_normalize=l2, pretrain=pretrain,
            pretrain_epochs=pretrain_epochs,
        )  # fmt: skip
    except ValidationError as e:
        err = e.errors()[0]
        raise ConfigError(f"--{'-'.join(str(x) for x in err['loc']).replace('_', '-')}: {err['msg']}") from None
    m = load_manifest(manifest)
    first = next((r.original for r in m.records if r.original), None)
    if first is None:
        raise ConfigError(f"manifest {manifest} has no row with an original image")
    channels = int(read_png(m.resolve(first)).shape[0])
    data = TripletData.from_manifest(m, in_channels=channels, input_size=cfg.input_size)
    pre_data = None
    if cfg.pretrain == "classifier":
        if not pretrain_dataset:
            raise ConfigError("--pretrain classifier needs --pretrain-dataset NAME (the data set of your originals)")
        from privlab.data import load_dataset

        pre_data = load_dataset(pretrain_dataset, "train", root=data_root, resize=cfg.input_size, seed=seed)
    elif pretrain_dataset:
        raise ConfigError("--pretrain-dataset is only used with --pretrain classifier")
    dev = resolve_device(device)
    prog = Progress(quiet=quiet or json_out)
    res = train_semsim(data, cfg, seed=seed, device=dev, progress=prog, pretrain_data=pre_data)
    path = Path(out) / "semsim.safetensors"
    meta = {
        "train_config": cfg.model_dump(),
        "seed": seed,
        "history": res.history,
        "pretrain_history": res.pretrain_history,
        "pretrain_dataset": pretrain_dataset,
        "manifest": str(m.path),
    }
    digest = save_semsim(path, res.model, meta)
    d = {
        "checkpoint": str(path),
        "sha256": digest,
        "pairs": len(m.records),
        "originals": len(data.originals),
        "embedding_dim": res.model.dim,
        "final_loss": res.history[-1]["loss"],
        "history": res.history,
        "pretrain_history": res.pretrain_history,
        "config": cfg.model_dump(),
    }
    if json_out:
        emit_json(d)
        return
    typer.echo(
        f"trained on {d['pairs']} answers ({d['originals']} originals), final triplet loss {d['final_loss']:.4f}; "
        f"{res.model.dim}-d embedding"
    )
    typer.echo(f"checkpoint: {path}")


@semsim_app.command(
    "score",
    epilog=examples(
        "privlab semsim score 0_3_ori.png 0_3_rec.png --model runs/semsim-model/semsim.safetensors",
        "privlab semsim score runs/inv/images --model semsim.safetensors --json",
        "privlab semsim score --manifest labels/annotations.csv --model semsim.safetensors --csv scores.csv",
    ),
)
@handle_errors
def score_cmd(
    orig: Path | None = typer.Argument(None, help="original PNG, or a folder of {idx}_{label}_ori.png"),
    rec: Path | None = typer.Argument(None, help="reconstruction PNG, or a folder of _rec.png (default: ORIG)"),
    model: Path = typer.Option(..., "--model", help="SemSim checkpoint (semsim.safetensors)"),
    manifest: Path | None = typer.Option(None, "--manifest", help="score every pair of this manifest instead"),
    metrics: str = typer.Option("semsim", "--metrics", help="with --manifest: also mse,psnr,ssim,ms-ssim,lpips"),
    csv_out: Path | None = typer.Option(None, "--csv", help="write the per-pair rows to this CSV"),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu, cuda"),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """SemSim distance (lower = more similar = more leakage) of reconstructions to their originals."""
    from privlab.context import resolve_device
    from privlab.data.reconstructions import load_pairs, read_png
    from privlab.errors import ConfigError
    from privlab.measure.semsim import load_semsim, semsim_distance
    from privlab.pipelines.semsim import rows_to_csv, score_manifest
    from privlab.store.artifacts import atomic_write_text

    dev = resolve_device(device)
    net, _ = load_semsim(model, dev)
    if manifest is not None:
        if orig is not None:
            raise ConfigError("give either ORIG [REC] or --manifest, not both")
        from privlab.measure.image import parse_metrics
        from privlab.measure.semsim import load_manifest

        names = [m for m in parse_metrics(metrics) if m != "semsim"]
        rows, notes = score_manifest(load_manifest(manifest), names, net, device=dev)
        if csv_out is not None:
            atomic_write_text(csv_out, rows_to_csv(rows))
        if json_out:
            emit_json({"rows": rows, "notes": notes, "model": str(model), "csv": str(csv_out) if csv_out else None})
            return
        typer.echo(f"{len(rows)} pairs scored" + (f"; rows written to {csv_out}" if csv_out else " (use --csv)"))
        return
    if orig is None:
        raise ConfigError("give ORIG and REC (two PNGs or folders), or --manifest M")
    if orig.is_file():
        if rec is None or not rec.is_file():
            raise ConfigError("ORIG is a file: give the reconstruction PNG as REC")
        a, b = read_png(orig)[None], read_png(rec)[None]
        rows = [{"original": str(orig), "reconstruction": str(rec), "semsim": float(semsim_distance(net, a, b)[0])}]
    else:
        pairs = load_pairs(orig, rec)
        dist = semsim_distance(net, pairs.originals, pairs.reconstructions)
        rows = [
            {"index": i, "label": int(lab), "original": str(f.ori), "reconstruction": str(f.rec), "semsim": float(v)}
            for i, lab, f, v in zip(pairs.indices, pairs.labels, pairs.files, dist, strict=True)
        ]
    mean = sum(r["semsim"] for r in rows) / len(rows)
    if csv_out is not None:
        atomic_write_text(csv_out, rows_to_csv(rows))
    if json_out:
        emit_json({"rows": rows, "mean": mean, "model": str(model), "embedding_dim": net.dim})
        return
    if len(rows) == 1:
        typer.echo(f"semsim: {rows[0]['semsim']:.4f} (L2 distance of {net.dim}-d embeddings; lower = more similar)")
        return
    print_table(
        f"SemSim, {len(rows)} pairs",
        ["index", "label", "semsim"],
        [[r["index"], r["label"], r["semsim"]] for r in rows] + [["mean", "", mean]],
    )


@semsim_app.command(
    "agreement",
    epilog=examples(
        "privlab semsim agreement --manifest labels/annotations.csv --scores scores.csv",
        "privlab semsim agreement --manifest runs/semsim/<run>/proxy/manifest.csv "
        "--scores runs/semsim/<run>/heldout_scores.csv --json",
    ),
)
@handle_errors
def agreement_cmd(
    manifest: Path = typer.Option(..., "--manifest", "-m", help="manifest of human answers"),
    scores: Path = typer.Option(..., "--scores", help="CSV with a reconstruction column and one column per metric"),
    n_boot: int = typer.Option(2000, "--n-boot", max=100_000, help="bootstrap resamples for the 95 % intervals"),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="seed of the bootstrap"),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Per-setting means, Spearman/Pearson/Kendall with bootstrap 95 % intervals, and ordering accuracy per metric.

    Correlations use each metric oriented as a similarity (negated when lower = more similar), so positive values
    and ordering accuracies above 0.5 mean agreement with the humans.
    """
    from privlab.errors import ConfigError
    from privlab.measure.image.base import similarity_directions
    from privlab.measure.semsim.agreement import agreement, join_scores

    rows, info = join_scores(manifest, scores)
    directions = similarity_directions()
    unknown = [m for m in info["metrics"] if m not in directions]
    if unknown:
        raise ConfigError(
            f"columns {', '.join(unknown)} of {scores} are not known metrics ({', '.join(directions)}); "
            "remove or rename them"
        )
    res = agreement(rows, info["metrics"], n_boot=n_boot, seed=seed)
    if json_out:
        emit_json({**res.as_dict(), "summary": res.summary(), "join": info})
        return
    print_table(
        f"{res.n_images} judged reconstructions in {res.n_settings} settings",
        ["setting", "n", "human rate", *info["metrics"]],
        [[p["setting"], p["n"], p["human_rate"], *[p[m] for m in info["metrics"]]] for p in res.per_setting],
    )

    def fmt(c: dict) -> str:
        v = c["value"]
        if v != v:
            return "–"
        ci = c.get("ci95")
        return f"{v:.3f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")

    print_table(
        "agreement with humans (metric oriented as a similarity; 95 % bootstrap intervals)",
        ["metric", "Spearman (settings)", "Pearson (settings)", "Kendall (settings)", "Spearman (images)",
         "ordering acc. (images)"],
        [
            [m, fmt(d["setting"]["spearman"]), fmt(d["setting"]["pearson"]), fmt(d["setting"]["kendall"]),
             fmt(d["image"]["spearman"]), d["image"]["ordering_accuracy"]]
            for m, d in res.metrics.items()
        ],
    )  # fmt: skip


@semsim_app.command(
    "annotate",
    epilog=examples(
        "privlab semsim annotate runs/inv/images",
        "privlab semsim annotate labels/ --port 8765 --annotator alice",
    ),
)
@handle_errors
def annotate_cmd(
    folder: Path = typer.Argument(
        ..., help="folder with {idx}_{label}_ori.png / _rec.png pairs (searched recursively)"
    ),
    port: int = typer.Option(8765, "--port", help="TCP port"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to bind (127.0.0.1 = this machine only)"),
    manifest: Path | None = typer.Option(None, "--manifest", help="answers file inside FOLDER (annotations.csv)"),
    annotator: str | None = typer.Option(None, "--annotator", help="name pre-filled on the page"),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP + " (the address, then serve)"),
) -> None:
    """Serve a local page that shows each original beside its reconstruction and records your answer (y / n)."""
    from privlab.measure.semsim.server import is_loopback, make_server

    srv = make_server(folder, host=host, port=port, manifest=manifest, annotator=annotator)
    if not is_loopback(host):
        typer.echo(
            f"warning: serving on {host}, not only this machine: the page has no authentication, so anyone who can "
            "reach this port can see the images and write answers; use --host 127.0.0.1 unless you mean it",
            err=True,
        )
    url = f"http://{'localhost' if host == '127.0.0.1' else host}:{srv.server_address[1]}/"
    if json_out:
        emit_json({"url": url, "pairs": len(srv.items), "manifest": str(srv.manifest)})
    else:
        typer.echo(f"{len(srv.items)} pairs; answers go to {srv.manifest}")
        typer.echo(f"open {url}  (keys: y = recognisable, n = not, u = back; Ctrl-C stops)")
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        typer.echo("stopped; every answer is in the manifest")
    finally:
        srv.server_close()


@semsim_app.command(
    "import",
    epilog=examples("privlab semsim import data/human_anno_id/train_with_ori --setting cifar100"),
)
@handle_errors
def import_cmd(
    folder: Path = typer.Argument(..., help="the original layout: <id>/ (original + recognised), -<id>/, others/"),
    setting: str = typer.Option("default", "--setting", help="setting name written into every row"),
    annotator: str = typer.Option("imported", "--annotator", help="annotator name written into every row"),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Convert SemSim's annotation folder layout into FOLDER/manifest.csv."""
    from privlab.measure.semsim import import_folder_layout

    m = import_folder_layout(folder, setting=setting, annotator=annotator)
    yes = sum(r.recognised for r in m.records)
    d = {"manifest": str(m.path), "rows": len(m.records), "recognised": yes, "not_recognised": len(m.records) - yes}
    if json_out:
        emit_json(d)
        return
    typer.echo(f"{d['rows']} answers ({yes} recognised) written to {m.path}")


@semsim_app.command(
    "proxy",
    epilog=examples(
        "privlab semsim proxy --preset smoke --out runs/semsim",
        "privlab semsim proxy --out runs/semsim",
        "privlab semsim proxy --preset cifar10-cpu --data-root ../shared/data --out runs/semsim-cifar10",
    ),
)
@handle_errors
def proxy_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="output folder (results store, run folders, report)"),
    preset: str = typer.Option(
        "cpu",
        "--preset",
        help="smoke (seconds), cpu (minutes), cifar10-cpu (≈ 8 CPU min, needs --data-root), paper (GPU)",
    ),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="run seed"),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu, cuda"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
    data_root: DataRootOption = None,
) -> None:
    """The proxy experiment (no human data): label attack reconstructions with a classifier, train SemSim, compare.

    Same as `privlab run semsim --preset PRESET`. The labels are a PROXY for human judgements.
    """
    import json

    from privlab.run import execute, load_spec

    spec = load_spec(experiment="semsim", preset=preset, overrides={"seed": seed})
    (o,) = execute(spec, out, device=device, quiet=quiet or json_out, data_root=data_root)
    run_dir = Path(out) / o.id
    agr_path = run_dir / "agreement.json"
    agr = json.loads(agr_path.read_text("utf-8")) if agr_path.exists() else {}
    d = {
        "run_id": o.id,
        "status": o.status,
        "checkpoint": str(run_dir / "semsim.safetensors"),
        "manifest": str(run_dir / "proxy" / "manifest.csv"),
        "summary": agr.get("summary", []),
        "semsim_beats_baselines": agr.get("semsim_beats_baselines"),
        "metrics": o.metrics,
    }
    if json_out:
        emit_json(d)
        return
    rows = [[s["metric"], s["image_ordering_accuracy"], s["image_spearman"], s["setting_spearman"]]
            for s in d["summary"]]  # fmt: skip
    print_table(f"{o.id} ({o.status}) — PROXY labels", ["metric", "ordering acc.", "Spearman", "Spearman (settings)"],
                rows)  # fmt: skip
    typer.echo(f"checkpoint: {d['checkpoint']}")
