"""A quiet console: TensorFlow's start-up banners off (unless --verbose). (MLflow's download bars
are off by the defaults in studyflow/__init__.py.)

TensorFlow's C++ core prints its oneDNN and CPU-feature notices through absl before its logging is
initialised, so TF_CPP_MIN_LOG_LEVEL does not reach them. They are written to file descriptor 2
while `tensorflow` is first imported: that import runs with fd 2 sent to a temporary file, and
every line of it that is not one of the known notices is written back to stderr, so a real error
at import still shows.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

KNOWN_NOTICES = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called|oneDNN custom operations are on"
    r"|This TensorFlow binary is optimized to use available CPU instructions|cpu_feature_guard"
    r"|rebuild TensorFlow with the appropriate compiler flags")


def import_tensorflow_quietly() -> None:
    """Import TensorFlow (once) without its start-up notices; other output of the import is kept."""
    if "tensorflow" in sys.modules:
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
            kept = [line for line in captured.read().decode(errors="replace").splitlines(keepends=True)
                    if not KNOWN_NOTICES.search(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
