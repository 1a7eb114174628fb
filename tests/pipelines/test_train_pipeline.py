import pytest

from privlab.errors import DataMissingError
from privlab.run import execute, load_spec
from privlab.store import Store
from privlab.victim import load_checkpoint


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    outcomes = execute(load_spec(experiment="train", preset="smoke"), out, quiet=True)
    return out, outcomes


def test_smoke_preset_reaches_90_percent(smoke_run):
    out, (o,) = smoke_run
    assert o.status == "finished"
    assert o.metrics["test_accuracy"] >= 0.90
    assert o.metrics["epochs_run"] == 8


def test_run_is_stored_with_curves_checkpoint_and_report(smoke_run):
    out, (o,) = smoke_run
    with Store(out, create=False) as s:
        run = s.get_run(o.id)
        assert run.seed == 0 and run.versions["torch"] and run.hardware["cpu_count"] >= 1
        steps = [m for m in s.metrics(o.id) if m.name == "train_loss"]
        assert [m.step for m in steps] == list(range(1, 9))
        (art,) = s.artifacts(o.id)
    assert art["kind"] == "checkpoint" and (out / art["path"]).is_file()
    model, meta = load_checkpoint(out / art["path"])
    assert meta["model"] == "lenet5" and meta["test_accuracy"] == pytest.approx(o.metrics["test_accuracy"])
    assert (out / "report.html").is_file()


def test_checkpoint_reproduces_accuracy(smoke_run):
    from privlab.data import load_dataset
    from privlab.train import evaluate

    out, (o,) = smoke_run
    model, _ = load_checkpoint(out / o.id / "model.safetensors")
    assert evaluate(model, load_dataset("digits", "test"))["accuracy"] == pytest.approx(o.metrics["test_accuracy"])


def test_rerun_skips_finished_spec_and_force_reruns(smoke_run):
    out, (o,) = smoke_run
    spec = load_spec(experiment="train", preset="smoke")
    (again,) = execute(spec, out, quiet=True, report=False)
    assert again.status == "skipped" and again.id == o.id
    assert again.metrics["test_accuracy"] == o.metrics["test_accuracy"]


def test_missing_data_root_is_recorded_as_failed(tmp_path):
    spec = load_spec(experiment="train", overrides={"dataset": {"name": "mnist"}})
    with pytest.raises(DataMissingError, match="--data-root"):
        execute(spec, tmp_path, quiet=True)
    with Store(tmp_path, create=False) as s:
        (run,) = s.runs()
    assert run.status == "failed" and "--data-root" in run.error


def test_sweep_runs_every_point_and_continues_after_failure(tmp_path):
    spec = load_spec(
        experiment="train",
        overrides={
            "train": {"epochs": 1},
            "dataset": {"train_limit": 64, "test_limit": 64},
            "sweep": {"dataset.name": ["digits", "mnist"], "seed": [0, 1]},
        },
    )
    outcomes = execute(spec, tmp_path, quiet=True)
    assert [o.status for o in outcomes] == ["finished", "finished", "failed", "failed"]
    assert len({o.id for o in outcomes}) == 4
    # resume: finished points are skipped, failed ones are tried again (and fail again without data)
    again = execute(spec, tmp_path, quiet=True)
    assert [o.status for o in again] == ["skipped", "skipped", "failed", "failed"]
    with Store(tmp_path, create=False) as s:
        assert len(s.runs()) == 4  # every point present exactly once


def test_real_mnist_paper_preset_loads(shared_dir, tmp_path):
    spec = load_spec(
        experiment="train",
        preset="paper",
        overrides={"train": {"epochs": 2, "batch_size": 32}, "dataset": {"train_limit": 512, "test_limit": 256}},
    )
    (o,) = execute(spec, tmp_path, quiet=True, data_root=shared_dir / "data")
    assert o.status == "finished" and o.metrics["test_accuracy"] > 0.3
