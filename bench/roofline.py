"""A network's own operations, alone: the rate its training step could reach at its batch size.

One fixed batch, already in TensorFlow tensors, goes through a tf.function in a tight loop: the
forward pass, the loss (the weighted cross-entropies the product compiles, without Keras' loss and
accuracy trackers) and the gradients; as a second kind, also the optimizer's update (the Adam the
product compiles, on a model of its own); both one step per call, as Keras' fit calls its train
function by default. The third kind runs the update's step 16 times per call in a tf.while_loop,
as Keras does with compile(steps_per_execution=16): one call per step leaves a barrier between
steps that a loop inside the graph does not have, so a training with steps_per_execution can beat
the one-step-per-call rate. No data pipeline, no shuffling, no metrics, no callbacks. A training's
samples/s over the best of the update's kinds is the share of its own operations' speed that the
training keeps.

`layer_breakdown` times each layer alone, forward and forward+backward, on the activations the
batch gives it: where a step's time goes, and how close each layer comes to the matmul peak.
"""

from __future__ import annotations

import time

import keras

from bench.flops import layer_forward_flops

STEPS_PER_CALL = 16  # of the looped kind
KINDS = ("forward_backward", "forward_backward_update", f"forward_backward_update_{STEPS_PER_CALL}_per_call")
UPDATE_KINDS = KINDS[1:]  # the operations of a whole training step


def training_loss(loss_weights: dict[str, float] | None):
    """The product's compiled loss as a plain function: the mean sparse cross-entropy of the
    probabilities, or for a multi-output model the loss-weighted sum over its outputs."""
    from keras import ops

    def cross_entropy(targets, probabilities):
        return ops.mean(keras.losses.sparse_categorical_crossentropy(targets, probabilities))

    if loss_weights is None:
        return cross_entropy
    return lambda targets, outputs: sum(
        weight * cross_entropy(targets[task], outputs[task]) for task, weight in loss_weights.items()
    )


class OwnOperations:
    """Samples per second of a compiled model's training step on one fixed batch, per kind (KINDS);
    every measured block's rate is kept in `blocks`."""

    def __init__(
        self, model: keras.Model, images, targets, batch_size: int, loss_weights: dict[str, float] | None = None
    ):
        import tensorflow as tf

        self.batch_size = batch_size
        self.images = tf.constant(images[:batch_size])
        self.targets = tf.nest.map_structure(lambda labels: tf.constant(labels[:batch_size]), targets)
        self.blocks: dict[str, list[float]] = {kind: [] for kind in KINDS}
        loss = training_loss(loss_weights)
        variables = model.trainable_variables

        @tf.function
        def forward_backward(images, targets):
            with tf.GradientTape() as tape:
                value = loss(targets, model(images, training=True))
            return value, tape.gradient(value, variables)  # returned: unused gradients would be pruned

        def update_step(images, targets):
            with tf.GradientTape() as tape:
                value = loss(targets, model(images, training=True))
            model.optimizer.apply_gradients(zip(tape.gradient(value, variables), variables, strict=False))
            return value

        @tf.function
        def forward_backward_update(images, targets, steps):
            return update_step(images, targets)

        @tf.function
        def forward_backward_update_looped(images, targets, steps):
            value = tf.constant(0.0)
            for _ in tf.range(steps):  # a tf.while_loop, like Keras' steps_per_execution
                value = update_step(images, targets)
            return value

        # kind -> (function of images, targets and its steps per call, steps per call)
        self._steps = {
            "forward_backward": (lambda images, targets, steps: forward_backward(images, targets), 1),
            "forward_backward_update": (forward_backward_update, 1),
            KINDS[2]: (forward_backward_update_looped, STEPS_PER_CALL),
        }
        for kind in KINDS:  # trace, build the optimizer's slots, warm up
            self._run(kind, 1)

    def _run(self, kind: str, steps: int) -> float:
        import tensorflow as tf

        step, per_call = self._steps[kind]
        calls = [min(per_call, steps - done) for done in range(0, steps, per_call)]
        counts = {count: tf.constant(count) for count in set(calls)}  # a tensor: no retracing per count
        started = time.perf_counter()
        for count in calls:
            result = step(self.images, self.targets, counts[count])
        _wait_for(result)
        return time.perf_counter() - started

    def measure(self, kind: str, steps: int) -> float:
        """Run `steps` steps of `kind`; keep and return their samples/s."""
        rate = steps * self.batch_size / self._run(kind, steps)
        self.blocks[kind].append(rate)
        return rate

    def summary(self) -> dict[str, dict]:
        """Per kind: the best block (like the best epoch), the mean over blocks (as the mean epoch:
        total samples over total time) and every block."""
        return {
            kind: {
                "samples_per_s": max(rates),
                "mean_samples_per_s": len(rates) / sum(1 / rate for rate in rates),
                "block_samples_per_s": rates,
            }
            for kind, rates in self.blocks.items()
        }


class BetweenEpochs(keras.callbacks.Callback):
    """After each epoch, one block of every kind of own operations: the training and its own
    operations alternate under the same load. Put it after the EpochTimer, so that its blocks stay
    out of the epochs' times."""

    def __init__(self, own: OwnOperations, steps: int):
        super().__init__()
        self.own = own
        self.steps = steps

    def on_epoch_end(self, epoch, logs=None):
        for kind in KINDS:
            self.own.measure(kind, self.steps)


def layer_breakdown(model: keras.Model, images, batch_size: int, calls: int, repeats: int = 5) -> list[dict]:
    """Each layer alone on its input activations for one batch: forward and forward+backward time
    (best of `repeats` blocks of `calls` calls), and GFLOP/s of its Dense or Conv2D work.

    The backward pass gives the gradients of the layer's weights and, like backpropagation in
    training, of its input only when a layer before it has weights (the first Dense or Conv2D gets
    none); for these networks every layer upstream of a layer comes before it in `model.layers`.
    """
    import tensorflow as tf

    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    probe = keras.Model(model.inputs, [layer.input for layer in layers])
    activations = probe(tf.constant(images[:batch_size]), training=True)
    rows = []
    for index, (layer, inputs) in enumerate(zip(layers, activations, strict=False)):
        input_gradient = any(earlier.trainable_weights for earlier in layers[:index])
        forward_s, forward_backward_s = _best_seconds(_layer_steps(layer, input_gradient), inputs, calls, repeats)
        # Backward: one product for the weights' gradient, one more for the input's.
        flops = layer_forward_flops(layer) * batch_size * (3 if input_gradient else 2)
        rows.append(
            {
                "layer": layer.name,
                "forward_ms": forward_s * 1e3,
                "backward_ms": max(forward_backward_s - forward_s, 0.0) * 1e3,
                "forward_backward_ms": forward_backward_s * 1e3,
                "training_flops": flops,
                "gflops": flops / forward_backward_s / 1e9,
            }
        )
    return rows


def _layer_steps(layer: keras.layers.Layer, input_gradient: bool):
    import tensorflow as tf

    @tf.function
    def forward(inputs):
        return layer(inputs, training=True)

    @tf.function
    def forward_backward(inputs):
        with tf.GradientTape() as tape:
            if input_gradient:
                tape.watch(inputs)
            outputs = layer(inputs, training=True)
        sources = list(layer.trainable_variables) + ([inputs] if input_gradient else [])
        if not sources:
            return outputs
        # Any upstream gradient costs the same; ones stand in for the loss's.
        return tape.gradient(outputs, sources, output_gradients=tf.ones_like(outputs))

    return forward, forward_backward


def _best_seconds(functions, inputs, calls: int, repeats: int) -> list[float]:
    """Seconds per call of each function: the best of `repeats` blocks of `calls` calls, the
    functions' blocks alternated (the same load for each), after a traced warm-up call of each."""
    for function in functions:
        _wait_for(function(inputs))
    best = [float("inf")] * len(functions)
    for _ in range(repeats):
        for index, function in enumerate(functions):
            started = time.perf_counter()
            for _ in range(calls):
                result = function(inputs)
            _wait_for(result)
            best[index] = min(best[index], (time.perf_counter() - started) / calls)
    return best


def _wait_for(result) -> None:
    """Block until a step's outputs exist (TensorFlow may run eagerly dispatched ops asynchronously)."""
    import tensorflow as tf

    tf.nest.flatten(result)[0].numpy()
