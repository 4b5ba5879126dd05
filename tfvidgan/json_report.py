"""Printing a JSON report to stdout and, optionally, to a file: shared by `evaluate` and the benchmarks."""
from __future__ import annotations

import json
import math
import os
import sys


def _json_safe(value):
    """NaN/inf → None (JSON has no NaN); numpy scalars → Python numbers via `default=float`."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def emit(report: dict, output: str = "") -> str:
    """Prints `report` as indented JSON and writes it to `output` too when given; returns the text."""
    text = json.dumps(_json_safe(report), indent=2, default=float)
    print(text)
    sys.stdout.flush()
    if output:
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        with open(output, "w") as f:
            f.write(text + "\n")
    return text
