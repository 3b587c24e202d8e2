import inspect
from typing import ClassVar

import pytest
from pydantic import Field

from flows.common import part_flow, run_with_config
from flows.registry import PARTS, STUDY
from flows.report import report_flow
from flows.sweeps import SWEEP_FLOWS
from studyflow.config import ConfigError, StepConfig, parse_set_options
from studyflow.config.parts import CnnConfig, MlpConfig, MtlConfig, PcaConfig, PerceptronConfig
from studyflow.config.study import ReportConfig, StudyConfig
from studyflow.config.sweeps import SWEEP_CONFIGS


def test_profile_fills_unset_values_and_overrides_win():
    quick = PerceptronConfig.for_profile("quick")
    paper = PerceptronConfig.for_profile("paper", pairs=[[3, 5]])
    assert quick.max_epochs == 100 and paper.max_epochs == 1000
    assert paper.resolved_pairs() == [(3, 5)]
    assert PerceptronConfig.for_profile("paper", pairs="all").resolved_pairs()[-1] == (8, 9)
    # The original's pixel scale in both profiles of parts 1 and 2; [0, 1] stays one --set away.
    assert paper.pixel_range == quick.pixel_range == PcaConfig.for_profile("paper").pixel_range == (-1.0, 1.0)
    assert PcaConfig.for_profile("paper", pixel_range=[0, 1]).pixel_range == (0.0, 1.0)
    settings = paper.perceptron_settings()
    assert (settings.learning_rate, settings.max_epochs, settings.tolerance) == (0.01, 1000, 1e-3)


@pytest.mark.parametrize(
    "overrides, parameter",
    [
        ({"pairs": [[1, 10]]}, "pairs"),
        ({"pairs": [[2, 2]]}, "pairs"),
        ({"max_epochs": 0}, "max_epochs"),
        ({"learning_rate": -0.1}, "learning_rate"),
        ({"tolerance": 1.0}, "tolerance"),
        ({"pixel_range": [1, 0]}, "pixel_range"),
        ({"pixel_range": [0, "inf"]}, "pixel_range"),
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
        "pairs": [[1, 0]],
        "name": "abc",
        "rate": 0.5,
    }
    with pytest.raises(ConfigError, match="NAME=VALUE"):
        parse_set_options(["oops"])


ALL_FLOWS = (
    [(part.flow, part.config) for part in (*PARTS.values(), STUDY)]
    + [(report_flow, ReportConfig)]
    + [(SWEEP_FLOWS[kind], SWEEP_CONFIGS[kind]) for kind in SWEEP_FLOWS]
)


@pytest.mark.parametrize("flow, config", ALL_FLOWS, ids=[flow.name for flow, _ in ALL_FLOWS])
def test_prefect_sees_the_config_fields_as_the_flow_parameters(flow, config):
    """What a deployment and the Prefect UI offer is exactly the config's fields, with their descriptions."""
    from prefect.utilities.callables import parameter_schema

    schema = parameter_schema(flow)
    assert set(schema.properties) == set(config.model_fields)
    described = {name for name, field in config.model_fields.items() if field.description}
    assert {name for name in described if schema.properties[name].get("description")} == described


def test_a_new_config_field_is_a_flow_parameter_that_reaches_the_body():
    """The mechanism itself: the body gets the config built from the profile and the flat parameters."""

    class TinyConfig(StepConfig):
        width: int = Field(3, ge=1, description="a hyperparameter added in one place")
        PROFILE_DEFAULTS: ClassVar = {"quick": {"width": 2}, "paper": {}}

    received = []

    @part_flow("tiny", TinyConfig)
    def tiny_flow(config: TinyConfig) -> int:
        received.append(config)
        return config.width

    assert "width" in inspect.signature(tiny_flow).parameters
    assert tiny_flow.fn(width=7) == 7 and tiny_flow.fn() == 2 and tiny_flow.fn(profile="paper") == 3
    assert received[0] == TinyConfig.for_profile("quick", width=7)
    with pytest.raises(ConfigError, match="parameter 'width'"):
        tiny_flow.fn(width=0)


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


def test_each_part_names_the_datasets_it_reads_and_part_5_checks_its_model_first():
    from flows.registry import datasets_needed

    assert {name: datasets_needed(name, part.config.for_profile("quick")) for name, part in PARTS.items()} == {
        "pca": ["mnist"],
        "perceptron": ["mnist"],
        "mlp": ["mnist"],
        "cnn": ["mnist"],
        "inspect": ["mnist"],
        "mtl": ["fashion-mnist"],
    }
    assert datasets_needed("study", StudyConfig.for_profile("quick", parts=["pca", "mtl"])) == [
        "fashion-mnist",
        "mnist",
    ]
    assert PARTS["inspect"].preflight_path == "tasks.inspect.source:check_model_exists"


def test_auto_precision_says_what_it_picks_and_why():
    from studyflow.config.base import auto_precision_reason

    assert auto_precision_reason(["avx2", "fma"]) == (
        "precision auto -> float32: the CPU has no native bfloat16 "
        "(AVX512_BF16 or AMX), and emulated it is slower than float32"
    )
    assert (
        auto_precision_reason(["avx512f", "amx_bf16"])
        == "precision auto -> mixed_bfloat16: the CPU computes bfloat16 natively (amx_bf16)"
    )


def test_auto_precision_is_bfloat16_only_where_the_cpu_computes_it_natively():
    from studyflow.config.base import resolve_precision
    from studyflow.machine import cpu_flags

    assert resolve_precision("auto", ["avx2", "avx512f"]) == "float32"  # bfloat16 would be emulated: slower
    assert resolve_precision("auto", ["avx512f", "avx512_bf16"]) == "mixed_bfloat16"
    assert resolve_precision("auto", ["amx_bf16", "amx_tile"]) == "mixed_bfloat16"
    assert resolve_precision("float32", ["amx_bf16"]) == "float32"  # a named policy is kept as asked
    # Resolved in the config, so the params, step keys and models carry the policy that was used.
    config = MlpConfig.for_profile("quick", precision="auto")
    native = any(flag in cpu_flags() for flag in ("avx512_bf16", "amx_bf16"))
    assert config.precision == config.train_settings().precision == ("mixed_bfloat16" if native else "float32")
    assert config.as_params()["precision"] == config.precision


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["avx2", "avx512f"], "float32"),
        (["avx512f", "avx512_bf16"], "mixed_bfloat16"),
        (["amx_bf16", "amx_tile"], "mixed_bfloat16"),
    ],
)
def test_the_default_precision_is_auto_resolved_on_the_machine(monkeypatch, flags, expected):
    """bench.precision_choice found bfloat16 as accurate as float32 where the CPU has it natively: the
    default is "auto", resolved when the config is built (a study passes "auto" on to its parts)."""
    import studyflow.machine
    from studyflow.config.base import TrainSettings

    monkeypatch.setattr(studyflow.machine, "cpu_flags", lambda: flags)
    assert TrainSettings().precision == expected
    for part in (MlpConfig, CnnConfig, MtlConfig):
        config = part.for_profile("paper")
        assert config.precision == config.train_settings().precision == config.as_params()["precision"] == expected
    assert StudyConfig.for_profile("quick").precision == "auto"


@pytest.mark.parametrize(
    "config",
    [part.config for part in PARTS.values()] + [StudyConfig, ReportConfig, *SWEEP_CONFIGS.values()],
    ids=lambda config: config.__name__,
)
def test_the_paper_profile_is_the_fields_own_defaults(config):
    # One source per value: a field's default is what runs when nothing overrides it (the paper
    # profile); the quick profile only lightens some of them.
    assert set(config.PROFILE_DEFAULTS) <= {"quick"}
    assert config.for_profile("paper") == config(profile="paper")
    assert MlpConfig.for_profile("paper").epochs == 20 and CnnConfig.for_profile("paper").epochs == 10
    assert MtlConfig.for_profile("paper").log_models and not MtlConfig.for_profile("quick").log_models


@pytest.mark.integration
def test_the_command_lines_config_is_the_one_the_body_receives(prefect_server):
    """Built once: the object checked before Prefect starts reaches the body through a real flow run,
    whose parameters record its resolved values; a subflow still builds its own from its parameters."""

    class OuterConfig(StepConfig):
        width: int = Field(3, ge=1)

    class InnerConfig(StepConfig):
        depth: int = Field(4, ge=1)

    received = []

    @part_flow("inner", InnerConfig)
    def inner_flow(config: InnerConfig) -> int:
        received.append(config)
        return config.depth

    @part_flow("outer", OuterConfig)
    def outer_flow(config: OuterConfig) -> int:
        received.append(config)
        return config.width + inner_flow(profile=config.profile, depth=5)

    config = OuterConfig.for_profile("quick", width=9)
    assert run_with_config(outer_flow, config) == 14
    assert received[0] is config and received[1] == InnerConfig.for_profile("quick", depth=5)
    assert run_with_config(outer_flow, OuterConfig.for_profile("paper")) == 8  # nothing left over from the last call
