"""The errors a user can act on, as one family: the command line prints them as one line.

Every module raises these from here, so the command line needs no list of modules or names: an
error is a user error because of its class, wherever it was raised. Anything else is a bug and
keeps its traceback. Each class keeps the built-in base it had, so `except ValueError` still works.
"""

from __future__ import annotations


class StudyflowError(Exception):
    """A problem the user can fix (input, data, a server, a model); its message says which and how."""

    exit_code = 1


class ConfigError(StudyflowError, ValueError):
    """A parameter is unknown or has a bad value; the message names the parameter."""

    exit_code = 2  # a usage error, as argparse reports its own


class TrackingError(StudyflowError, RuntimeError):
    """The tracking store cannot be reached or used."""


class DatasetError(StudyflowError, RuntimeError):
    """A dataset file is missing, truncated or does not match its checksum."""


class IdxFormatError(StudyflowError, ValueError):
    """A file is not a well-formed IDX array (MNIST's format)."""


class TrainingDivergedError(StudyflowError, RuntimeError):
    """The loss became NaN or infinite: the model's training stopped and its run is FAILED."""


class ModelIntegrityError(StudyflowError, RuntimeError):
    """A logged model, loaded back, does not predict what the trained model predicted."""


class ModelSourceError(StudyflowError, RuntimeError):
    """The model to inspect or serve cannot be found or loaded; nothing was run or logged."""


class NotAStudyCnnError(StudyflowError, ValueError):
    """The model lacks what part 5 needs: a 28x28 input, conv_1..conv_n and a `logits` layer."""


class SweepStorageError(StudyflowError, RuntimeError):
    """The Optuna storage cannot be used as asked (unreachable, or SQLite with several workers)."""


class SweepBusyError(StudyflowError, RuntimeError):
    """Another live process is running the same sweep study."""


class ServingError(StudyflowError, RuntimeError):
    """The model server cannot start as asked (e.g. its port is taken)."""


class DaskClusterError(StudyflowError, RuntimeError):
    """A Dask cluster cannot be used as asked (unreachable, its workers share nothing with this machine),
    or it went away during the work."""


class UnpublishableReportError(StudyflowError, RuntimeError):
    """A published report would not show one paper-profile study: a part is missing or is not paper."""
