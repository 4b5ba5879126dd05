"""Exception types shared by every part of tfvidgan.

Every error raised for bad user input is a `TfvidganError` (a `ValueError`), and its message names
the offending file, flag or field so that the user knows what to fix.
"""
import numbers


class TfvidganError(ValueError):
    """Base class for errors caused by bad input (files, flags, records, SavedModels)."""


class DatasetError(TfvidganError):
    """A dataset file or record is missing, unreadable, corrupt or of the wrong shape."""


class ConfigError(TfvidganError):
    """A flag or configuration field is unknown, out of range or contradicts another one."""


def flag_error(field: str, value, why: str) -> ConfigError:
    """The `ConfigError` for flag/field ``field`` holding ``value``: message ``"--field=value: why"``."""
    return ConfigError(f"--{field}={value}: {why}")


def check_whole_number(field: str, value, minimum: int, maximum: int | None = None) -> None:
    """Raises `flag_error` unless ``value`` is an int (not a bool) in ``[minimum, maximum]`` (no upper bound
    when ``maximum`` is None)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise flag_error(field, value, "must be an integer")
    if value < minimum or (maximum is not None and value > maximum):
        raise flag_error(field, value, f"must be in [{minimum}, {maximum if maximum is not None else '∞'}]")


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


class ServeError(RuntimeError):
    """A model server is unreachable, too slow, answered with an error, or its answer cannot be understood
    or is not a valid reconstruction (`tfvidgan.serve_client`). The message is one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class ClusterError(RuntimeError):
    """A multi-worker peer died, never started or stopped answering; the message names the task."""
