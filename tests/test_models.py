import pytest

from models.architectures import CNN_ARCHITECTURES, MLP_ARCHITECTURES, build_cnn, build_mlp

EXPECTED_PARAMETERS = {
    "MLP-1": 1_796_010, "MLP-2": 2_797_010, "MLP-3": 4_799_010, "MLP-4": 1_900_510, "MLP-5": 2_401_510,
    "CNN-1": 227_306, "CNN-2": 383_178, "CNN-3": 589_450, "CNN-4": 71_226, "CNN-5": 2_807_274,
}


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


@pytest.mark.parametrize("builder, widths", [(build_mlp, []), (build_mlp, [10, 0]), (build_cnn, [8] * 7), (build_cnn, [-1])])
def test_bad_widths_are_rejected(builder, widths):
    with pytest.raises(ValueError):
        builder(widths)
