"""Keras-native GANs: `FramesGAN`, `VideoGAN`, `ReconstructionGAN` — `compile()` and `fit()` on the tasks.

Each model WRAPS a task (`tfvidgan.training.frames_task.FramesGanTask`, `video_task.VideoGanTask`,
`reconstruction_task.ReconstructionTask`): the task builds the networks and optimizers, and the model's
`train_step(data)` calls `task.train_step(batch, step)` — the very function `tfvidgan.training.loop.run_training`
runs inside `strategy.run` — so there is one implementation of the GAN update (`tfvidgan.training.adversarial`).
The model adds what Keras expects around it:

* `compile(generator_optimizer=..., discriminator_optimizer=..., loss=..., combiner=..., **adversarial)` maps
  onto the task: optimizers replace the task's (an `OptimizerConfig`, a Keras optimizer instance created in
  the strategy scope, a name such as ``"adam"``, or None to keep the config's), `loss`/`combiner`/other
  `AdversarialConfig` fields replace `task.config.adversarial`.
* the step counter `model.step` (int64 variable, steps done; the loop's `global_step`) is passed to the task,
  so the noise of step t (`tfvidgan.training.noise`) and the EMA ramp are the loop's;
* losses as `keras.metrics.Mean` trackers of GLOBAL values (the task's per-replica values all-reduced):
  the totals (``d_loss``, ``g_loss``, ...) and one tracker per discriminator (``d_loss_000``, ``g_loss_000``,
  ``g_weight_000``, ...);
* `discriminators[k]`: discriminator k of the grouped ensemble as a `DiscriminatorView` that SHARES the
  ensemble's variables (no copy);
* `save("x.keras")` / `keras.models.load_model` (config + all weights, optimizer slots and step included)
  and `save_weights` / `load_weights`.

`fit()` runs on one device and under `tf.distribute.MirroredStrategy` (create AND compile the model inside
`strategy.scope()`): a fit step on N replicas is the same computation as the loop's step on the same data.
Feed a `tf.data.Dataset` batched with ``drop_remainder=True`` (the GAN step needs a static batch size) or
numpy arrays with `batch_size` (batched with ``drop_remainder=True`` here). Under
`MultiWorkerMirroredStrategy`, `fit` raises `ConfigError` (Keras 3 `fit` does not support it, keras#20585):
train multi-worker runs with the command-line trainers, which use the custom loop.

What the loop does around the steps is available as callbacks in `tfvidgan.keras_callbacks` (samples, export,
evaluation); generator EMA is part of the frames task's step, so `fit` maintains it exactly as the loop does.
The loop's divergence guard is not part of `fit` (use `keras.callbacks.TerminateOnNaN`).
"""
from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from tfvidgan import losses
from tfvidgan.errors import ConfigError
from tfvidgan.models.ensemble_discriminator import unrolled_discriminators
from tfvidgan.models.frames_generator import render
from tfvidgan.training import adversarial
from tfvidgan.training.frames_task import FramesGanConfig, FramesGanTask
from tfvidgan.training.optimizers import OptimizerConfig, make_optimizer
from tfvidgan.training.reconstruction_task import ReconstructionConfig, ReconstructionTask
from tfvidgan.training.video_task import VideoGanConfig, VideoGanTask

CLI_HINT = ("train multi-worker runs with the command-line trainers (python -m tfvidgan.train_frames | "
            "train_video | train_reconstructor, or tfvidgan.training.loop.run_training), whose custom loop "
            "supports MultiWorkerMirroredStrategy")
_ADVERSARIAL_FIELDS = tuple(f.name for f in dataclasses.fields(adversarial.AdversarialConfig))


# ---------------------------------------------------------------------------------------------
# Per-discriminator views.


class DiscriminatorView:
    """Discriminator k of a grouped ensemble (`tfvidgan.models.ensemble_discriminator`), sharing its variables.

    Not a copy: training the GAN changes what the view computes and `set_weights` writes into the
    ensemble. Calling it evaluates the whole ensemble (one grouped computation) and keeps column k, so it
    costs as much as the ensemble; `to_model()` returns a standalone ordinary Keras model with a COPY of the
    current weights (`unrolled_discriminators`).
    """

    def __init__(self, ensemble: keras.Model, index: int):
        self.ensemble = ensemble
        self.num_discriminators = int(ensemble.get_layer("projection").num_projections)
        if not 0 <= index < self.num_discriminators:
            raise ConfigError(f"discriminator index must be in [0, {self.num_discriminators}), got {index}")
        self.index = int(index)

    def __repr__(self):
        return f"<DiscriminatorView {self.index} of {self.ensemble.name} (K={self.num_discriminators})>"

    def __call__(self, inputs, training: bool = False) -> tf.Tensor:
        """Inputs as the ensemble's (`[B, H, W, C]` frames or `[B, T, H, W, C]` clips, float32 in [-1, 1])
        → logits `[B, 1]` float32 of discriminator k."""
        logits = self.ensemble(inputs, training=training)
        return logits[:, self.index:self.index + 1]

    def _slice(self, value):
        per = value.shape[-1] // self.num_discriminators
        return value[..., self.index * per:(self.index + 1) * per]

    def get_weights(self) -> list[np.ndarray]:
        """Discriminator k's part of every ensemble weight (the ensemble's weight order; channel layout is
        discriminator-major, so it is the slice `[k·f, (k+1)·f)` of the last axis); the same arrays as
        `to_model().get_weights()`."""
        return [self._slice(np.asarray(v.numpy())) for v in self.ensemble.weights]

    def set_weights(self, weights: list) -> None:
        """Writes discriminator k's weights (as returned by `get_weights`) into the ensemble; the other
        discriminators are unchanged."""
        variables = self.ensemble.weights
        if len(weights) != len(variables):
            raise ConfigError(f"set_weights: expected {len(variables)} arrays, got {len(weights)}")
        for v, w in zip(variables, weights):
            full = np.array(v.numpy())
            per = full.shape[-1] // self.num_discriminators
            if tuple(np.shape(w)) != full[..., :per].shape:
                raise ConfigError(f"set_weights: {v.path} needs shape {full[..., :per].shape}, got {np.shape(w)}")
            full[..., self.index * per:(self.index + 1) * per] = w
            v.assign(full)

    def to_model(self) -> keras.Model:
        """A standalone ungrouped `keras.Model` `[B, ...] → [B, 1]` with a copy of the current weights."""
        return unrolled_discriminators(self.ensemble)[self.index]


# ---------------------------------------------------------------------------------------------
# Config (de)serialisation for `get_config`.


def _config_to_dict(config) -> dict:
    out = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            value = _config_to_dict(value)
        elif isinstance(value, np.ndarray):
            value = value.tolist()
        out[field.name] = value
    return out


def _config_from_dict(cls, values: dict, template=None):
    kwargs = {}
    for field in dataclasses.fields(cls):
        if field.name not in values:
            continue
        value = values[field.name]
        default = field.default if field.default is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(default) and isinstance(value, dict):
            value = _config_from_dict(type(default), value)
        elif field.name == "mask":
            value = np.asarray(value, np.float32)
        kwargs[field.name] = value
    return cls(**kwargs)


def _is_multi_worker(strategy) -> bool:
    mwms = (tf.distribute.MultiWorkerMirroredStrategy, tf.distribute.experimental.MultiWorkerMirroredStrategy)
    if isinstance(strategy, mwms):
        return True
    extended = getattr(strategy, "extended", None)
    return bool(getattr(extended, "_in_multi_worker_mode", lambda: False)())


# ---------------------------------------------------------------------------------------------
# The models.


class _TaskGAN(keras.Model):
    """Common machinery; subclasses name the task and map optimizers and metrics."""

    config_class: type = None
    task_class: type = None

    def __init__(self, config, quality_probe=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        if not isinstance(config, self.config_class):
            raise ConfigError(f"{type(self).__name__}: `config` must be a {self.config_class.__name__}, "
                              f"got {type(config).__name__}")
        strategy = self.distribute_strategy
        self.task = self.task_class(config, quality_probe) if quality_probe is not None else self.task_class(config)
        with strategy.scope():
            self.task.build()
            self.step = self.add_weight(shape=(), dtype="int64", initializer="zeros", trainable=False,
                                        aggregation="only_first_replica", name="global_step")
            self._track_task()
            self._make_trackers()
        self.built = True

    def _make_trackers(self) -> None:
        """One `Mean` per task output (scalars) or per discriminator (vectors), from `_metric_spec`: called
        again by `compile`, whose options can add outputs (e.g. `r1_penalty`)."""
        scalars, vectors, k = self._metric_spec()
        if self.task.config.adversarial.r1_weight > 0:  # every adversarial task reports it when on
            scalars = [*scalars, "r1_penalty"]
        self._metric_keys = {name: [keras.metrics.Mean(name=name)] for name in scalars}
        for key in vectors:
            leaf = key.split("/")[-1]
            self._metric_keys[key] = [keras.metrics.Mean(name=f"{leaf}_{i:03d}") for i in range(k)]
        self._tracker_list = [m for ms in self._metric_keys.values() for m in ms]

    # -- for subclasses ----------------------------------------------------------------------
    def _track_task(self) -> None:
        raise NotImplementedError

    def _metric_spec(self) -> tuple[list, list, int]:
        """(scalar output names, per-discriminator output names, K) of `task.train_step`."""
        raise NotImplementedError

    def _set_optimizers(self, generator, discriminator, extra) -> None:
        raise NotImplementedError

    def _check_batch(self, data):
        return data

    # -- Keras API -----------------------------------------------------------------------------
    @property
    def config(self):
        """The task's config (a frozen dataclass; `compile` may replace it)."""
        return self.task.config

    @property
    def metrics(self):
        return list(self._tracker_list)

    def get_config(self):
        return {"name": self.name, "config": _config_to_dict(self.task.config)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        task_config = _config_from_dict(cls.config_class, config.pop("config"))
        return cls(task_config, name=config.get("name"))

    def get_compile_config(self):
        return None  # the optimizers are saved as weights; call compile() again after loading

    def _resolve_optimizer(self, value, argument, variables, current):
        """(optimizer, OptimizerConfig or None) for a compile() argument."""
        if value is None:
            return current, None
        strategy = self.distribute_strategy
        if isinstance(value, OptimizerConfig):
            with strategy.scope():
                return make_optimizer(value, variables), value
        if isinstance(value, (str, dict)):
            try:
                with strategy.scope():
                    value = keras.optimizers.get(value)
            except ValueError as e:
                raise ConfigError(f"compile({argument}={value!r}): {e}") from e
        if not isinstance(value, keras.optimizers.Optimizer):
            raise ConfigError(f"compile({argument}=...) must be an OptimizerConfig, a keras Optimizer, a name "
                              f"such as 'adam', or None; got {type(value).__name__}")
        if strategy.num_replicas_in_sync > 1 and not strategy.extended.variable_created_in_scope(
                value.iterations.value):
            raise ConfigError(f"compile({argument}=...): create the optimizer inside the same "
                              f"strategy.scope() as the model (its variables must be mirrored)")
        if not value.built:
            with strategy.scope():
                value.build(variables)
        return value, None

    def compile(self, generator_optimizer=None, discriminator_optimizer=None, loss=None, combiner=None, *,
                run_eagerly: bool = False, jit_compile: bool = False, steps_per_execution: int = 1,
                **adversarial_options):
        """Configures training.

        Args:
          generator_optimizer / discriminator_optimizer: `OptimizerConfig`, a `keras.optimizers.Optimizer`
            (created in the model's strategy scope), an optimizer name or config dict, or None (keep the
            ones the task built from its config).
          loss: GAN loss kind, a key of `tfvidgan.losses.LOSSES`; None keeps the config's.
          combiner: ensemble combiner, a key of `tfvidgan.losses.COMBINERS`; None keeps the config's.
          run_eagerly, jit_compile, steps_per_execution: as in `keras.Model.compile` (XLA: one replica only).
          **adversarial_options: other `AdversarialConfig` fields (`gman_alpha`, `discriminator_steps`,
            `joint_batch`, ...); VideoGAN also takes `frames_generator_optimizer`.
        Raises:
          ConfigError naming the argument.
        """
        extra = {k: adversarial_options.pop(k) for k in list(adversarial_options) if k.endswith("_optimizer")}
        unknown = sorted(set(adversarial_options) - set(_ADVERSARIAL_FIELDS))
        if unknown:
            raise ConfigError(f"compile(): unknown argument(s) {unknown}; adversarial options are "
                              f"{list(_ADVERSARIAL_FIELDS)}")
        if loss is not None and loss not in losses.LOSSES:
            raise ConfigError(f"compile(loss={loss!r}): must be one of {tuple(losses.LOSSES)}")
        if combiner is not None and combiner not in losses.COMBINERS:
            raise ConfigError(f"compile(combiner={combiner!r}): must be one of {tuple(losses.COMBINERS)}")
        if jit_compile and self.distribute_strategy.num_replicas_in_sync > 1:
            raise ConfigError(f"compile(jit_compile=True) supports one replica, this strategy has "
                              f"{self.distribute_strategy.num_replicas_in_sync}")
        if jit_compile and not getattr(self.task, "xla_compatible", True):
            raise ConfigError(f"compile(jit_compile=True) cannot compile this {type(self).__name__}'s step "
                              f"(e.g. rollout_length draws a shape per step)")
        if not isinstance(steps_per_execution, int) or steps_per_execution < 1:
            raise ConfigError(f"compile(steps_per_execution={steps_per_execution!r}) must be a positive int")
        changes = dict(adversarial_options)
        if loss is not None:
            changes["loss"] = loss
        if combiner is not None:
            changes["combiner"] = combiner
        try:
            new_adversarial = dataclasses.replace(self.task.config.adversarial, **changes)
        except ConfigError as e:
            raise ConfigError(f"compile(): {e}") from e
        self._set_optimizers(generator_optimizer, discriminator_optimizer, extra)
        self.task.config = dataclasses.replace(self.task.config, adversarial=new_adversarial)
        with self.distribute_strategy.scope():
            self._make_trackers()
        super().compile(optimizer=None, loss=None, run_eagerly=run_eagerly, jit_compile=jit_compile,
                        steps_per_execution=steps_per_execution)
        self._loss_tracker = None

    def fit(self, x=None, y=None, batch_size=None, epochs=1, **kwargs):
        """`keras.Model.fit` on batches of the task (see the module docstring); numpy `x` is batched here
        with `batch_size` and ``drop_remainder=True`` (shuffled unless ``shuffle=False``)."""
        if _is_multi_worker(self.distribute_strategy):
            raise ConfigError(f"{type(self).__name__}.fit() does not support MultiWorkerMirroredStrategy "
                              f"(Keras 3 Model.fit fails under it, keras#20585); {CLI_HINT}")
        if not self.compiled:
            raise ConfigError(f"call {type(self).__name__}.compile() before fit()")
        if y is not None:
            raise ConfigError("fit(y=...): a GAN has no targets; pass the training batches as `x` only")
        if isinstance(x, (np.ndarray, tuple)) and not isinstance(x, tf.data.Dataset):
            if batch_size is None:
                raise ConfigError("fit(x=<arrays>) needs `batch_size`")
            count = len(x[0]) if isinstance(x, tuple) else len(x)
            if count < batch_size:
                raise ConfigError(f"fit(x=...): {count} examples, fewer than batch_size={batch_size}")
            dataset = tf.data.Dataset.from_tensor_slices(x)
            if kwargs.pop("shuffle", True):
                dataset = dataset.shuffle(count, reshuffle_each_iteration=True)
            x = dataset.batch(batch_size, drop_remainder=True)
            batch_size = None
        kwargs["shuffle"] = False  # a dataset is shuffled by its pipeline (Keras ignores the flag and warns)
        return super().fit(x, batch_size=batch_size, epochs=epochs, **kwargs)

    def train_step(self, data):
        """One step of the task (replica context): `task.train_step(batch, step)`, step += 1, trackers."""
        batch = self._check_batch(data)
        step = tf.convert_to_tensor(self.step)
        outputs = self.task.train_step(batch, step)
        self.step.assign_add(1)
        for key, value in outputs.items():
            trackers = self._metric_keys.get(key)
            if trackers is None:
                raise ConfigError(f"{type(self).__name__}: the task returned an unexpected output {key!r}")
            value = adversarial.all_reduce_sum(tf.cast(value, tf.float32))  # per-replica → global value
            if len(trackers) == 1 and value.shape.rank == 0:
                trackers[0].update_state(value)
            else:
                for k, tracker in enumerate(trackers):
                    tracker.update_state(value[k])
        return {m.name: m.result() for m in self._tracker_list}

    def test_step(self, data):
        raise ConfigError(f"{type(self).__name__} has no evaluate(); use tfvidgan.keras_callbacks.Evaluation "
                          f"(the task's quality probe) or the `evaluate` command line")


def _frames_like(data, name):
    if isinstance(data, (tuple, list)):
        if len(data) != 1:
            raise ConfigError(f"fit(x=...): {name} batches must be one tensor, got a tuple of {len(data)}")
        data = data[0]
    return data


@keras.saving.register_keras_serializable(package="tfvidgan")
class FramesGAN(_TaskGAN):
    """The frames GAN (`FramesGanTask`): batches `[b, H, W, C]` float32 in [-1, 1].

    `generator` `[N, Z] → [N, H, W, C]`; `sampling_generator` (the EMA generator when `ema_beta > 0`);
    `ensemble` (grouped, `[N, H, W, C] → [N, K]` logits); `discriminators[k]` (views); `sample(n, seed)`;
    calling the model maps latents `[N, Z]` float32 to frames with the sampling generator.
    """

    config_class = FramesGanConfig
    task_class = FramesGanTask

    def _track_task(self):
        t = self.task
        self.generator, self.ensemble = t.generator, t.discriminators
        if t.ema is not None:
            self.generator_ema = t.ema.shadow
        self.generator_optimizer, self.discriminator_optimizer = t.g_optimizer, t.d_optimizer

    def _metric_spec(self):
        k = int(self.task.discriminators.outputs[0].shape[-1])
        c = self.task.config
        regularised = (["path_length_penalty", "path_length_mean"] if c.path_length_weight > 0 else []) + (
            ["straightness_penalty"] if c.straightness_weight > 0 else [])
        return (["d_loss", "g_loss", *regularised],
                ["per_discriminator/d_loss", "per_discriminator/g_loss", "per_discriminator/g_weight"], k)

    def _set_optimizers(self, generator, discriminator, extra):
        if extra:
            raise ConfigError(f"FramesGAN.compile(): unknown argument(s) {sorted(extra)}")
        t, c = self.task, self.task.config
        t.g_optimizer, g_config = self._resolve_optimizer(generator, "generator_optimizer",
                                                          t.generator.trainable_variables, t.g_optimizer)
        t.d_optimizer, d_config = self._resolve_optimizer(discriminator, "discriminator_optimizer",
                                                          t.discriminators.trainable_variables, t.d_optimizer)
        t.config = dataclasses.replace(c, generator_optimizer=g_config or c.generator_optimizer,
                                       discriminator_optimizer=d_config or c.discriminator_optimizer)
        self.generator_optimizer, self.discriminator_optimizer = t.g_optimizer, t.d_optimizer

    def _check_batch(self, data):
        data = _frames_like(data, "frame")
        c = self.task.config
        expected = (c.image_size, c.image_size, c.channels)
        if data.shape.rank != 4 or tuple(data.shape[1:]) != expected:
            raise ConfigError(f"fit(x=...): frame batches must be [batch, {expected[0]}, {expected[1]}, "
                              f"{expected[2]}] float32 in [-1, 1], got shape {data.shape}")
        return tf.cast(data, tf.float32)

    @property
    def sampling_generator(self) -> keras.Model:
        return self.task.sampling_generator

    @property
    def discriminators(self) -> list[DiscriminatorView]:
        """The K discriminators as views sharing the ensemble's weights."""
        return [DiscriminatorView(self.task.discriminators, k)
                for k in range(self.task.config.num_discriminators)]

    def call(self, z, training=False):
        """Latents `[N, Z]` float32 → frames `[N, H, W, C]` float32 in [-1, 1] (sampling generator)."""
        return self.task.sampling_generator(z, training=training)

    def sample(self, num_samples: int, seed: int = 0) -> np.ndarray:
        """`[num_samples, H, W, C]` float32 in [-1, 1] from z ~ N(0, I) drawn with `seed` (EMA generator
        when EMA is on; the export's `sample` signature draws the same z for the same seed)."""
        if not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
            raise ConfigError(f"sample(num_samples={num_samples!r}) must be a positive int")
        z = tf.random.stateless_normal([int(num_samples), self.task.config.latent_dim], seed=[int(seed), 0])
        return self.task.sampling_generator(z, training=False).numpy()


@keras.saving.register_keras_serializable(package="tfvidgan")
class VideoGAN(_TaskGAN):
    """The video GAN (`VideoGanTask`) on a frames-generator export: batches of clips
    `[b, clip_length, H, W, C]` float32 in [-1, 1].

    `sequence_generator`, `frames_generator`, `ensemble`, `discriminators[k]` (views), `sample(n, t, seed)`;
    calling the model maps `{"noise": [N, noise_dim], "step_noise": [N, T, step_noise_dim]}` to clips.
    """

    config_class = VideoGanConfig
    task_class = VideoGanTask

    def _track_task(self):
        t = self.task
        self.sequence_generator, self.frames_generator, self.ensemble = (
            t.sequence_generator, t.frames_generator, t.discriminators)
        self.generator_optimizer, self.discriminator_optimizer = t.s_optimizer, t.d_optimizer
        if t.config.finetune_frames_generator:
            self.frames_generator_optimizer = t.f_optimizer
        if t.sequence_ema is not None:
            self.sequence_generator_ema = t.sequence_ema.shadow
        if t.frames_ema is not None:
            self.frames_generator_ema = t.frames_ema.shadow

    def _metric_spec(self):
        k = int(self.task.discriminators.outputs[0].shape[-1])
        c = self.task.config
        regularised = (c.smoothness_weight > 0 or c.motion_energy_weight > 0 or c.frame_critic_weight > 0
                       or c.motion_energy_match_weight > 0 or c.centroid_acceleration_match_weight > 0
                       or c.stationarity_weight > 0 or c.late_motion_match_weight > 0)
        scalars = (["d_loss", "g_loss"] + (["g_regularizer"] if regularised else [])
                   + (["motion_energy_log_ratio"] if c.motion_energy_match_weight > 0 else [])
                   + (["centroid_acceleration_log_ratio"] if c.centroid_acceleration_match_weight > 0 else [])
                   + (["stationarity_penalty"] if c.stationarity_weight > 0 else [])
                   + (["late_motion_log_ratio"] if c.late_motion_match_weight > 0 else []))
        return (scalars, ["per_discriminator/d_loss", "per_discriminator/g_loss", "per_discriminator/g_weight"], k)

    def _set_optimizers(self, generator, discriminator, extra):
        unknown = sorted(set(extra) - {"frames_generator_optimizer"})
        if unknown:
            raise ConfigError(f"VideoGAN.compile(): unknown argument(s) {unknown}")
        t, c = self.task, self.task.config
        f_value = extra.get("frames_generator_optimizer")
        if f_value is not None and not c.finetune_frames_generator:
            raise ConfigError("compile(frames_generator_optimizer=...) needs "
                              "VideoGanConfig(finetune_frames_generator=True)")
        t.s_optimizer, s_config = self._resolve_optimizer(generator, "generator_optimizer",
                                                          t.sequence_generator.trainable_variables, t.s_optimizer)
        t.d_optimizer, d_config = self._resolve_optimizer(discriminator, "discriminator_optimizer",
                                                          t.discriminators.trainable_variables, t.d_optimizer)
        t.generator_updates = [(t.s_optimizer, t.sequence_generator.trainable_variables)]
        f_config = None
        if c.finetune_frames_generator:
            t.f_optimizer, f_config = self._resolve_optimizer(
                f_value, "frames_generator_optimizer", t.frames_generator.trainable_variables, t.f_optimizer)
            t.generator_updates.append((t.f_optimizer, t.frames_generator.trainable_variables))
            self.frames_generator_optimizer = t.f_optimizer
        t.config = dataclasses.replace(c, sequence_optimizer=s_config or c.sequence_optimizer,
                                       discriminator_optimizer=d_config or c.discriminator_optimizer,
                                       frames_generator_optimizer=f_config or c.frames_generator_optimizer)
        self.generator_optimizer, self.discriminator_optimizer = t.s_optimizer, t.d_optimizer

    def _check_batch(self, data):
        data = _frames_like(data, "clip")
        expected = (self.task.config.clip_length, *self.task.frame_shape)
        if data.shape.rank != 5 or tuple(data.shape[1:]) != expected:
            raise ConfigError(f"fit(x=...): clip batches must be [batch, {', '.join(map(str, expected))}] "
                              f"(clip_length, H, W, C) float32 in [-1, 1], got shape {data.shape}")
        return tf.cast(data, tf.float32)

    @property
    def discriminators(self) -> list[DiscriminatorView]:
        """The K video discriminators as views sharing the ensemble's weights."""
        return [DiscriminatorView(self.task.discriminators, k)
                for k in range(self.task.config.num_discriminators)]

    def call(self, inputs, training=False):
        """`{"noise": [N, noise_dim], "step_noise": [N, T, step_noise_dim]}` float32 → clips
        `[N, T, H, W, C]` float32 in [-1, 1] (sampling generators: the EMA ones when `ema_beta > 0`)."""
        t = self.task
        return render(t.sampling_frames_generator, t.sampling_sequence_generator(inputs, training=training))

    def sample(self, num_samples: int, num_frames: int | None = None, seed: int = 0) -> np.ndarray:
        """Clips `[num_samples, num_frames, H, W, C]` float32 in [-1, 1] for a fixed seed
        (`num_frames` defaults to the config's `sample_length`)."""
        num_frames = self.task.config.sample_length if num_frames is None else num_frames
        for name, value in (("num_samples", num_samples), ("num_frames", num_frames)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"sample({name}={value!r}) must be a positive int")
        return self.task.sample(int(num_samples), int(num_frames), int(seed))[0].numpy()


@keras.saving.register_keras_serializable(package="tfvidgan")
class ReconstructionGAN(_TaskGAN):
    """The CUP reconstructor with its optional patch discriminator (`ReconstructionTask`; MSE only when
    `adversarial_weight == 0`): batches `(sensed [b, H+T−1, W, 1], scene [b, T, H, W, 1] in [0, 1])` float32.

    `reconstructor`, `discriminator` (fully convolutional: every patch logit counts as one discriminator of
    the ensemble step, all patches share its weights, hence `discriminators == [discriminator]`);
    calling the model maps sensed images to scenes `[N, T, H, W, 1]`.
    Metrics: `mse`, and with a discriminator `d_loss`, `g_loss` (the frames and video models' names; the
    task reports no per-patch values).
    """

    config_class = ReconstructionConfig
    task_class = ReconstructionTask

    def __init__(self, config, preview=None, name=None, **kwargs):
        super().__init__(config, quality_probe=preview, name=name, **kwargs)

    def _track_task(self):
        t = self.task
        self.reconstructor = t.reconstructor
        self.generator_optimizer = t.optimizer
        if t.discriminator is not None:
            self.discriminator, self.discriminator_optimizer = t.discriminator, t.d_optimizer

    def _metric_spec(self):
        return (["mse"] + (["d_loss", "g_loss"] if self.task.discriminator is not None else []), [], 0)

    def _set_optimizers(self, generator, discriminator, extra):
        if extra:
            raise ConfigError(f"ReconstructionGAN.compile(): unknown argument(s) {sorted(extra)}")
        t, c = self.task, self.task.config
        if discriminator is not None and t.discriminator is None:
            raise ConfigError("compile(discriminator_optimizer=...) needs a discriminator: "
                              "ReconstructionConfig(adversarial_weight > 0)")
        t.optimizer, g_config = self._resolve_optimizer(generator, "generator_optimizer",
                                                        t.reconstructor.trainable_variables, t.optimizer)
        d_config = None
        if t.discriminator is not None:
            t.d_optimizer, d_config = self._resolve_optimizer(
                discriminator, "discriminator_optimizer", t.discriminator.trainable_variables, t.d_optimizer)
            self.discriminator_optimizer = t.d_optimizer
        t.config = dataclasses.replace(c, optimizer=g_config or c.optimizer,
                                       discriminator_optimizer=d_config or c.discriminator_optimizer)
        self.generator_optimizer = t.optimizer

    def _check_batch(self, data):
        if not isinstance(data, (tuple, list)) or len(data) != 2:
            raise ConfigError("fit(x=...): reconstruction batches must be (sensed, scene) pairs")
        c = self.task.config
        sensed, scene = data
        want_sensed = (c.height + c.num_frames - 1, c.width, 1)
        want_scene = (c.num_frames, c.height, c.width, 1)
        if sensed.shape.rank != 4 or tuple(sensed.shape[1:]) != want_sensed:
            raise ConfigError(f"fit(x=...): sensed batches must be [batch, {', '.join(map(str, want_sensed))}], "
                              f"got shape {sensed.shape}")
        if scene.shape.rank != 5 or tuple(scene.shape[1:]) != want_scene:
            raise ConfigError(f"fit(x=...): scene batches must be [batch, {', '.join(map(str, want_scene))}] "
                              f"in [0, 1], got shape {scene.shape}")
        return tf.cast(sensed, tf.float32), tf.cast(scene, tf.float32)

    @property
    def discriminators(self) -> list:
        return [self.task.discriminator] if self.task.discriminator is not None else []

    def call(self, sensed, training=False):
        """Sensed `[N, H+T−1, W, 1]` float32 → scenes `[N, T, H, W, 1]` float32 in [0, 1] (training mask)."""
        return self.task.predict(sensed, training=training)
