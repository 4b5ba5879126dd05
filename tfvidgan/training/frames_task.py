"""Step 1: the frames generator (FG) trained on single frames against K projected discriminators."""
from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from tfvidgan.data import readers
from tfvidgan.errors import ConfigError
from tfvidgan.export import (
    FRAMES_GENERATOR,
    export_frames_generator,
    load_frame_discriminators,
    load_frames_generator,
)
from tfvidgan.models.ensemble_discriminator import (
    DEFAULT_FRAME_BASE_FILTERS,
    DEFAULT_HEAD,
    DEFAULT_NORMALIZATION,
    build_frame_discriminators,
)
from tfvidgan.models.frames_generator import (
    DEFAULT_GENERATOR_FILTERS,
    DEFAULT_GENERATOR_NORMALIZATION,
    build_frames_generator,
)
from tfvidgan.training import adversarial, summaries
from tfvidgan.training.ema import WeightAverage, check_beta
from tfvidgan.training.init_seed import seeded_initializers
from tfvidgan.training.loop import InputConfig, require_inputs
from tfvidgan.training.noise import replica_normal
from tfvidgan.training.optimizers import OptimizerConfig, make_optimizer
from tfvidgan.training.path_length import PathLengthRegularizer, check_weight, path_lengths
from tfvidgan.training.straightness import (
    DEFAULT_STRAIGHTNESS_STEP,
    StraightnessRegularizer,
    as_clips,
    check_straightness,
    latent_triples,
)

_SAMPLE_SEED_STREAM = 987_654
# The noise stream of the path-length directions within a step (`replica_normal`; 0 and 2 + i are the
# latents of the generator and discriminator updates, 1 was unused).
_PATH_LENGTH_STREAM = 1
# The stream of the straightness regulariser's directions (`replica_normal`; streams 2 + i are taken).
_STRAIGHTNESS_STREAM = 123_457


@dataclasses.dataclass(frozen=True)
class FramesGanConfig:
    """Everything that defines the frames GAN (not how long it trains).

    These defaults are THE defaults: `python -m tfvidgan.train_frames` takes its flags' defaults from them
    (`tfvidgan.common_flags`). Sizes are the paper's (K = 48 projected discriminators, DCGAN generator of 64
    filters, Z = 100; configs/frames_bb3.cfg); normalisation is the shipped configs' and README results'
    choice: synchronised batch norm in the generator and the discriminators, real and fake judged as one
    batch (`adversarial.joint_batch`), so N replicas compute what one replica computes. Small CPU runs
    shrink K and the filters in their flagfile (configs/frames_bb3_small.cfg).
    """
    image_size: int = 32          # set from the dataset by the trainer
    channels: int = 1             # set from the dataset by the trainer
    latent_dim: int = 100
    generator_filters: int = DEFAULT_GENERATOR_FILTERS
    generator_normalization: str = DEFAULT_GENERATOR_NORMALIZATION
    num_discriminators: int = 48
    discriminator_filters: int = DEFAULT_FRAME_BASE_FILTERS
    discriminator_normalization: str = DEFAULT_NORMALIZATION
    discriminator_head: str = DEFAULT_HEAD
    # Group size of a minibatch-stddev layer before each discriminator's head; 0 = off (measured: no gain
    # on the ball count at 6,000 steps, docs/experiments_frames.md, "What the training choices do").
    discriminator_minibatch_std: int = 0
    projection_seed: int = 0
    noise_seed: int = 0
    # Seed of the initial weights of the models this task creates (`tfvidgan.training.init_seed`).
    init_seed: int = 0
    num_sample_images: int = 64
    # EMA of the generator's weights (β per step; 0 = off): used by samples, summaries and the export.
    ema_beta: float = 0.999
    # Weight of the path-length regulariser on the generator (`tfvidgan.training.path_length`; 0 = off):
    # equal latent steps should change the frame equally everywhere, so that even latent paths render even
    # motion in step 2.
    path_length_weight: float = 0.0
    # Weight of the latent-line straightness regulariser (`tfvidgan.training.straightness`; 0 = off): balls
    # should move in straight lines at constant speed along straight latent lines, `straightness_step` latent
    # units apart, so that step 2 can move them straight with even latent paths.
    straightness_weight: float = 0.0
    straightness_step: float = DEFAULT_STRAIGHTNESS_STEP
    # A frames export whose discriminators to refine (`DiscriminatorRefinementTask`); empty = train the GAN.
    refine_discriminators_of: str = ""
    adversarial: adversarial.AdversarialConfig = adversarial.AdversarialConfig(joint_batch=True)
    generator_optimizer: OptimizerConfig = OptimizerConfig()
    discriminator_optimizer: OptimizerConfig = OptimizerConfig()

    def __post_init__(self):
        check_beta(self.ema_beta)
        check_weight(self.path_length_weight)
        check_straightness(self.straightness_weight, self.straightness_step)


def describe(config: FramesGanConfig) -> dict:
    """The JSON description written into an export (`tfvidgan.export.export_frames_generator`; read back by
    the video trainer, `sample` and `evaluate`)."""
    return {"kind": FRAMES_GENERATOR, "latent_dim": config.latent_dim, "image_size": config.image_size,
            "channels": config.channels, "prior": "standard_normal"}


class FramesGanTask:
    """Frames GAN task for `tfvidgan.training.loop.run_training`; batches are `[b, H, W, C]` in [-1, 1].

    `quality_probe`, if given, is a callable `probe(generator) -> {name: float}` (e.g.
    `tfvidgan.metrics.quality_probe.FramesQualityProbe`) that the loop runs every `eval_every` steps on
    the sampling generator. `inputs`: the training data read by `build_inputs`.
    """

    def __init__(self, config: FramesGanConfig, quality_probe=None, inputs: InputConfig | None = None):
        self.config = config
        self.quality_probe = quality_probe
        self.inputs = inputs

    def build_inputs(self, input_context: tf.distribute.InputContext | None = None,
                     start_step: int = 0) -> tf.data.Dataset:
        """Endless per-replica batches `[b, H, W, C]` float32 in [-1, 1] of single frames picked at random
        from the scenes of `inputs.data` (b = the global batch / replicas), seeded `inputs.seed + start_step`."""
        i = require_inputs(self.inputs, self)
        return readers.random_frames_dataset(i.data, i.per_replica_batch(input_context), seed=i.seed + start_step,
                                             skip_bad_records=i.skip_bad_records, input_context=input_context)

    def build(self) -> None:
        c = self.config
        with seeded_initializers(c.init_seed):
            self.generator = build_frames_generator(c.image_size, c.channels, c.latent_dim,
                                                    base_filters=c.generator_filters,
                                                    normalization=c.generator_normalization)
            self.discriminators = build_frame_discriminators(
                (c.image_size, c.image_size, c.channels), c.num_discriminators,
                base_filters=c.discriminator_filters, seed=c.projection_seed,
                normalization=c.discriminator_normalization, head=c.discriminator_head,
                minibatch_std=c.discriminator_minibatch_std)
        self.ema = WeightAverage(self.generator, c.ema_beta) if c.ema_beta > 0 else None
        self.path_length = PathLengthRegularizer(c.path_length_weight) if c.path_length_weight > 0 else None
        self.straightness = (StraightnessRegularizer(c.straightness_weight, c.straightness_step)
                             if c.straightness_weight > 0 else None)
        self.g_optimizer = make_optimizer(c.generator_optimizer, self.generator.trainable_variables)
        self.d_optimizer = make_optimizer(c.discriminator_optimizer, self.discriminators.trainable_variables)

    def _generate_fn(self, batch: int, step, training: bool, logged: dict | None = None):
        """`adversarial.GenerateFn`: `batch` frames of `self.generator` from this replica's slice of the step's
        global latent draw (`replica_normal`). With a regulariser on (path length, straightness), the generator
        update (stream 0) also returns their summed weighted terms and puts the unweighted penalties in
        `logged`. With straightness on, that update renders the latent triples around its latents in one call
        (`[3b, Z]`) and its frames are the middle third; with path length on as well, its lengths are taken
        through that same call, so the generator runs once per update and batch norm updates its moving
        statistics once."""
        c = self.config

        def generate(stream):
            z = replica_normal(batch, [c.latent_dim], c.noise_seed, step, stream)
            if stream != 0 or (self.path_length is None and self.straightness is None):
                return self.generator(z, training=training), None
            terms, rendered = [], {}

            def render(latents):
                """The one generator call of the update: its frames, or the middle third of the triples."""
                if self.straightness is None:
                    return self.generator(latents, training=training)
                directions = replica_normal(batch, [c.latent_dim], c.noise_seed, step, _STRAIGHTNESS_STREAM)
                rendered["triples"] = as_clips(self.generator(
                    latent_triples(latents, directions, self.straightness.step), training=training))
                return rendered["triples"][:, 1]

            if self.path_length is not None:
                replicas = adversarial.replicas_in_sync()
                directions = self.path_length.directions(batch, (c.image_size, c.image_size, c.channels),
                                                         c.noise_seed, step, _PATH_LENGTH_STREAM)
                frames, lengths = path_lengths(render, z, directions)
                term, penalty = self.path_length(lengths, batch * replicas)
                terms.append(term)
                if logged is not None:
                    logged["path_length_penalty"] = penalty
                    logged["path_length_mean"] = tf.identity(self.path_length.mean) / replicas  # sums to ā
            else:
                frames = render(z)
            if self.straightness is not None:
                term, penalty = self.straightness(rendered["triples"])
                terms.append(term)
                if logged is not None:
                    logged["straightness_penalty"] = penalty / adversarial.replicas_in_sync()  # sums to it
            return frames, tf.add_n(terms)
        return generate

    def train_step(self, real, step):
        logged = {}
        out = adversarial.train_step(
            real=real, generate=self._generate_fn(real.shape[0], step, training=True, logged=logged),
            discriminator=self.discriminators, d_optimizer=self.d_optimizer,
            generator_updates=[(self.g_optimizer, self.generator.trainable_variables)],
            config=self.config.adversarial)
        if self.ema is not None:
            self.ema.update(step)
        return {**out.as_dict(), **logged}

    @property
    def sampling_generator(self) -> keras.Model:
        """The generator used for samples, summaries and the export: the EMA one when EMA is on."""
        return self.ema.shadow if self.ema is not None else self.generator

    def checkpoint_objects(self) -> dict:
        objects = {"generator": self.generator, "discriminators": self.discriminators,
                   "g_optimizer": self.g_optimizer, "d_optimizer": self.d_optimizer}
        if self.ema is not None:
            objects["generator_ema"] = self.ema.shadow
        if self.path_length is not None:
            objects["path_length_mean"] = self.path_length.mean
        return objects

    def optimizers(self) -> list:
        return [(self.g_optimizer, self.config.generator_optimizer),
                (self.d_optimizer, self.config.discriminator_optimizer)]

    def sample_latents(self) -> tf.Tensor:
        """The fixed latents of the sample grids, `[num_sample_images, Z]`."""
        return tf.random.stateless_normal([self.config.num_sample_images, self.config.latent_dim],
                                          seed=[self.config.noise_seed, _SAMPLE_SEED_STREAM])

    def write_samples(self, step: int) -> None:
        frames = self.sampling_generator(self.sample_latents(), training=False)
        summaries.write_image_grid("samples/frames", frames.numpy(), step)
        if self.ema is not None:
            raw = self.generator(self.sample_latents(), training=False)
            summaries.write_image_grid("samples/frames_raw_weights", raw.numpy(), step)

    def evaluate(self, step: int) -> dict:
        """Quality of the sampling generator (empty without a probe)."""
        return self.quality_probe(self.sampling_generator) if self.quality_probe is not None else {}

    def export(self, directory: str) -> None:
        export_frames_generator(self.sampling_generator, describe(self.config), directory,
                                raw_generator=self.generator if self.ema is not None else None,
                                discriminators=self.discriminators)


class DiscriminatorRefinementTask(FramesGanTask):
    """Keeps training the discriminators of a frames export against its FROZEN generator (the first step
    of discriminator rejection sampling, Azadi et al. 2019, Algorithm 1: "D ← KeepTraining(D)").

    At the end of GAN training the discriminators are tuned to the raw generator of the last steps, and
    with an R1 penalty they are deliberately smooth; rejection sampling needs them to estimate
    log p_data / p_G for the generator that is SAMPLED (the EMA one). This task loads the export's
    sampling generator and discriminators (`config.refine_discriminators_of`), and runs only the
    discriminator update of `adversarial.train_step` (same losses, joint batch, R1 if `r1_weight` > 0)
    with the generator frozen. Its export is the same generator (and raw weights, when the source has
    them) with the refined discriminators, for `evaluate frames --rejection_acceptance` and
    `sample frames --rejection_acceptance`.

    The source export must match the config: latent size, frame shape and number of discriminators (the
    flags of the run that wrote it); a mismatch raises `ConfigError` naming the flag.
    """

    def build(self) -> None:
        c, flag = self.config, "refine_discriminators_of"
        self.generator, description = load_frames_generator(c.refine_discriminators_of, flag=flag)
        self.raw_generator = None
        if description["weights"] == "ema":
            self.raw_generator, _ = load_frames_generator(c.refine_discriminators_of, weights="raw", flag=flag)
        self.discriminators = load_frame_discriminators(c.refine_discriminators_of, flag=flag)
        found = {"latent_dim": description["latent_dim"], "image_size": description["image_size"],
                 "channels": description["channels"],
                 "num_discriminators": int(self.discriminators.output_shape[-1])}
        wrong = {k: v for k, v in found.items() if v != getattr(c, k)}
        if wrong:
            raise ConfigError(f"--refine_discriminators_of={c.refine_discriminators_of!r} holds another model: "
                              + "; ".join(f"--{k}={getattr(c, k)} but the export has {v}" for k, v in wrong.items())
                              + ". Pass the flags of the run that wrote it (and its --data).")
        self.generator.trainable = False
        if self.raw_generator is not None:
            self.raw_generator.trainable = False
        self.ema = None
        self.path_length = self.straightness = None  # the generator is frozen: nothing to regularise
        self.d_optimizer = make_optimizer(c.discriminator_optimizer, self.discriminators.trainable_variables)

    def train_step(self, real, step):
        generate = self._generate_fn(real.shape[0], step, training=False)  # frozen: inference mode
        out = adversarial.train_step(real=real, generate=generate, discriminator=self.discriminators,
                                     d_optimizer=self.d_optimizer, generator_updates=[],
                                     config=self.config.adversarial)
        return out.as_dict()

    def checkpoint_objects(self) -> dict:
        return {"discriminators": self.discriminators, "d_optimizer": self.d_optimizer}

    def optimizers(self) -> list:
        return [(self.d_optimizer, self.config.discriminator_optimizer)]

    def evaluate(self, step: int) -> dict:
        """Quality of the frames that rejection sampling keeps with the CURRENT discriminators
        (`probe.rejection(generator, discriminators)`, e.g. `FramesQualityProbe.rejection`); empty without
        a probe."""
        if self.quality_probe is None:
            return {}
        return self.quality_probe.rejection(self.generator, self.discriminators)

    def export(self, directory: str) -> None:
        export_frames_generator(self.generator, describe(self.config), directory,
                                raw_generator=self.raw_generator, discriminators=self.discriminators)


def make_frames_task(config: FramesGanConfig, quality_probe=None, inputs: InputConfig | None = None):
    """The task `config` asks for: `DiscriminatorRefinementTask` when `refine_discriminators_of` is set,
    else `FramesGanTask`."""
    cls = DiscriminatorRefinementTask if config.refine_discriminators_of else FramesGanTask
    return cls(config, quality_probe=quality_probe, inputs=inputs)
