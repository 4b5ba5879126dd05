"""One run per run directory: an exclusive lock on `--model_dir`, and the run's model config beside it.

**Lock.** `RunLock(model_dir)` takes an exclusive `fcntl.flock` on `<model_dir>/.run.lock` and writes the
holder (pid, host, start time, command line) into it. The kernel releases a `flock` when its process dies,
however it dies (SIGKILL included), so a killed holder never leaves a stale lock behind: the next run simply
takes it (the holder text left in the file is overwritten). A second live run gets `RunLockedError` at
once, naming the holder. Within one process the lock is re-entrant (a test or a trainer may call
`run_training` several times on the same directory). Under MultiWorkerMirroredStrategy only the chief takes
the lock (the other workers write nothing there but a scratch directory they delete), so the workers of one
job never block each other while a second job's chief is refused.

`flock` is reliable on local filesystems; on NFS it is emulated with POSIX locks (Linux ≥ 2.6.12), which
also die with their process. On filesystems without locking at all, `lock_run_dir` fails with an error
naming the directory rather than running unprotected.

**Run config.** `check_run_config(model_dir, config, flags)` stores the task's model-defining config as
`<model_dir>/run_config.json` on the first start and, on a resume, compares the current config with it:
fields that define the model's variables (sizes, filters, normalization, number of discriminators, ...)
must match, and a mismatch raises `ConfigError` listing every differing field as its flag. Fields that
may legitimately change on a resume (learning rates, loss, combiner, sampling and noise settings, see
`RESUMABLE_FIELDS`) are only logged.
"""
from __future__ import annotations

import dataclasses
import datetime
import errno
import fcntl
import hashlib
import json
import os
import socket
import sys
import threading

import numpy as np
from absl import logging

from tfvidgan.errors import ConfigError, RunLockedError
from tfvidgan.json_report import json_safe, read_json, write_json

LOCK_FILE = ".run.lock"
RUN_CONFIG_FILE = "run_config.json"

# Leaf field names (of the task config, nested dataclasses flattened) that may change between a run and its
# resume without changing the model's variables.
RESUMABLE_FIELDS = frozenset({
    "learning_rate", "beta_1", "loss", "combiner", "gman_alpha", "hypervolume_delta", "hypervolume_normalize",
    "discriminator_steps", "noise_seed", "num_sample_images", "num_sample_videos", "sample_length",
    "smoothness_weight", "smoothness_on", "smoothness_order", "motion_energy_weight", "frame_critic_weight",
    "motion_energy_match_weight", "centroid_acceleration_match_weight", "straightness_weight", "straightness_step",
    "stationarity_weight", "stationarity_length", "late_motion_match_weight", "late_motion_length",
    "late_motion_start_step", "frames_generator", "rollout_length", "r1_weight", "schedule", "decay_steps", "final_fraction",
    "decay_start", "clip_norm", "sample_burn_in_steps", "init_seed",
})

# Config fields renamed after runs were recorded with the old names: `run_config.json` records are read with
# the new names, so those runs still resume (same variables; the checkpoint keys did not change).
RENAMED_FIELDS = {"critic_filters": "discriminator_filters", "critic_optimizer.": "discriminator_optimizer."}


def _renamed(flat: dict) -> dict:
    out = {}
    for key, value in flat.items():
        for old, new in RENAMED_FIELDS.items():
            if key == old or (old.endswith(".") and key.startswith(old)):
                key = new + key[len(old):]
                break
        out[key] = value
    return out


def check_model_dir(model_dir: str, flag: str = "--model_dir") -> None:
    """Fails early (before any work) if `model_dir` is a file or cannot be created/written, naming `flag`."""
    if not model_dir:
        raise ConfigError(f"{flag} must not be empty")
    path = os.path.abspath(model_dir)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"{flag}={model_dir!r} is a file, not a directory: pick a directory for the run")
    probe = path
    while not os.path.exists(probe):  # the nearest existing ancestor must let us create the rest
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        raise ConfigError(f"{flag}={model_dir!r}: {probe!r} is a file, so the run directory cannot be created")
    if not os.access(probe, os.W_OK | os.X_OK):
        what = "is not writable" if probe == path else f"cannot be created ({probe!r} is not writable)"
        raise ConfigError(f"{flag}={model_dir!r} {what}: pick a writable directory")


def _holder_description() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": " ".join(sys.argv)[:500]}


class RunLock:
    """Exclusive, re-entrant (per process) lock on a run directory; use `lock_run_dir` to take it."""

    _held: dict[str, "RunLock"] = {}
    _guard = threading.Lock()

    def __init__(self, directory: str, fd: int):
        self.directory = directory
        self._fd = fd
        self._count = 0

    def release(self) -> None:
        with RunLock._guard:
            self._count -= 1
            if self._count > 0:
                return
            RunLock._held.pop(self.directory, None)
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def read_holder(model_dir: str) -> dict | None:
    """The holder written into the lock file (None if unreadable); informational only."""
    try:
        with open(os.path.join(model_dir, LOCK_FILE)) as f:
            return json.loads(f.read() or "null")
    except (OSError, ValueError):
        return None


def lock_run_dir(model_dir: str, flag: str = "--model_dir") -> RunLock:
    """Takes the run directory's lock (creating the directory); raises `RunLockedError` naming the holder."""
    check_model_dir(model_dir, flag)
    directory = os.path.realpath(model_dir)
    with RunLock._guard:
        held = RunLock._held.get(directory)
        if held is not None:
            held._count += 1
            return held
        try:
            os.makedirs(directory, exist_ok=True)
            fd = os.open(os.path.join(directory, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise ConfigError(f"{flag}={model_dir!r}: cannot create the run directory's lock file: "
                              f"{e.strerror}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ConfigError(f"{flag}={model_dir!r}: the filesystem does not support locking "
                                  f"({e.strerror}); use a local directory") from e
            holder = read_holder(directory) or {}
            who = (f"pid {holder.get('pid')} on host {holder.get('host')}, started {holder.get('started')}: "
                   f"{holder.get('command')}" if holder else "holder unknown")
            raise RunLockedError(f"{flag}={model_dir!r} is in use by another run ({who}). Two runs in one "
                                 f"directory corrupt each other's checkpoints: wait for it to finish, stop it, "
                                 f"or pick another {flag}.") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(_holder_description()) + "\n").encode(), 0)
        lock = RunLock(directory, fd)
        lock._count = 1
        RunLock._held[directory] = lock
        return lock


def _flatten(value, prefix: str = "") -> dict:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for field in dataclasses.fields(value):
            out.update(_flatten(getattr(value, field.name), f"{prefix}{field.name}."))
        return out
    key = prefix[:-1]
    if isinstance(value, np.ndarray):
        return {key: "sha256:" + hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()[:16]
                + f" {value.dtype}{list(value.shape)}"}
    if isinstance(value, (tuple, list)):
        return {key: list(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return {key: value}
    return {key: repr(value)}


def flatten_config(config) -> dict:
    """`{"a.b": leaf}` of a (nested) config dataclass; arrays become a short hash, for JSON and comparison."""
    return _flatten(config) if dataclasses.is_dataclass(config) else {}


def read_run_config(model_dir: str, config_cls):
    """The `config_cls` instance recorded in `<model_dir>/run_config.json` (inverse of `flatten_config`).

    Nested dataclass fields are rebuilt from their "field.leaf" keys; fields the record lacks (added later)
    keep their defaults; list values become tuples where the default is a tuple. Raises `ConfigError`
    naming the file when it is missing or unreadable, or when it was written by another task's config.
    """
    path = os.path.join(model_dir, RUN_CONFIG_FILE)
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: cannot read the run's config ({e})") from e
    if record.get("task") not in (None, config_cls.__name__):
        raise ConfigError(f"{path} records a {record.get('task')}, not a {config_cls.__name__}")
    flat = _renamed(record.get("config", {}))

    def build(cls, prefix, base=None):
        kwargs = {}
        for field in dataclasses.fields(cls):
            key = prefix + field.name
            default = getattr(base, field.name) if base is not None else _field_default(field)
            if dataclasses.is_dataclass(default):
                kwargs[field.name] = build(type(default), key + ".", default)
            elif key in flat:
                value = flat[key]
                kwargs[field.name] = tuple(value) if isinstance(default, tuple) and isinstance(value, list) else value
        return dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)

    return build(config_cls, "")


def _field_default(field: dataclasses.Field):
    """A dataclass field's default (its factory called), or `dataclasses.MISSING` for a required field."""
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def _defaults(config) -> dict:
    """The flattened field defaults of `config`'s class, as `flatten_config` keys (a nested config's fields: the
    values of its parent field's default instance); required fields are left out."""
    out = {}
    for field in dataclasses.fields(config):
        default = _field_default(field)
        if default is not dataclasses.MISSING:
            out.update(_flatten(default, f"{field.name}."))
    return out


def _flag_name(key: str, flags: dict) -> str:
    leaf = key.rsplit(".", 1)[-1]
    return f"--{leaf}" if leaf in flags else key


def check_run_config(model_dir: str, config, flags: dict, has_checkpoint: bool) -> None:
    """Compares the task config with `<model_dir>/run_config.json` (on a resume) and (re)writes the file.

    Raises `ConfigError` listing the differing model-defining fields (as flags when a flag of that name
    exists) when a checkpoint exists and was written with another model. Call on the chief only.
    """
    current = json_safe(flatten_config(config))  # as the file keeps it: an undefined value is null
    path = os.path.join(model_dir, RUN_CONFIG_FILE)
    record = read_json(path, missing_ok=True, hint="it records the model the checkpoints were written with; "
                       "restore it, or delete it to resume without the check") if has_checkpoint else None
    stored = None if record is None else json_safe(_renamed(record.get("config", {})))  # older files wrote NaN
    if stored is not None:
        # A field added to the config after the checkpoint was written is absent from the stored record; the old
        # code behaved as its default, so resuming with the default value is the same model.
        added = {k for k, v in json_safe(_defaults(config)).items()
                 if k not in stored and k in current and current[k] == v}
        if added:
            logging.info("Resuming a run written before these config fields existed (their defaults are the old "
                         "behaviour): %s", ", ".join(_flag_name(k, flags) for k in sorted(added)))
        differing = sorted(k for k in set(stored) | set(current) if k not in added and stored.get(k, "<absent>")
                           != current.get(k, "<absent>"))
        fixed = [k for k in differing if k.rsplit(".", 1)[-1] not in RESUMABLE_FIELDS]
        if fixed:
            listing = "; ".join(f"{_flag_name(k, flags)}: checkpoint {stored.get(k, '<absent>')!r}, "
                                f"now {current.get(k, '<absent>')!r}" for k in fixed)
            raise ConfigError(f"--model_dir={model_dir!r} holds checkpoints of another model; the flags "
                              f"that define the model differ from {path}: {listing}. Resume with the "
                              f"original values or pick a new --model_dir.")
        if differing:
            logging.info("Resuming with changed settings: %s",
                         ", ".join(f"{_flag_name(k, flags)} {stored.get(k)!r} → {current.get(k)!r}"
                                   for k in differing))
    if not current:
        return
    record = {"format_version": 1, "task": type(config).__name__, "config": current,
              "flags": {k: v for k, v in flags.items() if isinstance(v, (bool, int, float, str, type(None)))}}
    write_json(path, record, indent=1, sort_keys=True)
