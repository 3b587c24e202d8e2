"""The registered digit classifier's serving contract: a self-contained MLflow model from code.

MLflow copies this file into every packaged classifier (tasks/serving/package.py) and runs it
when the model is loaded, so the registered model needs numpy, pandas, Keras and MLflow, not
studyflow. Keep it importing nothing from the project.

Input: a batch of 28x28 images, shape (n, 28, 28) or (n, 784), as a NumPy array, a DataFrame of
784 columns, or JSON `{"inputs": [...]}` through the scoring server. Integers are 0-255 pixel
values (MNIST's uint8 files); floats are intensities in [0, 1] (what the network was trained on).
A float above 1 is refused, not guessed: it is most likely a 0-255 image, and scaling it silently
would hide a client's mistake; the message says to send integers or divide by 255. (Over JSON,
integers stay integers: the model declares no input schema, so MLflow does not cast them.)
Output: one row per image, `label` (the predicted digit) and `probability_0` .. `probability_9`.
A request outside the contract raises RequestRefused (an MlflowException, INVALID_PARAMETER_VALUE):
the scoring server answers 400 with the reason first. A batch of more than STUDYFLOW_SERVE_MAX_BATCH
images (when set; `studyflow serve --max-batch` sets it) is answered 413 (REQUEST_LIMIT_EXCEEDED).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import set_model
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, REQUEST_LIMIT_EXCEEDED
from mlflow.pyfunc import PythonModel

SIDE = 28
CLASSES = tuple(range(10))
LABEL_COLUMN = "label"
PROBABILITY_COLUMNS = tuple(f"probability_{digit}" for digit in CLASSES)
BATCH = 1024  # images per call of the network: bounds memory for large requests

INPUT_CONTRACT = (
    "a batch of 28x28 grey images, white digit on black as in MNIST: shape (n, 28, 28) or (n, 784); "
    "integers are 0-255 pixel values (uint8), floats are intensities in [0, 1]; a float above 1, a "
    "negative or non-finite value, an integer above 255 or any other shape is refused (HTTP 400)"
)
OUTPUT_CONTRACT = (
    "one row per image: label (the predicted digit, int) and probability_0 .. probability_9 "
    "(float32 softmax probabilities of digits 0-9, summing to 1)"
)
CLASSES_TEXT = "digits 0-9 (probability_k is the probability of digit k)"
REQUEST_BODY = '{"inputs": [<image>, ...]}'
REQUEST_FORMAT = (
    f"POST /invocations, Content-Type: application/json, body {REQUEST_BODY} with each "
    "image 28 rows of 28 values (or 784 values)"
)


MAX_BATCH_VARIABLE = "STUDYFLOW_SERVE_MAX_BATCH"  # images per request at most; unset: no limit
ECHO_CHARACTERS = 200  # of the request, repeated after the reason of a refusal


class RequestRefused(MlflowException):
    """A request the model does not take: the reason first, the request repeated only in part, and its
    own HTTP status.

    MLflow's scoring server rewrites the message of a model's MlflowException to "Failed to predict
    data '<the whole request>'. Error: <reason>": about 3.9 KB of pixels per image before the reason.
    The rewrite goes through `message`, so the reason is put back first here and the request cut to
    its start. MLflow maps no error code to 413 (REQUEST_LIMIT_EXCEEDED is 429), and its server asks
    the exception for its status (`get_http_status_code`), so a refusal carries its own.
    """

    def __init__(self, reason: str, error_code: int = INVALID_PARAMETER_VALUE, http_status: int = 400):
        super().__init__(reason, error_code=error_code)
        self.reason, self.http_status = reason, http_status

    @property
    def message(self) -> str:
        return self._message

    @message.setter
    def message(self, text: str) -> None:
        reason = getattr(self, "reason", None)
        if reason is None or text == reason:
            self._message = text
            return
        before = text.rpartition(reason)[0] if reason in text else text  # MLflow's words and the request
        request = " ".join(before.split()).removesuffix("Error:").strip().removesuffix(".")
        cut = request if len(request) <= ECHO_CHARACTERS else request[:ECHO_CHARACTERS] + " ..."
        self._message = f"{reason} [{cut}]"

    def get_http_status_code(self) -> int:
        return self.http_status


def _refuse(message: str) -> RequestRefused:
    return RequestRefused(f"{message}. Expected {INPUT_CONTRACT}.")


def max_batch_setting() -> int | None:
    """The most images one request may hold (STUDYFLOW_SERVE_MAX_BATCH), or None for no limit."""
    text = os.environ.get(MAX_BATCH_VARIABLE, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{MAX_BATCH_VARIABLE} must be a whole number of images, at least 1; got {text!r}")
    return int(text)


def check_batch_size(count: int, limit: int | None) -> None:
    if limit is not None and count > limit:
        raise RequestRefused(
            f"the request holds {count} images; this server takes at most {limit} per request "
            f"({MAX_BATCH_VARIABLE}): send them in batches of {limit}",
            error_code=REQUEST_LIMIT_EXCEEDED,
            http_status=413,
        )


def images_from(data) -> np.ndarray:
    """The batch as float32 intensities in [0, 1], shape (n, 28, 28); MlflowException if outside the contract."""
    if isinstance(data, pd.DataFrame):
        data = data.to_numpy()
    try:
        images = np.asarray(data)
    except (ValueError, TypeError) as exc:  # ragged nesting, e.g. rows of different lengths
        raise _refuse(f"the images are not a rectangular array ({exc})") from None
    if images.dtype == object:  # e.g. a DataFrame whose columns differ in type
        try:
            images = images.astype(np.float64)
        except (ValueError, TypeError):
            raise _refuse("pixel values must be numbers") from None
    if images.dtype.kind not in "iuf":
        raise _refuse(f"pixel values must be integers or floats, got {images.dtype}")
    if images.ndim == 2 and images.shape[1] == SIDE * SIDE:
        images = images.reshape(-1, SIDE, SIDE)
    if images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
        hint = " (one image: send a batch of one, [image])" if images.shape in ((SIDE, SIDE), (SIDE * SIDE,)) else ""
        raise _refuse(f"got an array of shape {images.shape}{hint}")
    if len(images) == 0:
        raise _refuse("got no image")
    low, high = images.min(), images.max()
    if images.dtype.kind in "iu":
        if low < 0 or high > 255:
            raise _refuse(f"integer pixels must be 0-255, got values from {low} to {high}")
        return images.astype(np.float32) * np.float32(1.0 / 255.0)  # as the training data was scaled
    if not np.all(np.isfinite(images)):
        raise _refuse("got NaN or infinite pixel values")
    if low < 0 or high > 1:
        advice = " (a 0-255 image: send integers, or divide by 255)" if high <= 255 and low >= 0 else ""
        raise _refuse(f"float pixels must be in [0, 1], got values from {low:g} to {high:g}{advice}")
    return images.astype(np.float32)


class DigitClassifier(PythonModel):
    """The Keras CNN (artifact `keras_model`) behind the input contract above."""

    max_batch: int | None = None

    def load_context(self, context):
        import keras

        self.network = keras.saving.load_model(context.artifacts["keras_model"])
        self.max_batch = max_batch_setting()  # read once: a bad value stops the server at start, not a request

    # model_input's hint is one MLflow infers no schema from (as np.ndarray, pd.DataFrame): it then neither
    # validates nor converts the input, so images_from's checks stay the contract (a typed hint would put
    # MLflow's own in their place, and none says "(n, 28, 28) or (n, 784), integers or floats"). The
    # scoring server hands JSON `inputs` over as an array; a Python caller's DataFrame is taken as well.
    def predict(self, context, model_input: np.ndarray, params=None) -> pd.DataFrame:
        images = images_from(model_input)
        check_batch_size(len(images), self.max_batch)
        import keras

        # A direct call, not network.predict: no progress bar on the server's output, no tf.data pipeline.
        probabilities = np.concatenate(
            [
                keras.ops.convert_to_numpy(self.network(images[start : start + BATCH], training=False))
                for start in range(0, len(images), BATCH)
            ]
        ).astype(np.float32)
        table = pd.DataFrame(probabilities, columns=list(PROBABILITY_COLUMNS))
        table.insert(0, LABEL_COLUMN, probabilities.argmax(axis=1).astype(np.int64))
        return table


set_model(DigitClassifier())  # what MLflow loads from this file (models from code)
