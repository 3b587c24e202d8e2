"""Serving the champion: the registered model's input contract (pyfunc), and `studyflow serve` over HTTP
(MLflow's scoring server started as a user would, on a free port, stopped with its whole process group)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import mlflow.keras
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from conftest import free_port
from mlflow.exceptions import MlflowException

from flows.cnn import cnn_flow
from tasks.data import load_dataset, subset
from tasks.model_store import outputs

REPO_ROOT = Path(__file__).resolve().parent.parent
STUDYFLOW = [
    sys.executable,
    "-m",
    "studyflow.entrypoints.cli",
]  # as test_cli: this checkout's code, the venv's interpreter
CHAMPION = "models:/mnist-cnn@champion"
PROBABILITIES = [f"probability_{digit}" for digit in range(10)]


@pytest.fixture
def champion(prefect_server, mlflow_client, tiny):
    """A tiny CNN trained and registered by part 4's flow: the champion of this test's store."""
    cnn_flow(profile="quick", architectures={"CNN-a": [4]}, **tiny)
    return mlflow_client.get_model_version_by_alias("mnist-cnn", "champion")


@pytest.fixture(scope="module")
def test_images():
    return subset(load_dataset("mnist"), 600, 200, seed=0).test_images[:5]  # float32 in [0, 1], (5, 28, 28)


def _uint8(images):
    return np.rint(images * 255).astype(np.uint8)


@pytest.mark.integration
def test_the_registered_version_states_its_contract_and_applies_it(champion, test_images):
    for tag in ("input", "output", "classes", "request", "serve", "keras_model_uri"):
        assert champion.tags.get(tag), tag
    assert "(n, 28, 28) or (n, 784)" in champion.tags["input"] and "digits 0-9" in champion.tags["classes"]
    assert "Input:" in champion.description and "studyflow serve" in champion.description
    registered = mlflow.MlflowClient().get_registered_model("mnist-cnn")
    assert "(n, 28, 28) or (n, 784)" in registered.description  # the model's own page, before any version
    model = mlflow.pyfunc.load_model(CHAMPION)
    assert model.metadata.get_output_schema().input_names() == ["label", *PROBABILITIES]
    example = np.asarray(
        json.loads(Path(mlflow.artifacts.download_artifacts(f"{CHAMPION}/input_example.json")).read_text())
    )
    assert example.shape == (2, 28, 28) and example.max() > 1  # two real images, as 0-255 integers
    network = mlflow.keras.load_model(CHAMPION)  # the keras flavor: what part 5 inspects
    expected = outputs(network, test_images)
    for images in (
        _uint8(test_images),
        test_images.reshape(5, 784),
        pd.DataFrame(test_images.reshape(5, 784)),
        test_images.astype(np.float64),
        _uint8(test_images).reshape(5, 784).astype(np.int64),
    ):
        table = model.predict(images)
        assert list(table.columns) == ["label", *PROBABILITIES]
        np.testing.assert_array_equal(table["label"], expected.argmax(axis=1))
        np.testing.assert_allclose(table[PROBABILITIES].to_numpy(), expected, atol=1e-6)
    refused = {
        "float pixels must be in [0, 1]": test_images * 255,  # a 0-255 image sent as floats
        "integer pixels must be 0-255": _uint8(test_images).astype(np.int64) + 1,
        "shape (5, 27, 28)": test_images[:, 1:, :],
        "shape (28, 28)": test_images[0],
        "NaN or infinite": np.full((1, 784), np.nan),
        "not a rectangular array": [[0.5] * 784, [0.5] * 783],
    }
    for message, images in refused.items():
        with pytest.raises(MlflowException, match=re.escape(message)) as caught:
            model.predict(images)
        assert caught.value.error_code == "INVALID_PARAMETER_VALUE"


def _post(url: str, body) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def _wait_for_ping(url: str, server: subprocess.Popen, log: Path, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert server.poll() is None, f"the server exited with {server.returncode}:\n{log.read_text()}"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    raise AssertionError(f"no answer on {url} after {timeout_s} s:\n{log.read_text()}")


def _stop_group(server: subprocess.Popen) -> None:
    """SIGTERM to the server's session (MLflow's command and the uvicorn it starts), then check none is left."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    server.wait(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.killpg(server.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.killpg(server.pid, signal.SIGKILL)
    raise AssertionError("processes of the server were still running 30 s after SIGTERM")


@pytest.mark.integration
def test_studyflow_serve_answers_ping_predictions_a_malformed_request_and_an_oversized_batch(
    champion, test_images, tmp_path
):
    port = free_port()
    log = tmp_path / "serve.log"
    environment = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    environment["PATH"] = "/usr/bin:/bin"  # not activated: the command finds its own uvicorn
    with open(log, "wb") as output:
        server = subprocess.Popen(
            [*STUDYFLOW, "serve", "--port", str(port), "--max-batch", "3"],
            cwd=REPO_ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=environment,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for_ping(base + "/ping", server, log)
        assert f"serving mnist-cnn version {champion.version}" in log.read_text()
        expected = outputs(mlflow.keras.load_model(CHAMPION), test_images[:2])
        for images in (_uint8(test_images[:1]), test_images[1:2].reshape(1, 784)):  # uint8 28x28, float 784
            status, answer = _post(base + "/invocations", {"inputs": images.tolist()})
            assert status == 200, answer
            [prediction] = answer["predictions"]
            row = 0 if images.dtype == np.uint8 else 1
            assert prediction["label"] == int(expected[row].argmax())
            np.testing.assert_allclose([prediction[column] for column in PROBABILITIES], expected[row], atol=1e-6)
        status, answer = _post(base + "/invocations", {"inputs": [[0.5] * 100]})
        assert status == 400
        assert answer["error_code"] == "INVALID_PARAMETER_VALUE" and "shape (1, 100)" in answer["message"]
        # A whole image outside the contract (0-255 sent as floats): the reason first, the request cut short
        # (MLflow's server echoed all 784 pixels before the reason, about 4 KB).
        status, answer = _post(base + "/invocations", {"inputs": (test_images[:1] * 255).tolist()})
        assert status == 400
        assert answer["message"].startswith("float pixels must be in [0, 1]"), answer["message"][:300]
        assert len(answer["message"]) < 1000, len(answer["message"])
        status, answer = _post(base + "/invocations", {"inputs": _uint8(test_images[:4]).tolist()})
        assert status == 413, answer
        assert answer["error_code"] == "REQUEST_LIMIT_EXCEEDED"
        assert answer["message"].startswith("the request holds 4 images; this server takes at most 3")
        assert len(answer["message"]) < 600, len(answer["message"])
    finally:
        _stop_group(server)


@pytest.mark.slow
def test_serve_without_a_champion_is_one_line_before_any_server(studyflow_home):
    result = subprocess.run(
        [*STUDYFLOW, "serve", "--port", str(free_port())], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "no champion yet" in result.stderr or "run `studyflow run cnn` first" in result.stderr
    assert not (studyflow_home / "mlruns" / "mlflow.db").exists()  # nothing created
