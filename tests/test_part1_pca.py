"""Study part 1 end to end on a small sample, against a real MLflow store and Prefect server."""

import pytest

from flows.pca import pca_flow
from studyflow.errors import ConfigError
from studyflow.tracking.names import Tag

from conftest import assert_png, download, runs_of

FIGURES = ["pca_scatter.png", "pca_centroids_ellipses.png", "pair_accuracy_histogram.png",
           "pair_accuracy_by_dimension.png"]


def test_pca_flow_logs_metrics_tables_and_figures(prefect_server, mlflow_client):
    metrics = pca_flow(profile="quick", sample_size=3000, dimensions=[10])
    (run,) = runs_of(mlflow_client, "pca")
    assert run.info.status == "FINISHED"
    logged = run.data.metrics
    assert 0.7 < logged["mean_pair_accuracy"] < 0.95  # 2-D: clearly above chance, clearly imperfect
    assert logged["mean_pair_accuracy_10d"] > logged["mean_pair_accuracy"]
    assert len([name for name in logged if name.startswith("pair_accuracy_")]) == 45
    assert logged["pair_accuracy_0_1"] > 0.95
    assert 0.05 < logged["explained_variance_ratio_pc1"] < 0.2
    assert metrics["mean_pair_accuracy"] == pytest.approx(logged["mean_pair_accuracy"])
    assert run.data.params["sample_size"] == "3000"
    assert run.data.tags[Tag.PREFECT_FLOW_RUN_ID]
    assert run.inputs.dataset_inputs[0].dataset.digest
    for figure in FIGURES:
        assert_png(download(mlflow_client, run.info.run_id, f"figures/{figure}"))
    table = download(mlflow_client, run.info.run_id, "tables/digit_statistics.csv").read_text().splitlines()
    assert table[0] == "digit,centroid_pc1,centroid_pc2,variance_pc1,variance_pc2,count" and len(table) == 11
    assert "|   digit |" in download(mlflow_client, run.info.run_id, "tables/digit_statistics.md").read_text()
    pairs = download(mlflow_client, run.info.run_id, "tables/pair_accuracies.csv").read_text().splitlines()
    assert pairs[0] == "digit_a,digit_b,accuracy_2d,accuracy_10d" and len(pairs) == 46


def test_bad_parameter_fails_before_any_run(prefect_server, mlflow_client):
    with pytest.raises(ConfigError, match="parameter 'sample_size"):
        pca_flow(profile="quick", sample_size=5)
    assert runs_of(mlflow_client, "pca") == []


def test_failure_inside_the_flow_leaves_the_run_failed(prefect_server, mlflow_client):
    # 784 components cannot be fitted on 300 images: sklearn raises after the run has started.
    with pytest.raises(ValueError):
        pca_flow(profile="quick", sample_size=300, dimensions=[784])
    (run,) = runs_of(mlflow_client, "pca")
    assert run.info.status == "FAILED"
    assert "n_components" in run.data.tags[Tag.END_REASON]
