"""A minimal progress bar on stderr (no third-party dependency)."""
from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """Prints ``label [#####.....] done/total unit  rate/s  ETA`` to a stream.

    On a terminal the line is redrawn in place (at most 5 times a second); otherwise one line is
    written per 10 % of progress, so logs stay short.
    """

    def __init__(self, total: int, *, label: str = "", unit: str = "items", enabled: bool = True,
                 stream: TextIO | None = None):
        self.total = max(int(total), 1)
        self.label = label
        self.unit = unit
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self._start = time.monotonic()
        self._last_draw = 0.0
        self._last_decile = -1
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def update(self, count: int) -> None:
        self.done = min(self.total, self.done + count)
        if not self.enabled:
            return
        now = time.monotonic()
        if self._tty:
            if now - self._last_draw >= 0.2 or self.done == self.total:
                self._last_draw = now
                self.stream.write("\r" + self._line(now))
                self.stream.flush()
        else:
            decile = self.done * 10 // self.total
            if decile != self._last_decile:
                self._last_decile = decile
                self.stream.write(self._line(now) + "\n")
                self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._tty:
            self.stream.write("\n")
            self.stream.flush()

    def _line(self, now: float) -> str:
        elapsed = max(now - self._start, 1e-9)
        rate = self.done / elapsed
        filled = self.done * 30 // self.total
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        eta_text = f"ETA {eta:5.0f}s" if eta != float("inf") else "ETA     ?"
        return (f"{self.label} [{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} {self.unit} "
                f"{rate:8.1f}/s {eta_text}")
