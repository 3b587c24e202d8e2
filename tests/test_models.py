import pytest

from models.architectures import MAX_CNN_DEPTH, build_cnn, build_mlp
from studyflow import reference

MLP_ARCHITECTURES = reference.named_architectures("mlp")
CNN_ARCHITECTURES = reference.named_architectures("cnn")
# The original study's parameter counts: a model whose count differs is a different model.
EXPECTED_PARAMETERS = {**reference.expected_param_counts("mlp"), **reference.expected_param_counts("cnn")}
ORIGINAL_COUNTS = {
    entry["name"]: entry["param_count"]
    for kind in ("mlp", "cnn")
    for entry in reference.original_study()[kind]["architectures"]
}


def test_reference_data_agrees_with_itself_and_the_builder():
    assert EXPECTED_PARAMETERS == ORIGINAL_COUNTS
    assert reference.max_cnn_depth() == MAX_CNN_DEPTH
    assert max(len(filters) for filters in CNN_ARCHITECTURES.values()) <= MAX_CNN_DEPTH


@pytest.mark.parametrize("name", list(MLP_ARCHITECTURES))
def test_mlp_parameter_counts_match_the_study(name):
    assert build_mlp(MLP_ARCHITECTURES[name]).count_params() == EXPECTED_PARAMETERS[name]


@pytest.mark.parametrize("name", list(CNN_ARCHITECTURES))
def test_cnn_parameter_counts_match_the_study(name):
    model = build_cnn(CNN_ARCHITECTURES[name])
    assert model.count_params() == EXPECTED_PARAMETERS[name]
    convs = [layer for layer in model.layers if layer.name.startswith("conv_")]
    assert [layer.strides for layer in convs] == [(1, 1)] + [(2, 2)] * (len(convs) - 1)
    assert all(layer.kernel_size == (4, 4) and layer.padding == "same" for layer in convs)


def test_logits_precede_the_softmax():
    model = build_cnn([4])
    assert model.get_layer("logits").output.shape[-1] == 10
    assert model.layers[-1].name == "probabilities"


@pytest.mark.parametrize(
    "builder, widths", [(build_mlp, []), (build_mlp, [10, 0]), (build_cnn, [8] * 7), (build_cnn, [-1])]
)
def test_bad_widths_are_rejected(builder, widths):
    with pytest.raises(ValueError):
        builder(widths)


def test_a_models_initial_weights_do_not_depend_on_other_threads_drawing_random_numbers():
    """Keras draws an unseeded initializer's seed from Python's shared `random`; a Dask worker's event
    loop draws from it too. A draw in between (made here in the build, as another thread would make it)
    must not change the weights a seed gives."""
    import random

    import numpy as np

    from studyflow.config import TrainSettings
    from tasks.training import fresh_model

    settings = TrainSettings(seed=3, precision="float32")
    alone = fresh_model(lambda: build_mlp([8], name="m"), settings).get_weights()
    disturbed = fresh_model(lambda: (random.random(), build_mlp([8], name="m"))[1], settings).get_weights()
    other_seed = fresh_model(lambda: build_mlp([8], name="m"), settings.model_copy(update={"seed": 4})).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(alone, disturbed, strict=True))
    assert not np.array_equal(alone[0], other_seed[0])


def test_overlapping_builds_in_two_threads_leave_initial_weights_governed_by_the_seed():
    """Two builds overlapping in two threads (as a thread-pool task runner makes them), the first to
    start finishing first: each gets its seed's weights, and afterwards keras.utils.set_random_seed
    still decides an unseeded build's weights (a per-build swap of Keras' generator left one build's
    generator in place for good)."""
    import threading

    import keras
    import numpy as np

    from studyflow.config import TrainSettings
    from tasks.training import fresh_model

    def settings(seed):
        return TrainSettings(seed=seed, precision="float32")

    alone = {seed: fresh_model(lambda: build_mlp([8], name="m"), settings(seed)).get_weights() for seed in (1, 2)}
    first_inside, second_inside, first_done = threading.Event(), threading.Event(), threading.Event()
    built = {}

    def first():
        def build():
            first_inside.set()
            assert second_inside.wait(30)
            return build_mlp([8], name="m")

        built[1] = fresh_model(build, settings(1)).get_weights()
        first_done.set()

    def second():
        assert first_inside.wait(30)

        def build():
            second_inside.set()
            assert first_done.wait(30)
            return build_mlp([8], name="m")

        built[2] = fresh_model(build, settings(2)).get_weights()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for seed in (1, 2):
        assert all(np.array_equal(a, b) for a, b in zip(alone[seed], built[seed], strict=True)), seed

    after = []
    for _ in range(2):
        keras.utils.set_random_seed(0)
        after.append(build_mlp([8], name="m").get_weights())
    assert all(np.array_equal(a, b) for a, b in zip(*after, strict=True))
