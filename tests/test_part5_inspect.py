"""Part 5 end to end on a tiny CNN trained here: figures, digit choice, dreams, source links, errors."""

import inspect as stdlib_inspect
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import assert_png, download, runs_of
from PIL import Image

from flows.inspect import InspectConfig, inspect_flow
from models.architectures import build_cnn
from studyflow.config import ConfigError
from studyflow.config.parts import DreamSettings
from studyflow.errors import ModelSourceError
from studyflow.tracking.model_source import NO_CHAMPION
from studyflow.tracking.names import Tag
from tasks.data import load_dataset
from tasks.inspect.compute import activation_maps, choose_digit_images, dream_digits, filter_grids
from tasks.inspect.figures import filter_grid_figure
from tasks.model_store import log_keras_model
from tasks.training import TrainSettings, compile_model, precision_policy

FILTERS = [4, 8]
FAST_DREAM = {"dream_steps": 8, "octaves": 2}


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist")


@pytest.fixture(scope="module")
def tiny_cnn(mnist):
    """conv_1 (4 filters) and conv_2 (8 filters), one epoch on 1,000 images: seconds, well above chance."""
    keras.utils.set_random_seed(0)
    model = compile_model(build_cnn(FILTERS, name="tiny"), TrainSettings(epochs=1, learning_rate=0.01))
    model.fit(mnist.train_images[:1000], mnist.train_labels[:1000], batch_size=64, epochs=1, verbose=0)
    return model


@pytest.fixture
def logged_cnn(mlflow_client, tiny_cnn, mnist):
    """The tiny CNN logged by a run of the `cnn` experiment, as part 4 logs its models."""
    from studyflow import tracking

    with tracking.tracked_run(
        mlflow_client, "cnn", "tiny-cnn", profile="quick", seed=0, dataset_digest=mnist.digest
    ) as run:
        model_uri = log_keras_model(run, tiny_cnn, mnist.test_images[:8])
    return model_uri, run.run_id


def _inspect_run(client):
    (run,) = runs_of(client, "inspect")
    return run


@pytest.mark.integration
def test_inspect_flow_logs_every_figure_and_raises_both_classes(
    prefect_server, mlflow_client, logged_cnn, tiny_cnn, mnist, tmp_path
):
    model_uri, source_run_id = logged_cnn
    assert model_uri.startswith("models:/m-")
    metrics = inspect_flow(profile="quick", model_uri=model_uri, **FAST_DREAM)
    run = _inspect_run(mlflow_client)
    assert run.info.status == "FINISHED"
    assert run.data.tags[Tag.SOURCE_MODEL_URI] == model_uri
    assert run.data.tags[Tag.SOURCE_RUN_ID] == source_run_id
    assert source_run_id in run.data.tags["mlflow.note.content"]
    inputs = mlflow_client.get_run(run.info.run_id).inputs
    assert [model.model_id for model in inputs.model_inputs] == [model_uri.removeprefix("models:/")]
    for digit in (2, 9):
        candidates = np.flatnonzero(mnist.test_labels == digit)[:50]
        predicted = np.argmax(tiny_cnn.predict(mnist.test_images[candidates], verbose=0), axis=-1)
        first_right = candidates[np.flatnonzero(predicted == digit)[0]]
        assert run.data.params[f"image_index_{digit}"] == str(first_right)
        assert run.data.params[f"image_predicted_{digit}"] == str(digit)
        for start in ("digit", "noise"):
            prefix = f"dream_{digit}_{start}"
            assert run.data.metrics[f"{prefix}_score_after"] > run.data.metrics[f"{prefix}_score_before"], prefix
            assert metrics[f"{prefix}_score_after"] == pytest.approx(run.data.metrics[f"{prefix}_score_after"])
            history = sorted(mlflow_client.get_metric_history(run.info.run_id, f"{prefix}_score"), key=lambda p: p.step)
            assert [point.step for point in history] == list(
                range(FAST_DREAM["dream_steps"] * FAST_DREAM["octaves"] + 1)
            )
            assert history[-1].value == pytest.approx(run.data.metrics[f"{prefix}_score_after"])
    for layer, count in zip(("conv_1", "conv_2"), FILTERS, strict=False):
        assert run.data.params[f"{layer}_filters"] == str(count)  # panels drawn in the logged figure
    figures = (
        [f"figures/filters/conv_{n}.png" for n in (1, 2)]
        + [f"figures/activations/conv_{n}.png" for n in (1, 2)]
        + [f"figures/dreams/class_{d}.png" for d in (2, 9)]
    )
    for artifact in figures:
        path = download(mlflow_client, run.info.run_id, artifact)
        assert_png(path, min_side=200)
        with Image.open(path) as image:
            assert max(image.size) < 4000, f"{artifact} is {image.size}"
    # The study report shows every one of them in part 5's section, each in its own file.
    from tasks.report.write import write_report

    write_report(mlflow_client, tmp_path / "report")
    section = (tmp_path / "report" / "report.md").read_text().split("## 5.")[1].split("## 6.")[0]
    for artifact in figures:
        flat = "-".join(artifact.split("/")[1:])
        assert f"(figures/inspect/{run.info.run_id[:8]}-{flat})" in section, artifact
        assert_png(tmp_path / "report" / "figures" / "inspect" / f"{run.info.run_id[:8]}-{flat}")
    table = download(mlflow_client, run.info.run_id, "tables/dream_scores.csv").read_text().splitlines()
    assert table[0] == "class,start,logit_before,logit_after,probability_before,probability_after"
    assert len(table) == 5
    arrays = np.load(download(mlflow_client, run.info.run_id, "arrays/dreams.npz"))
    assert arrays["2_noise_dream"].shape == (28, 28) and 0.0 <= arrays["2_noise_dream"].min() <= 1.0


def test_filter_figure_has_one_panel_per_filter(tiny_cnn):
    grids = filter_grids(tiny_cnn)
    assert [grid.filter_count for grid in grids] == FILTERS
    for grid, layer in zip(grids, ("conv_1", "conv_2"), strict=False):
        figure = filter_grid_figure(grid)
        assert len(figure.axes[0].images) == tiny_cnn.get_layer(layer).filters
        assert ("strongest" in figure.axes[0].get_title()) == (layer != "conv_1")
    expected = tiny_cnn.get_layer("conv_1").get_weights()[0][:, :, 0, 3]
    np.testing.assert_array_equal(grids[0].kernels[3], expected)
    # A layer with more filters than a readable grid holds (CNN-5's conv_5: 512) shows its first ones
    # by index, and its title says so; here conv_2's 8 filters against a limit of 4.
    subset = filter_grid_figure(grids[1], most=4)
    assert len(subset.axes[0].images) == 4
    assert "the first 4 of its 8 filters" in subset.axes[0].get_title()
    np.testing.assert_array_equal(subset.axes[0].images[3].get_array(), grids[1].kernels[3])


def test_a_mixed_bfloat16_cnn_dreams_and_gives_float32_maps(mnist):
    """A champion trained with precision=mixed_bfloat16 computes in bfloat16: part 5 still works on it."""
    settings = TrainSettings(epochs=1, learning_rate=0.01, precision="mixed_bfloat16")
    keras.utils.set_random_seed(0)
    with precision_policy(settings.precision):
        model = compile_model(build_cnn(FILTERS, name="tiny_bf16"), settings)
    model.fit(mnist.train_images[:1000], mnist.train_labels[:1000], batch_size=64, epochs=1, verbose=0)
    assert model.get_layer("conv_1").compute_dtype == "bfloat16"
    maps = activation_maps(model, mnist.test_images[:2])
    assert {array.dtype for array in maps.values()} == {np.dtype("float32")}
    chosen = choose_digit_images(model, mnist.test_images[:500], mnist.test_labels[:500], [3])
    dreams = dream_digits(
        model,
        chosen,
        DreamSettings(
            dream_steps=8,
            octaves=2,
            octave_scale=1.4,
            dream_learning_rate=0.02,
            jitter=1,
            blur_every=4,
            blur_sigma=0.5,
            l2_penalty=0.05,
        ),
    )
    assert len(dreams) == 2
    for dream in dreams:  # the ascent raised the digit's logit from the image and from noise
        assert np.isfinite(dream.score_after) and dream.score_after > dream.score_before, dream.start
        assert dream.image.dtype == np.float32


@pytest.mark.integration
def test_default_is_the_champion(prefect_server, mlflow_client, logged_cnn, tiny_cnn, mnist):
    from tasks.architectures.registry import register_and_promote

    model_uri, source_run_id = logged_cnn
    register_and_promote(
        mlflow_client,
        model_uri,
        source_run_id,
        mnist.test_images[:500],
        mnist.test_labels[:500],
        "first 500 test images",
    )
    inspect_flow(profile="quick", dream_steps=2, octaves=1)
    run = _inspect_run(mlflow_client)
    assert run.data.tags[Tag.SOURCE_MODEL_URI] == "models:/mnist-cnn@champion"
    assert run.data.tags[Tag.SOURCE_MODEL_VERSION] == "mnist-cnn/1"
    assert run.data.tags[Tag.SOURCE_RUN_ID] == source_run_id


@pytest.mark.parametrize(
    "model_uri, message",
    [
        ("models:/mnist-cnn@champion", NO_CHAMPION),
        ("models:/no-such-cnn/1", "not found"),
        ("models:/m-0123456789abcdef0123456789abcdef", "not found"),
        ("runs:/0123456789abcdef0123456789abcdef/model", "not found"),
    ],
)
@pytest.mark.integration
def test_missing_model_is_a_clear_error_and_leaves_no_run(prefect_server, mlflow_client, model_uri, message):
    with pytest.raises(ModelSourceError, match=message):
        inspect_flow(profile="quick", model_uri=model_uri)
    assert runs_of(mlflow_client, "inspect") == []


@pytest.mark.slow
def test_cli_says_how_to_make_a_champion(studyflow_home):
    """The real command, on an empty store: one line saying what to do, no Prefect server, no traceback."""
    env = {**os.environ, "STUDYFLOW_HOME": str(studyflow_home), "PREFECT_HOME": str(studyflow_home / "prefect")}
    result = subprocess.run(
        [sys.executable, "-m", "studyflow.entrypoints.cli", "run", "inspect"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 1
    assert "studyflow: error: no champion yet: run `studyflow run cnn` first" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    "overrides, parameter",
    [
        ({"model_uri": "/tmp/model.keras"}, "model_uri"),
        ({"octaves": 4, "octave_scale": 2.0}, "octave"),
        ({"dream_steps": 0}, "dream_steps"),
        ({"dream_learning_rate": 0.0}, "dream_learning_rate"),
        ({"digits": [2, 2]}, "digits"),
        ({"jitter": 9}, "jitter"),
    ],
)
def test_bad_dream_parameters_are_rejected(overrides, parameter):
    with pytest.raises(ConfigError, match=parameter):
        InspectConfig.for_profile("quick", **overrides)


def test_flow_parameters_are_the_config_fields_and_quick_is_lighter():
    assert set(stdlib_inspect.signature(inspect_flow.fn).parameters) == set(InspectConfig.model_fields)
    quick, paper = InspectConfig.for_profile("quick"), InspectConfig.for_profile("paper")
    assert quick.dream_steps * quick.octaves < paper.dream_steps * paper.octaves
    assert quick.model_uri == "models:/mnist-cnn@champion"
