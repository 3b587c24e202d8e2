import pytest

from flows.cnn import CnnConfig, cnn_flow
from flows.mlp import MlpConfig, mlp_flow
from flows.mtl import MtlConfig, mtl_flow
from flows.pca import PcaConfig, pca_flow
from flows.perceptron import PerceptronConfig, perceptron_flow
from flows.study import StudyConfig
from studyflow.config import ConfigError, parse_set_options


def test_profile_fills_unset_values_and_overrides_win():
    quick = PerceptronConfig.for_profile("quick")
    paper = PerceptronConfig.for_profile("paper", pairs=[[3, 5]])
    assert quick.max_epochs == 100 and paper.max_epochs == 1000
    assert paper.resolved_pairs() == [(3, 5)]
    assert PerceptronConfig.for_profile("paper", pairs="all").resolved_pairs()[-1] == (8, 9)


@pytest.mark.parametrize(
    "overrides, parameter",
    [
        ({"pairs": [[1, 10]]}, "pairs"),
        ({"pairs": [[2, 2]]}, "pairs"),
        ({"max_epochs": 0}, "max_epochs"),
        ({"learning_rate": -0.1}, "learning_rate"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_values_are_rejected_naming_the_parameter(overrides, parameter):
    with pytest.raises(ConfigError, match=f"parameter '{parameter}"):
        PerceptronConfig.for_profile("quick", **overrides)


def test_unknown_profile_and_unknown_key_are_rejected():
    with pytest.raises(ConfigError, match="profile"):
        PcaConfig.for_profile("fast")
    with pytest.raises(ConfigError, match="sample_sise"):
        PcaConfig.for_profile("quick", sample_sise=10)
    with pytest.raises(ConfigError, match="parts"):
        StudyConfig.for_profile("quick", parts=["pca", "nope"])


def test_set_options_parse_json_and_plain_strings():
    assert parse_set_options(["pairs=[[1,0]]", "name=abc", "rate=0.5"]) == {
        "pairs": [[1, 0]], "name": "abc", "rate": 0.5}
    with pytest.raises(ConfigError, match="NAME=VALUE"):
        parse_set_options(["oops"])


@pytest.mark.parametrize("flow, config", [(pca_flow, PcaConfig), (perceptron_flow, PerceptronConfig),
                                          (mlp_flow, MlpConfig), (cnn_flow, CnnConfig),
                                          (mtl_flow, MtlConfig)])
def test_flow_parameters_match_config_fields(flow, config):
    """A flow's parameters are its config's fields: nothing can be set in one and not the other."""
    import inspect

    flow_parameters = set(inspect.signature(flow.fn).parameters)
    config_fields = set(config.model_fields)
    assert flow_parameters == config_fields


@pytest.mark.parametrize(
    "config, overrides, parameter",
    [
        (MlpConfig, {"architectures": {"MLP-x": [100, -5]}}, "architectures"),
        (MlpConfig, {"architectures": {}}, "architectures"),
        (CnnConfig, {"architectures": {"deep": [8] * 7}}, "architectures"),
        (CnnConfig, {"epochs": 0}, "epochs"),
        (MlpConfig, {"validation_fraction": 1.5}, "validation_fraction"),
        (CnnConfig, {"precision": "float16"}, "precision"),
        (MtlConfig, {"precision": "bfloat16"}, "precision"),
    ],
)
def test_bad_architecture_settings_are_rejected(config, overrides, parameter):
    with pytest.raises(ConfigError, match=f"parameter '{parameter}"):
        config.for_profile("quick", **overrides)
