"""Study part 1 end to end on a small sample, against a real MLflow store and Prefect server."""

import numpy as np
import pytest
from conftest import assert_png, download, runs_of

from flows.pca import pca_flow
from studyflow import reference
from studyflow.errors import ConfigError
from studyflow.tracking.names import Tag
from tasks.data import load_dataset
from tasks.pca.compute import build_pca_map

FIGURES = [
    "pca_scatter.png",
    "pca_centroids_ellipses.png",
    "pair_accuracy_histogram.png",
    "pair_accuracy_by_dimension.png",
]


@pytest.mark.integration
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
    assert table[0] == "digit,centroid_pc1,centroid_pc2,variance_pc1,variance_pc2,count"
    assert [int(line.split(",")[0]) for line in table[1:]] == list(range(10))
    assert sum(int(line.split(",")[-1]) for line in table[1:]) == 3000
    assert "|   digit |" in download(mlflow_client, run.info.run_id, "tables/digit_statistics.md").read_text()
    pairs = download(mlflow_client, run.info.run_id, "tables/pair_accuracies.csv").read_text().splitlines()
    assert pairs[0] == "digit_a,digit_b,accuracy_2d,accuracy_10d" and len(pairs) == 46


@pytest.mark.integration
def test_bad_parameter_fails_before_any_run(prefect_server, mlflow_client):
    with pytest.raises(ConfigError, match="parameter 'sample_size"):
        pca_flow(profile="quick", sample_size=5)
    assert runs_of(mlflow_client, "pca") == []


@pytest.mark.integration
def test_failure_inside_the_flow_leaves_the_run_failed(prefect_server, mlflow_client):
    # 784 components cannot be fitted on 300 images: sklearn raises after the run has started.
    with pytest.raises(ValueError):
        pca_flow(profile="quick", sample_size=300, dimensions=[784])
    (run,) = runs_of(mlflow_client, "pca")
    assert run.info.status == "FAILED"
    assert "n_components" in run.data.tags[Tag.END_REASON]


def test_digit_table_reproduces_the_original_at_its_pixel_scale():
    """Pixels in [-1, 1] (the default) give the original's centroids and variances within sampling
    noise; [0, 1] halves the centroids and quarters the variances."""
    dataset = load_dataset("mnist")
    # Digits 0 and 1, the two whose bounds below were derived from the sampling noise; the report sets
    # all ten beside ours (the paper run differs by up to 0.66 on PC2 and 19 % on a PC1 variance).
    original = {
        entry["digit"]: entry for entry in reference.original_study()["pca"]["centroids"] if entry["digit"] in (0, 1)
    }
    paper = build_pca_map(dataset.train_images, dataset.train_labels, 10_000, 0, (-1.0, 1.0)).digit_table
    unit = build_pca_map(dataset.train_images, dataset.train_labels, 10_000, 0, (0.0, 1.0)).digit_table
    for digit, entry in original.items():
        ours = paper.set_index("digit").loc[digit]
        # Our sign convention (largest loading positive) orients the map like the original's. The
        # bounds are about two standard deviations of a 10,000-image sample's figures (docs/study.md).
        assert ours["centroid_pc1"] == pytest.approx(entry["centroid_pc1"], abs=0.4)
        assert ours["centroid_pc2"] == pytest.approx(entry["centroid_pc2"], abs=0.6)
        assert ours["variance_pc1"] == pytest.approx(entry["variance_pc1"], rel=0.12)
    columns = ["centroid_pc1", "centroid_pc2"]
    np.testing.assert_allclose(paper[columns], 2 * unit[columns], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(paper["variance_pc1"], 4 * unit["variance_pc1"], rtol=1e-3)
