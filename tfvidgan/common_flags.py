"""Flags shared by the trainers, and their conversion into plain config objects.

Only entry points (`train_frames`, `train_video`, `train_reconstructor`) import this module; library code
receives the dataclasses built here and never reads `absl.flags.FLAGS`.

One source for every default: a flag that feeds a config dataclass field is declared as a `FlagSpec`
(name → field) and takes its default FROM that field (`define_config_flags`); `config_kwargs` reads the
parsed values back into the same fields. The only defaults written in an entry point are its quick-start
loop values (`model_dir`, `train_steps`, `batch_size`, how often to log/sample/checkpoint).
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
from tfvidgan.metrics.quality_probe import ProbeConfig
from tfvidgan.models.ensemble_discriminator import DISCRIMINATOR_HEADS, DISCRIMINATOR_NORMALIZATIONS
from tfvidgan.training.adversarial import AdversarialConfig  # noqa: F401 (re-exported)
from tfvidgan.training.best_export import MODES as BEST_METRIC_MODES
from tfvidgan.training.loop import InputConfig, LoopConfig
from tfvidgan.training.optimizers import LR_SCHEDULES, OPTIMIZERS, OptimizerConfig  # noqa: F401 (re-exported)
from tfvidgan.training.run_lock import check_model_dir
from tfvidgan.training.strategy import DEFAULT_COLLECTIVE_TIMEOUT, STRATEGY_KINDS, make_strategy

_TYPES = {"bool": bool, "int": int, "float": float, "str": str}


@dataclasses.dataclass(frozen=True)
class FlagSpec:
    """How one flag feeds one config field.

    `field`: the dotted path of the field it feeds ("latent_dim", "adversarial.loss",
    "generator_optimizer.learning_rate"); None = the flag's own name. `choices`: an enum flag.
    `minimum` (with `strict` for >): ints get it as absl's lower bound; floats are always checked finite
    at parse time and, with a minimum, bounded (the error names the flag).
    """
    help: str
    field: str | None = None
    choices: tuple | None = None
    minimum: float | None = None
    strict: bool = False


def _spec(spec) -> FlagSpec:
    return spec if isinstance(spec, FlagSpec) else FlagSpec(spec)


def _leaf(config_cls, path: str):
    """(dataclasses.Field, default) of field `path` of `config_cls`; a nested field's default is read from
    the parent field's default instance (e.g. `FramesGanConfig.adversarial.joint_batch`). A required field
    has default None."""
    names = path.split(".")
    cls, instance = config_cls, None
    for i, name in enumerate(names):
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if name not in fields:
            raise KeyError(f"{config_cls.__name__} has no field {path!r}")
        field = fields[name]
        if instance is not None:
            default = getattr(instance, name)
        elif field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = None
        if i < len(names) - 1:
            cls, instance = type(default), default
    return field, default


def field_default(config_cls, path: str):
    """The default of field `path` (dotted for nested configs) of dataclass `config_cls`; None if required."""
    return _leaf(config_cls, path)[1]


def _field_type(config_cls, path: str) -> type:
    field, default = _leaf(config_cls, path)
    annotation = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
    return _TYPES.get(annotation, type(default))


def define_config_flags(config_cls, specs: dict, flag_values: flags.FlagValues = flags.FLAGS,
                        defaults: dict | None = None) -> None:
    """Defines one flag per `specs` entry (`{flag name: FlagSpec or help string}`), its default taken from
    the config field it feeds; DEFINE_enum / bool / integer / float / string from the spec and field type.

    `defaults` overrides the default of a few flags; only the entry points' quick-start loop values (and
    required fields, which have no dataclass default) use it.
    """
    defaults = defaults or {}
    fv = dict(flag_values=flag_values)
    for name, spec in specs.items():
        spec = _spec(spec)
        path = spec.field or name
        default = defaults[name] if name in defaults else field_default(config_cls, path)
        kind = _field_type(config_cls, path)
        if spec.choices is not None:
            flags.DEFINE_enum(name, default, list(spec.choices), spec.help, **fv)
        elif kind is bool:
            flags.DEFINE_bool(name, default, spec.help, **fv)
        elif kind is int:
            lower = None if spec.minimum is None else int(spec.minimum) + int(spec.strict)
            flags.DEFINE_integer(name, default, spec.help, lower_bound=lower, **fv)
        elif kind is float:
            flags.DEFINE_float(name, default, spec.help, **fv)
            _require_finite(name, spec.minimum, spec.strict, flag_values=flag_values)
        else:
            flags.DEFINE_string(name, default, spec.help, **fv)


def _replace(instance, updates: dict):
    """`dataclasses.replace` for dotted paths: `{"a": 1, "b.c": 2}`."""
    direct, nested = {}, {}
    for path, value in updates.items():
        head, _, rest = path.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            direct[head] = value
    for head, sub in nested.items():
        direct[head] = _replace(getattr(instance, head), sub)
    return dataclasses.replace(instance, **direct)


def config_kwargs(config_cls, values, specs: dict) -> dict:
    """`{field: value}` for `config_cls(...)` from parsed flag `values` (`flags.FLAGS` or any object with
    the flags as attributes): the reverse of `define_config_flags`. A nested config (`adversarial`,
    `*_optimizer`) is the field's default with the flag-fed fields replaced."""
    top, nested = {}, {}
    for name, spec in specs.items():
        path = _spec(spec).field or name
        head, _, rest = path.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = getattr(values, name)
        else:
            top[head] = getattr(values, name)
    for head, updates in nested.items():
        top[head] = _replace(field_default(config_cls, head), updates)
    return top


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


# ----------------------------------------------------------------------------- flag tables
# Flags of `LoopConfig`, `InputConfig` and `ProbeConfig`; `define_run_flags` adds the entry point's
# quick-start values for the required fields and the loop cadence.
LOOP_FLAGS = {
    "model_dir": "Run directory: checkpoints/, summaries/, export/, samples/. Running again with the same "
                 "flags resumes from its latest checkpoint.",
    "train_steps": "Total number of training steps (including resumed ones).",
    "log_every": "Write scalar summaries every N steps.",
    "sample_every": "Write sample images/videos every N steps.",
    "checkpoint_every": "Save a checkpoint every N steps.",
    "eval_every": "Every N steps (and at the end), measure sample quality on a fixed-seed sample against "
                  "held-out real data: TensorBoard eval/* and <model_dir>/metrics.jsonl. 0 = off.",
    "max_checkpoints": "How many recent checkpoints to keep.",
    "jit_compile": "Compile each replica's training step with XLA (one replica only). Measured 15x SLOWER on "
                   "CPU (XLA's grouped-conv gradients); try it on GPUs.",
    "mixed_precision": "bfloat16 compute with float32 variables (Keras 'mixed_bfloat16' policy); for GPUs/CPUs "
                       "with bfloat16 units (avx512_bf16 / amx_bf16 in /proc/cpuinfo; without them it measured "
                       "2-2.7x SLOWER than float32, and the trainer warns).",
    "divergence_threshold": FlagSpec("Stop (non-zero exit, no checkpoint or export of the diverged state) when "
                                     "|loss| or |weight| exceeds this after a step; NaN/inf always stop. 0 = only "
                                     "NaN/inf.", minimum=0.0),
    "best_metric": "With --eval_every: after each evaluation, export the model to <model_dir>/best_export/<step> "
                   "when this evaluation value (an eval/* name, e.g. worst_target_ratio: <= 1 when every quality "
                   "target holds) improves; <model_dir>/best.json records it. Empty = off.",
    "best_metric_mode": FlagSpec("Whether a lower (min) or higher (max) --best_metric is better.",
                                 choices=BEST_METRIC_MODES),
    "steps_per_loop": FlagSpec("Training steps per tf.function call (fewer host round trips); logging, samples, "
                               "checkpoints and SIGTERM handling happen between calls, at their exact steps.",
                               minimum=1),
}
INPUT_FLAGS = {
    "batch_size": "GLOBAL batch size, split evenly over all replicas.",
    "data_seed": FlagSpec("Seed of the input pipeline's shuffling and random frame/offset picks.", "seed"),
    "skip_bad_records": "Skip (and count) corrupt or wrong-shaped records instead of stopping with an error.",
}
PROBE_FLAGS = {
    "eval_samples": FlagSpec("Generated and real samples per --eval_every evaluation.", "num_samples"),
    "encoder_cache": FlagSpec("Directory of the cached Fréchet encoders (shared with `python -m "
                              "tfvidgan.evaluate`).", "cache_dir"),
    "eval_long_frames": FlagSpec("Video trainer: each evaluation also rolls out --eval_samples videos this long "
                                 "(>= 2 x --sample_length) and reports the drift between their first and last "
                                 "windows (eval/long_video_drift, and the drift target). 0 = off.",
                                 "long_frames", minimum=0),
    "eval_rejection_acceptance": FlagSpec("Frames trainer: each evaluation scores frames drawn by discriminator "
                                          "rejection sampling with the run's CURRENT discriminators, keeping this "
                                          "fraction of candidates (0 = plain samples). For "
                                          "--refine_discriminators_of runs, whose generator is frozen.",
                                          "rejection_acceptance"),
}
# The only defaults an entry point may set: the required fields and the loop's cadence (its quick start).
QUICK_START_FLAGS = ("model_dir", "train_steps", "batch_size", "log_every", "sample_every", "checkpoint_every")


def define_run_flags(quick_start: dict, flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines where to write, how long to train, the batch, the input pipeline, in-training evaluation and
    the strategy. `quick_start`: the entry point's defaults for `QUICK_START_FLAGS` (model_dir, train_steps
    and batch_size are required: their fields have no default); every other default is its field's."""
    unknown = set(quick_start) - set(QUICK_START_FLAGS)
    missing = {"model_dir", "train_steps", "batch_size"} - set(quick_start)
    if unknown or missing:
        raise ValueError(f"quick_start: unknown {sorted(unknown)}, missing {sorted(missing)}")
    define_config_flags(LoopConfig, LOOP_FLAGS, flag_values, defaults=quick_start)
    define_config_flags(InputConfig, INPUT_FLAGS, flag_values, defaults=quick_start)
    define_config_flags(ProbeConfig, PROBE_FLAGS, flag_values)
    fv = dict(flag_values=flag_values)
    flags.DEFINE_enum("strategy", "auto", list(STRATEGY_KINDS),
                      "tf.distribute strategy: auto = MultiWorkerMirrored if TF_CONFIG names a cluster, "
                      "else Mirrored over all GPUs (or the CPU).", **fv)
    flags.DEFINE_float("collective_timeout", DEFAULT_COLLECTIVE_TIMEOUT,
                       "Multi-worker only: seconds a worker waits for its peers (registration at start, "
                       "each collective, heartbeats) before failing with an error naming the missing task.", **fv)
    _require_finite("collective_timeout", 0.0, strict=True, flag_values=flag_values)


def optimizer_flags(prefix: str, field: str, what: str) -> dict:
    """`--{prefix}_optimizer`, `--{prefix}_lr`, `--{prefix}_beta1`, `--{prefix}_lr_schedule`,
    `--{prefix}_lr_decay_steps`, `--{prefix}_lr_final_fraction`, `--{prefix}_lr_decay_start`,
    `--{prefix}_clip_norm` feeding the `OptimizerConfig` field `field` (its `name`, `learning_rate`,
    `beta_1`, `schedule`, `decay_steps`, `final_fraction`, `decay_start`, `clip_norm`); the defaults are
    that field's default's."""
    return {
        f"{prefix}_optimizer": FlagSpec(f"Optimizer of the {what}.", f"{field}.name", choices=OPTIMIZERS),
        f"{prefix}_lr": FlagSpec(f"Learning rate of the {what}.", f"{field}.learning_rate", minimum=0.0,
                                 strict=True),
        f"{prefix}_beta1": FlagSpec(f"Adam beta_1 of the {what} (unused by RMSprop).", f"{field}.beta_1",
                                    minimum=0.0),
        f"{prefix}_lr_schedule": FlagSpec(f"Learning-rate schedule of the {what}: constant, or cosine decay over "
                                          f"--{prefix}_lr_decay_steps optimizer updates.", f"{field}.schedule",
                                          choices=LR_SCHEDULES),
        f"{prefix}_lr_decay_steps": FlagSpec(f"Cosine schedule of the {what}: optimizer updates over which the "
                                             f"rate decays (normally --train_steps).", f"{field}.decay_steps",
                                             minimum=0),
        f"{prefix}_lr_final_fraction": FlagSpec(f"Cosine schedule of the {what}: the final rate as a fraction of "
                                                f"--{prefix}_lr.", f"{field}.final_fraction", minimum=0.0),
        f"{prefix}_lr_decay_start": FlagSpec(f"Cosine schedule of the {what}: optimizer updates at the constant "
                                             f"rate before the decay starts (it ends at --{prefix}_lr_decay_steps); "
                                             f"0 = decay from the start.", f"{field}.decay_start", minimum=0),
        f"{prefix}_clip_norm": FlagSpec(f"Clip the global norm of the {what}'s gradients (summed over replicas: "
                                        f"the global batch's gradient) to this; 0 = off.", f"{field}.clip_norm",
                                        minimum=0.0),
    }


def discriminator_flags(what: str, first_conv: str) -> dict:
    """`--discriminator_filters`, `--discriminator_normalization`, `--discriminator_head` of the projected
    discriminators (`what`, e.g. "discriminator"; their first layer `first_conv`, e.g. "conv" or "Conv3D"),
    feeding the config fields of the same names."""
    return {
        "discriminator_filters": f"Filters of each {what}'s first {first_conv} (doubling).",
        "discriminator_normalization": FlagSpec(f"Normalization inside each {what}.",
                                                choices=DISCRIMINATOR_NORMALIZATIONS),
        "discriminator_head": FlagSpec(f"Logit head of each {what}: linear (one conv over the last map) or mlp (a "
                                       "hidden layer, so a global count can be judged non-monotonically).",
                                       choices=DISCRIMINATOR_HEADS),
    }


INIT_SEED_FLAG = {"init_seed": FlagSpec(
    "Seed of the initial weights of the models the run creates: the same flags, --init_seed and --data_seed "
    "start from the same weights and see the same batches and noise (float reductions on many threads can "
    "still differ in the last bits). Ignored on resume (the weights come from the checkpoint).")}


def loss_flag(field: str = "adversarial") -> dict:
    """`--loss`: the GAN loss kind, a name registered in `tfvidgan.losses.LOSSES` when this is called."""
    return {"loss": FlagSpec("GAN loss.", f"{field}.loss", choices=tuple(losses.LOSSES))}


def adversarial_flags(field: str = "adversarial") -> dict:
    """The ensemble size, projections, noise seed, GAN loss and how the generator combines the K losses, for
    a config with `num_discriminators`, `projection_seed`, `noise_seed` and an `AdversarialConfig` field.

    The choices of `--loss` and `--combiner` are the names registered in `tfvidgan.losses` (`LOSSES`,
    `COMBINERS`) when this is called: register custom parts before defining the flags.
    """
    return {
        "num_discriminators": "K: discriminators, each behind its own fixed random projection.",
        "projection_seed": "Seed of the K random projections.",
        "noise_seed": "Seed of the generator's noise (sample grids use a fixed draw).",
        **loss_flag(field),
        "combiner": FlagSpec("How the generator combines the K losses: mean, gman (softmax(alpha*l) weights), "
                             "hypervolume (-sum log(eta - l_k), eta = delta * max l_k), or one registered with "
                             "tfvidgan.losses.register_combiner.", f"{field}.combiner",
                             choices=tuple(losses.COMBINERS)),
        "gman_alpha": FlagSpec("GMAN softmax temperature alpha.", f"{field}.gman_alpha", minimum=0.0),
        "hypervolume_delta": FlagSpec("Hypervolume slack delta (> 1).", f"{field}.hypervolume_delta"),
        "hypervolume_normalize": FlagSpec("Divide the hypervolume weights by their sum (as the authors' code "
                                          "does), so the step size does not grow with K.",
                                          f"{field}.hypervolume_normalize"),
        "discriminator_steps": FlagSpec("Discriminator updates per generator update.",
                                        f"{field}.discriminator_steps"),
        "discriminator_joint_batch": FlagSpec("Pass real and fake frames through the discriminators as one batch "
                                              "(shared normalisation statistics) instead of two.",
                                              f"{field}.joint_batch"),
        "r1_weight": FlagSpec("R1 gradient penalty gamma on real data (0 = off): each discriminator's loss gains "
                              "gamma/2 E||grad D_k||^2 w.r.t. its own projected input.", f"{field}.r1_weight",
                              minimum=0.0),
    }


def check_adversarial_flags(values) -> None:
    """Named errors for ensemble flags the config would reject less clearly."""
    if values.hypervolume_delta <= 1.0 and values.combiner == "hypervolume":
        raise ConfigError(f"--hypervolume_delta must be > 1, got {values.hypervolume_delta}")
    if values.num_discriminators < 1:
        raise ConfigError(f"--num_discriminators must be >= 1, got {values.num_discriminators}")


def run_flags(values) -> dict:
    """{name: value} of the flags defined by tfvidgan and by the entry point (written to TensorBoard)."""
    return {flag.name: flag.value
            for module, module_flags in values.flags_by_module_dict().items()
            if module == "__main__" or "tfvidgan" in module.replace("/", ".")  # `python -m`: the file path
            for flag in module_flags}


def loop_config(values, *, export: bool = True) -> LoopConfig:
    """`LoopConfig` from parsed flag values (`values` = `flags.FLAGS`)."""
    return LoopConfig(**config_kwargs(LoopConfig, values, LOOP_FLAGS), export=export, flags=run_flags(values))


def input_config(values, data: str) -> InputConfig:
    """The task's `InputConfig`: `data` (the resolved dataset path) and the input flags."""
    return InputConfig(data=data, **config_kwargs(InputConfig, values, INPUT_FLAGS))


def probe_config(values, data: str) -> ProbeConfig | None:
    """The in-training quality probe's config, or None with `--eval_every=0`."""
    if not values.eval_every:
        return None
    return ProbeConfig(data=data, **config_kwargs(ProbeConfig, values, PROBE_FLAGS))


def check_best_metric(values, probe) -> None:
    """`--best_metric` must name a value the run's quality probe reports (checked before training starts)."""
    if values.best_metric and probe is not None and values.best_metric not in probe.names():
        raise ConfigError(f"--best_metric={values.best_metric!r} is not an evaluation value of this trainer; "
                          f"--eval_every reports {', '.join(probe.names())}")


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
