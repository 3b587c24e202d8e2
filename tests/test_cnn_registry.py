"""The CNN's registered model on tiny trainings: the promotion gate keeps a better champion, never
registers a model twice, and writes a description whose status and decision agree; the registry's
descriptions keep their `<...>` placeholders visible in MLflow's Markdown."""

import re

import pytest
from conftest import tiny_data as _tiny_data
from conftest import tracked_parent as _parent

from tasks.architectures.registry import CHAMPION_ALIAS, register_and_promote
from tasks.architectures.tasks import train_architecture
from tasks.training import TrainSettings


@pytest.mark.integration
@pytest.mark.slow  # trains several models or drives the command line: out of test-fast
def test_promotion_gate_keeps_a_better_champion_and_never_duplicates(prefect_server, mlflow_client, tiny):

    dataset, data = _tiny_data(tiny)
    with _parent(mlflow_client, "cnn", "gate", dataset.digest) as parent:
        good = train_architecture(parent, "cnn", "good", [8, 16], data, TrainSettings(epochs=2))
        bad = train_architecture(parent, "cnn", "bad", [1], data, TrainSettings(epochs=1, learning_rate=1e-5))
    test = (data.test_inputs, data.test_targets, "tiny test set")
    first = register_and_promote(mlflow_client, good.model_uri, good.run_id, *test)
    first_description = mlflow_client.get_model_version("mnist-cnn", first.version).description
    worse = register_and_promote(mlflow_client, bad.model_uri, bad.run_id, *test)
    again = register_and_promote(mlflow_client, good.model_uri, good.run_id, *test)
    assert first.promoted and not worse.promoted and not again.promoted
    assert worse.champion_accuracy == pytest.approx(first.challenger_accuracy)
    assert again.version == first.version
    champion = mlflow_client.get_model_version_by_alias("mnist-cnn", CHAMPION_ALIAS)
    assert champion.version == first.version
    versions = mlflow_client.search_model_versions("name='mnist-cnn'")
    assert sorted(int(version.version) for version in versions) == [1, 2]
    assert "does not beat" in versions[0].tags.get("promotion_decision", "") + versions[1].tags.get(
        "promotion_decision", ""
    )
    by_number = {version.version: version.description for version in versions}
    assert_decision_agrees(first_description, is_champion=True, decision="no champion yet")
    assert_decision_agrees(by_number[first.version], is_champion=True, decision="is already the champion")
    assert_decision_agrees(by_number[worse.version], is_champion=False, decision="does not beat the champion")


def assert_decision_agrees(description: str, is_champion: bool, decision: str) -> None:
    """The description's status and its decision say the same thing."""
    status, _, reason = description.partition(" Decision: ")
    assert status.startswith("Champion:" if is_champion else "Not promoted:"), description
    assert decision in reason, description
    if is_champion:
        assert "does not beat" not in reason and (
            "became the first" in reason or "already" in reason or "beats the champion" in reason
        ), description


def _outside_code_spans(markdown: str) -> str:
    return re.sub(r"`[^`]*`", "", markdown)


def test_registry_descriptions_keep_their_placeholders_in_mlflow_markdown():
    """MLflow's UI renders descriptions as Markdown and drops what reads as an HTML tag: every `<...>`
    placeholder sits in a code span, where it is shown as written."""
    from tasks.architectures.registry import contract_description, registered_model_description

    model_page, version_page = (registered_model_description("mnist-cnn"), contract_description("mnist-cnn", "3"))
    for text in (model_page, version_page):
        assert text.count("`") % 2 == 0, text
        assert not re.search(r"<[A-Za-z/!]", _outside_code_spans(text)), _outside_code_spans(text)
    assert '`{"inputs": [<image>, ...]}`' in model_page
    assert "`studyflow serve --model-uri models:/mnist-cnn/<version>`" in model_page
    assert "`mlflow.pyfunc.load_model('models:/mnist-cnn/3')`" in version_page
