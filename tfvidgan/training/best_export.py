"""Keeps the export of the best evaluated step (`--best_metric`), like tensorflow/models'
`BestCheckpointExporter`, but of the SavedModel users sample from.

GAN samples do not improve monotonically: a video model that met five of six targets at one step lost two
of them 600 steps later with the same flags (docs/experiments_video.md). With `--eval_every=N
--best_metric=NAME` the loop hands every evaluation to `BestExporter.update`; when `NAME` improves (lower
with `--best_metric_mode=min`, higher with `max`) the current model is exported to
`<model_dir>/best_export/<step>/` (atomically, as every export) and `<model_dir>/best.json` records the
metric, the step, the export and all of that evaluation's values; the export itself carries the same record
(`tfvidgan.export.SELECTION_FILE`) with the probe's sample (`probe`: its seed and size), so that
`evaluate` can flag a draw that re-uses the sample the step was picked on (`export.selection_bias`). Only
the newest best export is kept.
A resumed run continues the record in `best.json`; one kept by another metric or mode is refused (the
error names the flags and the file), never overwritten.
"""
from __future__ import annotations

import json
import math
import os
import shutil
from typing import Callable

import tensorflow as tf
from absl import logging

from tfvidgan.errors import ConfigError
from tfvidgan.export import existing_versions, export_version, write_selection
from tfvidgan.json_report import write_json

MODES = ("min", "max")
BEST_FILE = "best.json"
BEST_EXPORT_DIR = "best_export"


def check_mode(mode: str, name: str = "--best_metric_mode") -> None:
    """`ConfigError` naming `name` unless `mode` is one of `MODES`."""
    if mode not in MODES:
        raise ConfigError(f"{name} must be one of {', '.join(MODES)}, got {mode!r}")


class BestExporter:
    """Exports the model whenever evaluation metric `metric` improves; see the module docstring.

    Args:
      model_dir: the run directory (`best.json` and `best_export/` are written there).
      metric: name of a value returned by the task's `evaluate(step)`.
      mode: "min" (lower is better) or "max".
      export: `export(directory)` writes the SavedModel (the task's `export`).
      probe: the settings of the fixed sample the evaluations score (e.g. `ProbeConfig.sample_settings()`:
        its "seed" and size), recorded in `best.json` and in each best export; None if unknown.

    Raises:
      ConfigError: an unknown mode, or a `best.json` that is unreadable or was kept for another metric or
        mode (naming the file and the flags).
    """

    def __init__(self, model_dir: str, metric: str, mode: str, export: Callable[[str], None],
                 probe: dict | None = None):
        check_mode(mode)
        self.metric, self.mode, self._export, self.probe = metric, mode, export, probe
        self.file = os.path.join(model_dir, BEST_FILE)
        self.export_dir = os.path.join(model_dir, BEST_EXPORT_DIR)
        self.record = self._read()

    def _read(self) -> dict | None:
        if not tf.io.gfile.exists(self.file):
            return None
        try:
            with tf.io.gfile.GFile(self.file) as f:
                record = json.load(f)
            kept = (record["metric"], record["mode"], float(record["value"]), int(record["step"]))
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"{self.file}: not a best-export record ({type(e).__name__}: {e}); move it away to "
                              f"start a new record") from e
        if kept[:2] != (self.metric, self.mode):
            raise ConfigError(
                f"--best_metric={self.metric} --best_metric_mode={self.mode}, but {self.file} keeps the best "
                f"step by --best_metric={kept[0]} --best_metric_mode={kept[1]} (step {kept[3]}); resume with "
                f"those flags, or move {self.file} and {self.export_dir} away to start a new record")
        return record

    def better(self, value: float) -> bool:
        """Whether `value` beats the kept record (NaN never does; the first defined value always does)."""
        if math.isnan(value):
            return False
        if self.record is None:
            return True
        best = float(self.record["value"])
        return value < best if self.mode == "min" else value > best

    def update(self, step: int, values: dict) -> str | None:
        """Exports at `step` if `values[metric]` improves on the record; returns the new export's path.

        Raises:
          ConfigError: `values` has no `metric` (the error lists the names it has).
        """
        if self.metric not in values:
            raise ConfigError(f"--best_metric={self.metric!r} is not a value of this run's evaluation; it "
                              f"reports {', '.join(sorted(values))}")
        value = float(values[self.metric])
        if not self.better(value):
            return None
        path = os.path.join(self.export_dir, str(step))
        selection = {"metric": self.metric, "mode": self.mode, "value": value, "step": int(step),
                     "probe": self.probe}

        def write(directory):
            self._export(directory)
            write_selection(directory, selection)

        if not tf.io.gfile.exists(path):  # (it exists when a run died between this export and its record)
            path = export_version(self.export_dir, write, version=step)
        record = {**selection, "export": path, "metrics": {k: float(v) for k, v in values.items()}}
        write_json(self.file, record, indent=1)  # atomic: the record always names a complete export
        previous, self.record = self.record, record
        for version in existing_versions(self.export_dir):
            if version != step:
                shutil.rmtree(os.path.join(self.export_dir, str(version)), ignore_errors=True)
        logging.info("best %s = %.4g at step %d (was %s): exported %s", self.metric, value, step,
                     "none" if previous is None else f"{float(previous['value']):.4g} at step {previous['step']}",
                     path)
        return path
