"""The semsim experiment at smoke size end to end: proxy labels, training, held-out agreement, artifacts, report."""

from __future__ import annotations

import csv
import json

import pytest

from privlab.measure.image.base import similarity_directions
from privlab.measure.semsim import load_manifest, load_semsim
from privlab.measure.semsim.agreement import agreement, join_scores
from privlab.run import execute, load_spec, spec_from_mapping
from privlab.store import Store


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("semsim")
    (o,) = execute(load_spec(experiment="semsim", preset="smoke"), out, quiet=True)
    return out, o


def test_smoke_proxy_labels_training_and_agreement(smoke):
    out, o = smoke
    assert o.status == "finished"
    run = out / o.id
    m = load_manifest(run / "proxy" / "manifest.csv")
    assert len(m.records) == 2 * 6  # settings × images
    assert len({r.original for r in m.records}) == 6  # one original file per image: the split is by image
    assert {r.annotator for r in m.records} == {"proxy-classifier"}
    net, meta = load_semsim(run / "semsim.safetensors")
    assert net.dim == 32 and meta["proxy"] is True and len(meta["history"]) == 2
    # the smoke preset pretrains the trunk as a classifier on the CLEAN train split (the proxy attacks test digits)
    assert meta["train_config"]["pretrain"] == "classifier" and len(meta["pretrain_history"]) == 1
    assert meta["pretrain_history"][0]["train_accuracy"] > 0.2  # one epoch on 1 437 digits: above chance (0.1)
    with (run / "heldout_scores.csv").open() as f:
        rows = list(csv.DictReader(f))
    held = {r["original"] for r in rows}
    assert len(rows) == 2 * len(held) and 1 <= len(held) <= 5
    assert {"psnr", "ssim", "mse", "semsim", "recognised"} <= set(rows[0])
    agr = json.loads((run / "agreement.json").read_text())
    assert agr["info"]["proxy"] is True and agr["n_images"] == len(rows)
    assert agr["info"]["pretrain_dataset"] == "digits/train (1437 images)"
    assert set(agr["metrics"]) == {"mse", "psnr", "ssim", "semsim"}
    assert "lpips" in agr["notes"] or "lpips" not in agr["metrics"]
    # the recorded ordering accuracy is what the public functions give on the written files
    joined, _ = join_scores(m, run / "heldout_scores.csv")
    again = agreement(joined, {k: similarity_directions()[k] for k in ("psnr", "semsim")}, n_boot=0)
    assert again.metrics["psnr"]["image"]["ordering_accuracy"] == pytest.approx(o.metrics["psnr_ordering_accuracy"])
    assert again.metrics["semsim"]["image"]["ordering_accuracy"] == pytest.approx(o.metrics["semsim_ordering_accuracy"])
    for k in ("semsim_spearman", "ssim_spearman", "reference_test_accuracy", "semsim_beats_psnr_ssim"):
        assert k in o.metrics
    assert o.metrics["reference_test_accuracy"] > 0.8


def test_report_section_and_artifacts(smoke):
    out, o = smoke
    with Store(out, create=False) as s:
        kinds = {a["kind"] for a in s.artifacts(o.id)}
    assert {"semsim_agreement", "checkpoint", "manifest", "table"} <= kinds
    html = (out / "report.html").read_text()
    assert "SemSim: metric agreement" in html and "PROXY labels" in html
    assert "Spearman (settings)" in html and "data:image/png;base64," in html


def test_human_manifest_mode_reuses_a_manifest(smoke, tmp_path):
    out, o = smoke
    manifest = out / o.id / "proxy" / "manifest.csv"
    spec = spec_from_mapping(
        {"experiment": "semsim", "preset": "smoke", "manifest": str(manifest), "semsim": {"pretrain": "none"}}
    )
    (o2,) = execute(spec, tmp_path, quiet=True)
    assert o2.status == "finished"
    agr = json.loads((tmp_path / o2.id / "agreement.json").read_text())
    assert agr["info"]["proxy"] is False and not (tmp_path / o2.id / "proxy").exists()
    assert agr["pretrain_history"] == [] and "pretrain_dataset" not in agr["info"]  # the old, from-scratch training
    assert agr["train_history"][0]["lr"] == pytest.approx(0.002)  # the rest of the preset is kept
    # same seed, same split: the pixel metrics agree exactly with the proxy run
    assert o2.metrics["psnr_ordering_accuracy"] == pytest.approx(o.metrics["psnr_ordering_accuracy"])
