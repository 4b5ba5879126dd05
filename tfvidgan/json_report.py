"""JSON reports: printing one to stdout and, optionally, to a file (`emit`), writing and reading JSON files
(`write_json`: atomic, NaN/inf as null; `read_json`: errors naming the flag), and the machine a report was
measured on. Shared by `evaluate`, `reproduce` and the benchmarks."""
from __future__ import annotations

import importlib.metadata
import json
import math
import numbers
import os
import platform
import sys

from tfvidgan.errors import ConfigError

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


def json_safe(value):
    """NaN/inf → None (JSON has no NaN), recursively; float scalars of any kind (numpy's too) become Python floats,
    other numpy scalars are converted by `default=float` when dumped."""
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def dumps(value, indent: int | None = 2, sort_keys: bool = False) -> str:
    """`value` as strict JSON text (`json_safe`: NaN/inf as null, so `jq` and other strict readers parse it;
    numpy scalars as numbers). `indent=None`: one line (a JSON-lines record)."""
    return json.dumps(json_safe(value), indent=indent, default=float, sort_keys=sort_keys, allow_nan=False)


def write_json(path: str, value, indent: int | None = 2, sort_keys: bool = False) -> None:
    """Writes `value` (`dumps`) to `path` atomically: a temporary file in the same directory, then a rename,
    so a reader never sees half a file and an interrupted write leaves the old one. Creates the directory."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            f.write(dumps(value, indent, sort_keys) + "\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_json(path: str, flag: str | None = None, *, missing_ok: bool = False, hint: str = ""):
    """The JSON value in the file `path`: a file the user gave as `--flag`, or (no `flag`) one a program
    keeps, such as a stage marker. `missing_ok`: a missing file reads as None. `hint`: what to do about a bad
    file, appended to the error ("delete it to redo that stage").

    Raises:
      ConfigError naming `--flag=path` (or the path) when the file is missing (unless `missing_ok`),
      unreadable or not JSON.
    """
    name = f"--{flag}={path!r}" if flag else path
    advice = f"; {hint}" if hint else ""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        if missing_ok:
            return None
        raise ConfigError(f"{name}: no such file{advice}") from None
    except (OSError, ValueError) as e:
        raise ConfigError(f"{name}: not a readable JSON file ({e}){advice}") from e


def emit(report: dict, output: str = "") -> str:
    """Prints `report` as indented JSON (`dumps`) and writes it to `output` too when given (`write_json`,
    atomic); returns the text."""
    text = dumps(report)
    print(text)
    sys.stdout.flush()
    if output:
        write_json(output, report)
    return text
