"""What a studyflow Dask worker loads as it starts, before it joins the scheduler.

    dask worker tcp://HOST:8786 --nthreads 1 --preload studyflow.dask_worker

The local cluster (studyflow.fanout) preloads it too. The training tasks' modules import
TensorFlow, Keras and MLflow: seconds, or tens of seconds on a loaded machine. Imported while the
first task is unpacked, that blocks the worker's event loop, and a worker silent that long loses
its scheduler connection (Dask's TCP timeout, 30 s) and the work it held. Imported here, it is done
before the worker connects; TensorFlow's start-up notices stay off the console, as in a command.
"""

from studyflow.quiet import import_tensorflow_quietly

import_tensorflow_quietly()

import tasks.architectures.tasks  # noqa: E402,F401  (the trainings' modules, with Keras and MLflow)
import tasks.mtl.tasks  # noqa: E402,F401
import tasks.perceptron.tasks  # noqa: E402,F401
