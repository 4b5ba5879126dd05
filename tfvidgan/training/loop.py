"""The one training loop shared by the frames GAN, the video GAN and the CUP reconstructor.

A custom loop around `strategy.run(task.train_step)` rather than `Model.fit`, because `fit` does not work
under MultiWorkerMirroredStrategy in Keras 3 and `BackupAndRestore` resumes only at epoch boundaries;
this loop checkpoints every N *steps* and resumes at the step it stopped.

A task implements (see ARCHITECTURE.md):
  build()                      create models and optimizers (called inside `strategy.scope()`),
                               and build the optimizers (`opt.build(vars)`).
  build_inputs(input_context, start_step)
                               its training data: a `tf.data.Dataset` of PER-REPLICA batches for the input
                               pipeline described by `input_context` (None = the only one), shuffled from
                               `InputConfig.seed + start_step` (a resumed run does not replay its data).
                               Used when `run_training` is given no `dataset_fn`.
  train_step(batch, step)      replica context; returns a dict of tensors already divided by the global
                               batch / replica count so that their SUM over replicas is the global value.
  checkpoint_objects()         dict of trackables to checkpoint.
  optimizers()                 [(optimizer, OptimizerConfig)]: after a restore the configured learning
                               rates are re-applied (Keras checkpoints them, and a run resumed with a
                               lower rate after a divergence must use it).
  write_samples(step)          chief only, with the summary writer active (image grids, GIFs, ...).
  export(directory)            writes a SavedModel into `directory`.
  description() (optional)     the JSON description its exports carry (`tfvidgan.export.DESCRIPTION_FILE`;
                               the loop adds the training step as ``"step"``). A finished run started again
                               with other sampling settings (e.g. `--sample_burn_in_steps`) exports the same
                               weights again, as the next free version: no version is overwritten.
  evaluate(step) (optional)    chief only, host side: quality metrics `{name: float}` of the current
                               model (e.g. ball physics and a Fréchet distance on a fixed-seed sample);
                               called every `eval_every` steps, written to TensorBoard under `eval/` and
                               appended as one JSON line to `<model_dir>/metrics.jsonl`; with
                               `best_metric`, the best step's model is exported to `best_export/`.

Around the steps (see `run_training`): the chief locks `model_dir` (one run per directory) and checks the
task's config against `<model_dir>/run_config.json` before resuming; every step's losses AND the weights
after its update are checked on device (finite, and below `divergence_threshold`), so no checkpoint or
export ever holds diverged state; SIGTERM saves a checkpoint and stops (`TrainingPreempted`).
`steps_per_loop` steps run inside one `tf.function`; host-side actions (log, samples, eval, checkpoint)
then run at exactly their steps, like Orbit's controller.
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

from tfvidgan.errors import ClusterError, ConfigError, TrainingDivergedError, TrainingPreempted
from tfvidgan.export import DESCRIPTION_FILE, existing_versions, export_version, write_description
from tfvidgan.json_report import BFLOAT16_ARITHMETIC, cpuinfo, dumps
from tfvidgan.training import summaries
from tfvidgan.training.best_export import BestExporter
from tfvidgan.training.checkpointing import CheckpointKeeper
from tfvidgan.training.preemption import SigtermWatcher
from tfvidgan.training.run_lock import check_run_config, lock_run_dir
from tfvidgan.training.strategy import describe_cluster_error, is_chief


def _stamped_export(task, step: int) -> Callable[[str], None]:
    """`task.export`, then the training step of the weights added (as ``"step"``) to the export's description
    file when it has one: a re-export of the same step under another version number says which step it holds."""
    def write(directory: str) -> None:
        task.export(directory)
        path = os.path.join(directory, DESCRIPTION_FILE)
        if tf.io.gfile.exists(path):
            with tf.io.gfile.GFile(path) as f:
                description = json.load(f)
            write_description(directory, dict(description, step=step))
    return write


def _current_export(export_dir: str, task, step: int) -> str | None:
    """The newest version under `export_dir` that holds step `step` as `task` would export it now (the same
    `task.description()`), or None. Without a description only `export_dir/<step>` counts."""
    describe = getattr(task, "description", None)
    if describe is None:
        path = os.path.join(export_dir, str(step))
        return path if tf.io.gfile.exists(path) else None
    wanted = json.loads(json.dumps(describe()))
    for version in reversed(existing_versions(export_dir)):
        directory = os.path.join(export_dir, str(version))
        if not tf.io.gfile.exists(os.path.join(directory, DESCRIPTION_FILE)):
            continue
        with tf.io.gfile.GFile(os.path.join(directory, DESCRIPTION_FILE)) as f:
            described = json.load(f)
        # Exports written before the step was stamped are version <step>.
        if described.pop("step", version) == step and described == wanted:
            return directory
    return None


def export_step(export_dir: str, task, step: int) -> str:
    """Exports `task` (its weights at training step `step`) under `export_dir` unless a version already holds
    them as the task would export them now; returns that version's path.

    The version is `<step>`; if that exists with other settings (a finished run started again with another
    sampling setting, e.g. `--sample_burn_in_steps`), the next free version, whose description names the step.
    No version is ever overwritten. Used by the loop and by the `fit()` callback `PeriodicExport`.
    """
    current = _current_export(export_dir, task, step)
    if current is not None:
        logging.info("Export %s already holds step %d; not re-exporting", current, step)
        return current
    taken = tf.io.gfile.exists(os.path.join(export_dir, str(step)))
    path = export_version(export_dir, _stamped_export(task, step), version=None if taken else step)
    logging.info("Exported SavedModel (step %d) to %s", step, path)
    return path


class Task(Protocol):
    def build(self) -> None: ...
    def build_inputs(self, input_context: tf.distribute.InputContext | None, start_step: int) -> tf.data.Dataset: ...
    def train_step(self, batch, step: tf.Tensor) -> dict: ...
    def checkpoint_objects(self) -> dict: ...
    def optimizers(self) -> list: ...
    def write_samples(self, step: int) -> None: ...
    def export(self, directory: str) -> None: ...


# (input_context, start_step) -> tf.data.Dataset yielding this pipeline's per-replica batches.
DatasetFn = Callable[[tf.distribute.InputContext, int], tf.data.Dataset]


@dataclasses.dataclass(frozen=True)
class InputConfig:
    """Where and how a task reads its training data (`Task.build_inputs`).

    `data`: the dataset (TFRecord directory, file or glob); `batch_size`: the GLOBAL batch, split evenly over
    the replicas (each input pipeline yields `input_context.get_per_replica_batch_size(batch_size)`);
    `seed`: the pipeline's shuffling and random picks (a run starting at step s uses `seed + s`);
    `skip_bad_records`: skip and count corrupt records instead of stopping.
    """
    data: str
    batch_size: int
    seed: int = 0
    skip_bad_records: bool = False

    def __post_init__(self):
        if self.batch_size < 1:
            raise ConfigError(f"--batch_size must be positive, got {self.batch_size}")

    def per_replica_batch(self, input_context: tf.distribute.InputContext | None) -> int:
        """This pipeline's batch: the global batch divided by the replicas (all of it without a context)."""
        if input_context is None:
            return self.batch_size
        replicas = input_context.num_replicas_in_sync
        if self.batch_size % replicas:
            raise ConfigError(f"--batch_size={self.batch_size} must be a positive multiple of the number of "
                              f"replicas ({replicas})")
        return self.batch_size // replicas


def require_inputs(inputs: InputConfig | None, task) -> InputConfig:
    """`inputs`, or a ConfigError saying that `task` was built without an `InputConfig`."""
    if inputs is None:
        raise ConfigError(f"{type(task).__name__} has no InputConfig: pass inputs=InputConfig(...) to it, or a "
                          f"dataset_fn to run_training")
    return inputs


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """How long to train and how often to log, sample, checkpoint; where to write; XLA and precision.

    `jit_compile` compiles each replica's step with XLA (one replica per worker only: XLA cannot compile
    the cross-replica all-reduce here). `mixed_precision` builds the models under the "mixed_bfloat16"
    policy (bfloat16 compute, float32 variables; no loss scaling needed); losses stay float32.
    `divergence_threshold`: the run stops (`TrainingDivergedError`) when a loss or a weight is non-finite
    or, if > 0, when |loss| or |weight| exceeds it (0 = only non-finite values stop it).
    `steps_per_loop`: steps per `tf.function` call (host-side work and the SIGTERM check between calls;
    actions still happen at exactly their steps). `preemption_grace_seconds`: after SIGTERM, the time
    allowed to reach a step boundary and save before the process exits anyway. `best_metric` (needs
    `eval_every`): after every evaluation, export the model to `best_export/<step>/` when this evaluation
    value improves (`best_metric_mode` "min" or "max"; `tfvidgan.training.best_export`).

    Layout under `model_dir`: `checkpoints/`, `summaries/` (TensorBoard), `export/<version>/`,
    `metrics.jsonl` (evaluations), `best.json` and `best_export/<step>/` (with `best_metric`),
    `run_config.json` (the model's config, checked on resume), `.run.lock`.
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
    divergence_threshold: float = 1e6
    steps_per_loop: int = 1
    preemption_grace_seconds: float = 30.0
    best_metric: str = ""
    best_metric_mode: str = "min"
    flags: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        for name in ("train_steps", "log_every", "sample_every", "checkpoint_every", "max_checkpoints",
                     "steps_per_loop"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"--{name} must be positive, got {getattr(self, name)}")
        if self.eval_every < 0:
            raise ConfigError(f"--eval_every must be >= 0 (0 = off), got {self.eval_every}")
        if self.best_metric and not self.eval_every:
            raise ConfigError(f"--best_metric={self.best_metric} picks the best evaluated step: it needs "
                              f"--eval_every > 0")
        if not (math.isfinite(self.divergence_threshold) and self.divergence_threshold >= 0):
            raise ConfigError(f"--divergence_threshold must be a finite number >= 0 (0 = off), "
                              f"got {self.divergence_threshold}")

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


@dataclasses.dataclass
class Action:
    """A host-side action run every `every` steps and after the last step (Orbit-style controller)."""
    name: str
    every: int
    run: Callable[[int], None]

    def due(self, step: int, last_step: int) -> bool:
        return self.every > 0 and (step % self.every == 0 or step == last_step)


def _next_boundary(step: int, actions: list[Action], last_step: int) -> int:
    """The first step after `step` at which some action is due (or `last_step`)."""
    candidates = [last_step] + [(step // a.every + 1) * a.every for a in actions if a.every > 0]
    return min(candidates)


def _watched_variables(task) -> list:
    """Float weights of the task's models (not optimizer slots), each once: checked after every update."""
    seen, out = set(), []
    for obj in task.checkpoint_objects().values():
        if isinstance(obj, keras.optimizers.Optimizer):
            continue
        if hasattr(obj, "weights"):
            candidates = obj.weights
        elif isinstance(obj, (tf.Variable, keras.Variable)):
            candidates = [obj]
        else:
            candidates = []
        for v in candidates:
            if id(v) not in seen and tf.as_dtype(v.dtype).is_floating:
                seen.add(id(v))
                out.append(v)
    return out


def _value(variable) -> tf.Tensor:
    return variable.value if isinstance(variable, keras.Variable) else variable.read_value()


def _peak(tensors: list) -> tf.Tensor:
    """max |x| over all elements of `tensors` (NaN propagates); 0 for an empty list."""
    if not tensors:
        return tf.constant(0.0)
    return tf.reduce_max(tf.stack([tf.reduce_max(tf.abs(tf.cast(t, tf.float32))) for t in tensors]))


def _divergence_message(metrics: dict, variables: list, step: int, threshold: float, keeper) -> str:
    """Names the first non-finite or exploding loss (else weight) of the failing step."""
    keep = (f"The last good checkpoint is kept: {keeper.latest or 'none yet'}. Lower the learning rate"
            + (", check the data, or raise --divergence_threshold (0 = off)." if threshold else
               " or check the data."))
    for name, value in metrics.items():
        value = np.asarray(value, np.float64)
        bad = value[~np.isfinite(value)] if value.ndim else (value if not np.isfinite(value) else None)
        if bad is not None and np.size(bad):
            return f"loss {name!r} became {np.ravel(bad)[0]} at step {step}; stopping. {keep}"
    for name, value in metrics.items():
        peak = float(np.max(np.abs(value)))
        if threshold and peak > threshold:
            return (f"loss {name!r} reached {peak:.3g} at step {step}, beyond --divergence_threshold="
                    f"{threshold:g}; stopping. {keep}")
    for v in variables:
        value = np.asarray(v.numpy(), np.float64)
        if not np.all(np.isfinite(value)):
            return (f"weight {v.path!r} became {value[~np.isfinite(value)][0]} after the update of step {step}; "
                    f"stopping. {keep}")
        peak = float(np.max(np.abs(value))) if value.size else 0.0
        if threshold and peak > threshold:
            return (f"weight {v.path!r} reached |w| = {peak:.3g} after the update of step {step}, beyond "
                    f"--divergence_threshold={threshold:g}; stopping. {keep}")
    return f"training diverged at step {step}; stopping. {keep}"


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
        f.write(dumps(record, indent=None) + "\n")  # strict JSON: an undefined value is null
    logging.info("eval at step %d (%.1f s): %s", step, seconds,
                 ", ".join(f"{k}={v:.4g}" for k, v in values.items()))
    return values


def run_training(task: Task, dataset_fn: DatasetFn | None = None, strategy: tf.distribute.Strategy | None = None,
                 config: LoopConfig | None = None) -> TrainingResult:
    """Trains `task` for `config.train_steps` steps in total, resuming from the latest checkpoint.

    The data is `task.build_inputs` unless a `dataset_fn(input_context, start_step)` is given (tests feed
    in-memory batches that way); `strategy` defaults to the current one (`tf.distribute.get_strategy()`).

    Raises `RunLockedError` if another live run uses `config.model_dir`, `ConfigError` if the checkpoint was
    written by another model (listing the differing flags), `TrainingDivergedError` (no checkpoint or export
    of the diverged state is written) and `TrainingPreempted` after SIGTERM (a checkpoint was saved).
    """
    if config is None:
        raise TypeError("run_training needs config=LoopConfig(...)")
    strategy = tf.distribute.get_strategy() if strategy is None else strategy
    dataset_fn = task.build_inputs if dataset_fn is None else dataset_fn
    if config.jit_compile and strategy.num_replicas_in_sync > 1:
        raise ConfigError(f"--jit_compile supports one replica per run, this strategy has "
                          f"{strategy.num_replicas_in_sync}: XLA cannot compile the cross-replica all-reduce")
    if config.jit_compile and not getattr(task, "xla_compatible", True):
        raise ConfigError(f"--jit_compile cannot compile this {type(task).__name__}'s step (e.g. --rollout_length "
                          f"draws a shape per step); drop one of them")
    # Only the chief writes into model_dir; the other workers of its job must not (and need not) lock it.
    lock = lock_run_dir(config.model_dir) if is_chief(strategy) else None
    try:
        return _run_locked(task, dataset_fn, strategy, config)
    except tf.errors.OpError as e:
        message = describe_cluster_error(e, strategy)
        if message is None:
            raise
        raise ClusterError(message) from e
    finally:
        if lock is not None:
            lock.release()


def _restore(keeper: CheckpointKeeper, config: LoopConfig) -> str | None:
    try:
        return keeper.restore_latest()
    except (ValueError, AssertionError, tf.errors.OpError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"--model_dir={config.model_dir!r}: the latest checkpoint {keeper.latest} does not "
                          f"match the model built from the flags ({first_line[:300]}). Resume with the flags "
                          f"it was written with, or pick a new --model_dir.") from e


def mixed_precision_warning(device_types, cpu_bfloat16) -> str | None:
    """The warning `--mixed_precision` deserves on this machine, or None: with no GPU (``device_types``,
    e.g. ``["CPU"]``) and none of `tfvidgan.json_report.BFLOAT16_ARITHMETIC` among the CPU's features
    (``cpu_bfloat16``: the `BFLOAT16_CPU_FEATURES` it has), oneDNN emulates bfloat16 and runs slower."""
    if "GPU" in device_types or "TPU" in device_types or set(BFLOAT16_ARITHMETIC) & set(cpu_bfloat16):
        return None
    return (f"--mixed_precision on a CPU without bfloat16 units (no {' or '.join(BFLOAT16_ARITHMETIC)} in "
            "/proc/cpuinfo) and no GPU: bfloat16 is emulated here, measured 2-2.7x SLOWER than float32 (README, "
            "XLA and mixed precision); drop the flag on this machine.")


def _run_locked(task: Task, dataset_fn: DatasetFn, strategy: tf.distribute.Strategy,
                config: LoopConfig) -> TrainingResult:
    chief = is_chief(strategy)
    previous_policy = keras.config.dtype_policy()
    if config.mixed_precision:
        warning = mixed_precision_warning([d.device_type for d in tf.config.list_logical_devices()],
                                          cpuinfo()[1])
        if warning and chief:
            logging.warning(warning)
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
    if chief:
        check_run_config(config.model_dir, getattr(task, "config", None), config.flags,
                         has_checkpoint=keeper.latest is not None)
    restored = _restore(keeper, config)
    start_step = int(step_var.numpy())
    if restored:
        logging.info("Resumed from %s at step %d", restored, start_step)
        for optimizer, optimizer_config in task.optimizers():  # the flags win over the checkpoint
            optimizer.learning_rate = optimizer_config.learning_rate

    best = None
    if config.best_metric and chief:
        if not hasattr(task, "evaluate"):
            raise ConfigError(f"--best_metric={config.best_metric}: this trainer has no in-training evaluation")
        # The probe's fixed sample, recorded with each best export (`ProbeConfig.sample_settings`).
        probe_config = getattr(getattr(task, "quality_probe", None), "config", None)
        best = BestExporter(config.model_dir, config.best_metric, config.best_metric_mode, task.export,
                            probe=probe_config.sample_settings() if hasattr(probe_config, "sample_settings")
                            else None)
    writer = (tf.summary.create_file_writer(config.summary_dir) if chief
              else tf.summary.create_noop_writer())
    if chief and config.flags and start_step == 0:
        with writer.as_default():
            summaries.write_flags_text(config.flags)

    dataset = strategy.distribute_datasets_from_function(
        lambda context: dataset_fn(context, start_step))
    iterator = iter(dataset)

    replica_step = tf.function(task.train_step, jit_compile=True) if config.jit_compile else task.train_step
    watched = _watched_variables(task)
    threshold = float(config.divergence_threshold)

    def one_step(iterator):
        batch = next(iterator)
        per_replica = strategy.run(replica_step, args=(batch, step_var.read_value()))
        step_var.assign_add(1)
        metrics = {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in per_replica.items()}
        loss_peak = _peak(list(metrics.values()))
        weight_peak = _peak([_value(v) for v in watched])  # after this step's update
        healthy = tf.math.is_finite(loss_peak) & tf.math.is_finite(weight_peak)
        if threshold > 0:
            healthy &= (loss_peak <= threshold) & (weight_peak <= threshold)
        return metrics, healthy

    @tf.function
    def train_loop(iterator, num_steps, stop):
        """Runs up to `num_steps` (>= 1) steps, stopping after an unhealthy one; then all-reduces `stop`
        (SIGTERM seen by any worker). Returns (steps done, healthy, last metrics, metric sums, stop)."""
        metrics, healthy = one_step(iterator)
        sums = dict(metrics)

        def cond(done, healthy, metrics, sums):
            return (done < num_steps) & healthy

        def body(done, healthy, metrics, sums):
            new, healthy = one_step(iterator)
            return done + 1, healthy, new, {k: sums[k] + new[k] for k in sums}

        done, healthy, metrics, sums = tf.while_loop(cond, body, (tf.constant(1), healthy, metrics, sums))
        stop_all = strategy.run(lambda s: tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.SUM, tf.cast(s, tf.float32) + tf.zeros([])), args=(stop,))
        return done, healthy, metrics, sums, strategy.experimental_local_results(stop_all)[0]

    window = {"sums": None, "steps": 0, "t0": time.perf_counter()}
    state = {"saved": start_step if restored else -1}

    def log(step):
        if not window["steps"]:
            return
        mean = {k: v / window["steps"] for k, v in window["sums"].items()}
        rate = window["steps"] / max(time.perf_counter() - window["t0"], 1e-9)
        with writer.as_default():
            summaries.write_scalars(mean, step)
            tf.summary.scalar("steps_per_second", rate, step=step)
        scalars = ", ".join(f"{k}={float(v):.4f}" for k, v in mean.items() if np.ndim(v) == 0)
        logging.info("step %d/%d  %s  (%.2f steps/s)", step, config.train_steps, scalars, rate)
        window.update(sums=None, steps=0, t0=time.perf_counter())

    def samples(step):
        if chief:
            with writer.as_default():
                task.write_samples(step)

    def evaluate(step):
        if chief and hasattr(task, "evaluate"):
            values = _run_evaluation(task, step, config, writer)
            if best is not None:
                best.update(step, values)

    def checkpoint(step):
        keeper.save(step)  # every worker: a collective under MultiWorkerMirroredStrategy
        state["saved"] = step

    # The schedule is the same on every worker (the number of steps per call must agree); the actions
    # that only the chief performs are no-ops elsewhere.
    actions = [Action("log", config.log_every, log), Action("samples", config.sample_every, samples),
               Action("eval", config.eval_every if hasattr(task, "evaluate") else 0, evaluate),
               Action("checkpoint", config.checkpoint_every, checkpoint)]

    metrics: dict = {}
    step = start_step
    t_start = time.perf_counter()
    with SigtermWatcher(config.preemption_grace_seconds) as sigterm:
        while step < config.train_steps:
            num = min(config.steps_per_loop, _next_boundary(step, actions, config.train_steps) - step)
            done, healthy, last, sums, stop = train_loop(
                iterator, tf.constant(num, tf.int32), tf.constant(int(sigterm.requested), tf.int32))
            step += int(done)
            metrics = {k: np.asarray(v) for k, v in last.items()}
            if not bool(healthy):
                raise TrainingDivergedError(_divergence_message(metrics, watched, step, threshold, keeper))
            sums = {k: np.asarray(v) for k, v in sums.items()}
            window["sums"] = sums if window["sums"] is None else {k: window["sums"][k] + sums[k] for k in sums}
            window["steps"] += int(done)
            for action in actions:
                if action.due(step, config.train_steps):
                    action.run(step)
            if int(stop) > 0 and step < config.train_steps:
                if state["saved"] != step:
                    checkpoint(step)
                writer.flush()
                raise TrainingPreempted(
                    f"SIGTERM: stopped at step {step} and saved {keeper.latest}; run the same command to "
                    f"resume from it", step, keeper.latest)
    writer.flush()
    elapsed = time.perf_counter() - t_start
    export_path = None
    if config.export and chief:
        export_path = export_step(config.export_dir, task, step)
    return TrainingResult(start_step=start_step, final_step=step, last_metrics=metrics,
                          export_path=export_path,
                          steps_per_second=(step - start_step) / elapsed if step > start_step else math.nan)
