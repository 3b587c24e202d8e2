"""Steps (studyflow.steps): what keys a step's result, so that a rerun reuses it only when nothing it
depends on changed: the code it imports, and the weights of a model it takes."""

from __future__ import annotations

from pathlib import Path

from studyflow import steps


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_code_digest_follows_helpers_through_imports(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    _write(
        tmp_path,
        {
            "demo/__init__.py": "",
            "demo/step.py": "from demo.helpers import scale\n\ndef step(x):\n    return scale(x)\n",
            "demo/helpers.py": "from . import deeper\n\ndef scale(x):\n    return deeper.twice(x)\n",
            "demo/deeper.py": "def twice(x):\n    return 2 * x\n",
            "demo/unrelated.py": "VALUE = 1\n",
        },
    )
    digest = steps.code_digest("demo.step", packages=("demo",))
    _write(tmp_path, {"demo/unrelated.py": "VALUE = 2\n"})
    assert steps.code_digest("demo.step", packages=("demo",)) == digest, "a module the step never imports"
    _write(tmp_path, {"demo/deeper.py": "def twice(x):\n    return x + x\n"})  # two imports away
    assert steps.code_digest("demo.step", packages=("demo",)) != digest


def test_a_model_input_is_keyed_by_its_weights():
    """The deep-dream step takes the inspected model: a retrained model must not reuse old dreams."""
    import keras
    import numpy as np

    from models.architectures import build_cnn

    keras.utils.set_random_seed(0)
    model = build_cnn([4], name="keyed")
    key = steps.fingerprint(model)
    twin = build_cnn([4], name="keyed")
    twin.set_weights(model.get_weights())
    assert steps.fingerprint(twin) == key, "the same architecture and weights, built again"
    weights = model.get_weights()
    weights[0] = weights[0] + np.float32(1e-3)
    model.set_weights(weights)
    assert steps.fingerprint(model) != key
