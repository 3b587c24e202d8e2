"""Initial weights that depend on the seed alone, whatever else the process runs.

An unseeded Keras initializer draws its seed from Python's process-wide `random` (Keras'
seed_generator.make_default_seed, through the module global `python_random`). Any other thread may
draw from it too: a Dask worker's event loop does, and one model in a dozen started from other
weights than the same model trained alone. During a build, `own_initializer_seeds` gives the calling
thread a generator of its own, seeded as keras.utils.set_random_seed seeds the shared one, so an
undisturbed process gets the same weights as before.

The generator is chosen per thread behind one object installed once: swapping the module global
for each build would not be thread-safe (two overlapping builds in two threads, as a thread-pool task
runner makes, could leave one build's generator in place for good, and set_random_seed would then no
longer govern initial weights).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from keras.src.random import seed_generator as keras_seed_generator


class _PerThreadRandom:
    """Stands where Keras looks for the `random` module: a thread inside `own_initializer_seeds`
    draws from its own generator, every other draw goes to the shared module as before."""

    def __init__(self) -> None:
        self._local = threading.local()

    def own(self) -> random.Random | None:
        return getattr(self._local, "generator", None)

    def set_own(self, generator: random.Random | None) -> None:
        self._local.generator = generator

    def __getattr__(self, name: str):
        return getattr(self.own() or random, name)


_SOURCE = _PerThreadRandom()
keras_seed_generator.python_random = _SOURCE


@contextmanager
def own_initializer_seeds(seed: int) -> Iterator[None]:
    """Within the block, this thread's unseeded Keras initializers draw from `random.Random(seed)`."""
    if keras_seed_generator.python_random is not _SOURCE:  # someone replaced it since this module loaded
        raise RuntimeError("keras seed_generator.python_random was replaced; initial weights would not follow the seed")
    outer = _SOURCE.own()
    _SOURCE.set_own(random.Random(seed))
    try:
        yield
    finally:
        _SOURCE.set_own(outer)
