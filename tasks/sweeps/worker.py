"""One worker process of a parallel sweep: `python -m tasks.sweeps.worker SPEC.json INDEX`.

Started by tasks/sweeps/run.run_trials_in_workers, never by hand. It limits TensorFlow to its share
of the cores before TensorFlow starts, loads the data itself, and runs trials against the shared
storage into the sweep's parent MLflow run until the study has enough finished trials.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")  # the trial's run ends KILLED, its parameters are queued again


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    index = int(argv[1])
    signal.signal(signal.SIGTERM, _raise_interrupt)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(spec["threads"])  # before any op runs
    tf.config.threading.set_inter_op_parallelism_threads(spec["threads"])

    from studyflow import tracking
    from studyflow.config.sweeps import SWEEP_CONFIGS
    from tasks.sweeps.record import close_stale_trial_run
    from tasks.sweeps.run import run_trials_here
    from tasks.sweeps.storage import open_storage, open_study
    from tasks.sweeps.trials import TrialObjective, sweep_data

    config = SWEEP_CONFIGS[spec["kind"]].model_validate(spec["config"])
    client = tracking.connect()
    study = open_study(config, open_storage(config, on_stale_trial=close_stale_trial_run), worker_index=index + 1)
    _, data = sweep_data(config)
    parent = tracking.RunRecorder(client, spec["parent_run_id"], spec["experiment_id"], spec["context"])
    try:
        run_trials_here(config, study, TrialObjective(config, data, parent, spec["flow_run_id"]))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
