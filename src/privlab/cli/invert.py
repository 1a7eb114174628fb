"""``privlab invert``: one gradient-inversion experiment from command-line options."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from privlab.cli import app
from privlab.cli._common import (
    DataRootOption,
    DeviceOption,
    DownloadOption,
    ForceOption,
    JsonOption,
    OutOption,
    QuietOption,
    emit_json,
    examples,
    handle_errors,
    print_table,
)
from privlab.cli.run import finish_runs

#: restarts of ``privlab invert`` unless ``--restarts`` says otherwise: 4 restarts batched cost ≈ 2.4× one restart
#: (benchmark ``inversion_restart_single``, DLG on lenet_dlg at 32×32), against 4× in a loop.
DEFAULT_RESTARTS = 4


@app.command(
    epilog=examples(
        "privlab invert --dataset digits --model lenet_dlg --attack dlg --num-images 4 --out runs/inv",
        "privlab invert --attack idlg --defense prune:70 --json",
        "privlab invert --attack inverting-gradients --model convnet64 --train-victim 10 --iterations 2000",
        "privlab invert --attack dlg --defense dpsgd:noise_multiplier=0.5,clip=1 --json",
        "privlab invert --dataset cifar10 --resize 0 --data-root DATA --semsim-model runs/sem/RUN/semsim.safetensors",
    )
)
@handle_errors
def invert(
    dataset: str = typer.Option("digits", "--dataset", "-d", help="data set (privlab datasets)"),
    model: str = typer.Option("lenet_dlg", "--model", "-m", help="victim model (privlab models)"),
    attack: str = typer.Option("dlg", "--attack", "-a", help="dlg, idlg or inverting-gradients"),
    num_images: int = typer.Option(1, "--num-images", "-n", max=1024, help="images to reconstruct"),
    batch_size: int = typer.Option(1, "--batch-size", max=1024, help="images per shared gradient"),
    iterations: int | None = typer.Option(
        None, "--iterations", "-i", max=10**6, help="attack iterations (default: preset)"
    ),
    restarts: int = typer.Option(
        DEFAULT_RESTARTS,
        "--restarts",
        min=1,
        max=1000,
        help="attack restarts, optimised as one batch where the model allows; the lowest final matching loss wins "
        "(1: off)",
    ),
    defense: str = typer.Option("none", "--defense", help="noise:σ, laplace:σ, prune:P, dpsgd:z, augment:flip, none"),
    resize: int = typer.Option(
        32, "--resize", max=512, help="resize images to N×N (32: the papers' size; 0: native size)"
    ),
    checkpoint: Path | None = typer.Option(None, "--checkpoint", help="victim from a privlab train checkpoint"),
    train_victim: int = typer.Option(
        0, "--train-victim", max=10_000, help="train the victim for N epochs first (0: at init)"
    ),
    dlg_init: bool = typer.Option(True, "--dlg-init/--default-init", help="U(−0.5, 0.5) init (DLG) for lenet_dlg"),
    fedavg_steps: int = typer.Option(
        0, "--fedavg-steps", max=10_000, help="share a FedAvg update of N local steps instead"
    ),
    metrics: str = typer.Option("mse,psnr,ssim,lpips", "--metrics", help="similarity metrics (lpips when available)"),
    semsim_model: Path | None = typer.Option(
        None, "--semsim-model", help="SemSim checkpoint (semsim.safetensors of `privlab run semsim`): adds semsim"
    ),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="seed of the run"),
    out: OutOption = Path("runs"),
    force: ForceOption = False,
    device: DeviceOption = "auto",
    data_root: DataRootOption = None,
    download: DownloadOption = False,
    quiet: QuietOption = False,
    json_out: JsonOption = False,
) -> None:
    """Reconstruct client images from their shared gradient and score the reconstructions.

    Writes OUT/<run>/images/{idx}_{label}_{ori|rec}.png, per_image.csv, grid.png and a report section. The same as
    `privlab run` with `experiment: inversion` (use a spec file for sweeps over attack × defence).
    """
    from privlab.protect.gradient import parse_defense
    from privlab.run import execute, spec_from_mapping

    attack_config: dict[str, Any] = {}
    if iterations is not None:
        attack_config["iterations"] = iterations
    attack_config["restarts"] = restarts
    data: dict[str, Any] = {
        "experiment": "inversion",
        "seed": seed,
        "dataset": {"name": dataset, "resize": resize or None},
        "num_images": num_images,
        "batch_size": batch_size,
        "victim": {
            "model": model,
            "init": "dlg-uniform" if dlg_init and model == "lenet_dlg" and not checkpoint else "default",
            "checkpoint": str(checkpoint) if checkpoint else None,
            "train": {"epochs": train_victim} if train_victim > 0 else None,
        },
        "attack": attack,
        "attack_config": attack_config,
        "defense": parse_defense(defense),
        "metrics": [m.strip() for m in metrics.split(",") if m.strip()],
    }
    if semsim_model is not None:
        data["semsim_model"] = str(semsim_model)
    if fedavg_steps > 0:
        data["threat"] = {"kind": "fedavg", "local_steps": fedavg_steps}
    spec = spec_from_mapping(data, source="privlab invert options")
    outcomes = execute(
        spec, out, force=force, device=device, data_root=data_root, download=download, quiet=quiet or json_out
    )
    o = outcomes[0]
    if o.status == "failed":
        finish_runs(outcomes, out, json_out)
    per_image = json.loads((out / o.id / "per_image.json").read_text("utf-8"))
    if json_out:
        emit_json(
            {
                "run_id": o.id,
                "status": o.status,
                "images": per_image["rows"],
                "means": per_image["means"] | {"label_accuracy": o.metrics.get("label_accuracy")},
                "notes": per_image["notes"],
                "metrics": o.metrics,
                "folder": str(out / o.id / "images"),
                "report": str(out / "report.html"),
            }
        )
        return
    rows = per_image["rows"]
    cols = [c for c in rows[0] if c not in ("index",)] if rows else []
    print_table("reconstructions", ["index", *cols], [[r.get("index"), *[r.get(c) for c in cols]] for r in rows])
    for k, v in per_image["notes"].items():
        typer.echo(f"{k}: {v}")
    finish_runs(outcomes, out, json_out=False)
    typer.echo(f"images:  {out / o.id / 'images'}")
