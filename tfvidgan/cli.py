"""How every command-line tool ends: `cli.run(main)` instead of `absl.app.run(main)`.

Errors the user can act on (bad flags, files, data: `TfvidganError`; a diverged run; a lost multi-worker
peer; a model server failing the client: `ServeError`) print ONE line on stderr,
`<module>.<ErrorClass>: message`, and exit with code 1; `--verbose` adds the traceback. A run stopped by
SIGTERM (preemption) after saving its checkpoint prints one line and exits with code 143 (what a SIGTERM
kill reports, so schedulers restart it). Anything else is a bug and keeps
absl's full traceback.
"""
from __future__ import annotations

import sys
import traceback

from absl import app, flags

from tfvidgan.errors import (
    ClusterError,
    ConfigError,
    ServeError,
    TfvidganError,
    TrainingDivergedError,
    TrainingPreempted,
)
from tfvidgan.training.preemption import PREEMPTED_EXIT_CODE

USER_ERRORS = (TfvidganError, TrainingDivergedError, ClusterError, ServeError)


def one_line(error: BaseException) -> str:
    """`tfvidgan.errors.ConfigError: message` on one line."""
    message = " ".join(str(error).split("\n")).strip()
    return f"{type(error).__module__}.{type(error).__qualname__}: {message}"


def check_positional(argv) -> None:
    """`ConfigError` if anything but the program name is left after flag parsing (flags are --name=value)."""
    if len(argv) > 1:
        raise ConfigError(f"unexpected positional arguments {argv[1:]} (flags are --name=value)")


def _wrap(main):
    def wrapped(argv):
        try:
            return main(argv)
        except TrainingPreempted as e:
            sys.stderr.write(one_line(e) + "\n")
            sys.stderr.flush()
            sys.exit(PREEMPTED_EXIT_CODE)
        except USER_ERRORS as e:
            if flags.FLAGS["verbose"].value:
                traceback.print_exc()
            sys.stderr.write(one_line(e) + "\n")
            sys.stderr.flush()
            sys.exit(1)
    return wrapped


def run(main) -> None:
    """`absl.app.run(main)` with one-line errors (see the module docstring); defines `--verbose`."""
    if "verbose" not in flags.FLAGS:
        flags.DEFINE_bool("verbose", False, "Print the full traceback of errors (default: one line).")
    app.run(_wrap(main))
