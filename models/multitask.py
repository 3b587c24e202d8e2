"""The multi-task network of study part 6 (Fashion-MNIST): a shared conv trunk and two heads.

Trunk: Conv2D 32, 64, 128 (3x3, "same", ReLU) with a 2x2 max-pool after the first two
(28 -> 14 -> 7), Flatten (6,272), Dense 3,136. Each head: Dense 1,024, Dense 100, Dense n softmax.
The same builder gives the two-output model and the two single-task models, so all three share
exactly one definition of the trunk and of a head. Counts match the original study's exactly:
26,395,689 (both heads), 23,080,598 (item head), 23,079,891 (group head, 3 groups).

Outputs are named after their task (`item`, `group`): Keras then reports `item_accuracy`,
`val_group_loss`, ... Each head ends in a `<task>_logits` Dense and a separate softmax (no extra
parameters), like the part 3/4 models, so pre-softmax scores stay reachable.
"""

from __future__ import annotations

import keras

INPUT_SHAPE = (28, 28)
ITEM_CLASSES = 10
TRUNK_FILTERS = (32, 64, 128)
TRUNK_DENSE = 3_136
HEAD_WIDTHS = (1_024, 100)
KERNEL = 3
TASKS = ("item", "group")  # task 1, task 2


def _trunk(images):
    features = keras.layers.Reshape((*INPUT_SHAPE, 1), name="add_channel")(images)
    for index, filters in enumerate(TRUNK_FILTERS, start=1):
        features = keras.layers.Conv2D(filters, KERNEL, padding="same", activation="relu", name=f"trunk_conv_{index}")(
            features
        )
        if index < len(TRUNK_FILTERS):  # two pools between three convolutions: 28 -> 14 -> 7
            features = keras.layers.MaxPooling2D(2, name=f"trunk_pool_{index}")(features)
    features = keras.layers.Flatten(name="trunk_flatten")(features)
    return keras.layers.Dense(TRUNK_DENSE, activation="relu", name="trunk_dense")(features)


def _head(features, task: str, classes: int):
    for index, width in enumerate(HEAD_WIDTHS, start=1):
        features = keras.layers.Dense(width, activation="relu", name=f"{task}_dense_{index}")(features)
    logits = keras.layers.Dense(classes, name=f"{task}_logits")(features)
    # float32 whatever the dtype policy: under mixed precision the probabilities stay float32.
    return keras.layers.Activation("softmax", dtype="float32", name=task)(logits)


def build_multitask(tasks: tuple[str, ...] = TASKS, group_count: int = 3, name: str = "multitask") -> keras.Model:
    """The trunk with one head per task in `tasks` ("item": 10 classes, "group": `group_count`).

    Both tasks: the two-output MTL model (outputs in the order of `tasks`); one task: the
    single-task model. Outputs are always a dict keyed by task, so targets, losses and metric names
    are the same whatever heads a model has.
    """
    unknown = [task for task in tasks if task not in TASKS]
    if not tasks or unknown or len(set(tasks)) != len(tasks):
        raise ValueError(f"tasks must be distinct names from {TASKS}, got {tasks}")
    if group_count < 2:
        raise ValueError(f"the group task needs at least 2 groups, got {group_count}")
    classes = {"item": ITEM_CLASSES, "group": group_count}
    images = keras.Input(INPUT_SHAPE, name="image")
    features = _trunk(images)
    outputs = {task: _head(features, task, classes[task]) for task in tasks}
    return keras.Model(images, outputs, name=name)
