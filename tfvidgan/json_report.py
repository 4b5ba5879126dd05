"""Printing a JSON report to stdout and, optionally, to a file, and the machine it was measured on: shared
by `evaluate`, `reproduce` and the benchmarks."""
from __future__ import annotations

import importlib.metadata
import json
import math
import os
import platform
import sys

# CPU features that decide whether bfloat16 (`--mixed_precision`) is faster or slower than float32 here:
# without bfloat16 arithmetic (BFLOAT16_ARITHMETIC) oneDNN emulates it (measured 2.1-2.7x slower); with AMX
# its convolutions use the tile units (the unfolded CUP net ran 2.6x faster, docs/experiments_cup.md).
BFLOAT16_ARITHMETIC = ("avx512_bf16", "amx_bf16")
BFLOAT16_CPU_FEATURES = BFLOAT16_ARITHMETIC + ("amx_tile",)


def cpuinfo(path: str = "/proc/cpuinfo") -> tuple[str, list[str]]:
    """(model name, the `BFLOAT16_CPU_FEATURES` it has, in that order) from the first processor of a Linux
    cpuinfo file; (`platform.processor()`, []) where there is no such file."""
    model, flags = "", None
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and not model:
                    model = value.strip()
                elif key.strip() == "flags" and flags is None:
                    flags = set(value.split())
    except OSError:
        pass
    return model or platform.processor(), [flag for flag in BFLOAT16_CPU_FEATURES if flag in (flags or ())]


def machine() -> dict:
    """What a report's wall times were measured on: ``cpus`` (logical CPUs), ``cpu`` (model name),
    ``cpu_bfloat16`` (which of `BFLOAT16_CPU_FEATURES` the CPU has), ``memory_gb``, ``system``, ``python``,
    ``tensorflow`` (installed version, or None; TensorFlow is not imported) and ``load_average_1_5_15``
    (None where the OS has none). Times compare within one report, never across machines."""
    model, bf16 = cpuinfo()
    memory_gb = None
    try:
        with open("/proc/meminfo") as f:
            memory_gb = round(int(next(line for line in f if line.startswith("MemTotal")).split()[1]) / 2 ** 20, 1)
    except (OSError, StopIteration, ValueError, IndexError):
        pass
    try:
        tensorflow = importlib.metadata.version("tensorflow")
    except importlib.metadata.PackageNotFoundError:
        tensorflow = None
    return {"cpus": os.cpu_count(), "cpu": model, "cpu_bfloat16": bf16, "memory_gb": memory_gb,
            "system": platform.platform(), "python": platform.python_version(), "tensorflow": tensorflow,
            "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


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
