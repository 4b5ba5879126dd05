"""Flags shared by the trainers, and their conversion into plain config objects.

Only entry points (`train_frames`, `train_video`, `train_reconstructor`) import this module; library code
receives the dataclasses built here and never reads `absl.flags.FLAGS`.
"""
from __future__ import annotations

import dataclasses
import glob
import math
import os

import tensorflow as tf
from absl import flags

from tfvidgan import losses
from tfvidgan.errors import ConfigError
from tfvidgan.training.adversarial import AdversarialConfig  # noqa: F401 (re-exported)
from tfvidgan.training.loop import LoopConfig
from tfvidgan.training.optimizers import OPTIMIZERS, OptimizerConfig  # noqa: F401 (re-exported)
from tfvidgan.training.run_lock import check_model_dir
from tfvidgan.training.strategy import DEFAULT_COLLECTIVE_TIMEOUT, STRATEGY_KINDS, make_strategy


def _default(cls, name: str):
    """The dataclass default of `cls.name`: flags take their defaults from the configs (one source)."""
    return {f.name: f.default for f in dataclasses.fields(cls)}[name]


def _require_finite(name: str, minimum: float | None = None, strict: bool = False,
                    flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Rejects NaN/inf (and values below `minimum`) for float flag `name` at parse time, naming it."""
    bound = "" if minimum is None else f" {'>' if strict else '>='} {minimum:g}"

    def check(value):
        if value is None or not math.isfinite(value):
            return False
        if minimum is not None and (value <= minimum if strict else value < minimum):
            return False
        return True
    flags.register_validator(name, check, message=f"--{name} must be a finite number{bound}", flag_values=flag_values)


def define_loop_flags(*, model_dir: str, train_steps: int, batch_size: int, log_every: int = 50,
                      sample_every: int = 500, checkpoint_every: int = 500) -> None:
    """Defines where to write, how long to train, the batch and the strategy."""
    flags.DEFINE_string("model_dir", model_dir, "Run directory: checkpoints/, summaries/, export/, samples/. "
                        "Running again with the same flags resumes from its latest checkpoint.")
    flags.DEFINE_integer("train_steps", train_steps, "Total number of training steps (including resumed ones).")
    flags.DEFINE_integer("batch_size", batch_size, "GLOBAL batch size, split evenly over all replicas.")
    flags.DEFINE_integer("log_every", log_every, "Write scalar summaries every N steps.")
    flags.DEFINE_integer("sample_every", sample_every, "Write sample images/videos every N steps.")
    flags.DEFINE_integer("checkpoint_every", checkpoint_every, "Save a checkpoint every N steps.")
    flags.DEFINE_integer("eval_every", 0, "Every N steps (and at the end), measure sample quality on a fixed-seed "
                         "sample against held-out real data: TensorBoard eval/* and <model_dir>/metrics.jsonl. "
                         "0 = off.")
    flags.DEFINE_integer("eval_samples", 500, "Generated and real samples per --eval_every evaluation.")
    flags.DEFINE_string("encoder_cache", "eval_cache", "Directory of the cached Fréchet encoders (shared with "
                        "`python -m tfvidgan.evaluate`).")
    flags.DEFINE_integer("max_checkpoints", 3, "How many recent checkpoints to keep.")
    flags.DEFINE_enum("strategy", "auto", list(STRATEGY_KINDS),
                      "tf.distribute strategy: auto = MultiWorkerMirrored if TF_CONFIG names a cluster, "
                      "else Mirrored over all GPUs (or the CPU).")
    flags.DEFINE_integer("data_seed", 0, "Seed of the input pipeline's shuffling and random frame/offset picks.")
    flags.DEFINE_bool("jit_compile", False, "Compile each replica's training step with XLA (one replica only). "
                      "Measured 15x SLOWER on CPU (XLA's grouped-conv gradients); try it on GPUs.")
    flags.DEFINE_bool("mixed_precision", False, "bfloat16 compute with float32 variables (Keras "
                      "'mixed_bfloat16' policy); for GPUs/CPUs with bfloat16 units.")
    flags.DEFINE_bool("skip_bad_records", False, "Skip (and count) corrupt or wrong-shaped records instead of "
                      "stopping with an error.")
    flags.DEFINE_float("divergence_threshold", _default(LoopConfig, "divergence_threshold"),
                       "Stop (non-zero exit, no checkpoint or export of the diverged state) when |loss| or "
                       "|weight| exceeds this after a step; NaN/inf always stop. 0 = only NaN/inf.")
    _require_finite("divergence_threshold", 0.0)
    flags.DEFINE_integer("steps_per_loop", _default(LoopConfig, "steps_per_loop"),
                         "Training steps per tf.function call (fewer host round trips); logging, samples, "
                         "checkpoints and SIGTERM handling happen between calls, at their exact steps.",
                         lower_bound=1)
    flags.DEFINE_float("collective_timeout", DEFAULT_COLLECTIVE_TIMEOUT,
                       "Multi-worker only: seconds a worker waits for its peers (registration at start, "
                       "each collective, heartbeats) before failing with an error naming the missing task.")
    _require_finite("collective_timeout", 0.0, strict=True)


def define_optimizer_flags(prefix: str, what: str, learning_rate: float = 2e-4) -> None:
    """Defines `--{prefix}_optimizer`, `--{prefix}_lr`, `--{prefix}_beta1`."""
    flags.DEFINE_enum(f"{prefix}_optimizer", "rmsprop", list(OPTIMIZERS), f"Optimizer of the {what}.")
    flags.DEFINE_float(f"{prefix}_lr", learning_rate, f"Learning rate of the {what}.")
    flags.DEFINE_float(f"{prefix}_beta1", 0.5, f"Adam beta_1 of the {what} (unused by RMSprop).")
    _require_finite(f"{prefix}_lr", 0.0, strict=True)
    _require_finite(f"{prefix}_beta1", 0.0)


def define_adversarial_flags(num_discriminators: int, flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines the ensemble size, GAN loss and how the generator combines the K losses.

    The choices of `--loss` and `--combiner` are the names registered in `tfvidgan.losses` (`LOSSES`,
    `COMBINERS`) when this is called: register custom parts before defining the flags.
    """
    fv = dict(flag_values=flag_values)
    flags.DEFINE_integer("num_discriminators", num_discriminators,
                         "K: discriminators, each behind its own fixed random projection.", **fv)
    flags.DEFINE_integer("projection_seed", 0, "Seed of the K random projections.", **fv)
    flags.DEFINE_enum("loss", AdversarialConfig.loss, list(losses.LOSSES), "GAN loss.", **fv)
    flags.DEFINE_enum("combiner", AdversarialConfig.combiner, list(losses.COMBINERS),
                      "How the generator combines the K losses: mean, gman (softmax(alpha*l) weights), "
                      "hypervolume (-sum log(eta - l_k), eta = delta * max l_k), or one registered with "
                      "tfvidgan.losses.register_combiner.", **fv)
    flags.DEFINE_float("gman_alpha", AdversarialConfig.gman_alpha, "GMAN softmax temperature alpha.", **fv)
    flags.DEFINE_float("hypervolume_delta", AdversarialConfig.hypervolume_delta, "Hypervolume slack delta (> 1).",
                       **fv)
    flags.DEFINE_bool("hypervolume_normalize", AdversarialConfig.hypervolume_normalize,
                      "Divide the hypervolume weights by their sum (as the authors' code does), so the step size "
                      "does not grow with K.", **fv)
    flags.DEFINE_integer("discriminator_steps", AdversarialConfig.discriminator_steps,
                         "Discriminator updates per generator update.", **fv)
    flags.DEFINE_bool("discriminator_joint_batch", AdversarialConfig.joint_batch,
                      "Pass real and fake frames through the discriminators as one batch (shared "
                      "normalisation statistics) instead of two.", **fv)
    flags.DEFINE_integer("noise_seed", 0, "Seed of the generator's noise (sample grids use a fixed draw).", **fv)
    _require_finite("gman_alpha", 0.0, flag_values=flag_values)
    _require_finite("hypervolume_delta", flag_values=flag_values)


def run_flags(values) -> dict:
    """{name: value} of the flags defined by tfvidgan and by the entry point (written to TensorBoard)."""
    return {flag.name: flag.value
            for module, module_flags in values.flags_by_module_dict().items()
            if module == "__main__" or "tfvidgan" in module.replace("/", ".")  # `python -m`: the file path
            for flag in module_flags}


def loop_config(values, *, export: bool = True) -> LoopConfig:
    """`LoopConfig` from parsed flag values (`values` = `flags.FLAGS`)."""
    return LoopConfig(model_dir=values.model_dir, train_steps=values.train_steps, log_every=values.log_every,
                      sample_every=values.sample_every, checkpoint_every=values.checkpoint_every,
                      eval_every=values.eval_every, max_checkpoints=values.max_checkpoints, export=export,
                      jit_compile=values.jit_compile, mixed_precision=values.mixed_precision,
                      divergence_threshold=values.divergence_threshold, steps_per_loop=values.steps_per_loop,
                      flags=run_flags(values))


def optimizer_config(values, prefix: str) -> OptimizerConfig:
    return OptimizerConfig(name=values[f"{prefix}_optimizer"].value, learning_rate=values[f"{prefix}_lr"].value,
                           beta_1=values[f"{prefix}_beta1"].value)


def adversarial_config(values) -> AdversarialConfig:
    if values.hypervolume_delta <= 1.0 and values.combiner == "hypervolume":
        raise ConfigError(f"--hypervolume_delta must be > 1, got {values.hypervolume_delta}")
    if values.num_discriminators < 1:
        raise ConfigError(f"--num_discriminators must be >= 1, got {values.num_discriminators}")
    return AdversarialConfig(loss=values.loss, combiner=values.combiner, gman_alpha=values.gman_alpha,
                             hypervolume_delta=values.hypervolume_delta,
                             hypervolume_normalize=values.hypervolume_normalize,
                             discriminator_steps=values.discriminator_steps,
                             joint_batch=values.discriminator_joint_batch)


def check_global_batch(batch_size: int, num_replicas: int) -> int:
    """Per-replica batch; the global batch must split evenly over replicas (flag --batch_size)."""
    if batch_size < 1 or batch_size % num_replicas:
        raise ConfigError(f"--batch_size={batch_size} must be a positive multiple of the number of "
                          f"replicas ({num_replicas})")
    return batch_size // num_replicas


def check_data_path(path: str, flag: str = "--data") -> None:
    """A `--data` directory, file or glob must exist (match); the error names the flag and the path."""
    if glob.has_magic(path):
        if not glob.glob(path):
            raise ConfigError(f"{flag}={path!r} matches no file")
    elif not os.path.exists(path):
        raise ConfigError(f"{flag}={path!r} does not exist")


@dataclasses.dataclass
class RunSetup:
    """What every trainer's `main` needs before it builds its task."""
    strategy: tf.distribute.Strategy
    per_replica_batch: int
    loop: LoopConfig


def prepare_run(values) -> RunSetup:
    """Creates the strategy FIRST (MultiWorkerMirroredStrategy must exist before other TF ops), then
    checks the batch against the replica count and builds the loop config. A `--model_dir` that is a
    file or not writable, and a `--data` path that does not exist, fail here, naming the flag."""
    check_model_dir(values.model_dir)
    if "data" in values and values.data:
        check_data_path(values.data)
    strategy = make_strategy(values.strategy, collective_timeout=values.collective_timeout)
    per_replica_batch = check_global_batch(values.batch_size, strategy.num_replicas_in_sync)
    return RunSetup(strategy, per_replica_batch, loop_config(values))
