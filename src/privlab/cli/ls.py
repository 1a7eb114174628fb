"""``privlab datasets``, ``models``, ``experiments``, ``attacks``, ``protections``, ``metrics``: what is registered."""

from __future__ import annotations

import typer

from privlab.cli import app
from privlab.cli._common import JSON_HELP, emit_json, examples, handle_errors, print_table


@app.command(epilog=examples("privlab datasets", "privlab datasets --json"))
@handle_errors
def datasets(json_out: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """List registered data sets: name, image shape (C×H×W), classes, whether --data-root is needed."""
    from privlab.data import DATASETS

    rows = []
    for e in DATASETS.entries():
        info = e.meta["info"]
        rows.append(
            {
                "name": e.name,
                "shape": list(info.shape),
                "num_classes": info.num_classes,
                "needs_root": info.needs_root,
                "mean": list(info.mean),
                "std": list(info.std),
                "class_names": list(info.class_names) if info.class_names is not None else None,
                "description": info.description,
            }
        )
    if json_out:
        emit_json({"datasets": rows})
        return
    print_table(
        "data sets",
        ["name", "shape", "classes", "needs --data-root", "description"],
        [
            [
                r["name"],
                "×".join(str(s) for s in r["shape"]) if all(r["shape"]) else "from files",
                _classes_cell(r["num_classes"], r["class_names"]),
                "yes" if r["needs_root"] else "no (embedded)",
                r["description"],
            ]
            for r in rows
        ],
    )


def _classes_cell(num_classes: int, names: list[str] | None) -> str:
    """``10 (airplane, automobile, bird, …)`` where names are known and say more than the label numbers."""
    if not num_classes:
        return "from folder names"
    if not names or names == [str(i) for i in range(num_classes)]:
        return str(num_classes)
    shown = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
    return f"{num_classes} ({shown})"


@app.command(epilog=examples("privlab models", "privlab models --json"))
@handle_errors
def models(json_out: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """List registered models: name, input size they need (others are resized inside), layers to split at."""
    import torch

    from privlab.models import MODELS, build_model, model_input_hw

    rows = []
    for e in MODELS.entries():
        hw = model_input_hw(e.name)
        shape = (1, *(hw or (32, 32)))
        m = build_model(e.name, 10, shape)
        rows.append(
            {
                "name": e.name,
                "input_hw": list(hw) if hw else None,
                "parameters_10_classes": sum(p.numel() for p in m.parameters()),
                "layers": [n for n, _ in m.named_children()],
                "description": e.meta.get("description", ""),
            }
        )
        del m
    torch.set_grad_enabled(True)
    if json_out:
        emit_json({"models": rows})
        return
    print_table(
        "models",
        ["name", "input", "params (1 ch, 10 classes)", "split points", "description"],
        [
            [
                r["name"],
                "×".join(map(str, r["input_hw"])) if r["input_hw"] else "any",
                f"{r['parameters_10_classes']:,}",
                ", ".join(r["layers"]),
                r["description"],
            ]
            for r in rows
        ],
    )


@app.command(epilog=examples("privlab experiments", "privlab run train --preset smoke"))
@handle_errors
def experiments(json_out: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """List experiments (pipelines) that `privlab run` accepts, with their presets."""
    from privlab.pipelines import PIPELINES, preset_names

    rows = [
        {"name": e.name, "presets": preset_names(e.name), "description": e.meta.get("description", "")}
        for e in PIPELINES.entries()
    ]
    if json_out:
        emit_json({"experiments": rows})
        return
    print_table(
        "experiments",
        ["name", "presets", "description"],
        [[r["name"], ", ".join(r["presets"]), r["description"]] for r in rows],
    )


def _component_table(kind: str, registry_path: str, extra: str, json_out: bool) -> None:
    import importlib

    module, _, attr = registry_path.rpartition(".")
    registry = getattr(importlib.import_module(module), attr)
    rows = []
    for e in registry.entries():
        value = e.meta.get(extra)
        rows.append(
            {
                "name": e.name,
                extra: list(value) if isinstance(value, tuple) else value,
                "description": e.meta.get("description", ""),
            }
        )
    if json_out:
        emit_json({kind: rows})
        return
    print_table(
        kind,
        ["name", extra, "description"],
        [[r["name"], ", ".join(r[extra]) if isinstance(r[extra], list) else r[extra], r["description"]] for r in rows],
    )


@app.command(epilog=examples("privlab attacks", "privlab invert --attack idlg"))
@handle_errors
def attacks(json_out: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """List registered attacks and what their threat model requires (gradients, activations, released data)."""
    _component_table("attacks", "privlab.attack.ATTACKS", "requires", json_out)


@app.command(epilog=examples("privlab protections", "privlab ldp budget --mechanism laplace --epsilon 1"))
@handle_errors
def protections(json_out: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """List registered protections and where they act (data, activation, gradient, training)."""
    _component_table("protections", "privlab.protect.PROTECTIONS", "kind", json_out)


@app.command(epilog=examples("privlab metrics", "privlab metrics --json", "privlab similarity DIR --metrics psnr,ssim"))
@handle_errors
def metrics(json_out: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """List registered measurements: image-similarity columns (unit, direction read as a similarity, kind) and MI
    estimators (nats)."""
    from privlab.measure.image import metric_columns
    from privlab.measure.mi import MI_ESTIMATORS

    rows = [
        {
            "name": c.column,
            "metric": c.metric,
            "family": "image",
            "unit": c.unit,
            "higher_is_better": c.higher_is_better,
            "direction": "higher = more similar" if c.higher_is_better else "lower = more similar",
            "kind": c.kind,
            "description": c.description,
        }
        for c in metric_columns().values()
    ]
    rows += [
        {
            "name": e.name,
            "metric": "mi",
            "family": "mi",
            "unit": e.meta.get("unit"),
            "higher_is_better": None,
            "direction": "higher = more dependence",
            "kind": e.meta.get("kind"),
            "description": e.meta.get("description", ""),
        }
        for e in MI_ESTIMATORS.entries()
    ]
    if json_out:
        emit_json({"metrics": rows})
        return
    print_table(
        "metrics",
        ["name", "family", "unit", "direction", "kind", "description"],
        [[r["name"], r["family"], r["unit"] or "–", r["direction"], r["kind"], r["description"]] for r in rows],
    )
