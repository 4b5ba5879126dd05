"""Keras callbacks for `fit()` of the models in `tfvidgan.keras_models`: what the trainers do around the steps.

Each callback calls the SAME task method the custom loop (`tfvidgan.training.loop.run_training`) calls, and
writes to the same layout under `model_dir`, so there is one way to do each thing:

| callback | task method | writes (as the loop) |
| --- | --- | --- |
| `SampleSummaries` | `task.write_samples(step)` | `<model_dir>/summaries/`: sample grids, video GIFs |
| `PeriodicExport` | `task.export(dir)` via the loop's `export_step` | `<model_dir>/export/<step>/` SavedModel |
| `Evaluation` | `task.evaluate(step)` (the loop's evaluation helper) | `eval/*` scalars, `<model_dir>/metrics.jsonl`; with `best_metric`, `best_export/<step>/` and `best.json` (the loop's `BestExporter`) |

Generator EMA needs no callback: it is part of the frames task's `train_step` (`ema_beta > 0`), which `fit`
runs, exactly as the loop does. Loss scalars: use `keras.callbacks.TensorBoard` (the trackers are global
means). All actions run every `every_n_steps` training steps (counted by the model's `step` variable, so a
resumed model continues its schedule) and once more at the end of `fit` if the last step was not one.
"""
from __future__ import annotations

import os

import keras
import tensorflow as tf

from tfvidgan.errors import ConfigError
from tfvidgan.training import loop
from tfvidgan.training.best_export import BestExporter, check_mode


class _EveryNSteps(keras.callbacks.Callback):
    def __init__(self, model_dir: str, every_n_steps: int):
        super().__init__()
        if not isinstance(model_dir, (str, os.PathLike)) or not str(model_dir):
            raise ConfigError(f"{type(self).__name__}: `model_dir` must be a non-empty path, got {model_dir!r}")
        if not isinstance(every_n_steps, int) or every_n_steps < 1:
            raise ConfigError(f"{type(self).__name__}: `every_n_steps` must be a positive int, got {every_n_steps!r}")
        self.model_dir = str(model_dir)
        self.every_n_steps = every_n_steps
        self._last = None

    def set_model(self, model):
        if not (hasattr(model, "task") and hasattr(model, "step")):
            raise ConfigError(f"{type(self).__name__} needs a tfvidgan.keras_models model (FramesGAN, VideoGAN, "
                              f"ReconstructionGAN), got {type(model).__name__}")
        super().set_model(model)
        self._check_task(model.task)

    def _check_task(self, task):
        pass

    def _step(self) -> int:
        return int(self.model.step.numpy())

    def on_train_begin(self, logs=None):
        self._last = self._step()

    def on_train_batch_end(self, batch, logs=None):
        step = self._step()
        # With steps_per_execution > 1 the step can jump past a multiple: act once when one is crossed.
        if step // self.every_n_steps > self._last // self.every_n_steps:
            self._act(step)
            self._done = step
        self._last = step

    def on_train_end(self, logs=None):
        step = self._step()
        if getattr(self, "_done", None) != step:
            self._act(step)
            self._done = step

    def _act(self, step: int) -> None:
        raise NotImplementedError


def _writer(model_dir: str):
    return tf.summary.create_file_writer(os.path.join(model_dir, "summaries"))


class SampleSummaries(_EveryNSteps):
    """`task.write_samples(step)` into `<model_dir>/summaries` (frames: sample grids of the EMA and raw
    generators; video: GIFs and strips; reconstruction: truth vs reconstruction of its preview batch)."""

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._summary_writer = _writer(self.model_dir)

    def _act(self, step):
        with self._summary_writer.as_default():
            self.model.task.write_samples(step)
        self._summary_writer.flush()


class PeriodicExport(_EveryNSteps):
    """`loop.export_step(<model_dir>/export, task, step)`: the loop's atomic, versioned SavedModel
    (`export/<step>/`; a version that already holds this step is kept, none is overwritten)."""

    def _act(self, step):
        loop.export_step(os.path.join(self.model_dir, "export"), self.model.task, step)


class Evaluation(_EveryNSteps):
    """`task.evaluate(step)` (the quality probe given to the model), written as `eval/<name>` scalars to
    `<model_dir>/summaries` and appended as a JSON line to `<model_dir>/metrics.jsonl` by the loop's own
    evaluation helper. `results` keeps `(step, {name: float})` of every evaluation. `best_metric` (an
    evaluation value's name; `best_metric_mode` "min" or "max"): also export the best evaluated step to
    `<model_dir>/best_export/<step>/` and record it in `best.json`, as `--best_metric` does in the loop."""

    def __init__(self, model_dir: str, every_n_steps: int, best_metric: str = "", best_metric_mode: str = "min"):
        super().__init__(model_dir, every_n_steps)
        check_mode(best_metric_mode, "Evaluation: `best_metric_mode`")
        self.best_metric, self.best_metric_mode = best_metric, best_metric_mode
        self.best = None
        self.results = []

    def _check_task(self, task):
        if not hasattr(task, "evaluate"):
            raise ConfigError(f"Evaluation: {type(task).__name__} has no evaluate()")

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        os.makedirs(self.model_dir, exist_ok=True)
        self._summary_writer = _writer(self.model_dir)
        self._loop_config = loop.LoopConfig(model_dir=self.model_dir, train_steps=1)
        if self.best_metric:
            self.best = BestExporter(self.model_dir, self.best_metric, self.best_metric_mode, self.model.task.export)

    def _act(self, step):
        values = loop._run_evaluation(self.model.task, step, self._loop_config, self._summary_writer)
        self.results.append((step, values))
        if self.best is not None:
            self.best.update(step, values)
        self._summary_writer.flush()
