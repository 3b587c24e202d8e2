"""What a studyflow Dask worker loads as it starts, before it joins the scheduler.

    dask worker tcp://HOST:8786 --nthreads 1 --preload studyflow.entrypoints.dask_worker

The local cluster (studyflow.cluster) preloads it too. The tasks' modules (a part's trainings, a
sweep's trial loops) import TensorFlow, Keras and MLflow: seconds, or tens of seconds on a loaded
machine. Imported while the first task is unpacked, that blocks the worker's event loop, and a
worker silent that long loses its scheduler connection (Dask's TCP timeout, 30 s) and the work it
held. Imported here, it is done before the worker connects; TensorFlow's start-up notices stay off
the console, as in a command.
"""

import os
import signal
import threading

from studyflow.cluster import LOCAL_WORKER_ENV
from studyflow.quiet import import_tensorflow_quietly

import_tensorflow_quietly()


def _apply_thread_share() -> None:
    """Set this worker's share of the cores (TF_NUM_INTRAOP_THREADS, from studyflow.cluster) through
    TensorFlow's API as well, before any operation runs: the environment variable alone once let a
    worker compute with the machine's 2 threads (its loss matched a 2-thread process, not its twin's)."""
    import tensorflow as tf

    for variable, setter in (
        ("TF_NUM_INTRAOP_THREADS", tf.config.threading.set_intra_op_parallelism_threads),
        ("TF_NUM_INTEROP_THREADS", tf.config.threading.set_inter_op_parallelism_threads),
    ):
        if os.environ.get(variable, "").isdigit():
            setter(int(os.environ[variable]))


_apply_thread_share()

# A worker of a command's local cluster (studyflow.cluster) sits in the terminal's process group, so
# Ctrl-C reaches it too; the command stops it by closing the cluster, and its own KeyboardInterrupt
# would only print a traceback. A worker started by hand keeps Ctrl-C.
if os.environ.get(LOCAL_WORKER_ENV) and threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGINT, signal.SIG_IGN)

import tasks.architectures.tasks  # noqa: E402,F401  (the trainings' modules, with Keras and MLflow)
import tasks.mtl.tasks  # noqa: E402,F401
import tasks.perceptron.tasks  # noqa: E402,F401
import tasks.sweeps.parallel  # noqa: E402,F401  (a sweep's trial loops, with Optuna)
