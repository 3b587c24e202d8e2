"""`studyflow sweep` and `studyflow dashboard` from the command line: bad inputs and an unreachable
storage refused before any work (its password hidden), --trials from the profile and workers set as
for a part, an unknown kind, a sweep resumed that prints its parent run, and the dashboard serving
the sweeps' studies on localhost."""

import json

import pytest
from commands import start_studyflow
from conftest import SMALL_MLP, free_port, sweep_runs, sweep_study

from studyflow.config import ConfigError
from studyflow.config.sweeps import SWEEP_CONFIGS, sweep_config
from studyflow.entrypoints import cli


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sweep", "mlp", "--trials", "0"], "parameter 'trials'"),
        (["sweep", "mtl", "--trials", "3", "--set", 'search_space={"max_lambda": 1.5}'], "max_lambda"),
        (["sweep", "mtl", "--trials", "3", "--set", 'search_space={"min_lambda": -0.1}'], "min_lambda"),
        (["sweep", "cnn", "--trials", "3", "--set", 'search_space={"max_depth": 7}'], "at most 6"),
        (["sweep", "mlp", "--trials", "3", "--set", 'search_space={"min_size": 64, "max_size": 8}'], "min_size"),
        (["sweep", "mlp", "--trials", "3", "--set", 'search_space={"widths": [1]}'], "widths"),
        (["sweep", "mlp", "--trials", "3", "--set", "epoch=3"], "unknown parameter(s) epoch"),
        (["sweep", "mtl", "--trials", "3", "--set", 'pruner={"kind": "median"}'], "multi-objective"),
        (["sweep", "mlp", "--trials", "3", "--set", 'pruner={"kind": "halving"}'], "parameter 'pruner.kind'"),
        (
            ["sweep", "mlp", "--trials", "3", "--set", 'pruner={"kind": "successive_halving", "reduction_factor": 1}'],
            "parameter 'pruner.reduction_factor'",
        ),
        (
            ["sweep", "mlp", "--trials", "3", "--set", 'pruner={"kind": "successive_halving", "min_resource": 0}'],
            "parameter 'pruner.min_resource'",
        ),
        (
            [
                "sweep",
                "mlp",
                "--trials",
                "3",
                "--set",
                'pruner={"kind": "successive_halving", "min_early_stopping_rate": -1}',
            ],
            "parameter 'pruner.min_early_stopping_rate'",
        ),
        (
            [
                "sweep",
                "cnn",
                "--trials",
                "3",
                "--set",
                "epochs=4",
                "--set",
                'pruner={"kind": "hyperband", "max_resource": 8}',
            ],
            "max_resource 8 exceeds epochs 4",
        ),
        (
            [
                "sweep",
                "cnn",
                "--trials",
                "3",
                "--set",
                'pruner={"kind": "hyperband", "min_resource": 3, "max_resource": 2}',
            ],
            "max_resource 2 is below min_resource 3",
        ),
        (["sweep", "cnn", "--trials", "4", "--set", "workers=2"], "PostgreSQL"),
        (["sweep", "mlp", "--set", "dask_address=tcp://127.0.0.1:8786"], "PostgreSQL"),
        (
            ["sweep", "mlp", "--set", "workers=1025", "--storage", "postgresql://u@127.0.0.1/optuna"],
            "parameter 'workers'",
        ),
        (["sweep", "mlp", "--trials", "3", "--set", "trials=4"], "trials given twice"),
    ],
)
def test_bad_inputs_fail_before_any_work(studyflow_home, capsys, argv, message):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (studyflow_home / "mlruns").exists()


def test_unreachable_storage_is_reported_before_prefect_starts_and_hides_the_password(studyflow_home, capsys):
    url = f"postgresql://user:secret@127.0.0.1:{free_port()}/optuna"
    assert cli.main(["sweep", "cnn", "--trials", "3", "--set", "workers=2", "--storage", url]) == 1
    err = capsys.readouterr().err
    assert "postgresql://user:***@127.0.0.1" in err and "secret" not in err


def test_trials_default_to_the_profile_and_workers_are_set_as_for_a_part(studyflow_home):
    """--trials left out takes the sweep profile's count; `workers` and `dask_address` are --set
    parameters, with a part's meaning and limits."""

    def config(*argv):
        return cli.command_config(cli.build_parser().parse_args(["sweep", *argv]))

    for kind, config_class in SWEEP_CONFIGS.items():
        assert config(kind).trials == config_class.PROFILE_DEFAULTS["quick"]["trials"], kind
        assert config(kind, "--profile", "paper").trials == config_class.model_fields["trials"].default, kind
    assert {config("mlp").trials, config("mlp", "--profile", "paper").trials} == {6, 20}
    assert config("mtl").trials == 5
    assert config("mlp", "--trials", "3").trials == config("mlp", "--set", "trials=3").trials == 3
    postgres = "postgresql://user@127.0.0.1:5432/optuna"
    fanned = config("cnn", "--set", "workers=2", "--storage", postgres)
    assert fanned.workers == 2 and fanned.dask_address is None and fanned.fans_out()
    remote = config("cnn", "--set", "dask_address=10.0.0.5:8786", "--storage", postgres)
    assert remote.dask_address == "tcp://10.0.0.5:8786" and remote.workers == 1
    assert not config("cnn").fans_out()


def test_unknown_kind_is_refused_by_the_command_line(studyflow_home, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["sweep", "rnn", "--trials", "3"])
    assert exit_info.value.code == 2 and "invalid choice: 'rnn'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="unknown sweep kind"):
        sweep_config("rnn")
    assert not (studyflow_home / "mlruns").exists()


@pytest.mark.integration
@pytest.mark.slow  # three or more sweeps in a row: out of test-fast
def test_cli_sweep_resumes_and_prints_the_parent_run(prefect_server, mlflow_client, capsys, tiny):
    args = [
        "sweep",
        "mlp",
        "--trials",
        "1",
        "--study-name",
        "cli",
        "--set",
        f"search_space={json.dumps(SMALL_MLP)}",
        *[f"--set={name}={value}" for name, value in tiny.items()],
    ]
    assert cli.main(args) == 0
    assert cli.main(args[:2] + ["--trials", "2"] + args[4:]) == 0
    out = capsys.readouterr().out
    (parent,), children = sweep_runs(mlflow_client, "mlp")
    assert f"parent run {parent.info.run_id}" in out and "experiment studyflow-sweep-mlp" in out
    assert len(children) == 2 and len(sweep_study("cli").trials) == 2


@pytest.mark.integration
def test_dashboard_serves_the_sweeps_studies_on_localhost(studyflow_home):
    import os
    import time
    import urllib.request

    import optuna

    from studyflow.paths import default_optuna_storage_url, mlruns_dir

    assert cli.main(["dashboard"]) == 2  # no sweep yet: one line, nothing started
    mlruns_dir().mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(
        study_name="sweep-mlp-quick", storage=default_optuna_storage_url(), direction="maximize"
    )
    study.optimize(lambda trial: trial.suggest_float("x", 0.0, 1.0), n_trials=2)
    port = free_port()
    env = {**os.environ, "STUDYFLOW_HOME": str(studyflow_home)}
    with open(studyflow_home / "dashboard.log", "w") as log:  # a file: an unread pipe could fill and block it
        server = start_studyflow("dashboard", "--port", str(port), env=env, log=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as response:
                    studies = json.loads(response.read())["study_summaries"]
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "the dashboard did not start"
                time.sleep(0.5)
        (listed,) = studies
        assert listed["study_name"] == "sweep-mlp-quick"
    finally:
        server.terminate()
        server.wait(timeout=30)
