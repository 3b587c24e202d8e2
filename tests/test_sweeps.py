"""Optuna sweeps end to end on tiny subsets: storage, MLflow parent and child runs, figures, pruning,
the settings a study keeps, seeds per trial, resume, and trials at once on a local Dask cluster
(PostgreSQL). The command line's sweeps (bad inputs, defaults, the dashboard): test_sweep_cli.py; a
trial killed with SIGKILL, and a Dask worker killed mid-trial: test_faults_sweep_trials.py."""

import json
from collections import Counter

import pytest
from conftest import SMALL_MLP, assert_png, assert_trials_linked, download, sweep_runs, sweep_study
from optuna.trial import TrialState

from studyflow.config import ConfigError
from studyflow.config.sweeps import sweep_config
from studyflow.tracking.names import Tag
from tasks.sweeps.run import run_sweep

SMALL_CNN = {"min_depth": 1, "max_depth": 2, "min_size": 2, "max_size": 8}


@pytest.mark.integration
@pytest.mark.parametrize("kind, space", [("mlp", SMALL_MLP), ("cnn", SMALL_CNN)])
def test_sweep_flow_records_each_trial_as_a_child_run(prefect_server, mlflow_client, tiny, kind, space):
    from flows.sweeps import SWEEP_FLOWS

    summary = SWEEP_FLOWS[kind](trials=3, search_space=space, **dict(tiny, epochs=2))
    study = sweep_study(f"sweep-{kind}-quick")
    assert sum(trial.state in (TrialState.COMPLETE, TrialState.PRUNED) for trial in study.trials) == 3
    (parent,), children = sweep_runs(mlflow_client, kind)
    assert parent.info.status == "FINISHED" and len(children) == 3
    assert_trials_linked(study, parent, children)
    flow_run_ids = {run.data.tags[Tag.PREFECT_FLOW_RUN_ID] for run in children}
    assert flow_run_ids == {parent.data.tags[Tag.PREFECT_FLOW_RUN_ID]} and "" not in flow_run_ids
    size = "width" if kind == "mlp" else "filters"
    for run in children:
        assert run.info.status == "FINISHED"
        assert f"{size}_1" in run.data.params and "depth" in run.data.params
        epochs = [point.step for point in mlflow_client.get_metric_history(run.info.run_id, "val_accuracy")]
        assert epochs == [1, 2][: len(epochs)] and epochs
    best = json.loads(download(mlflow_client, parent.info.run_id, "best_trial.json").read_text())
    assert best["trial"] == summary["best"]["trial"] == study.best_trial.number
    assert parent.data.metrics["best_val_accuracy"] == pytest.approx(study.best_value)
    assert parent.data.tags[Tag.BEST_TRIAL_NUMBER] == str(study.best_trial.number)
    for figure in ("optimization_history", "trial_learning_curves", "param_importances"):
        assert_png(download(mlflow_client, parent.info.run_id, f"figures/{figure}.png"))
    assert len(download(mlflow_client, parent.info.run_id, "tables/trials.csv").read_text().splitlines()) == 4


@pytest.mark.integration
@pytest.mark.slow  # trains several models or drives the command line: out of test-fast
def test_mtl_sweep_has_two_objectives_and_draws_the_pareto_front(prefect_server, mlflow_client, tiny):
    from flows.sweeps import mtl_sweep_flow

    summary = mtl_sweep_flow(trials=3, **tiny)
    study = sweep_study("sweep-mtl-quick")
    assert len(study.directions) == 2
    assert [trial.state for trial in study.trials] == [TrialState.COMPLETE] * 3
    assert all(0.0 <= trial.params["lambda"] <= 1.0 for trial in study.trials)
    (parent,), children = sweep_runs(mlflow_client, "mtl")
    assert len(children) == 3
    assert_trials_linked(study, parent, children)
    for run in children:
        assert {"val_item_accuracy", "val_group_accuracy", "test_item_accuracy"} <= set(run.data.metrics)
    assert {row["trial"] for row in summary["pareto_front"]} == {trial.number for trial in study.best_trials}
    assert study.metric_names == ["val_item_accuracy", "val_group_accuracy"]  # the dashboard's labels
    for figure in ("pareto_front", "accuracy_vs_lambda", "optimization_history", "param_importances"):
        assert_png(download(mlflow_client, parent.info.run_id, f"figures/{figure}.png"))


@pytest.mark.slow  # a sweep of several trainings: 15-25 s on 2 loaded cores
def test_pruned_trials_end_finished_with_a_pruned_tag(mlflow_client, tiny):
    """A strict pruner (threshold above any accuracy reachable here) prunes every trial after epoch 1."""
    config = sweep_config(
        "mlp",
        trials=2,
        **dict(tiny, epochs=3),
        search_space=SMALL_MLP,
        pruner={"kind": "threshold", "min_val_accuracy": 0.999, "warmup_epochs": 0},
    )
    summary = run_sweep(config)
    study = sweep_study(config.resolved_study_name)
    assert [trial.state for trial in study.trials] == [TrialState.PRUNED] * 2
    assert summary["trials"]["PRUNED"] == 2 and "best" not in summary
    (parent,), children = sweep_runs(mlflow_client, "mlp")
    for run in children:
        assert run.info.status == "FINISHED"
        assert run.data.tags[Tag.TRIAL_STATE] == "PRUNED" and run.data.tags[Tag.PRUNED] == "true"
        assert run.data.metrics["epochs_run"] == 1
        assert len(mlflow_client.get_metric_history(run.info.run_id, "val_accuracy")) == 1
    assert parent.data.metrics["trials_pruned"] == 2 and parent.data.metrics["epochs_trained"] == 2


@pytest.mark.parametrize(
    "pruner",
    [
        {"kind": "successive_halving", "min_resource": 1, "reduction_factor": 2},
        # max_resource = min_resource: one bracket (the most aggressive), so both trials compete in it
        {"kind": "hyperband", "min_resource": 1, "reduction_factor": 2, "max_resource": 1},
    ],
)
@pytest.mark.slow  # a sweep of several trainings: 15-25 s on 2 loaded cores
def test_successive_halving_prunes_the_worse_trial_at_its_first_rung(mlflow_client, tiny, pruner):
    """Two trials queued in order: a good MLP (width 64), then a hopeless one (width 1). The first
    rung is judged after epoch 2 (step min_resource = 1); with reduction factor 2, of two trials there
    only the better goes on: the first completes, the second is pruned after epoch 2."""
    from tasks.sweeps.storage import open_storage, open_study

    config = sweep_config(
        "mlp",
        trials=2,
        **dict(tiny, epochs=3),
        pruner=pruner,
        search_space={"min_depth": 1, "max_depth": 1, "min_size": 1, "max_size": 64},
    )
    study = open_study(config, open_storage(config))
    study.enqueue_trial({"depth": 1, "width_1": 64})
    study.enqueue_trial({"depth": 1, "width_1": 1})
    summary = run_sweep(config)
    study = sweep_study(config.resolved_study_name)
    assert [trial.state for trial in study.trials] == [TrialState.COMPLETE, TrialState.PRUNED]
    assert [trial.params["width_1"] for trial in study.trials] == [64, 1]
    assert "completed_rung_0" in study.trials[1].system_attrs  # judged by the rung, not by anything else
    assert summary["trials"]["PRUNED"] == 1 and summary["best"]["trial"] == 0
    (parent,), children = sweep_runs(mlflow_client, "mlp")
    assert_trials_linked(study, parent, children)
    pruned = next(run for run in children if run.data.tags[Tag.TRIAL_NUMBER] == "1")
    assert pruned.info.status == "FINISHED"
    assert pruned.data.tags[Tag.TRIAL_STATE] == "PRUNED" and pruned.data.tags[Tag.PRUNED] == "true"
    assert pruned.data.metrics["epochs_run"] == 2
    assert len(mlflow_client.get_metric_history(pruned.info.run_id, "val_accuracy")) == 2
    assert parent.data.metrics["trials_pruned"] == 1 and parent.data.metrics["epochs_trained"] == 3 + 2


def test_each_pruner_kind_is_optunas_own_with_its_settings():
    import optuna

    from tasks.sweeps.storage import make_pruner

    def built(**pruner):
        return make_pruner(sweep_config("cnn", epochs=8, pruner=pruner))

    halving = built(kind="successive_halving", min_resource=2, reduction_factor=4, min_early_stopping_rate=1)
    assert type(halving) is optuna.pruners.SuccessiveHalvingPruner
    assert (halving._min_resource, halving._reduction_factor, halving._min_early_stopping_rate) == (2, 4, 1)
    hyperband = built(kind="hyperband", min_resource=1, reduction_factor=2)
    assert type(hyperband) is optuna.pruners.HyperbandPruner
    assert (hyperband._min_resource, hyperband._max_resource, hyperband._reduction_factor) == (1, 8, 2)
    assert built(kind="hyperband", max_resource=4)._max_resource == 4
    assert type(built(kind="median")) is optuna.pruners.MedianPruner
    assert type(built(kind="none")) is optuna.pruners.NopPruner


def test_each_sweep_names_its_objectives_for_the_dashboard(studyflow_home):
    """optuna-dashboard and Optuna's plots label an objective by its metric name ("Objective 0" without
    one); a study made before the names were set gets them when it is opened again."""
    import optuna

    from tasks.sweeps.storage import open_storage, open_study

    expected = {"mlp": ["val_accuracy"], "cnn": ["val_accuracy"], "mtl": ["val_item_accuracy", "val_group_accuracy"]}
    for kind, names in expected.items():
        config = sweep_config(kind, study_name=f"named-{kind}")
        open_study(config, open_storage(config))
        assert sweep_study(config.resolved_study_name).metric_names == names, kind
    config = sweep_config("mtl", study_name="unnamed")
    optuna.create_study(storage=config.storage_url, study_name="unnamed", directions=["maximize"] * 2)
    assert sweep_study("unnamed").metric_names is None
    open_study(config, open_storage(config))
    assert sweep_study("unnamed").metric_names == expected["mtl"]


def test_a_study_made_before_a_setting_existed_resumes_at_its_default():
    """Settings added to the product later (the pruners' min_resource, ...) ran at their defaults: a
    study recorded without them still resumes with the defaults, and refuses other values. Precision
    ran at float32, its default then, whatever "auto" picks on this CPU today."""
    from studyflow.tracking import TrialAttr
    from tasks.sweeps.storage import open_storage, open_study

    config = sweep_config("mlp", study_name="older", precision="float32")
    study = open_study(config, open_storage(config))
    older = config.study_settings()
    older["pruner"] = {
        key: older["pruner"][key] for key in ("kind", "startup_trials", "warmup_epochs", "min_val_accuracy")
    }
    del older["precision"]
    study.set_user_attr(TrialAttr.SETTINGS, older)
    open_study(config, open_storage(config))  # accepted
    with pytest.raises(ConfigError, match=r'precision: study has "float32", asked "mixed_bfloat16"'):
        open_study(sweep_config("mlp", study_name="older", precision="mixed_bfloat16"), open_storage(config))
    with pytest.raises(ConfigError, match=r'pruner: study has .*"reduction_factor": 3.*asked .*"reduction_factor": 4'):
        open_study(sweep_config("mlp", study_name="older", pruner={"reduction_factor": 4}), open_storage(config))


@pytest.mark.slow  # a sweep of several trainings: 15-25 s on 2 loaded cores
def test_seeds_per_trial_scores_each_trial_by_the_mean_over_its_seeds(mlflow_client, tiny):
    config = sweep_config("mlp", trials=2, seeds_per_trial=2, **tiny, search_space=SMALL_MLP, pruner={"kind": "none"})
    run_sweep(config)
    study = sweep_study(config.resolved_study_name)
    (parent,), children = sweep_runs(mlflow_client, "mlp")
    by_number = {int(run.data.tags[Tag.TRIAL_NUMBER]): run for run in children}
    for trial in study.trials:
        assert trial.state == TrialState.COMPLETE
        metrics = by_number[trial.number].data.metrics
        per_seed = [metrics["val_accuracy_seed_0"], metrics["val_accuracy_seed_1"]]
        assert metrics["val_accuracy_seed_0"] == pytest.approx(metrics["val_accuracy"])  # the curves are seed 0's
        assert trial.value == pytest.approx(sum(per_seed) / 2) == pytest.approx(metrics["val_accuracy_mean_over_seeds"])
        assert by_number[trial.number].data.tags[Tag.TRIAL_SEEDS] == "0,1"
        assert trial.user_attrs["studyflow.epochs_run"] == 2 * tiny["epochs"]  # both seeds' epochs are counted


@pytest.mark.slow  # three or more sweeps in a row: out of test-fast
def test_resume_runs_only_the_missing_trials(mlflow_client, tiny):
    settings = dict(tiny, search_space=SMALL_MLP, study_name="resume")
    run_sweep(sweep_config("mlp", trials=2, **settings))
    run_sweep(sweep_config("mlp", trials=4, **settings))
    run_sweep(sweep_config("mlp", trials=4, **settings))  # nothing left to do
    study = sweep_study("resume")
    assert [trial.state in (TrialState.COMPLETE, TrialState.PRUNED) for trial in study.trials] == [True] * 4
    params = [json.dumps(trial.params, sort_keys=True) for trial in study.trials]
    assert len(set(params)) == 4, "a resumed sweep drew the first trials' parameters again"
    (parent,), children = sweep_runs(mlflow_client, "mlp")
    assert parent.info.status == "FINISHED" and len(children) == 4
    assert_trials_linked(study, parent, children)
    with pytest.raises(ConfigError, match="epochs"):  # same study, other settings: refused before training
        run_sweep(sweep_config("mlp", trials=5, **dict(settings, epochs=settings["epochs"] + 1)))


@pytest.mark.slow
def test_a_one_process_sweep_does_not_import_dask(studyflow_home, tiny):
    """workers=1 and no dask_address: the trials run in the sweep's process, and Dask stays unloaded."""
    import subprocess
    import sys

    statement = (
        "import sys; from studyflow.config.sweeps import sweep_config; from tasks.sweeps.run import run_sweep; "
        f"summary = run_sweep(sweep_config('mlp', trials=1, search_space={SMALL_MLP!r}, **{dict(tiny)!r})); "
        "print(summary['trials']['FINISHED'], 'distributed' in sys.modules, 'dask' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", statement], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[-1] == "1 False False", result.stdout[-2000:]


@pytest.mark.integration
def test_two_dask_workers_share_a_postgresql_study(prefect_server, mlflow_client, postgres_url, tiny):
    """The sweep's flow with workers=2: a local Dask cluster of two workers, each running trials of one
    PostgreSQL study until 3 have finished; each trial numbered once, run once, in a worker (not the
    flow's process), linked both ways, none failed (a lock conflict between the workers would fail one)."""
    from flows.sweeps import mlp_sweep_flow
    from studyflow.processes import identity

    name = "two-dask-workers"
    state = mlp_sweep_flow(
        trials=3, workers=2, storage=postgres_url, study_name=name, search_space=SMALL_MLP, **tiny, return_state=True
    )

    assert state.is_completed(), state.message
    study = sweep_study(name, postgres_url)
    numbers = [trial.number for trial in study.trials]
    assert sorted(numbers) == list(range(len(numbers))), numbers  # no duplicates, no holes
    finished = [trial for trial in study.trials if trial.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert 3 <= len(finished) <= 3 + 1 and len(finished) == len(study.trials)  # at most workers - 1 over
    assert state.result()["trials"]["FINISHED"] == len(finished)
    (parent,), children = sweep_runs(mlflow_client, "mlp")
    assert parent.info.status == "FINISHED"
    assert_trials_linked(study, parent, children)
    per_trial = Counter(run.data.tags[Tag.TRIAL_NUMBER] for run in children)
    assert per_trial == Counter(str(number) for number in numbers), per_trial  # exactly one run per trial
    assert all(run.info.status == "FINISHED" for run in children)
    processes = {run.data.tags[Tag.PROCESS] for run in children}
    assert len(processes) == 2 and identity() not in processes, processes  # in both workers, not here
    flow_run_ids = {run.data.tags[Tag.PREFECT_FLOW_RUN_ID] for run in children}
    assert flow_run_ids == {parent.data.tags[Tag.PREFECT_FLOW_RUN_ID]}
