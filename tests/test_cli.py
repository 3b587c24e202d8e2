"""The real command line, as a user types it: each test starts `studyflow` in a new Python process."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# Every test here starts a Python process (a studyflow command or a probe of its imports).
pytestmark = pytest.mark.slow

STUDYFLOW = [sys.executable, "-m", "studyflow.entrypoints.cli"]


def _run(args, home: Path):
    env = {**os.environ, "STUDYFLOW_HOME": str(home), "PREFECT_HOME": str(home / "prefect")}
    return subprocess.run(STUDYFLOW + args, capture_output=True, text=True, env=env, timeout=600)


# The study's six parts in its order, and `study` for all of them (docs/study.md).
PARTS = ["pca", "perceptron", "mlp", "cnn", "inspect", "mtl", "study"]


def _listed_parts(help_text: str, heading: str) -> dict[str, str]:
    """The rows (`  name   summary`) of the list under `heading` in a --help, up to its blank line."""
    section = help_text.partition(f"\n{heading}\n")[2].split("\n\n")[0]
    rows = [re.match(r"  (\w+) +(\S.*)$", line) for line in section.splitlines()]
    assert all(rows), section
    return {row.group(1): row.group(2) for row in rows}


def test_help_lists_the_parts(studyflow_home):
    result = _run(["run", "--help"], studyflow_home)
    assert result.returncode == 0
    assert list(_listed_parts(result.stdout, "parts:")) == PARTS, result.stdout  # each a row, in order
    assert "one of: " + ", ".join(PARTS) in " ".join(result.stdout.split())  # the choices of the argument
    assert "run PART --help lists the part's parameters" in result.stdout
    top = _run(["--help"], studyflow_home)
    assert top.returncode == 0
    listed = _listed_parts(top.stdout, "study parts:")
    assert list(listed) == PARTS, top.stdout
    assert all(len(summary.split()) >= 3 for summary in listed.values()), listed  # each says what it runs


def _parameters(help_text: str) -> dict[str, str]:
    """Each parameter's entry of a `--help`: its heading line (`  name (type)`) and the lines below it,
    joined by spaces (a long default wraps)."""
    entries: dict[str, str] = {}
    name = None
    for line in help_text.partition("\nparameters (--set")[2].splitlines()[1:]:
        heading = re.match(r"  (\w+) \((.+)\)$", line)
        if heading:
            name = heading.group(1)
            entries[name] = line
        elif name:
            entries[name] += " " + line.strip()
    return entries


def test_run_part_help_lists_every_parameter_with_each_profiles_default(studyflow_home):
    from studyflow.config.parts import MlpConfig

    result = _run(["run", "mlp", "--help"], studyflow_home)
    assert result.returncode == 0, result.stderr
    assert "--profile" in result.stdout  # the command's own help first
    entries = _parameters(result.stdout)
    assert set(entries) == set(MlpConfig.model_fields) - {"profile"}
    assert entries["epochs"] == "  epochs (int) passes over the training set default: quick 2, paper 20"
    assert "(int | None)" in entries["train_size"] and "default: quick 1500, paper None" in entries["train_size"]
    assert "default: auto (every profile)" in entries["precision"] and "Keras dtype policy" in entries["precision"]
    assert '"MLP-1": [1000, 1000]' in entries["architectures"]
    assert all("(no description)" not in entry for entry in entries.values()), entries


def test_sweep_kind_help_lists_its_parameters_but_those_its_options_describe(studyflow_home):
    result = _run(["sweep", "cnn", "--help"], studyflow_home)
    assert result.returncode == 0, result.stderr
    entries = _parameters(result.stdout)
    assert {"epochs", "search_space", "pruner", "seeds_per_trial", "trials", "workers", "dask_address"} <= set(entries)
    assert not {"storage", "study_name"} & set(entries)  # --storage, --study-name
    assert "--storage" in result.stdout and "--study-name" in result.stdout and "--trials" in result.stdout
    assert "default: quick 6, paper 20" in entries["trials"]  # what --trials left out takes
    assert "default: quick 2, paper 10" in entries["epochs"]
    assert '"max_size": 64' in entries["search_space"] and '"max_size": 512' in entries["search_space"]
    assert all("(no description)" not in entry for entry in entries.values()), entries


def test_help_of_a_part_imports_nothing_heavy():
    probe = (
        "import sys; from studyflow.entrypoints import cli\n"
        "for argv in (['run', 'cnn', '--help'], ['sweep', 'mtl', '--help']):\n"
        "    try:\n        cli.main(argv)\n    except SystemExit as stop:\n        assert stop.code == 0\n"
        "heavy = [name for name in ('tensorflow', 'mlflow', 'prefect', 'keras', 'optuna') if name in sys.modules]\n"
        "print('heavy', heavy, file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "heavy []" in result.stderr, result.stdout + result.stderr
    assert "  registered_model (str)" in result.stdout  # the cnn part's own field
    assert "  search_space (object {min_lambda, max_lambda})" in result.stdout  # the mtl sweep's


def test_bad_parameter_is_rejected_with_its_name(studyflow_home):
    result = _run(["run", "perceptron", "--set", "pairs=[[1,11]]"], studyflow_home)
    assert result.returncode == 2
    assert "parameter 'pairs" in result.stderr
    assert not (studyflow_home / "mlruns" / "mlflow.db").exists()


def test_unreachable_tracking_server_is_reported_before_work(studyflow_home):
    env_uri = "http://127.0.0.1:9"
    env = {**os.environ, "STUDYFLOW_HOME": str(studyflow_home), "MLFLOW_TRACKING_URI": env_uri}
    result = subprocess.run(STUDYFLOW + ["run", "pca"], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 1 and env_uri in result.stderr
    # Said before anything starts: no Prefect server was booted (Prefect logs its stop at exit).
    assert "temporary server" not in result.stdout + result.stderr


# The console of a command that runs a part (its run ids, one temporary Prefect server, the MLflow UI
# command once, no TensorFlow banners) is checked on the first `studyflow run mlp` of
# test_faults_resume.py::test_a_change_inside_a_helper_the_task_calls_retrains, which runs one anyway.


def test_prefect_local_state_lives_under_studyflow_home_unless_prefect_is_configured(tmp_path):
    probe = [sys.executable, "-c", "import os, studyflow; print(os.environ.get('PREFECT_HOME', ''))"]
    base = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    own = subprocess.run(probe, env={**base, "STUDYFLOW_HOME": str(tmp_path)}, capture_output=True, text=True)
    assert own.stdout.strip() == str(tmp_path / ".prefect")
    chosen = subprocess.run(probe, env={**base, "PREFECT_HOME": "/elsewhere"}, capture_output=True, text=True)
    assert chosen.stdout.strip() == "/elsewhere"
    server = subprocess.run(
        probe, env={**base, "PREFECT_API_URL": "http://127.0.0.1:4200/api"}, capture_output=True, text=True
    )
    assert server.stdout.strip() == ""


def test_a_bad_parameter_is_refused_before_anything_heavy_is_imported(studyflow_home):
    probe = (
        "import sys; from studyflow.entrypoints import cli; code = cli.main(['run', 'cnn', '--set', 'epochs=-1']); "
        "heavy = [name for name in ('tensorflow', 'mlflow', 'prefect', 'keras') if name in sys.modules]; "
        "print(code, heavy)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "2 []", result.stdout + result.stderr
    assert "parameter 'epochs'" in result.stderr
    assert not (studyflow_home / "mlruns").exists()


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_a_missing_or_truncated_dataset_is_refused_in_one_line_before_anything_starts(studyflow_home, tmp_path, damage):
    from studyflow import paths

    data = tmp_path / "data"
    shutil.copytree(paths.PACKAGE_ROOT / "data" / "mnist", data / "mnist")
    images = data / "mnist" / "train-images-idx3-ubyte.gz"
    if damage == "missing":
        images.unlink()
    else:
        images.write_bytes(images.read_bytes()[: images.stat().st_size // 2])
    env = {
        **os.environ,
        "STUDYFLOW_HOME": str(studyflow_home),
        "STUDYFLOW_DATA_DIR": str(data),
        "STUDYFLOW_CACHE_DIR": str(tmp_path / "cache"),
        "STUDYFLOW_DATA_MIRROR": "http://127.0.0.1:9/",
    }
    result = subprocess.run(STUDYFLOW + ["run", "pca"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(images) in lines[0] and "Traceback" not in result.stderr, result.stderr
    assert "temporary server" not in result.stdout + result.stderr  # no Prefect server was started
    assert not (studyflow_home / "mlruns" / "mlflow.db").exists()
    debug = subprocess.run(STUDYFLOW + ["--debug", "run", "pca"], capture_output=True, text=True, env=env, timeout=120)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "DatasetError" in debug.stderr
