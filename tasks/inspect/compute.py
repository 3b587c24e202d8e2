"""Study part 5's computations on a trained CNN: its filters, its activation maps, deep dream.

Plain functions of a Keras model and arrays (no MLflow, Prefect or figures), so tests call them
directly. Intermediate outputs come from the model's own layers through the functional API
(`keras.Model(model.inputs, [layer outputs])`): nothing is re-implemented.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from studyflow.config.parts import DreamSettings
from studyflow.errors import NotAStudyCnnError

IMAGE_SIDE = 28
LOGITS_LAYER = "logits"
CONV_PREFIX = "conv_"
# The noise a dream may start from: seeded, uniform in [0, NOISE_AMPLITUDE], i.e. a dim speckle
# on MNIST's black background (full-range noise would dominate the picture the dream draws).
NOISE_AMPLITUDE = 0.3
# How many test images of a digit are tried before giving up on one the model classifies correctly.
DIGIT_CANDIDATES = 200


def conv_layers(model: keras.Model) -> list[keras.layers.Conv2D]:
    """The conv layers conv_1..conv_n in depth order; checks the model is a study CNN."""
    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    names = [layer.name for layer in layers]
    if not layers or names != [f"{CONV_PREFIX}{index}" for index in range(1, len(layers) + 1)]:
        raise NotAStudyCnnError(f"expected conv layers named conv_1..conv_n, found {names or 'none'}")
    if tuple(model.inputs[0].shape[1:]) != (IMAGE_SIDE, IMAGE_SIDE):
        raise NotAStudyCnnError(f"expected a {IMAGE_SIDE}x{IMAGE_SIDE} input, found {model.inputs[0].shape}")
    if LOGITS_LAYER not in {layer.name for layer in model.layers}:
        raise NotAStudyCnnError(f"no layer named {LOGITS_LAYER!r}: the pre-softmax scores are not reachable")
    return layers


# --- filters -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FilterGrid:
    """One conv layer's kernels as 2-D panels, one per output filter."""

    layer: str
    kernels: np.ndarray  # (filters, kernel_h, kernel_w): the 2-D slice shown for each filter
    shown_channel: np.ndarray  # (filters,): the input channel each slice belongs to
    energy_share: np.ndarray  # (filters,): share of the filter's squared weights in that slice
    input_channels: int

    @property
    def filter_count(self) -> int:
        return len(self.kernels)

    @property
    def view(self) -> str:
        """How a 3-D kernel became the 2-D panel shown: goes into the figure's title."""
        if self.input_channels == 1:
            return "each filter's kernel (1 input channel)"
        return (
            f"each filter's slice at its strongest of {self.input_channels} input channels (largest L2 norm),\n"
            f"which holds a median {np.median(self.energy_share):.0%} of the filter's squared weights"
        )


def filter_grid(layer: keras.layers.Conv2D) -> FilterGrid:
    """The kernels of one conv layer, one 2-D slice per output filter.

    A deeper filter is a kh x kw x C volume. Averaging over C would mix excitatory and inhibitory
    channels into a picture no channel has, so each panel is a real slice: the input channel
    with the largest weight norm, and how much of the filter's weight it carries is reported.
    """
    weights = np.asarray(layer.get_weights()[0])  # (kh, kw, in, out)
    energy = np.square(weights).sum(axis=(0, 1))  # (in, out)
    strongest = np.argmax(energy, axis=0)  # (out,)
    filters = np.arange(weights.shape[3])
    kernels = np.moveaxis(weights[:, :, strongest, filters], -1, 0)  # (out, kh, kw)
    share = energy[strongest, filters] / np.maximum(energy.sum(axis=0), np.finfo(np.float32).tiny)
    return FilterGrid(layer.name, kernels, strongest, share, weights.shape[2])


def filter_grids(model: keras.Model) -> list[FilterGrid]:
    return [filter_grid(layer) for layer in conv_layers(model)]


# --- activations ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DigitImage:
    """A test image chosen for inspection, and whether the model gets it right."""

    digit: int
    test_index: int
    image: np.ndarray  # (28, 28) in [0, 1]
    predicted: int
    probability: float  # the model's probability of `digit` on this image


def choose_digit_images(
    model: keras.Model, test_images: np.ndarray, test_labels: np.ndarray, digits: list[int]
) -> list[DigitImage]:
    """For each digit, the first test image of it that the model classifies correctly.

    Deterministic (test-set order); if none of the first DIGIT_CANDIDATES is right, the first image
    of the digit, so that even a poor model can be inspected (its `predicted` says so).
    """
    chosen = []
    for digit in digits:
        candidates = np.flatnonzero(test_labels == digit)[:DIGIT_CANDIDATES]
        if len(candidates) == 0:
            raise ValueError(f"the test set has no image of digit {digit}")
        probabilities = model.predict(test_images[candidates], batch_size=256, verbose=0)
        predicted = np.argmax(probabilities, axis=-1)
        right = np.flatnonzero(predicted == digit)
        position = int(right[0]) if len(right) else 0
        index = int(candidates[position])
        chosen.append(
            DigitImage(
                digit, index, test_images[index], int(predicted[position]), float(probabilities[position, digit])
            )
        )
    return chosen


def activation_maps(model: keras.Model, images: np.ndarray) -> dict[str, np.ndarray]:
    """Each conv layer's output for the images: name -> (images, height, width, channels)."""
    layers = conv_layers(model)
    probe = keras.Model(model.input, [layer.output for layer in layers])
    outputs = probe.predict(np.asarray(images, dtype=np.float32), verbose=0)
    if len(layers) == 1:
        outputs = [outputs]
    # float32 even from a model trained in mixed_bfloat16, whose layers output bfloat16.
    return {layer.name: np.asarray(output, dtype=np.float32) for layer, output in zip(layers, outputs, strict=False)}


# --- deep dream ----------------------------------------------------------------------------------


@dataclass
class DreamResult:
    target: int
    start: str  # "digit" or "noise"
    start_image: np.ndarray
    image: np.ndarray
    score_before: float  # the target's pre-softmax score (logit)
    score_after: float
    probability_before: float
    probability_after: float
    score_history: list[float] = field(default_factory=list)  # the logit (no jitter) after 0, 1, ... steps


def logits_model(model: keras.Model) -> keras.Model:
    """The same network up to its pre-softmax scores (the softmax would saturate the ascent).

    The scores are float32 even from a model trained in mixed_bfloat16 (bfloat16 logits).
    """
    conv_layers(model)
    return keras.Model(model.input, keras.ops.cast(model.get_layer(LOGITS_LAYER).output, "float32"))


def noise_image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.0, NOISE_AMPLITUDE, (IMAGE_SIDE, IMAGE_SIDE)).astype(np.float32)


def _gaussian_kernel(sigma: float) -> tf.Tensor:
    radius = max(1, int(np.ceil(3 * sigma)))
    offsets = np.arange(-radius, radius + 1, dtype=np.float32)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    weights /= weights.sum()
    kernel = np.outer(weights, weights).astype(np.float32)
    return tf.constant(kernel[:, :, None, None])


class _Ascent:
    """One compiled gradient-ascent step for a logits model (traced once, reused for every dream)."""

    def __init__(self, scores: keras.Model):
        self.scores = scores
        self.step = tf.function(self._step, reduce_retracing=True)

    def _step(self, image, start, target, shift, side, learning_rate, l2):
        with tf.GradientTape() as tape:
            tape.watch(image)
            jittered = tf.roll(image, shift, axis=[0, 1])
            logits = self.scores(tf.stack([jittered, image]), training=False)
            jittered_score = logits[0, target]
        gradient = tape.gradient(jittered_score, image)
        # Octave: keep only what a side x side image can hold, so coarse octaves draw coarse shapes.
        coarse = tf.image.resize(gradient[None, :, :, None], tf.stack([side, side]), method="area")
        gradient = tf.image.resize(coarse, [IMAGE_SIDE, IMAGE_SIDE], method="bilinear")[0, :, :, 0]
        gradient /= tf.math.reduce_std(gradient) + 1e-8
        updated = image + learning_rate * gradient - l2 * (image - start)
        return tf.clip_by_value(updated, 0.0, 1.0), logits[1, target]


def _blur_change(image: tf.Tensor, start: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    change = tf.nn.conv2d((image - start)[None, :, :, None], kernel, strides=1, padding="SAME")[0, :, :, 0]
    return tf.clip_by_value(start + change, 0.0, 1.0)


def _score(scores: keras.Model, image: np.ndarray, target: int) -> tuple[float, float]:
    logits = np.asarray(scores(np.asarray(image, dtype=np.float32)[None], training=False))[0]
    probabilities = np.exp(logits - logits.max())
    probabilities /= probabilities.sum()
    return float(logits[target]), float(probabilities[target])


def deep_dream(
    scores: keras.Model,
    start_image: np.ndarray,
    target: int,
    start: str,
    settings: DreamSettings,
    ascent: _Ascent | None = None,
) -> DreamResult:
    """Raise `target`'s logit by gradient ascent on the input, from `start_image`.

    Regularisers keep the picture readable: octaves (coarse shapes first), jitter (a feature must
    work wherever it lands, not on one pixel), a blur of the accumulated change, an L2 pull back
    towards the start, and a clip to the valid pixel range [0, 1].
    """
    ascent = ascent or _Ascent(scores)
    rng = np.random.default_rng(settings.seed)
    kernel = _gaussian_kernel(settings.blur_sigma) if settings.blur_every else None
    start_tensor = tf.constant(np.asarray(start_image, dtype=np.float32))
    image = tf.identity(start_tensor)
    score_before, probability_before = _score(scores, start_image, target)
    history: list[float] = []
    target_tensor = tf.constant(target, tf.int32)
    rate, l2 = (tf.constant(settings.dream_learning_rate, tf.float32), tf.constant(settings.l2_penalty, tf.float32))
    step_count = 0
    for side in settings.octave_sides():
        side_tensor = tf.constant(side, tf.int32)
        for _ in range(settings.dream_steps):
            shift = rng.integers(-settings.jitter, settings.jitter + 1, size=2) if settings.jitter else (0, 0)
            image, score = ascent.step(
                image, start_tensor, target_tensor, tf.constant(shift, tf.int32), side_tensor, rate, l2
            )
            step_count += 1
            if kernel is not None and step_count % settings.blur_every == 0:
                image = _blur_change(image, start_tensor, kernel)
            history.append(float(score))
    final = image.numpy()
    score_after, probability_after = _score(scores, final, target)
    history.append(score_after)
    return DreamResult(
        target,
        start,
        np.asarray(start_image, dtype=np.float32),
        final,
        score_before,
        score_after,
        probability_before,
        probability_after,
        history,
    )


def dream_digits(model: keras.Model, digit_images: list[DigitImage], settings: DreamSettings) -> list[DreamResult]:
    """For each chosen digit: a dream from its own image and one from seeded noise."""
    scores = logits_model(model)
    ascent = _Ascent(scores)
    results = []
    for offset, chosen in enumerate(digit_images):
        for start, image in (("digit", chosen.image), ("noise", noise_image(settings.seed + offset))):
            results.append(deep_dream(scores, image, chosen.digit, start, settings, ascent))
    return results
