"""``privlab ldp``: local-DP budgets and privatising image/label arrays."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import typer

from privlab.cli import app
from privlab.cli._common import JSON_HELP, emit_json, examples, handle_errors, print_table

ldp_app = typer.Typer(
    help="Local differential privacy on images and labels: budgets and privatised arrays.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(ldp_app, name="ldp")

#: Largest working memory ``ldp privatize`` allocates; sizes above it are refused before any allocation.
_MAX_BYTES = 8 * 2**30
_SHAPE_HELP = "image shape C×H×W as 1x28x28 (sets the pixel count d for per-pixel ε)"


def _parse_shape(shape: str) -> tuple[int, ...]:
    from privlab.errors import ConfigError

    try:
        dims = tuple(int(p) for p in shape.lower().replace("×", "x").split("x"))
    except ValueError:
        raise ConfigError(f"--shape must look like 1x28x28, got {shape!r}") from None
    if not dims or any(d < 1 for d in dims):
        raise ConfigError(f"--shape must hold positive sizes, got {shape!r}")
    return dims


def _fmt(v: float | None) -> str:
    if v is None:
        return "—"
    if math.isinf(v):
        return "∞"
    return f"{v:.6g}"


@ldp_app.command(
    epilog=examples(
        "privlab ldp budget --mechanism laplace --epsilon 1000",
        "privlab ldp budget --mechanism gaussian --epsilon 3000 --delta 1.6e-6 --shape 1x28x28",
        "privlab ldp budget --mechanism rr --epsilon 300 --label-mechanism sue --label-fraction 0.2 --json",
        "privlab ldp budget --mechanism laplace --epsilon 300 --epochs 20 --fresh-noise",
        "privlab ldp budget --mechanism dpsgd --epsilon 3 --dataset-size 60000 --batch-size 256 --epochs 20",
    )
)
@handle_errors
def budget(
    mechanism: str = typer.Option("laplace", "--mechanism", "-m", help="laplace, gaussian, rr or dpsgd"),
    epsilon: float = typer.Option(..., "--epsilon", "-e", max=1e6, help="total ε per example (image + label), nats"),
    delta: float = typer.Option(1e-5, "--delta", help="δ of the run (gaussian, dpsgd)"),
    shape: str = typer.Option("1x8x8", "--shape", help=_SHAPE_HELP),
    label_mechanism: str = typer.Option("none", "--label-mechanism", help="none, sue or oue"),
    label_fraction: float = typer.Option(0.1, "--label-fraction", help="share of ε spent on the label"),
    epochs: int = typer.Option(
        1, "--epochs", max=10_000, help="training epochs (releases with --fresh-noise; DP-SGD epochs)"
    ),
    fresh_noise: bool = typer.Option(False, "--fresh-noise", help="new image noise every epoch: ε split over epochs"),
    calibration: str = typer.Option("analytic", "--calibration", help="gaussian: analytic or classical"),
    dataset_size: int = typer.Option(60000, "--dataset-size", max=10**9, help="dpsgd: training examples N"),
    batch_size: int = typer.Option(256, "--batch-size", max=10**9, help="dpsgd: expected batch size"),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show how a total ε is spent: per pixel, per image (per release), per label and composed, with the noise.

    The same allocation as the `ldp` experiment: `--label-fraction` of ε goes to the label (unary encoding), the
    rest to the image, split equally over `--epochs` releases with `--fresh-noise`.
    """
    from privlab.errors import ConfigError
    from privlab.protect.ldp_budget import account, check_epsilon

    check_epsilon(epsilon)
    if epochs < 1:
        raise ConfigError(f"--epochs must be ≥ 1, got {epochs}")
    if mechanism == "dpsgd":
        from pydantic import ValidationError

        from privlab.protect.dpsgd import DPSGDConfig, noise_multiplier, sample_rate

        try:
            cfg = DPSGDConfig(epsilon=epsilon, delta=delta, epochs=epochs, batch_size=batch_size)
        except ValidationError as e:
            err = e.errors()[0]
            opt = "--" + "-".join(str(x) for x in err["loc"]).replace("_", "-")
            raise ConfigError(f"{opt}: {err['msg']} (got {err.get('input')!r})") from None
        sigma = noise_multiplier(cfg, dataset_size)
        out: dict[str, Any] = {
            "mechanism": "dpsgd",
            "epsilon": epsilon,
            "delta": delta,
            "noise_multiplier": sigma,
            "sample_rate": sample_rate(batch_size, dataset_size),
            "epochs": epochs,
            "accountant": cfg.accountant,
            "scope": "per training example (image and label), central DP",
        }
        if json_out:
            emit_json(out)
            return
        typer.echo(f"DP-SGD (central): ε = {epsilon:g}, δ = {delta:g} per example after {epochs} epochs")
        typer.echo(f"noise multiplier σ/C = {sigma:.4g} at sample rate {out['sample_rate']:.4g} (RDP accountant)")
        return
    from privlab.protect.ldp import build_ldp_mechanisms

    if label_mechanism not in ("none", "sue", "oue"):
        raise ConfigError(f"--label-mechanism must be none, sue or oue, got {label_mechanism!r}")
    dims = _parse_shape(shape)
    pixels = math.prod(dims)
    releases = epochs if fresh_noise else 1
    params: dict[str, Any] = {"calibration": calibration, "strict": False} if mechanism == "gaussian" else {}
    mech, label, alloc = build_ldp_mechanisms(
        mechanism,
        epsilon,
        label_mechanism=label_mechanism,
        label_fraction=label_fraction,
        releases=releases,
        delta=delta,
        **params,
    )
    acct = account(mech.budget(pixels), label.budget() if label else None, releases=releases)
    out = {
        "mechanism": mechanism,
        "shape": list(dims),
        "pixels": pixels,
        "allocation": alloc.__dict__,
        **acct.as_dict(),
    }
    if json_out:
        emit_json(out)
        return
    rows = [[scope, _fmt(e), _fmt(d)] for scope, e, d in acct.rows()]
    typer.echo(f"{mechanism}: total ε = {epsilon:g} per example, d = {pixels} pixel values per image")
    print_table(None, ["scope", "ε", "δ"], rows)
    det = acct.per_image.details if acct.per_image else {}
    noise = {k: det[k] for k in ("scale", "sigma", "p", "q", "sensitivity_l2", "calibration") if k in det}
    typer.echo(
        "image mechanism: " + ", ".join(f"{k} = {_fmt(v) if isinstance(v, float) else v}" for k, v in noise.items())
    )
    if label is not None:
        typer.echo(f"label ({label_mechanism}): p = {label.p:.10g}, q = {label.q:.6g}")
        if label.epsilon < alloc.label_epsilon:
            typer.echo(
                f"note: label ε {alloc.label_epsilon:.6g} is implemented as {label.epsilon:g} (the float64 limit), "
                "so the composed ε is below the total"
            )
    if det.get("proven") is False:
        typer.echo(f"warning: {det.get('note')}")
    if releases > 1:
        typer.echo(f"fresh noise: {releases} image releases of ε {alloc.image_epsilon:.6g} each (basic composition)")


@ldp_app.command(
    epilog=examples(
        "privlab ldp privatize --mechanism laplace --epsilon 1000 images.npy private.npy",
        "privlab ldp privatize --mechanism gaussian --epsilon 3000 --delta 1e-6 --seed 1 images.npy private.npy",
        "privlab ldp privatize --mechanism rr --epsilon 2 --scope pixel --threshold 0.45 images.npy bits.npy --json",
        "privlab ldp privatize --mechanism rr --epsilon 300 --binarize dither images.npy bits.npy",
        "privlab ldp privatize --mechanism ue --epsilon 2 --classes 10 labels.npy label_bits.npy",
    )
)
@handle_errors
def privatize(
    input_path: Path = typer.Argument(
        ..., metavar="IN", help="images (N, [C,] H, W) .npy/.npz/.safetensors; labels for ue"
    ),
    output_path: Path = typer.Argument(
        ..., metavar="OUT", help="output .npy (a JSON sidecar OUT.json holds the budget)"
    ),
    mechanism: str = typer.Option(..., "--mechanism", "-m", help="laplace, gaussian, rr, or ue (labels)"),
    epsilon: float = typer.Option(
        ..., "--epsilon", "-e", max=1e6, help="ε per image (or per pixel with --scope pixel; per label for ue)"
    ),
    delta: float = typer.Option(1e-5, "--delta", help="gaussian: δ per image"),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="seed of the noise"),
    scope: str = typer.Option("image", "--scope", help="laplace/rr: ε per image or per pixel"),
    calibration: str = typer.Option("analytic", "--calibration", help="gaussian: analytic or classical"),
    threshold: float = typer.Option(0.5, "--threshold", help="rr: pixel is 1 when > threshold (in [0, 1])"),
    binarize: str = typer.Option(
        "threshold", "--binarize", help="rr: threshold, or dither (Floyd–Steinberg, keeps grey levels as dot density)"
    ),
    no_clip: bool = typer.Option(False, "--no-clip", help="laplace/gaussian: keep values outside [0, 1]"),
    kind: str = typer.Option("oue", "--kind", help="ue: sue or oue"),
    classes: int | None = typer.Option(
        None, "--classes", max=1_000_000, help="ue: number of classes (default max label + 1)"
    ),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Privatise an image array (uint8 0–255 is read as /255) or, with `--mechanism ue`, a label array.

    Writes OUT as float32 images (0/1 for rr) or uint8 bit vectors (N, K) for ue, atomically, and OUT.json with the
    mechanism, seed and budget.
    """
    import numpy as np
    import torch

    from privlab.errors import ConfigError, FileFormatError, PrivlabError
    from privlab.protect.ldp_budget import check_epsilon
    from privlab.store import atomic_write_bytes, atomic_write_text, load_array

    check_epsilon(epsilon)
    if output_path.suffix.lower() != ".npy":
        raise ConfigError(f"OUT must end in .npy, got {output_path}")
    arr = load_array(input_path)
    gen = torch.Generator().manual_seed(seed)
    info: dict[str, Any] = {"input": str(input_path), "output": str(output_path), "seed": seed, "mechanism": mechanism}
    if arr.ndim == 0 or arr.shape[0] == 0:
        raise FileFormatError(f"{input_path}: holds no rows (shape {arr.shape}); nothing to privatise")
    if mechanism == "ue":
        from privlab.protect.ldp_label import UnaryEncoding

        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise FileFormatError(f"{input_path}: ue needs a 1-d integer label array, got {arr.dtype} {arr.shape}")
        k = classes if classes is not None else int(arr.max()) + 1 if arr.size else 2
        need = arr.shape[0] * max(k, 2) * 9  # the (N, K) bit matrix: int64 draws while sampling + uint8 output
        if need > _MAX_BYTES:
            raise ConfigError(
                f"ue on {arr.shape[0]} labels × {k} classes needs about {need / 2**30:.3g} GiB (more than "
                f"{_MAX_BYTES / 2**30:g} GiB); check --classes and the largest label of {input_path}"
            )
        ue = UnaryEncoding(kind=kind, epsilon=epsilon, num_classes=max(k, 2))
        out = ue.privatize(torch.from_numpy(arr.astype(np.int64)), gen).numpy()
        b = ue.budget()
        info |= {"kind": kind, "num_classes": ue.config.num_classes, "budget": b.as_dict()}
    else:
        from privlab.protect.ldp_pixel import build_pixel_mechanism

        if arr.ndim < 2:
            raise FileFormatError(f"{input_path}: images need shape (N, H, W), (N, C, H, W) or (N, d), got {arr.shape}")
        params: dict[str, Any] = {"epsilon": epsilon}
        if mechanism == "gaussian":
            if scope != "image":
                raise ConfigError(f"--scope {scope!r}: the Gaussian mechanism is calibrated per image only")
            params |= {"delta": delta, "calibration": calibration}
        else:
            params["scope"] = scope
        if mechanism == "rr":
            params["threshold"] = threshold
            params["binarize"] = binarize
        elif binarize != "threshold":
            raise ConfigError(f"--binarize {binarize!r} applies to --mechanism rr only")
        else:
            params["clip"] = not no_clip
        mech = build_pixel_mechanism(mechanism, **params)
        x = torch.from_numpy(np.ascontiguousarray(arr))
        if x.dtype not in (torch.uint8, torch.bool) and not x.dtype.is_floating_point:
            raise FileFormatError(f"{input_path}: images must be uint8 (0–255) or float in [0, 1], got {arr.dtype}")
        pixels = math.prod(x.shape[1:])
        out = mech.privatize(x, gen).numpy()
        b = mech.budget(pixels)
        info |= {"pixels": pixels, "budget": b.as_dict()}
    if out.dtype.kind == "f" and not np.isfinite(out).all():
        raise ConfigError(
            f"--epsilon {epsilon:g} on {input_path}: the noise overflows float32 (±inf in the output); use a larger "
            "--epsilon" + (" or drop --no-clip" if no_clip else "")
        )
    buf = io.BytesIO()
    np.save(buf, out, allow_pickle=False)
    sidecar = output_path.with_name(output_path.name + ".json")
    info["shape"] = list(out.shape)
    info["dtype"] = str(out.dtype)
    from privlab.store.artifacts import json_safe

    # the sidecar first, then OUT: a failed write of either leaves the previous OUT and its sidecar as they were
    previous = sidecar.read_bytes() if sidecar.is_file() else None
    atomic_write_text(sidecar, json.dumps(json_safe(info), indent=1, sort_keys=True))
    try:
        atomic_write_bytes(output_path, buf.getvalue())
    except PrivlabError:
        if previous is None:
            sidecar.unlink(missing_ok=True)
        else:
            atomic_write_bytes(sidecar, previous)
        raise
    info["sidecar"] = str(sidecar)
    if json_out:
        emit_json(info)
        return
    bd = info["budget"]
    delta_txt = f", δ = {bd['delta']:g}" if bd.get("delta") else ""
    typer.echo(f"wrote {output_path} ({out.shape[0]} rows, {out.dtype}) and {sidecar.name}")
    typer.echo(f"{mechanism}: ε = {bd['epsilon']:.6g} per {bd['scope']}{delta_txt}")
