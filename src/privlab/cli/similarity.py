"""``privlab similarity``: per-image similarity of reconstructions to originals, paired by file name."""

from __future__ import annotations

from pathlib import Path

import typer

from privlab.cli import app
from privlab.cli._common import JSON_HELP, emit_json, examples, handle_errors

_AUTO = "auto"


@app.command(
    epilog=examples(
        "privlab similarity runs/inv/images",
        "privlab similarity originals_ori/ reconstructions/ --metrics psnr,ssim,ms-ssim --json",
        "privlab similarity runs/inv/images --metrics psnr,lpips --lpips-weights alexnet-owt-7be5be79.pth",
        "privlab similarity runs/inv/images --csv similarity.csv",
    )
)
@handle_errors
def similarity(
    orig_dir: Path = typer.Argument(
        ..., help="folder with {idx}_{label}_ori.png (and the _rec.png files if no REC_DIR)"
    ),
    rec_dir: Path | None = typer.Argument(None, help="folder with {idx}_{label}_rec.png (default: ORIG_DIR)"),
    metrics: str = typer.Option(
        _AUTO,
        "--metrics",
        "-m",
        help="comma-separated image metrics (`privlab metrics`): mse, psnr, ssim, ms-ssim, lpips, semsim (checkpoint "
        "from $PRIVLAB_SEMSIM_MODEL), or your own; "
        "'auto' = mse,psnr,ssim + ms-ssim if the images are "
        "large enough + lpips if its weights are found",
    ),
    lpips_net: str = typer.Option("alex", "--lpips-net", help="LPIPS backbone: alex, vgg or squeeze"),
    lpips_weights: str | None = typer.Option(
        None,
        "--lpips-weights",
        help="backbone weights (.pth/.safetensors) or 'random'; default: $PRIVLAB_LPIPS_WEIGHTS, then the torch hub "
        "cache",
    ),
    device: str = typer.Option("auto", "--device", help="where LPIPS runs: auto (CUDA when present), cpu, cuda"),
    csv_out: Path | None = typer.Option(None, "--csv", help="also write the per-image rows to this CSV file"),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Score reconstructions against originals, per image: MSE, PSNR (dB), SSIM, MS-SSIM, LPIPS.

    Pairs {idx}_{label}_ori.png with {idx}_{label}_rec.png (the naming of `privlab invert` and SemSim); images are
    read as [0, 1]. Prints one row per image and the means, then what exactly each metric computed.
    """
    from privlab.data.reconstructions import load_pairs
    from privlab.measure.image import parse_metrics, score

    pairs = load_pairs(orig_dir, rec_dir)
    skipped: dict[str, str] = {}
    if metrics.strip().lower() == _AUTO:
        names = ["mse", "psnr", "ssim", "ms-ssim", "lpips"]
        names, skipped = _auto(names, pairs.originals.shape, lpips_net, lpips_weights)
    else:
        names = parse_metrics(metrics)
        if "classifier" in names:
            from privlab.errors import ConfigError

            raise ConfigError(
                "metric 'classifier' needs a model and is available from Python only (privlab.measure.image.score)"
            )
    table = score(
        pairs.originals,
        pairs.reconstructions,
        names,
        labels=pairs.labels,
        lpips_net=lpips_net,
        lpips_weights=lpips_weights,
        device=device,
        indices=pairs.indices,
    )
    if csv_out is not None:
        table.to_csv(csv_out)
    if json_out:
        d = table.as_dict()
        d["skipped"] = skipped
        d["orig_dir"], d["rec_dir"] = str(orig_dir), str(rec_dir or orig_dir)
        emit_json(d)
        return
    from privlab.cli._common import print_table

    units = {c: f" ({u})" if u in ("dB",) else "" for c, u in table.units.items()}
    rows = [[r["index"], r["label"], *[r[c] for c in table.metrics]] for r in table.rows]
    rows.append(["mean", "", *[table.means[c] for c in table.metrics]])
    n, c, h, w = pairs.originals.shape
    print_table(f"{n} pairs, {c}×{h}×{w}", ["index", "label", *[m + units.get(m, "") for m in table.metrics]], rows)
    for name, note in table.notes.items():
        typer.echo(f"{name}: {note}")
    for name, why in skipped.items():
        typer.echo(f"{name}: skipped ({why})", err=True)
    if csv_out is not None:
        typer.echo(f"rows written to {csv_out}")


def _auto(
    names: list[str], shape: tuple[int, ...], lpips_net: str, lpips_weights: str | None
) -> tuple[list[str], dict[str, str]]:
    """The default metric set: drop MS-SSIM on too-small images and LPIPS without weights, saying why."""
    from privlab.errors import ConfigError
    from privlab.measure.functional.image_similarity import SSIM_WINDOW, ms_ssim_settings
    from privlab.measure.image.lpips import lpips_available

    keep, skipped = [], {}
    h, w = int(shape[-2]), int(shape[-1])
    for name in names:
        if name in ("ssim", "ms-ssim") and min(h, w) < SSIM_WINDOW:
            skipped[name] = f"{h}×{w} images are smaller than the {SSIM_WINDOW}-pixel window"
            continue
        if name == "ms-ssim":
            try:
                ms_ssim_settings(h, w)
            except ConfigError as e:
                skipped[name] = str(e)
                continue
        if name == "lpips" and lpips_weights is None:  # weights given explicitly: let their errors surface
            reason = lpips_available(lpips_net, lpips_weights)
            if reason is not None:
                skipped[name] = reason
                continue
        keep.append(name)
    return keep, skipped
