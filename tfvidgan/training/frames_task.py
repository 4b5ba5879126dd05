"""Step 1: the frames generator (FG) trained on single frames against K projected discriminators."""
from __future__ import annotations

import dataclasses
import json
import os

import keras
import tensorflow as tf

from tfvidgan.errors import ConfigError, TfvidganError
from tfvidgan.export import check_trailing_shape, latest_version_dir, write_archive
from tfvidgan.models.ensemble_discriminator import build_frame_discriminators
from tfvidgan.models.frames_generator import build_frames_generator
from tfvidgan.training import adversarial, summaries
from tfvidgan.training.ema import WeightAverage
from tfvidgan.training.noise import replica_normal
from tfvidgan.training.optimizers import OptimizerConfig, make_optimizer

# Inside an export, beside saved_model.pb: the Keras generator (for fine-tuning) and its description.
KERAS_GENERATOR_FILE = os.path.join("assets.extra", "frames_generator.keras")
# The raw (non-averaged) generator, written when the export's main generator is the EMA one.
KERAS_RAW_GENERATOR_FILE = os.path.join("assets.extra", "frames_generator_raw.keras")
DESCRIPTION_FILE = os.path.join("assets.extra", "tfvidgan.json")
_SAMPLE_SEED_STREAM = 987_654


@dataclasses.dataclass(frozen=True)
class FramesGanConfig:
    """Everything that defines the frames GAN (not how long it trains)."""
    image_size: int = 32
    channels: int = 1
    latent_dim: int = 100
    generator_filters: int = 64
    generator_normalization: str = "batch"
    num_discriminators: int = 48
    discriminator_filters: int = 16
    discriminator_normalization: str = "batch"
    projection_seed: int = 0
    noise_seed: int = 0
    num_sample_images: int = 64
    # EMA of the generator's weights (β per step; 0 = off): used by samples, summaries and the export.
    ema_beta: float = 0.999
    adversarial: adversarial.AdversarialConfig = adversarial.AdversarialConfig()
    generator_optimizer: OptimizerConfig = OptimizerConfig()
    discriminator_optimizer: OptimizerConfig = OptimizerConfig()


def describe(config: FramesGanConfig) -> dict:
    """The JSON description written into an export (read back by the video trainer and `sample`)."""
    return {"kind": "frames_generator", "latent_dim": config.latent_dim, "image_size": config.image_size,
            "channels": config.channels, "prior": "standard_normal"}


class FramesGanTask:
    """Frames GAN task for `tfvidgan.training.loop.run_training`; batches are `[b, H, W, C]` in [-1, 1].

    `quality_probe`, if given, is a callable `probe(generator) -> {name: float}` (e.g.
    `tfvidgan.metrics.quality_probe.FramesQualityProbe`) that the loop runs every `eval_every` steps on
    the sampling generator.
    """

    def __init__(self, config: FramesGanConfig, quality_probe=None):
        self.config = config
        self.quality_probe = quality_probe

    def build(self) -> None:
        c = self.config
        self.generator = build_frames_generator(c.image_size, c.channels, c.latent_dim,
                                                base_filters=c.generator_filters,
                                                normalization=c.generator_normalization)
        self.discriminators = build_frame_discriminators(
            (c.image_size, c.image_size, c.channels), c.num_discriminators,
            base_filters=c.discriminator_filters, seed=c.projection_seed,
            normalization=c.discriminator_normalization)
        self.ema = WeightAverage(self.generator, c.ema_beta) if c.ema_beta > 0 else None
        self.g_optimizer = make_optimizer(c.generator_optimizer, self.generator.trainable_variables)
        self.d_optimizer = make_optimizer(c.discriminator_optimizer, self.discriminators.trainable_variables)

    def train_step(self, real, step):
        batch = real.shape[0]

        def generate(stream):
            z = replica_normal(batch, [self.config.latent_dim], self.config.noise_seed, step, stream)
            return self.generator(z, training=True), 0.0

        out = adversarial.train_step(
            real=real, generate=generate, discriminator=self.discriminators, d_optimizer=self.d_optimizer,
            generator_updates=[(self.g_optimizer, self.generator.trainable_variables)],
            config=self.config.adversarial)
        if self.ema is not None:
            self.ema.update(step)
        return out

    @property
    def sampling_generator(self) -> keras.Model:
        """The generator used for samples, summaries and the export: the EMA one when EMA is on."""
        return self.ema.shadow if self.ema is not None else self.generator

    def checkpoint_objects(self) -> dict:
        objects = {"generator": self.generator, "discriminators": self.discriminators,
                   "g_optimizer": self.g_optimizer, "d_optimizer": self.d_optimizer}
        if self.ema is not None:
            objects["generator_ema"] = self.ema.shadow
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
                                raw_generator=self.generator if self.ema is not None else None)


def export_frames_generator(generator: keras.Model, description: dict, directory: str,
                            raw_generator: keras.Model | None = None) -> None:
    """SavedModel with signatures `generate(z [N, Z] float32) → {"frames": [N, H, W, C] in [-1, 1]}`
    (also `serving_default`) and `sample(num_samples int32, seed int32) → {"frames", "z"}` drawing
    z ~ N(0, I); plus the Keras model and a JSON description under `assets.extra/`.

    `generator` is what users sample (the EMA generator when EMA is on); `raw_generator`, if given, is
    the non-averaged one, saved as `assets.extra/frames_generator_raw.keras` for side-by-side evaluation.
    """
    latent_dim = description["latent_dim"]

    def generate(z):
        z = check_trailing_shape(z, (latent_dim,), "z", f"[batch, {latent_dim}] (latent size {latent_dim})")
        return {"frames": tf.cast(generator(z, training=False), tf.float32)}

    def sample(num_samples, seed):
        z = tf.random.stateless_normal(tf.stack([num_samples, latent_dim]), seed=tf.stack([seed, 0]))
        return {"frames": tf.cast(generator(z, training=False), tf.float32), "z": z}

    write_archive(directory, [generator], {
        "generate": (generate, [tf.TensorSpec([None, latent_dim], tf.float32, name="z")]),
        "sample": (sample, [tf.TensorSpec([], tf.int32, name="num_samples"),
                            tf.TensorSpec([], tf.int32, name="seed")]),
    })
    os.makedirs(os.path.join(directory, "assets.extra"), exist_ok=True)
    generator.save(os.path.join(directory, KERAS_GENERATOR_FILE))
    description = dict(description, weights="ema" if raw_generator is not None else "raw")
    if raw_generator is not None:
        raw_generator.save(os.path.join(directory, KERAS_RAW_GENERATOR_FILE))
    with open(os.path.join(directory, DESCRIPTION_FILE), "w") as f:
        json.dump(description, f, indent=2)


def read_frames_generator_description(path: str) -> tuple[str, dict]:
    """(version directory, description dict) of a frames-generator export; clear error if it is not one.

    `path` is an export base directory (newest version) or one version directory.
    """
    try:
        directory = latest_version_dir(path)
    except TfvidganError as e:
        raise ConfigError(f"--frames_generator={path!r} is not a frames-generator export: {e}") from e
    keras_path = os.path.join(directory, KERAS_GENERATOR_FILE)
    description_path = os.path.join(directory, DESCRIPTION_FILE)
    if not (os.path.exists(keras_path) and os.path.exists(description_path)):
        raise ConfigError(f"--frames_generator={path!r}: {directory!r} is not a frames-generator export "
                          f"(missing {KERAS_GENERATOR_FILE} or {DESCRIPTION_FILE})")
    with open(description_path) as f:
        description = json.load(f)
    if description.get("kind") != "frames_generator":
        raise ConfigError(f"--frames_generator={path!r}: {description_path} describes a "
                          f"{description.get('kind')!r}, not a frames_generator")
    return directory, description


def load_frames_generator(path: str, weights: str = "default") -> tuple[keras.Model, dict]:
    """Loads a frames generator written by `export_frames_generator`: `(Keras model, description)`.

    The model maps `[N, Z]` → `[N, H, W, C]` in [-1, 1]. `weights`: "default" (what the export samples
    with: the EMA weights when the run used EMA) or "raw" (the non-averaged weights; for an export
    without EMA, the same model). `description["weights"]` says which one was loaded ("ema" | "raw").
    """
    directory, description = read_frames_generator_description(path)
    if weights not in ("default", "raw"):
        raise ConfigError(f"load_frames_generator: weights must be 'default' or 'raw', got {weights!r}")
    description.setdefault("weights", "raw")
    file = KERAS_GENERATOR_FILE
    if weights == "raw" and os.path.exists(os.path.join(directory, KERAS_RAW_GENERATOR_FILE)):
        file, description = KERAS_RAW_GENERATOR_FILE, dict(description, weights="raw")
    return keras.models.load_model(os.path.join(directory, file), compile=False), description
