"""SIGTERM (how preemption arrives on clusters) → the loop saves a checkpoint and stops.

`SigtermWatcher` replaces the SIGTERM handler while the training loop runs: the first SIGTERM only sets
`requested`; the loop checks it between (groups of) steps, all-reduces it so that every worker of a
multi-worker job stops at the same step, saves a checkpoint there and raises `TrainingPreempted`.
If the loop cannot get there within `grace_seconds` (e.g. stuck in a collective with a dead peer), a timer
ends the process with exit code 143 (what a SIGTERM kill reports); a second SIGTERM ends it at once.
Nothing is lost beyond the last checkpoint in those cases, as checkpoints and exports are atomic.

Chosen over `tf.distribute.experimental.PreemptionCheckpointHandler` because the loop already owns its
checkpoint manager and step schedule (`--steps_per_loop`), and an all-reduced flag inside the training
function agrees on the stop step without the coordination service's key-value store; the handler also
works under MirroredStrategy and in tests that run the loop in-process.
"""
from __future__ import annotations

import os
import signal
import sys
import threading

from absl import logging

PREEMPTED_EXIT_CODE = 143  # 128 + SIGTERM: schedulers restart it like a process killed by SIGTERM


class SigtermWatcher:
    """Context manager: while active (main thread only), SIGTERM sets `requested` instead of killing."""

    def __init__(self, grace_seconds: float = 30.0):
        self.grace_seconds = grace_seconds
        self.requested = False
        self._previous = None
        self._timer: threading.Timer | None = None
        self._installed = False

    def _handle(self, signum, frame):
        if self.requested:  # second SIGTERM: stop now
            logging.warning("Second SIGTERM: exiting without saving")
            sys.stderr.flush()
            os._exit(PREEMPTED_EXIT_CODE)
        self.requested = True
        logging.warning("SIGTERM received: saving a checkpoint at the next step boundary, then stopping "
                        "(forced exit in %.0f s)", self.grace_seconds)
        if self.grace_seconds > 0:
            self._timer = threading.Timer(self.grace_seconds, self._expire)
            self._timer.daemon = True
            self._timer.start()

    def _expire(self):
        sys.stderr.write(f"SIGTERM: could not save within {self.grace_seconds:.0f} s (a peer may be gone); "
                         f"exiting. Resume from the last checkpoint by running the same command.\n")
        sys.stderr.flush()
        os._exit(PREEMPTED_EXIT_CODE)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc):
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous if self._previous is not None else signal.SIG_DFL)
            self._installed = False
        if self._timer is not None:
            self._timer.cancel()
