"""Crash-safe replacement of a dataset's files in its directory, shared by both dataset writers.

A writer puts the new dataset into a scratch directory beside the output (`scratch_dir`,
``<parent>/.<name>.tmp-<pid>-<hex>``, normal permissions) and, once it is complete, calls `swap_in`:

1. a journal ``<parent>/.<name>.swap.json`` is written atomically: it names the complete new files,
   the old dataset files and a backup directory (from here on the swap always rolls forward);
2. the old dataset files move into the backup (metadata first: the old set stops being a dataset);
3. the new files move into the output directory (metadata last: the new set becomes a dataset
   only when complete);
4. the journal is removed, then the backup and the scratch directory.

Every step is a rename within one file system. If the process dies anywhere in 2–4, the next
`recover` (run by both writers and by the embedded default datasets before they look at the
directory) repeats the unfinished steps: renames already done are skipped, so the result is the
complete new dataset. Scratch and backup directories of processes that no longer run are removed.
Files in the output directory that are not dataset files are never touched.
"""
from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
from collections.abc import Sequence

from tfvidgan.errors import ConfigError

__all__ = ["scratch_dir", "release", "journal_path", "swap_in", "recover"]

_log = logging.getLogger(__name__)
_ACTIVE: set[str] = set()   # scratch directories this process is using right now


def _split(output_dir: str) -> tuple[str, str]:
    parent, name = os.path.split(os.path.abspath(output_dir))
    return parent, name


def journal_path(output_dir: str) -> str:
    """``<parent>/.<name>.swap.json``: present only while a swap into ``output_dir`` is unfinished."""
    parent, name = _split(output_dir)
    return os.path.join(parent, f".{name}.swap.json")


def scratch_dir(output_dir: str, kind: str = "tmp") -> str:
    """Creates an empty hidden directory beside ``output_dir`` (mode 0777 minus the umask, unlike mkdtemp's 0700)."""
    parent, name = _split(output_dir)
    os.makedirs(parent, exist_ok=True)
    while True:
        path = os.path.join(parent, f".{name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            os.mkdir(path)
        except FileExistsError:
            continue
        _ACTIVE.add(path)
        return path


def release(path: str) -> None:
    """Removes a scratch directory this process no longer needs."""
    _ACTIVE.discard(path)
    shutil.rmtree(path, ignore_errors=True)


def _move(source: str, target: str) -> None:
    os.replace(source, target)


def _alive(pid: int, path: str) -> bool:
    if pid == os.getpid():
        return path in _ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def swap_in(new_dir: str, output_dir: str, old_files: Sequence[str], metadata_file: str) -> None:
    """Replaces the dataset files ``old_files`` of ``output_dir`` by every file of ``new_dir`` (see module doc).

    Args:
      new_dir: a complete new dataset (made by `scratch_dir`); removed at the end.
      output_dir: the dataset directory (created if missing); its other files stay.
      old_files: base names of the old dataset's files in ``output_dir``.
      metadata_file: base name of the metadata file: moved out first and in last.
    """
    parent, _ = _split(output_dir)
    backup = scratch_dir(output_dir, "old")
    journal = {
        "pid": os.getpid(),
        "output_dir": os.path.abspath(output_dir),
        "new_dir": os.path.abspath(new_dir),
        "backup_dir": backup,
        "old_files": sorted(old_files, key=lambda n: (n != metadata_file, n)),
        "new_files": sorted(os.listdir(new_dir), key=lambda n: (n == metadata_file, n)),
    }
    path = journal_path(output_dir)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(journal, f, indent=1)
    os.replace(path + ".tmp", path)  # the commit point: from here on the swap rolls forward
    _roll_forward(journal, path)


def _roll_forward(journal: dict, path: str) -> None:
    output, new, backup = journal["output_dir"], journal["new_dir"], journal["backup_dir"]
    os.makedirs(backup, exist_ok=True)
    for name in journal["old_files"]:
        source, target = os.path.join(output, name), os.path.join(backup, name)
        if not os.path.lexists(target) and os.path.lexists(source):
            _move(source, target)
    os.makedirs(output, exist_ok=True)
    for name in journal["new_files"]:
        source = os.path.join(new, name)
        if os.path.lexists(source):
            _move(source, os.path.join(output, name))
    os.remove(path)
    release(backup)
    release(new)


_SCRATCH = re.compile(r"(tmp|old)-(\d+)-[0-9a-f]+")


def recover(output_dir: str) -> bool:
    """Finishes a swap into ``output_dir`` that a crash interrupted, and removes stale scratch directories.

    Returns:
      True if an interrupted swap was finished.
    Raises:
      ConfigError: another running process is swapping a dataset into ``output_dir`` right now, or
        the journal is unreadable (naming it).
    """
    parent, name = _split(output_dir)
    path = journal_path(output_dir)
    finished = False
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as f:
                journal = json.load(f)
            pid = int(journal["pid"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"{path}: unreadable dataset swap journal ({e}); inspect {parent} by hand") from e
        if pid != os.getpid() and _alive(pid, ""):
            raise ConfigError(f"--output_dir={output_dir}: process {pid} is replacing the dataset in it right now "
                              f"({path}); wait for it to finish")
        _log.warning("Finishing the interrupted dataset swap into %s (journal %s)", output_dir, path)
        _roll_forward(journal, path)
        finished = True
    if os.path.isdir(parent):
        prefix = f".{name}."
        for entry in os.listdir(parent):
            match = _SCRATCH.fullmatch(entry[len(prefix):]) if entry.startswith(prefix) else None
            if match:
                scratch = os.path.join(parent, entry)
                if not _alive(int(match.group(2)), scratch):
                    _log.warning("Removing stale scratch directory %s (its process is gone)", scratch)
                    shutil.rmtree(scratch, ignore_errors=True)
    return finished
