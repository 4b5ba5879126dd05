"""Exception types shared by every part of tfvidgan.

Every error raised for bad user input is a `TfvidganError` (a `ValueError`), and its message names
the offending file, flag or field so that the user knows what to fix.
"""


class TfvidganError(ValueError):
    """Base class for errors caused by bad input (files, flags, records, SavedModels)."""


class DatasetError(TfvidganError):
    """A dataset file or record is missing, unreadable, corrupt or of the wrong shape."""


class ConfigError(TfvidganError):
    """A flag or configuration field is unknown, out of range or contradicts another one."""


class ExportKindError(ConfigError):
    """An export directory holds no tfvidgan export, or one of another kind than the flag needs.

    The message names the flag, the path and the kind expected (and the kind found, if any).
    """


class TrainingDivergedError(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


class RunLockedError(TfvidganError):
    """Another live run holds the run directory (`--model_dir`); the message names it."""


class TrainingPreempted(RuntimeError):
    """SIGTERM arrived (preemption): a checkpoint was saved at `step`; run the same command to resume."""

    def __init__(self, message: str, step: int, checkpoint: str | None):
        super().__init__(message)
        self.step = step
        self.checkpoint = checkpoint


class ClusterError(RuntimeError):
    """A multi-worker peer died, never started or stopped answering; the message names the task."""
