"""The wheel: ``python -m build`` makes one that holds every file of ``src/privlab`` (presets, calibration table,
examples …), and ``privlab`` installed from it into a fresh virtual environment works outside the checkout.

The new environment sees the already installed dependencies (torch …) through a ``.pth`` file naming this
interpreter's site-packages, so nothing is downloaded; privlab itself comes from the wheel (asserted).
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).parents[1]
SRC = ROOT / "src" / "privlab"
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")


def _run(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    assert r.returncode == 0, f"{' '.join(cmd)} exited {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    return r


def _package_files() -> set[str]:
    """Every file the wheel must hold: ``privlab/…`` paths of the source tree (no caches)."""
    return {
        p.relative_to(SRC.parent).as_posix()
        for p in SRC.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


def _build_wheel(tmp: Path) -> Path:
    """Build the wheel from a copy of the project (the build writes build/ and *.egg-info beside its sources)."""
    project = tmp / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, project / name)
    shutil.copytree(ROOT / "src", project / "src", ignore=IGNORE)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    _run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp / "dist"), str(project)],
         env, tmp, timeout=300)  # fmt: skip
    (whl,) = (tmp / "dist").glob("privlab-*.whl")
    return whl


def _check_contents(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = _package_files()
    assert not expected - names, f"missing from the wheel (add to package-data in pyproject.toml): {expected - names}"
    # the data the library reads at run time, by name
    for required in (
        "privlab/py.typed",
        "privlab/pipelines/presets/train.smoke.yaml",
        "privlab/examples/demo.yaml",
        "privlab/examples/train.yaml",
    ):
        assert required in names
    assert any(n.startswith("privlab/measure/") and n.endswith("calibration_table.json") for n in names)
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "examples/")) or "__pycache__" in n]


def test_wheel_holds_every_file_and_runs_installed_outside_the_checkout(tmp_path: Path) -> None:
    """One test (one build, also under pytest-xdist): the wheel's contents, then privlab installed from it."""
    wheel = _build_wheel(tmp_path)
    _check_contents(wheel)
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], dict(os.environ), tmp_path)
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PRIVLAB_PLUGINS", "VIRTUAL_ENV")}
    env |= {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PATH": f"{venv / 'bin'}{os.pathsep}{env['PATH']}"}
    purelib = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], env,
                        tmp_path).stdout.strip())  # fmt: skip
    # the dependencies: this interpreter's site-packages, after the new environment's own (which holds privlab)
    (purelib / "_privlab_test_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--quiet", "--no-deps", "--no-index",
          "--disable-pip-version-check", str(wheel)], env, tmp_path)  # fmt: skip

    work = tmp_path / "work"  # no examples/ folder, no checkout: everything must come from the wheel
    work.mkdir()
    where = _run([str(py), "-c", "import privlab; print(privlab.__file__)"], env, work).stdout.strip()
    assert Path(where).is_relative_to(venv), f"privlab imported from {where}, not from the wheel in {venv}"
    cli = str(venv / "bin" / "privlab")

    from privlab import __version__

    assert _run([cli, "--version"], env, work).stdout.strip() == f"privlab {__version__}"
    experiments = json.loads(_run([cli, "experiments", "--json"], env, work).stdout)
    assert {"train", "inversion", "mi", "shredder", "ldp", "unlearnable", "semsim"} <= {
        e["name"] for e in experiments["experiments"]
    }

    out = json.loads(_run([cli, "run", "train", "-p", "smoke", "--out", "runs", "--json", "-q"], env, work).stdout)
    (r,) = out["runs"]
    assert r["status"] == "finished" and r["metrics"]["test_accuracy"] > 0.5
    assert (work / "runs" / "runs.sqlite").is_file() and (work / "runs" / "report.html").is_file()

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    np.save(work / "x.npy", x)
    np.save(work / "z.npy", x + 0.5 * rng.normal(size=(300, 2)))
    mi = json.loads(_run([cli, "mi", "x.npy", "z.npy", "--estimator", "ite-dkl", "--json"], env, work).stdout)
    assert mi["estimator"] == "ite-dkl" and 1.0 < mi["nats"] < 2.5  # true I = log(1 + 1/0.25) ≈ 1.61 nats
    calibration = mi["diagnostics"]["calibration"]  # read from the packaged calibration table
    assert calibration["estimator"] == "ite-dkl" and calibration["tasks"] > 0

    # the packaged examples: listed from the installed package and copied out of it (`privlab run examples/NAME.yaml`
    # reads the same files; tests/cli/test_cli_examples.py covers that path)
    listed = json.loads(_run([cli, "examples", "--copy", "specs", "--json"], env, work).stdout)
    assert {"demo", "train"} <= {e["name"] for e in listed["examples"]}
    assert all(Path(e["path"]).is_relative_to(venv) for e in listed["examples"])
    assert len(listed["copied"]) == len(listed["examples"])
    for src in (SRC / "examples").glob("*.yaml"):
        assert (work / "specs" / src.name).read_text("utf-8") == src.read_text("utf-8")
