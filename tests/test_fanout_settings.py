"""Fanning a part's trainings out, before any training: the parameters every part with several
trainings takes (workers, dask_address, and STUDYFLOW_DASK_ADDRESS as its default), a cluster that
cannot work refused in one line before any work, and `studyflow doctor`'s check of the configured
scheduler."""

from __future__ import annotations

import os
import subprocess

import pytest
from commands import run_studyflow
from conftest import free_port

from studyflow.config import ConfigError
from studyflow.config.parts import CnnConfig, MlpConfig, MtlConfig, PerceptronConfig
from studyflow.config.study import StudyConfig


def test_every_part_with_several_trainings_takes_workers_and_a_scheduler(monkeypatch):
    for config in (MlpConfig, CnnConfig, MtlConfig, PerceptronConfig, StudyConfig):
        default = config.for_profile("quick")
        assert default.workers == 1 and default.dask_address is None and not default.fans_out()
    assert MlpConfig.for_profile("quick", workers=2).fans_out()
    assert MlpConfig.for_profile("quick", dask_address="10.0.0.5:8786").dask_address == "tcp://10.0.0.5:8786"
    monkeypatch.setenv("STUDYFLOW_DASK_ADDRESS", "tcp://127.0.0.1:8786")
    assert MlpConfig.for_profile("quick").dask_address == "tcp://127.0.0.1:8786"  # the stacks' default
    for bad in ({"workers": 0}, {"dask_address": "http://host:8786"}, {"dask_address": "tcp://host"}):
        with pytest.raises(ConfigError, match=f"parameter '{next(iter(bad))}'"):
            MlpConfig.for_profile("quick", **bad)


def _refusal(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return run_studyflow(*argv, env={**os.environ, **env}, timeout=120)


@pytest.mark.slow
def test_a_cluster_that_cannot_work_is_refused_in_one_line_before_any_work(studyflow_home):
    address = f"tcp://127.0.0.1:{free_port()}"
    embedded = _refusal(["run", "mlp", "--set", f"dask_address={address}"], {})
    assert embedded.returncode == 1, embedded.stderr
    assert embedded.stderr.count("\n") == 1 and "MLFLOW_TRACKING_URI" in embedded.stderr, embedded.stderr
    no_prefect = _refusal(
        ["run", "cnn", "--set", f"dask_address={address}"],
        {"MLFLOW_TRACKING_URI": "postgresql://nobody@127.0.0.1:1/mlflow"},
    )
    assert no_prefect.returncode == 1 and "PREFECT_API_URL" in no_prefect.stderr, no_prefect.stderr
    gone = _refusal(
        ["run", "study", "--set", f"dask_address={address}"],
        {"MLFLOW_TRACKING_URI": "postgresql://nobody@127.0.0.1:1/mlflow", "PREFECT_API_URL": "http://127.0.0.1:1/api"},
    )
    assert gone.returncode == 1, gone.stderr
    assert gone.stderr.count("\n") == 1 and f"the Dask scheduler {address} does not answer" in gone.stderr
    for result in (embedded, no_prefect, gone):
        assert "Traceback" not in result.stderr and "temporary server" not in result.stdout + result.stderr
    assert not (studyflow_home / "mlruns" / "step-results").exists()  # nothing started


@pytest.mark.integration  # a Dask scheduler on 127.0.0.1, in this process
def test_doctor_checks_the_configured_scheduler(mlflow_client, monkeypatch):
    from distributed import LocalCluster

    from studyflow.entrypoints.doctor import run_doctor

    def dask_check():
        (check,) = [check for check in run_doctor().checks if check[0] == "Dask scheduler"]
        return check

    monkeypatch.setenv("STUDYFLOW_DASK_ADDRESS", f"tcp://127.0.0.1:{free_port()}")
    _, ok, detail = dask_check()
    assert not ok and "does not answer" in detail
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1", dashboard_address=None
    ) as cluster:
        monkeypatch.setenv("STUDYFLOW_DASK_ADDRESS", cluster.scheduler_address)
        _, ok, detail = dask_check()
    assert ok and "1 workers share the step results and run this code" in detail, detail
