"""A Dask worker preload for tests/test_fanout.py (DASK_DISTRIBUTED__WORKER__PRELOAD): the Keras model
named $STUDYFLOW_TEST_HOLD_MODEL pauses after its first epoch, once in the whole cluster, until the
test kills the worker that trains it. The first worker to reach it creates $STUDYFLOW_TEST_HOLD_ONCE
(atomically), so the training that Dask hands to another worker afterwards runs through."""

import os
import time

import keras

HOLD_S = 600
held_model = os.environ["STUDYFLOW_TEST_HOLD_MODEL"]
once_file = os.environ["STUDYFLOW_TEST_HOLD_ONCE"]


class HoldAfterEpoch1(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch != 0:
            return
        try:
            os.close(os.open(once_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return  # held once already: this is the training run again elsewhere
        print(f"test: holding {held_model} after epoch 1 in process {os.getpid()}", flush=True)
        time.sleep(HOLD_S)
        raise RuntimeError(f"{held_model} was held {HOLD_S} s and its worker never killed")


# Dask may run a file preload more than once in a worker (it reloads the module): patch fit once.
fit = getattr(keras.Model.fit, "unheld", keras.Model.fit)


def held_fit(self, *args, callbacks=None, **kwargs):
    if self.name == held_model:
        callbacks = [*(callbacks or []), HoldAfterEpoch1()]  # last: after the product's own callbacks
    return fit(self, *args, callbacks=callbacks, **kwargs)


held_fit.unheld = fit
keras.Model.fit = held_fit
