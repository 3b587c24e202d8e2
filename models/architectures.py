"""The MLP and CNN of study parts 3 and 4 (the named architectures are data: studyflow/reference).

Both end in a `logits` Dense layer followed by a separate softmax, so that the pre-softmax class
scores stay reachable (part 5's deep dream raises a logit, not a probability). The split adds no
parameters: the counts match the original study's exactly (tests/test_models.py).
"""

from __future__ import annotations

import keras

INPUT_SHAPE = (28, 28)
CLASSES = 10
CNN_KERNEL = 4

# A stride-2 "same" convolution halves the side (rounding up): 28 -> 14 -> 7 -> 4 -> 2 -> 1.
MAX_CNN_DEPTH = 6


def _classifier_head(features):
    logits = keras.layers.Dense(CLASSES, name="logits")(features)
    # float32 whatever the dtype policy: under mixed precision the probabilities stay float32.
    probabilities = keras.layers.Activation("softmax", dtype="float32", name="probabilities")(logits)
    return probabilities


def build_mlp(hidden_widths: list[int], name: str = "mlp") -> keras.Model:
    """Dense ReLU layers of the given widths on the flattened image, then softmax over 10."""
    if not hidden_widths or any(width < 1 for width in hidden_widths):
        raise ValueError(f"hidden widths must be one or more positive integers, got {hidden_widths}")
    inputs = keras.Input(INPUT_SHAPE, name="image")
    features = keras.layers.Flatten(name="flatten")(inputs)
    for index, width in enumerate(hidden_widths, start=1):
        features = keras.layers.Dense(width, activation="relu", name=f"dense_{index}")(features)
    return keras.Model(inputs, _classifier_head(features), name=name)


def build_cnn(filters: list[int], name: str = "cnn") -> keras.Model:
    """4x4 "same" ReLU convolutions, stride 1 then 2, no pooling; Flatten; softmax over 10."""
    if not 1 <= len(filters) <= MAX_CNN_DEPTH or any(count < 1 for count in filters):
        raise ValueError(f"filters must be 1 to {MAX_CNN_DEPTH} positive integers (one per conv layer), got {filters}")
    inputs = keras.Input(INPUT_SHAPE, name="image")
    features = keras.layers.Reshape((*INPUT_SHAPE, 1), name="add_channel")(inputs)
    for index, count in enumerate(filters, start=1):
        features = keras.layers.Conv2D(
            count, CNN_KERNEL, strides=1 if index == 1 else 2, padding="same", activation="relu", name=f"conv_{index}"
        )(features)
    features = keras.layers.Flatten(name="flatten")(features)
    return keras.Model(inputs, _classifier_head(features), name=name)
