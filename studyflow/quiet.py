"""A quiet console: TensorFlow's start-up banners off (unless --verbose), and each of its warnings
printed once. (MLflow's download bars are off by the defaults in studyflow/__init__.py.)

TensorFlow's C++ core prints its oneDNN and CPU-feature notices through absl before its logging is
initialised, so TF_CPP_MIN_LOG_LEVEL does not reach them. They are written to file descriptor 2
while `tensorflow` is first imported: that import runs with fd 2 sent to a temporary file, and
every line of it that is not one of the known notices is written back to stderr, so a real error
at import still shows.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile

KNOWN_NOTICES = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called|oneDNN custom operations are on"
    r"|This TensorFlow binary is optimized to use available CPU instructions|cpu_feature_guard"
    r"|rebuild TensorFlow with the appropriate compiler flags"
)


# Keras traces a model's step functions once per input shape (the last, smaller batch of an epoch,
# the evaluation batches): in a part that trains several models in one process, TensorFlow counts
# those traces and warns of "excessive retracing". Nothing a user can change causes or cures it.
UNACTIONABLE_WARNINGS = ("triggered tf.function retracing",)


class _DropUnactionable(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not any(text in record.getMessage() for text in UNACTIONABLE_WARNINGS)


def tame_tensorflow_logger() -> None:
    """TensorFlow's warnings printed once, without those above. TensorFlow gives its logger a console
    handler of its own when it is imported before any logging is set up (as here, before Prefect's):
    the records then also reached Prefect's console handler on the root logger, and printed twice."""
    tensorflow_logger = logging.getLogger("tensorflow")
    if not any(isinstance(existing, _DropUnactionable) for existing in tensorflow_logger.filters):
        tensorflow_logger.addFilter(_DropUnactionable())
    if tensorflow_logger.handlers:
        tensorflow_logger.propagate = False


def import_tensorflow_quietly() -> None:
    """Import TensorFlow (once) without its start-up notices; other output of the import is kept."""
    if "tensorflow" in sys.modules:
        tame_tensorflow_logger()
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [
                line
                for line in captured.read().decode(errors="replace").splitlines(keepends=True)
                if not KNOWN_NOTICES.search(line)
            ]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
    tame_tensorflow_logger()
