"""Step 2: a recurrent sequence generator navigates the frozen frames generator's latent space.

The sequence generator emits latents `[b, T, Z]`; the frames generator (FG) renders every step
(folding T into the batch sample-major, so samples never mix); K' video discriminators judge the clips.
The FG runs in inference mode (its batch-norm statistics stay fixed, so samples stay independent);
with `finetune_frames_generator` its weights are trained too, at their own learning rate.
"""
from __future__ import annotations

import dataclasses
import inspect

import keras
import numpy as np
import tensorflow as tf

from tfvidgan.data import readers
from tfvidgan.errors import ConfigError
from tfvidgan.export import (
    VIDEO_GENERATOR,
    VIDEO_SAMPLE_STREAM,
    export_video_generator,
    load_frame_discriminators,
    load_frames_generator,
)
from tfvidgan.metrics.plotting import gif_bytes
from tfvidgan.models.ensemble_discriminator import (
    DEFAULT_HEAD,
    DEFAULT_NORMALIZATION,
    DEFAULT_VIDEO_BASE_FILTERS,
    DEFAULT_VIDEO_INPUT,
    CentroidAccelerations,
    build_video_discriminators,
    centroid_acceleration_energy,
)
from tfvidgan.models.frames_generator import render
from tfvidgan.models.sequence_generator import build_sequence_generator, sample_sequence_noise
from tfvidgan.training import adversarial, summaries
from tfvidgan.training.ema import WeightAverage, check_beta
from tfvidgan.training.init_seed import seeded_initializers
from tfvidgan.training.loop import InputConfig, require_inputs
from tfvidgan.training.noise import replica_normal, replica_uniform_int, step_seed
from tfvidgan.training.optimizers import OptimizerConfig, make_optimizer

SMOOTHNESS_TARGETS = ("latents", "frames")


_SEQUENCE_DEFAULTS = {name: p.default for name, p in inspect.signature(build_sequence_generator).parameters.items()
                      if p.default is not inspect.Parameter.empty}


@dataclasses.dataclass(frozen=True)
class VideoGanConfig:
    """The video GAN; `clip_length` is the training length, `sample_length` the sampling length.

    These defaults are THE defaults: `python -m tfvidgan.train_video` takes its flags' defaults from them
    (`tfvidgan.common_flags`). Sizes are the paper's (K' = 16 video discriminators of 16 filters, a 2-layer
    bidirectional LSTM of 256 units; configs/video_bb3.cfg); normalisation is the shipped configs' choice
    (synchronised batch norm, real and fake clips as one batch). The frames generator, when fine-tuned, has
    its own optimizer (`--frames_generator_optimizer/_lr/_beta1`), by default RMSprop at 2e-5.
    """
    frames_generator: str
    clip_length: int = 16
    sample_length: int = 30
    # The sequence generator's sizes and options: defaults written once, in `build_sequence_generator`.
    noise_dim: int = _SEQUENCE_DEFAULTS["noise_dim"]
    step_noise_dim: int = _SEQUENCE_DEFAULTS["step_noise_dim"]
    hidden_units: int = _SEQUENCE_DEFAULTS["hidden_units"]
    num_layers: int = _SEQUENCE_DEFAULTS["num_layers"]
    cell: str = _SEQUENCE_DEFAULTS["cell"]
    bidirectional: bool = _SEQUENCE_DEFAULTS["bidirectional"]
    latent_constraint: str = _SEQUENCE_DEFAULTS["latent_constraint"]
    trajectory: str = _SEQUENCE_DEFAULTS["trajectory"]
    max_step: float = _SEQUENCE_DEFAULTS["max_step"]
    initial_state: str = _SEQUENCE_DEFAULTS["initial_state"]
    burn_in_steps: int = _SEQUENCE_DEFAULTS["burn_in_steps"]
    # Extra burn-in steps for sampling only (samples, evaluations, exports): the trained weights run
    # `burn_in_steps + sample_burn_in_steps` steps before the first emitted latent. Not model-defining (the
    # sampler shares the trained layers), so it may change on a resume, and a finished run resumed with another
    # value is exported again. Measured on a model trained without burn-in, 8 steps: first frames 68 -> 81 %
    # three-ball, count changes 5.08 -> 4.63 per clip (docs/first_frames_video_reproduced.json).
    sample_burn_in_steps: int = 0
    num_discriminators: int = 16
    discriminator_filters: int = DEFAULT_VIDEO_BASE_FILTERS
    discriminator_normalization: str = DEFAULT_NORMALIZATION
    discriminator_head: str = DEFAULT_HEAD
    # "clips", "clips_and_differences" (the projections also see x_t − x_{t−1}: motion made explicit) or
    # "clips_and_accelerations" (and x_t − 2x_{t−1} + x_{t−2}: jitter made explicit) or
    # "clips_and_centroid_accelerations" (x_t − x_{t−1} and each blob's centroid acceleration: zero in steady
    # flight, the sub-pixel wobble otherwise; `tfvidgan.models.ensemble_discriminator.CentroidAccelerations`).
    discriminator_input: str = DEFAULT_VIDEO_INPUT
    projection_seed: int = 0
    noise_seed: int = 0
    # Seed of the initial weights of the sequence generator and discriminators (`tfvidgan.training.init_seed`).
    init_seed: int = 0
    finetune_frames_generator: bool = False
    smoothness_weight: float = 0.0
    smoothness_on: str = "latents"
    # 1 penalises consecutive differences (speed: also slows motion down), 2 second differences
    # (acceleration: straight, constant-velocity paths cost nothing, as in free flight).
    smoothness_order: int = 1
    # Weight of the motion-energy regulariser on the rendered clips (`motion_energy_variation`, 0 = off): the
    # squared coefficient of variation over time of each clip's frame-difference energy. Balls that keep their
    # speed (real clips: CV 0.11) keep that energy nearly constant; speeding up, stalling and wobbling
    # (generated clips: CV 0.5-0.6) do not. Scale-free, so it does not pay to slow the balls down.
    motion_energy_weight: float = 0.0
    # Weight of the motion-energy matching term (`motion_energy_match`, 0 = off): the squared log-ratio of the
    # generated and the real batches' mean frame-difference energy, both global means over the replicas. The
    # variation term above is scale-free; this one is not: it asks the rendered balls to move as much as the
    # real ones (slower balls change fewer pixels per frame), where the fine-tuned frames generator tends to
    # let them slow down.
    motion_energy_match_weight: float = 0.0
    # Weight of the centroid-acceleration matching term (`centroid_acceleration_match`, 0 = off): the squared
    # log-ratio of the generated and real batches' mean shown centroid acceleration energy (the balls' sub-pixel
    # wobble, `CentroidAccelerations`), both global means over the replicas. Real balls fly straight (energy
    # from bounces), generated ones wobble along straight latent paths (the frames generator's rendering). In
    # its first training (settle recipe, weight 5; docs/experiments_video.md) it lowered the wobble only by
    # slowing the balls.
    centroid_acceleration_match_weight: float = 0.0
    # Weight of the stationarity term (`latent_step_stationarity`, 0 = off): each generator update also rolls
    # out `stationarity_length` latent steps (no rendering) and pays for the squared coefficient of variation
    # over time of the batch-mean latent step. Real videos have no clock: the statistics of frame t do not
    # depend on t. Trained on clip_length-frame clips from t = 0, the sequence generator's LSTM keeps a
    # phase-locked clock (its mean latent step oscillates with a period of 58-78 frames, ±10-20 %), and the
    # speed of long videos drifts with it (`benchmarks/latent_clock.py`). Scale-free: slowing down does not
    # pay. Measured at weights 20 and 2: long videos broke (docs/experiments_video.md); off by default.
    stationarity_weight: float = 0.0
    stationarity_length: int = 120
    # Weight of the late-motion matching term (0 = off): each generator update also rolls out
    # `late_motion_length` latent steps from fresh noise, renders ONE pair of consecutive frames per sample at a
    # uniform time t in {clip_length, …, late_motion_length − 1} (past the training clips), and pays
    # `motion_energy_match` of those pairs against the real clips: the balls must keep the real amount of motion
    # in late frames too (on average over them: it cannot see a clock that alternates fast and slow windows,
    # only a late speed-up or slow-down that persists). Unlike the
    # stationarity term it reads the rendered motion (a latent step of constant size can render a frozen ball),
    # and unlike long rollouts (`rollout_length`) no discriminator judges the late frames (which pulled the
    # fine-tuned frames generator to late, untrained latents). Costs, per generator update, an L-step rollout
    # of the sequence generator (forward and backward) and 2 rendered frames per sample; nothing before
    # `late_motion_start_step` (until a later session the rollout's forward pass ran there only to be logged).
    late_motion_match_weight: float = 0.0
    late_motion_length: int = 120
    # The step from which the late-motion term counts: before it the term is not computed and its log-ratio is
    # logged as 0 (the in-training probe's long-video drift shows late motion meanwhile). Measured: on from step 0
    # it wrecked the start (late frames start frozen, log-ratio -6.5); switched on at 2,200 of 2,489 it took the
    # drift from 19-24 % to 13.5 % (docs/experiments_video.md).
    late_motion_start_step: int = 0
    # Weight of the frozen FRAME discriminators of the frames export (step 1) judging every rendered frame
    # (non-saturating loss, mean over frames): steers the latents to where step 1's discriminators see
    # real-looking frames (e.g. 3 balls, not 2 or 4). 0 = off; needs an export that carries them.
    frame_critic_weight: float = 0.0
    # Long-rollout training (0 = off): each step the sequence generator rolls out R steps, R drawn uniformly
    # from {clip_length, …, rollout_length} (one R per step, the same on every replica), and each sample's
    # rendered clip is a clip_length window at a uniform random offset in its rollout. The discriminators
    # still judge clip_length frames; the generator learns to keep late steps (and, bidirectional, every
    # length up to rollout_length) looking real, the remedy for drift in videos longer than the clips.
    rollout_length: int = 0
    # EMA of the generator's weights (β per step; 0 = off): the sequence generator's, and the frames
    # generator's when it is fine-tuned. Samples, summaries, the in-training evaluation and the export use
    # the averaged weights (`tfvidgan.training.ema`).
    ema_beta: float = 0.0
    num_sample_videos: int = 4
    adversarial: adversarial.AdversarialConfig = adversarial.AdversarialConfig(joint_batch=True)
    sequence_optimizer: OptimizerConfig = OptimizerConfig()
    frames_generator_optimizer: OptimizerConfig = OptimizerConfig(learning_rate=2e-5)
    discriminator_optimizer: OptimizerConfig = OptimizerConfig()

    def __post_init__(self):
        if self.smoothness_on not in SMOOTHNESS_TARGETS:
            raise ConfigError(f"--smoothness_on={self.smoothness_on!r} is not one of {SMOOTHNESS_TARGETS}")
        if self.frame_critic_weight < 0:
            raise ConfigError(f"--frame_critic_weight must be >= 0, got {self.frame_critic_weight}")
        if self.smoothness_order not in (1, 2):
            raise ConfigError(f"--smoothness_order must be 1 or 2, got {self.smoothness_order}")
        for name in ("smoothness_weight", "motion_energy_weight", "motion_energy_match_weight",
                     "centroid_acceleration_match_weight", "stationarity_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name} must be >= 0, got {getattr(self, name)}")
        for name in ("clip_length", "sample_length"):
            if getattr(self, name) < 2:
                raise ConfigError(f"--{name} must be >= 2, got {getattr(self, name)}")
        if self.centroid_acceleration_match_weight > 0 and self.clip_length < 3:
            raise ConfigError(f"--centroid_acceleration_match_weight needs --clip_length >= 3 (second "
                              f"differences), got {self.clip_length}")
        if self.late_motion_match_weight < 0:
            raise ConfigError(f"--late_motion_match_weight must be >= 0, got {self.late_motion_match_weight}")
        if self.late_motion_start_step < 0:
            raise ConfigError(f"--late_motion_start_step must be >= 0, got {self.late_motion_start_step}")
        if self.late_motion_match_weight > 0 and self.late_motion_length <= self.clip_length:
            raise ConfigError(f"--late_motion_length={self.late_motion_length} must be > --clip_length="
                              f"{self.clip_length} (the pairs are drawn past the training clips)")
        if self.stationarity_weight > 0 and self.stationarity_length < 3:
            raise ConfigError(f"--stationarity_length must be >= 3 (two latent steps), got {self.stationarity_length}")
        check_beta(self.ema_beta)
        if not isinstance(self.sample_burn_in_steps, int) or self.sample_burn_in_steps < 0:
            raise ConfigError(f"--sample_burn_in_steps must be an integer >= 0, got {self.sample_burn_in_steps!r}")
        if self.rollout_length and self.rollout_length < self.clip_length:
            raise ConfigError(f"--rollout_length={self.rollout_length} must be 0 (off) or >= --clip_length="
                              f"{self.clip_length}")

    @property
    def uses_rollouts(self) -> bool:
        """Whether training draws clip windows from longer rollouts (`rollout_length` > `clip_length`)."""
        return self.rollout_length > self.clip_length


def gather_windows(sequences: tf.Tensor, starts: tf.Tensor, relative: tf.Tensor) -> tf.Tensor:
    """`sequences [B, T, ...]`, `starts [B]` int32 and `relative [n]` int32 → `[B, n, ...]`: row b holds
    `sequences[b, starts[b] + relative]` (every index must lie in [0, T))."""
    return tf.gather(sequences, starts[:, None] + relative[None], batch_dims=1)


def temporal_smoothness(sequence: tf.Tensor, order: int = 1) -> tf.Tensor:
    """Per-sample mean squared `order`-th difference along time: `[B, T, ...]` → `[B]` float32.

    Order 1 is the mean squared step `x_t − x_{t−1}`; order 2 the mean squared acceleration
    `x_{t+1} − 2 x_t + x_{t−1}`, zero on any constant-velocity path. Needs `T > order`.
    """
    diffs = tf.cast(sequence, tf.float32)
    for _ in range(order):
        diffs = diffs[:, 1:] - diffs[:, :-1]
    return tf.reduce_mean(tf.reshape(tf.square(diffs), [tf.shape(diffs)[0], -1]), axis=1)


# Added to the squared mean energy in `motion_energy_variation`'s denominator (energies are mean squared pixel
# differences in [-1, 1] units; real bouncing-balls clips: about 0.08 at 32×32, 3 balls).
MOTION_ENERGY_EPSILON = 1e-4


def _step_energy(clips: tf.Tensor) -> tf.Tensor:
    """`[B, T, H, W, C]` → `[B, T − 1]` float32: the mean over pixels of `(x_{t+1} − x_t)²`."""
    clips = tf.cast(clips, tf.float32)
    steps = clips[:, 1:] - clips[:, :-1]
    return tf.reduce_mean(tf.reshape(tf.square(steps), [tf.shape(steps)[0], tf.shape(steps)[1], -1]), axis=2)


def motion_energy_variation(clips: tf.Tensor) -> tf.Tensor:
    """Per-clip squared coefficient of variation of the motion energy over time: `[B, T, H, W, C]` → `[B]`.

    `e_t = mean over pixels of (x_{t+1} − x_t)²` for t < T − 1, and the result is
    `Var_t(e) / (Mean_t(e)² + MOTION_ENERGY_EPSILON²)` float32, >= 0. It is 0 for a clip whose frames change
    by the same amount every step (a ball moving at a steady speed, or bouncing off a wall), and the same
    for a clip and its copy played at another contrast. A frozen clip also scores 0: the regulariser only
    asks motion to be steady; the discriminators ask for motion. It sees changes of speed, not of direction
    (a zigzag of equal steps scores 0). Needs T >= 3.
    """
    energy = _step_energy(clips)
    mean = tf.reduce_mean(energy, axis=1)
    variance = tf.reduce_mean(tf.square(energy - mean[:, None]), axis=1)
    return variance / (tf.square(mean) + MOTION_ENERGY_EPSILON**2)


def motion_energy(clips: tf.Tensor) -> tf.Tensor:
    """Per-clip motion energy: `[B, T, H, W, C]` (any float dtype, in [-1, 1]) → `[B]` float32 >= 0, the mean
    over the T − 1 steps and all pixels of `(x_{t+1} − x_t)²` (0 for a frozen clip; real 3-ball 32×32 clips:
    about 0.08; it grows with the balls' speed up to about a diameter per frame). Needs T >= 2."""
    return tf.reduce_mean(_step_energy(clips), axis=1)


@dataclasses.dataclass(frozen=True)
class EnergyMatch:
    """`motion_energy_match`'s result (replica context, float32 scalars).

    objective_term: this replica's share of the weighted penalty, for the generator's objective: the shares
      sum over the replicas to `weight · log_ratio²`, and their gradients sum to that penalty's gradient.
    log_ratio: log((Ē_fake + ε) / (Ē_real + ε)) of the global batch means (the same on every replica).
    """
    objective_term: tf.Tensor
    log_ratio: tf.Tensor


# Added to both batch means in `motion_energy_match`'s log-ratio (a frozen generated batch stays finite).
MOTION_ENERGY_MATCH_EPSILON = 1e-4


def _log_ratio_match(local_fake_sum, global_fake_sum, fake_denominator, mean_real, weight,
                     epsilon: float) -> EnergyMatch:
    """`weight · (log(Ē_fake + ε) − log(Ē_real + ε))²` with `Ē_fake = global_fake_sum / fake_denominator`, where
    `global_fake_sum` is the gradient-free sum over the replicas of `local_fake_sum` (the caller all-reduces it,
    together with its other sums, in one collective), `fake_denominator` a gradient-free, replica-invariant
    count and `mean_real` a replica-invariant constant; the objective term is this replica's exact share of the
    penalty and of its gradient (see `motion_energy_match`)."""
    replicas = adversarial.replicas_in_sync()
    mean_fake = global_fake_sum / fake_denominator
    log_ratio = tf.math.log(mean_fake + epsilon) - tf.math.log(mean_real + epsilon)
    slope = 2.0 * weight * log_ratio / (mean_fake + epsilon)
    term = (weight * tf.square(log_ratio) / replicas
            + slope * (local_fake_sum - tf.stop_gradient(local_fake_sum)) / fake_denominator)
    return EnergyMatch(objective_term=term, log_ratio=log_ratio)


def motion_energy_match(fake: tf.Tensor, real: tf.Tensor, global_batch, weight) -> EnergyMatch:
    """Matches the generated clips' mean motion energy to the real clips' (`[b, T, H, W, C]` each, this
    replica's share of a global batch of `global_batch` clips).

    Penalty: `weight · (log(Ē_fake + ε) − log(Ē_real + ε))²`, Ē the global batch mean of `motion_energy`
    (all-reduced over the replicas), ε = `MOTION_ENERGY_MATCH_EPSILON`. Symmetric in log space: too little
    motion costs what too much costs. The penalty is a non-linear function of a global mean, so a per-replica
    mean would compute another loss; instead each replica returns the penalty's value / replicas plus the
    first-order term `slope · Σ_local E_fake / global_batch` (`slope` = ∂penalty/∂Ē_fake, held constant), whose
    gradient is this replica's exact share of the penalty's gradient. The real clips get no gradient. `weight`
    is a float or a float32 scalar tensor (the late-motion term passes 0 before its start step).
    """
    global_batch = tf.cast(global_batch, tf.float32)
    fake_sum = tf.reduce_sum(motion_energy(fake))
    # One all-reduce for both gradient-free sums.
    global_fake_sum, global_real_sum = tf.unstack(adversarial.all_reduce_sum(
        tf.stop_gradient(tf.stack([fake_sum, tf.reduce_sum(motion_energy(real))]))))
    return _log_ratio_match(fake_sum, global_fake_sum, global_batch, global_real_sum / global_batch, weight,
                            MOTION_ENERGY_MATCH_EPSILON)


# Added to both batch means in `centroid_acceleration_match`'s log-ratio.
CENTROID_ACCELERATION_MATCH_EPSILON = 1e-3


def centroid_acceleration_match(fake: tf.Tensor, real: tf.Tensor, weight: float) -> EnergyMatch:
    """Matches the generated clips' mean shown centroid-acceleration energy (`centroid_acceleration_energy`)
    to the real clips', both global over the replicas (`[b, T, H, W, C]` each, this replica's share).

    Penalty: `weight · (log(Ē_fake + ε) − log(Ē_real + ε))²`, `Ē = Σ energy / Σ shown` over the global batch
    (each at least 1 shown pixel), ε = `CENTROID_ACCELERATION_MATCH_EPSILON`. Matching, not minimising: real
    bounces keep their share, and a generator cannot win by suppressing every acceleration. Exact under data
    parallelism as `motion_energy_match` is; the real clips and the gate get no gradient.
    """
    layer = CentroidAccelerations()
    fake_energy, fake_shown = centroid_acceleration_energy(fake, layer)
    real_energy, real_shown = centroid_acceleration_energy(real, layer)
    # One all-reduce for the four gradient-free sums.
    global_fake_energy, fake_shown, real_energy, real_shown = tf.unstack(adversarial.all_reduce_sum(
        tf.stop_gradient(tf.stack([fake_energy, fake_shown, real_energy, real_shown]))))
    mean_real = real_energy / tf.maximum(real_shown, 1.0)
    return _log_ratio_match(fake_energy, global_fake_energy, tf.maximum(fake_shown, 1.0), mean_real, weight,
                            CENTROID_ACCELERATION_MATCH_EPSILON)


# The noise stream of the stationarity rollouts (`VideoGanTask._noise` seeds 2·stream and 2·stream + 1; the
# update is stream 0, discriminator steps 2 + i, rollout lengths and offsets use seeds 512 + and 768 +).
_STATIONARITY_STREAM = 200
# The noise stream of the late-motion rollouts (noise seeds 402 and 403; the pair times use seed 768 + it).
_LATE_MOTION_STREAM = 201
# Added under the square root of each latent step's norm (its gradient stays finite at a zero step).
_STEP_NORM_EPSILON = 1e-12


@dataclasses.dataclass(frozen=True)
class Stationarity:
    """`latent_step_stationarity`'s result (replica context, float32 scalars).

    objective_term: this replica's share of `weight · penalty` (the shares and their gradients sum over the
      replicas to the penalty's value and gradient).
    penalty: the global coefficient of variation² over time of the batch-mean latent step (the same on
      every replica, no gradient).
    """
    objective_term: tf.Tensor
    penalty: tf.Tensor


def latent_step_stationarity(latents: tf.Tensor, global_batch, weight: float) -> Stationarity:
    """The stationarity term of `VideoGanConfig.stationarity_weight` for this replica's rollouts.

    Args:
      latents: `[b, L, Z]` float32, this replica's share of a global batch of `global_batch` rollouts.
      global_batch: the number of rollouts over all replicas.
      weight: the term's weight.

    With s_{b,t} = |z_{b,t+1} − z_{b,t}| and m_t = Σ_b s_{b,t} / global batch (all-reduced, t < L − 1), the
    penalty is `Σ_t (m_t / m̄ − 1)² / (L − 1)`, m̄ the mean of m_t over time: 0 when the mean step does not
    depend on t, whatever its size. The penalty is non-linear in the global means, so each replica returns
    `weight · penalty / replicas` plus the first-order term `Σ_t g_t · Σ_local s_{b,t} / global batch`
    (g = weight · ∂penalty/∂m at the global m, held constant), whose gradient is its exact share.
    """
    latents = tf.cast(latents, tf.float32)
    steps = tf.sqrt(tf.reduce_sum(tf.square(latents[:, 1:] - latents[:, :-1]), axis=-1)
                    + _STEP_NORM_EPSILON)                                          # [b, L − 1]
    local = tf.reduce_sum(steps, axis=0) / tf.cast(global_batch, tf.float32)      # [L − 1], sums to m
    means = adversarial.all_reduce_sum(tf.stop_gradient(local))

    def penalty_of(m):
        return tf.reduce_mean(tf.square(m / tf.reduce_mean(m) - 1.0))

    with tf.GradientTape() as tape:
        tape.watch(means)
        penalty = penalty_of(means)
    slope = weight * tape.gradient(penalty, means)
    term = (weight * penalty / adversarial.replicas_in_sync()
            + tf.reduce_sum(slope * (local - tf.stop_gradient(local))))
    return Stationarity(objective_term=term, penalty=penalty)


class VideoGanTask:
    """Video GAN task for `run_training`; batches are clips `[b, clip_length, H, W, C]` in [-1, 1].

    `quality_probe`, if given, is a callable `probe(sample_clips) -> {name: float}` (e.g.
    `tfvidgan.metrics.quality_probe.VideoQualityProbe`), where `sample_clips(n, t, seed)` returns this
    task's fixed-seed clips `[n, t, H, W, C]`; the loop runs it every `eval_every` steps. `inputs`: the
    training data read by `build_inputs`.
    """

    def __init__(self, config: VideoGanConfig, quality_probe=None, inputs: InputConfig | None = None):
        self.config = config
        self.quality_probe = quality_probe
        self.inputs = inputs

    def build_inputs(self, input_context: tf.distribute.InputContext | None = None,
                     start_step: int = 0) -> tf.data.Dataset:
        """Endless per-replica batches of clips `[b, clip_length, H, W, C]` float32 in [-1, 1] cut at random
        offsets from the scenes of `inputs.data` (b = the global batch / replicas), seeded
        `inputs.seed + start_step`."""
        i = require_inputs(self.inputs, self)
        return readers.clips_dataset(i.data, i.per_replica_batch(input_context), clip_length=self.config.clip_length,
                                     seed=i.seed + start_step, skip_bad_records=i.skip_bad_records,
                                     input_context=input_context)

    def build(self) -> None:
        c = self.config
        self.frames_generator, self.frames_description = load_frames_generator(c.frames_generator)
        self.frames_generator.trainable = c.finetune_frames_generator
        self.latent_dim = int(self.frames_description["latent_dim"])
        size, channels = self.frames_description["image_size"], self.frames_description["channels"]
        self.frame_shape = (size, size, channels)
        with seeded_initializers(c.init_seed):
            self.sequence_generator = self._build_sequence_generator(c.burn_in_steps)
            self.discriminators = build_video_discriminators(
                (c.clip_length, *self.frame_shape), c.num_discriminators, base_filters=c.discriminator_filters,
                seed=c.projection_seed, normalization=c.discriminator_normalization,
                head=c.discriminator_head, inputs=c.discriminator_input)
        self.frame_critic = None
        if c.frame_critic_weight > 0:
            self.frame_critic = load_frame_discriminators(c.frames_generator, flag="frames_generator")
            self.frame_critic.trainable = False
        self.s_optimizer = make_optimizer(c.sequence_optimizer, self.sequence_generator.trainable_variables)
        self.d_optimizer = make_optimizer(c.discriminator_optimizer, self.discriminators.trainable_variables)
        self.generator_updates = [(self.s_optimizer, self.sequence_generator.trainable_variables)]
        if c.finetune_frames_generator:
            self.f_optimizer = make_optimizer(c.frames_generator_optimizer,
                                              self.frames_generator.trainable_variables)
            self.generator_updates.append((self.f_optimizer, self.frames_generator.trainable_variables))
        self.sequence_ema = self.frames_ema = None
        if c.ema_beta > 0:
            self.sequence_ema = WeightAverage(self.sequence_generator, c.ema_beta)
            if c.finetune_frames_generator:
                self.frames_ema = WeightAverage(self.frames_generator, c.ema_beta)
        averaged = self.sequence_ema.shadow if self.sequence_ema is not None else self.sequence_generator
        self._sampler = averaged
        if c.sample_burn_in_steps:  # the same layers (no variables of its own), a longer burn-in
            self._sampler = self._build_sequence_generator(c.burn_in_steps + c.sample_burn_in_steps,
                                                           share_layers_of=averaged,
                                                           name="sampling_sequence_generator")

    def _build_sequence_generator(self, burn_in_steps: int, **kwargs) -> keras.Model:
        c = self.config
        return build_sequence_generator(
            self.latent_dim, noise_dim=c.noise_dim, step_noise_dim=c.step_noise_dim,
            hidden_units=c.hidden_units, num_layers=c.num_layers, cell=c.cell,
            bidirectional=c.bidirectional, latent_constraint=c.latent_constraint,
            trajectory=c.trajectory, max_step=c.max_step, initial_state=c.initial_state,
            burn_in_steps=burn_in_steps, **kwargs)

    @property
    def sampling_sequence_generator(self):
        """The sequence generator used for samples, evaluation and the export: the EMA one when EMA is on,
        run with `sample_burn_in_steps` more burn-in steps when that is set (sharing its variables)."""
        return self._sampler

    @property
    def sampling_frames_generator(self):
        """The frames generator used for samples, evaluation and the export: the EMA one when EMA is on and
        the frames generator is fine-tuned (a frozen one is its own average)."""
        return self.frames_ema.shadow if self.frames_ema is not None else self.frames_generator

    def _noise(self, batch, steps, step, stream):
        c = self.config
        return {"noise": replica_normal(batch, [c.noise_dim], c.noise_seed, step, 2 * stream),
                "step_noise": replica_normal(batch, [steps, c.step_noise_dim], c.noise_seed, step,
                                             2 * stream + 1)}

    @property
    def xla_compatible(self) -> bool:
        """False with rollouts: the rollout length is drawn per step, a shape XLA cannot compile."""
        return not self.config.uses_rollouts

    def rollout(self, batch: int, steps: int, step, stream: int) -> tuple[tf.Tensor, tf.Tensor]:
        """(latents `[batch, R, Z]`, windows `[batch, steps, Z]`) of one stream of one step, float32.

        Without rollouts R = steps and the window is the rollout. With them R is uniform on
        {clip_length, …, rollout_length} (seeded by the step and stream: the same on every replica) and
        sample b's window is latents[b, o_b : o_b + steps], o_b uniform on {0, …, R − steps}, drawn
        from one global draw sliced per replica like the noise.
        """
        c = self.config
        if not c.uses_rollouts:
            latents = self.sequence_generator(self._noise(batch, steps, step, stream), training=True)
            return latents, latents
        length = tf.random.stateless_uniform([], seed=step_seed(c.noise_seed, step, 512 + stream),
                                             minval=steps, maxval=c.rollout_length + 1, dtype=tf.int32,
                                             alg="philox")
        latents = self.sequence_generator(self._noise(batch, length, step, stream), training=True)
        offsets = replica_uniform_int(batch, length - steps + 1, c.noise_seed, step, 768 + stream)
        return latents, gather_windows(latents, offsets, tf.range(steps))

    def late_pairs(self, batch: int, step) -> tf.Tensor:
        """`[batch, 2, H, W, C]` float32 in [-1, 1]: the late-motion term's rendered frames t − 1 and t of this
        step's `late_motion_length`-step rollouts, t uniform on {clip_length, …, late_motion_length − 1} per
        sample (one global draw sliced per replica, like the noise). Differentiable in both generators."""
        c = self.config
        latents = self.sequence_generator(self._noise(batch, c.late_motion_length, step, _LATE_MOTION_STREAM),
                                          training=True)
        times = c.clip_length + replica_uniform_int(batch, c.late_motion_length - c.clip_length, c.noise_seed, step,
                                                    768 + _LATE_MOTION_STREAM)
        return render(self.frames_generator, gather_windows(latents, times, tf.constant([-1, 0])))  # [batch, 2, ...]

    def train_step(self, real, step):
        batch, steps = real.shape[0], real.shape[1]
        replicas = adversarial.replicas_in_sync()
        global_batch = batch * replicas
        logged = {}

        def generate(stream):
            rollout, latents = self.rollout(batch, steps, step, stream)
            clips = render(self.frames_generator, latents)
            if stream != 0:  # a discriminator step discards the generator's terms: no critic pass, no all-reduce
                return clips, None
            terms = []
            if self.config.smoothness_weight > 0:  # latents: over the whole rollout; frames: the rendered window
                target = rollout if self.config.smoothness_on == "latents" else clips
                terms.append(self.config.smoothness_weight * tf.reduce_sum(
                    temporal_smoothness(target, self.config.smoothness_order)) / global_batch)
            if self.config.motion_energy_weight > 0:
                terms.append(self.config.motion_energy_weight * tf.reduce_sum(
                    motion_energy_variation(clips)) / global_batch)
            if self.config.motion_energy_match_weight > 0:
                match = motion_energy_match(clips, real, global_batch, self.config.motion_energy_match_weight)
                terms.append(match.objective_term)
                # Logged values are per-replica shares summed by the loop: each replica logs 1/N of it.
                logged["motion_energy_log_ratio"] = match.log_ratio / replicas
            if self.config.centroid_acceleration_match_weight > 0:
                match = centroid_acceleration_match(clips, real, self.config.centroid_acceleration_match_weight)
                terms.append(match.objective_term)
                logged["centroid_acceleration_log_ratio"] = match.log_ratio / replicas
            if self.config.stationarity_weight > 0:
                stationarity = latent_step_stationarity(
                    self.sequence_generator(self._noise(batch, self.config.stationarity_length, step,
                                                        _STATIONARITY_STREAM), training=True),
                    global_batch, self.config.stationarity_weight)
                terms.append(stationarity.objective_term)
                logged["stationarity_penalty"] = stationarity.penalty / replicas
            if self.config.late_motion_match_weight > 0:
                started = tf.cast(step, tf.int64) >= self.config.late_motion_start_step
                on = tf.cast(started, tf.float32)
                # Not computed before its start (zeros there, at weight 0); the match's all-reduce stays outside
                # the cond: every replica runs it every step.
                pairs = tf.cond(started, lambda: self.late_pairs(batch, step),
                                lambda: tf.zeros([batch, 2, *self.frame_shape], tf.float32))
                match = motion_energy_match(pairs, real, global_batch, on * self.config.late_motion_match_weight)
                terms.append(match.objective_term)
                logged["late_motion_log_ratio"] = on * match.log_ratio / replicas
            if self.frame_critic is not None:
                frames = tf.reshape(clips, (-1, *self.frame_shape))
                logits = tf.cast(self.frame_critic(frames, training=False), tf.float32)  # [b·T, K]
                per_frame = tf.reduce_mean(tf.nn.softplus(-logits), axis=-1)
                terms.append(self.config.frame_critic_weight * tf.reduce_sum(per_frame) / (global_batch * steps))
            return clips, tf.add_n(terms) if terms else None

        out = adversarial.train_step(real=real, generate=generate, discriminator=self.discriminators,
                                     d_optimizer=self.d_optimizer, generator_updates=self.generator_updates,
                                     config=self.config.adversarial)
        for average in (self.sequence_ema, self.frames_ema):
            if average is not None:
                average.update(step)
        metrics = out.as_dict()
        if out.generator_term is not None:
            metrics["g_regularizer"] = out.generator_term  # weighted smoothness, motion energy, frame critic
        metrics.update(logged)  # the generator pass's log(Ē_fake / Ē_real) with the matching term
        return metrics

    def checkpoint_objects(self) -> dict:
        objects = {"sequence_generator": self.sequence_generator, "discriminators": self.discriminators,
                   "s_optimizer": self.s_optimizer, "d_optimizer": self.d_optimizer}
        if self.config.finetune_frames_generator:
            objects.update(frames_generator=self.frames_generator, f_optimizer=self.f_optimizer)
        if self.sequence_ema is not None:
            objects["sequence_generator_ema"] = self.sequence_ema.shadow
        if self.frames_ema is not None:
            objects["frames_generator_ema"] = self.frames_ema.shadow
        return objects

    def optimizers(self) -> list:
        pairs = [(self.s_optimizer, self.config.sequence_optimizer),
                 (self.d_optimizer, self.config.discriminator_optimizer)]
        if self.config.finetune_frames_generator:
            pairs.append((self.f_optimizer, self.config.frames_generator_optimizer))
        return pairs

    def sample(self, num_samples: int, steps: int, seed: int):
        """(clips `[N, steps, H, W, C]` float32 in [-1, 1], latents `[N, steps, Z]` float32) for a fixed seed,
        from the sampling (EMA when on) generators."""
        c = self.config
        noise = sample_sequence_noise(num_samples, steps, [seed, VIDEO_SAMPLE_STREAM], c.noise_dim,
                                      c.step_noise_dim)
        latents = self.sampling_sequence_generator(noise, training=False)
        return render(self.sampling_frames_generator, latents), latents

    def write_samples(self, step: int) -> None:
        clips, _ = self.sample(self.config.num_sample_videos, self.config.sample_length, self.config.noise_seed)
        clips = clips.numpy()
        height, width = clips.shape[2:4]
        for i, clip in enumerate(clips):
            summaries.write_gif(f"samples/video_{i}", gif_bytes(clip), width, height, step)
        summaries.write_image_grid("samples/strips", clips.reshape(-1, *clips.shape[2:]), step,
                                   rows=len(clips))

    def evaluate(self, step: int) -> dict:
        """Quality of fixed-seed samples (empty without a probe)."""
        if self.quality_probe is None:
            return {}

        def sample_clips(n, t, seed):
            return np.concatenate([self.sample(min(64, n - i), t, seed + i)[0].numpy() for i in range(0, n, 64)])
        return self.quality_probe(sample_clips)

    def description(self) -> dict:
        c = self.config
        return {"kind": VIDEO_GENERATOR, "latent_dim": self.latent_dim, "noise_dim": c.noise_dim,
                "step_noise_dim": c.step_noise_dim, "image_size": self.frame_shape[0],
                "channels": self.frame_shape[2], "clip_length": c.clip_length,
                "sample_length": c.sample_length, "frames_generator": c.frames_generator,
                "frames_generator_finetuned": c.finetune_frames_generator,
                "trajectory": c.trajectory, "max_step": c.max_step, "bidirectional": c.bidirectional,
                "initial_state": c.initial_state, "burn_in_steps": c.burn_in_steps,
                "sample_burn_in_steps": c.sample_burn_in_steps, "rollout_length": c.rollout_length,
                "weights": "ema" if self.sequence_ema is not None else "raw", "ema_beta": c.ema_beta}

    def export(self, directory: str) -> None:
        export_video_generator(self.sampling_sequence_generator, self.sampling_frames_generator, self.description(),
                               directory)

