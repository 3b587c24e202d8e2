"""Analytic FLOP counts of Keras models, from their layer shapes (multiply-add = 2 FLOPs)."""

from __future__ import annotations

import keras
import numpy as np

# A training step costs the forward pass plus a backward pass of about twice that (gradients with
# respect to the activations and to the weights): the usual 3x rule, exact for Dense and Conv2D.
TRAINING_OVER_FORWARD = 3


def layer_forward_flops(layer: keras.layers.Layer) -> int:
    """One sample's multiply-adds of a Dense or Conv2D layer, x2; 0 for any other layer (their
    elementwise work is not counted)."""
    if isinstance(layer, keras.layers.Dense):
        return 2 * int(layer.kernel.shape[0]) * int(layer.kernel.shape[1])
    if isinstance(layer, keras.layers.Conv2D):
        kernel_h, kernel_w, channels_in, channels_out = (int(size) for size in layer.kernel.shape)
        _, out_h, out_w, _ = layer.output.shape
        return 2 * kernel_h * kernel_w * channels_in * channels_out * int(out_h) * int(out_w)
    return 0


def forward_flops_per_sample(model: keras.Model) -> int:
    return sum(layer_forward_flops(layer) for layer in model.layers)


def training_flops_per_sample(model: keras.Model) -> int:
    return TRAINING_OVER_FORWARD * forward_flops_per_sample(model)


def matmul_peak_gflops(size: int = 4096, repeats: int = 5) -> dict[str, float]:
    """The machine's float32 matrix-multiply rate with TensorFlow and NumPy, and TensorFlow's in
    bfloat16 (best of repeats)."""
    import time

    import tensorflow as tf

    flops = 2 * size**3
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    results = {}
    a_tf, b_tf = tf.constant(a), tf.constant(b)
    tf.linalg.matmul(a_tf, b_tf).numpy()  # warm-up
    best = min(_time(lambda: tf.linalg.matmul(a_tf, b_tf).numpy(), time) for _ in range(repeats))
    results["tensorflow"] = flops / best / 1e9
    a @ b
    best = min(_time(lambda: a @ b, time) for _ in range(repeats))
    results["numpy"] = flops / best / 1e9
    # bfloat16, the compute type of the mixed_bfloat16 precision (native on AVX512-BF16).
    a_bf16, b_bf16 = tf.cast(a_tf, tf.bfloat16), tf.cast(b_tf, tf.bfloat16)
    tf.linalg.matmul(a_bf16, b_bf16).numpy()
    best = min(_time(lambda: tf.linalg.matmul(a_bf16, b_bf16).numpy(), time) for _ in range(repeats))
    results["tensorflow_bfloat16"] = flops / best / 1e9
    return results


def _time(function, time_module) -> float:
    started = time_module.perf_counter()
    function()
    return time_module.perf_counter() - started
