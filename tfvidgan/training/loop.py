"""The one training loop shared by the frames GAN, the video GAN and the CUP reconstructor.

A custom loop around `strategy.run(task.train_step)` rather than `Model.fit`, because `fit` does not work
under MultiWorkerMirroredStrategy in Keras 3 and `BackupAndRestore` resumes only at epoch boundaries;
this loop checkpoints every N *steps* and resumes at the step it stopped.

A task implements (see ARCHITECTURE.md):
  build()                      create models and optimizers (called inside `strategy.scope()`),
                               and build the optimizers (`opt.build(vars)`).
  train_step(batch, step)      replica context; returns a dict of tensors already divided by the global
                               batch / replica count so that their SUM over replicas is the global value.
  checkpoint_objects()         dict of trackables to checkpoint.
  optimizers()                 [(optimizer, OptimizerConfig)]: after a restore the configured learning
                               rates are re-applied (Keras checkpoints them, and a run resumed with a
                               lower rate after a divergence must use it).
  write_samples(step)          chief only, with the summary writer active (image grids, GIFs, ...).
  export(directory)            writes a SavedModel into `directory`.
  evaluate(step) (optional)    chief only, host side: quality metrics `{name: float}` of the current
                               model (e.g. ball physics and a Fréchet distance on a fixed-seed sample);
                               called every `eval_every` steps, written to TensorBoard under `eval/` and
                               appended as one JSON line to `<model_dir>/metrics.jsonl`.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Callable, Protocol

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfvidgan.errors import ConfigError, TrainingDivergedError
from tfvidgan.export import export_version
from tfvidgan.training import summaries
from tfvidgan.training.checkpointing import CheckpointKeeper
from tfvidgan.training.strategy import is_chief


class Task(Protocol):
    def build(self) -> None: ...
    def train_step(self, batch, step: tf.Tensor) -> dict: ...
    def checkpoint_objects(self) -> dict: ...
    def optimizers(self) -> list: ...
    def write_samples(self, step: int) -> None: ...
    def export(self, directory: str) -> None: ...


# (input_context, start_step) -> tf.data.Dataset yielding this pipeline's per-replica batches.
DatasetFn = Callable[[tf.distribute.InputContext, int], tf.data.Dataset]


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """How long to train and how often to log, sample, checkpoint; where to write; XLA and precision.

    `jit_compile` compiles each replica's step with XLA (one replica per worker only: XLA cannot compile
    the cross-replica all-reduce here). `mixed_precision` builds the models under the "mixed_bfloat16"
    policy (bfloat16 compute, float32 variables; no loss scaling needed); losses stay float32.

    Layout under `model_dir`: `checkpoints/`, `summaries/` (TensorBoard), `export/<version>/`.
    """
    model_dir: str
    train_steps: int
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 500
    eval_every: int = 0
    max_checkpoints: int = 3
    export: bool = True
    jit_compile: bool = False
    mixed_precision: bool = False
    flags: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        for name in ("train_steps", "log_every", "sample_every", "checkpoint_every", "max_checkpoints"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"--{name} must be positive, got {getattr(self, name)}")
        if self.eval_every < 0:
            raise ConfigError(f"--eval_every must be >= 0 (0 = off), got {self.eval_every}")

    @property
    def checkpoint_dir(self) -> str:
        return os.path.join(self.model_dir, "checkpoints")

    @property
    def summary_dir(self) -> str:
        return os.path.join(self.model_dir, "summaries")

    @property
    def export_dir(self) -> str:
        return os.path.join(self.model_dir, "export")

    @property
    def metrics_file(self) -> str:
        return os.path.join(self.model_dir, "metrics.jsonl")


@dataclasses.dataclass
class TrainingResult:
    """What a finished `run_training` call did."""
    start_step: int
    final_step: int
    last_metrics: dict
    export_path: str | None
    steps_per_second: float


def _to_numpy(values: dict) -> dict:
    return {k: np.asarray(v) for k, v in values.items()}


def _check_finite(values: dict, step: int, keeper: CheckpointKeeper) -> None:
    for name, value in values.items():
        if not np.all(np.isfinite(value)):
            raise TrainingDivergedError(
                f"loss {name!r} became {value} at step {step}; stopping. The last good checkpoint "
                f"is kept: {keeper.latest or 'none yet'}. Lower the learning rate or check the data.")


def _run_evaluation(task, step: int, config: LoopConfig, writer) -> dict:
    """Calls `task.evaluate(step)`, writes `eval/<name>` scalars and appends a line to metrics.jsonl."""
    t0 = time.perf_counter()
    values = {k: float(v) for k, v in task.evaluate(step).items()}
    seconds = time.perf_counter() - t0
    with writer.as_default():
        for name, value in values.items():
            tf.summary.scalar(f"eval/{name}", value, step=step)
        tf.summary.scalar("eval/seconds", seconds, step=step)
    record = {"step": step, "time": time.time(), "eval_seconds": round(seconds, 3), **values}
    with open(config.metrics_file, "a") as f:
        f.write(json.dumps(record, allow_nan=True) + "\n")
    logging.info("eval at step %d (%.1f s): %s", step, seconds,
                 ", ".join(f"{k}={v:.4g}" for k, v in values.items()))
    return values


def run_training(task: Task, dataset_fn: DatasetFn, strategy: tf.distribute.Strategy,
                 config: LoopConfig) -> TrainingResult:
    """Trains `task` for `config.train_steps` steps in total, resuming from the latest checkpoint."""
    chief = is_chief(strategy)
    if config.jit_compile and strategy.num_replicas_in_sync > 1:
        raise ConfigError(f"--jit_compile supports one replica per run, this strategy has "
                          f"{strategy.num_replicas_in_sync}: XLA cannot compile the cross-replica all-reduce")
    previous_policy = keras.config.dtype_policy()
    if config.mixed_precision:
        keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        with strategy.scope():
            task.build()
    finally:
        keras.config.set_dtype_policy(previous_policy)
    with strategy.scope():
        step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step",
                               aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    keeper = CheckpointKeeper(config.checkpoint_dir, strategy, config.max_checkpoints,
                              step=step_var, **task.checkpoint_objects())
    restored = keeper.restore_latest()
    start_step = int(step_var.numpy())
    if restored:
        logging.info("Resumed from %s at step %d", restored, start_step)
        for optimizer, optimizer_config in task.optimizers():  # the flags win over the checkpoint
            optimizer.learning_rate = optimizer_config.learning_rate

    writer = (tf.summary.create_file_writer(config.summary_dir) if chief
              else tf.summary.create_noop_writer())
    if chief and config.flags and start_step == 0:
        with writer.as_default():
            summaries.write_flags_text(config.flags)

    dataset = strategy.distribute_datasets_from_function(
        lambda context: dataset_fn(context, start_step))
    iterator = iter(dataset)

    replica_step = tf.function(task.train_step, jit_compile=True) if config.jit_compile else task.train_step

    @tf.function
    def distributed_step(iterator):
        batch = next(iterator)
        per_replica = strategy.run(replica_step, args=(batch, step_var.read_value()))
        step_var.assign_add(1)
        return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                for k, v in per_replica.items()}

    metrics: dict = {}
    window: list[dict] = []
    step = start_step
    t_start = t_window = time.perf_counter()
    while step < config.train_steps:
        metrics = _to_numpy(distributed_step(iterator))
        step += 1
        _check_finite(metrics, step, keeper)
        window.append(metrics)
        if step % config.log_every == 0 or step == config.train_steps:
            mean = {k: np.mean([m[k] for m in window], axis=0) for k in metrics}
            rate = len(window) / max(time.perf_counter() - t_window, 1e-9)
            with writer.as_default():
                summaries.write_scalars(mean, step)
                tf.summary.scalar("steps_per_second", rate, step=step)
            scalars = ", ".join(f"{k}={float(v):.4f}" for k, v in mean.items() if np.ndim(v) == 0)
            logging.info("step %d/%d  %s  (%.2f steps/s)", step, config.train_steps, scalars, rate)
            window, t_window = [], time.perf_counter()
        if chief and (step % config.sample_every == 0 or step == config.train_steps):
            with writer.as_default():
                task.write_samples(step)
        if (chief and config.eval_every and hasattr(task, "evaluate")
                and (step % config.eval_every == 0 or step == config.train_steps)):
            _run_evaluation(task, step, config, writer)
        if step % config.checkpoint_every == 0 or step == config.train_steps:
            keeper.save(step)
    writer.flush()
    elapsed = time.perf_counter() - t_start
    export_path = None
    if config.export and chief:
        export_path = os.path.join(config.export_dir, str(step))
        if tf.io.gfile.exists(export_path):
            logging.info("Export %s already exists (run had finished); not re-exporting", export_path)
        else:
            export_path = export_version(config.export_dir, task.export, version=step)
            logging.info("Exported SavedModel to %s", export_path)
    return TrainingResult(start_step=start_step, final_step=step, last_metrics=metrics,
                          export_path=export_path,
                          steps_per_second=(step - start_step) / elapsed if step > start_step else math.nan)
