"""CUP reconstruction: a network maps a sensed image (and, for the unfolded net, the mask) to the T-frame scene.

Two architectures (`ReconstructionConfig.architecture`): ``"unet"`` (`tfvidgan.models.reconstructor`,
the mask baked in as a fixed weight) and ``"unfolded"`` (`tfvidgan.models.unfolded`, the mask an input
tensor). With ``random_masks`` (unfolded only) every training example is re-sensed with a fresh
Bernoulli(``mask_fill``) mask drawn from the stateless seed ``[random_mask_seed, step]`` (per replica
and example), plus the dataset's noise model (``photons``, ``read_noise``), so the net learns to use
whatever mask it is given.

Trained with MSE, optionally plus an adversarial loss from a fully convolutional critic (each patch
logit counts as one discriminator of the shared ensemble GAN step, so the adversarial part reuses
`tfvidgan.training.adversarial` exactly as the frames and video GANs do).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from tfvidgan.cup.operator import add_noise, forward_with_masks, random_masks
from tfvidgan.data.cup_pairs import cup_pairs_dataset
from tfvidgan.errors import ConfigError
from tfvidgan.export import export_reconstructor
from tfvidgan.models import reconstructor as unet
from tfvidgan.models import unfolded
from tfvidgan.models.reconstructor import SENSED_INPUT_NAME, build_reconstruction_critic, build_reconstructor
from tfvidgan.models.unfolded import CONV_KINDS, MASK_INPUT_NAME, build_unfolded_reconstructor
from tfvidgan.training import adversarial, summaries
from tfvidgan.training.init_seed import seeded_initializers
from tfvidgan.training.loop import InputConfig, require_inputs
from tfvidgan.training.noise import step_seed
from tfvidgan.training.optimizers import OptimizerConfig, make_optimizer

ARCHITECTURES = ("unet", "unfolded")


@dataclasses.dataclass(frozen=True, eq=False)
class ReconstructionConfig:
    """Scene size T×H×W, the dataset's coding mask `[H, W]` (finite float32), network and loss settings.

    Field names are the trainer's flag names (`tfvidgan.train_reconstructor`), whose defaults are these
    (the network sizes are the builders' shared constants). Optimizers: the reconstructor trains with Adam
    1e-3, beta_1 0.9 (every configs/cup*.cfg and the README results); the critic (`adversarial_weight` > 0)
    with RMSprop 2e-4, as the trainer always ran it (the README's adversarial rows).
    ``base_filters``/``depth`` configure the U-Net; ``unfolded_*`` the unfolded net; ``random_masks``
    (unfolded only) re-senses every training scene with a fresh mask of fill ``mask_fill`` and the noise
    model ``photons`` (0 = no shot noise), ``read_noise`` (sensed units). ``init_seed`` seeds the initial
    weights of the networks (`tfvidgan.training.init_seed`).
    """
    num_frames: int
    height: int
    width: int
    mask: np.ndarray
    architecture: str = "unet"
    base_filters: int = unet.DEFAULT_BASE_FILTERS
    depth: int = unet.DEFAULT_DEPTH
    unfolded_stages: int = unfolded.DEFAULT_STAGES
    unfolded_filters: int = unfolded.DEFAULT_FILTERS
    unfolded_conv_layers: int = unfolded.DEFAULT_CONV_LAYERS
    unfolded_levels: int = unfolded.DEFAULT_LEVELS
    unfolded_conv: str = unfolded.DEFAULT_CONV
    unfolded_share_weights: bool = False
    unfolded_memory: bool = False
    random_masks: bool = False
    random_mask_seed: int = 0
    init_seed: int = 0
    mask_fill: float = 0.5
    photons: float = 0.0
    read_noise: float = 0.0
    adversarial_weight: float = 0.0
    discriminator_filters: int = unet.DEFAULT_CRITIC_FILTERS
    adversarial: adversarial.AdversarialConfig = adversarial.AdversarialConfig()
    optimizer: OptimizerConfig = OptimizerConfig(name="adam", learning_rate=1e-3, beta_1=0.9)
    discriminator_optimizer: OptimizerConfig = OptimizerConfig(name="rmsprop", learning_rate=2e-4, beta_1=0.5)

    def __post_init__(self):
        if self.adversarial_weight < 0:
            raise ConfigError(f"--adversarial_weight must be >= 0, got {self.adversarial_weight}")
        if self.architecture not in ARCHITECTURES:
            raise ConfigError(f"--architecture={self.architecture!r} is not one of {', '.join(ARCHITECTURES)}")
        if self.unfolded_conv not in CONV_KINDS:
            raise ConfigError(f"--unfolded_conv={self.unfolded_conv!r} is not one of {', '.join(CONV_KINDS)}")
        if self.unfolded_memory and self.unfolded_conv not in unfolded.FRAMES_AS_CHANNELS:
            raise ConfigError(f"--unfolded_memory needs --unfolded_conv=frames2d or frames_unet, "
                              f"got {self.unfolded_conv!r}")
        for name, minimum in (("base_filters", 1), ("depth", 1), ("discriminator_filters", 1), ("unfolded_stages", 1),
                              ("unfolded_filters", 1), ("unfolded_conv_layers", 2), ("unfolded_levels", 2)):
            if getattr(self, name) < minimum:
                raise ConfigError(f"--{name} must be >= {minimum}, got {getattr(self, name)}")
        if tuple(np.shape(self.mask)) != (self.height, self.width):
            raise ConfigError(f"mask shape {np.shape(self.mask)} does not match the scene's "
                              f"{(self.height, self.width)}")
        if not np.all(np.isfinite(np.asarray(self.mask, np.float64))):
            raise ConfigError("the coding mask (the dataset's mask.npy) contains NaN or infinite values")
        if self.random_masks and self.architecture != "unfolded":
            raise ConfigError("--random_masks needs --architecture=unfolded (the U-Net bakes its mask in)")
        if not 0.0 < self.mask_fill <= 1.0:
            raise ConfigError(f"mask fill must be in (0, 1], got {self.mask_fill}")
        if self.photons < 0 or self.read_noise < 0:
            raise ConfigError(f"photons and read_noise must be >= 0, got {self.photons}, {self.read_noise}")


def per_example_mse(prediction: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """`[B, T, H, W, 1]` × 2 → `[B]` mean squared error per example."""
    prediction = tf.cast(prediction, target.dtype)
    return tf.reduce_mean(tf.reshape(tf.square(prediction - target), [tf.shape(target)[0], -1]), axis=1)


PREVIEW_EXAMPLES = 4


class ReconstructionTask:
    """Task for `run_training`; batches are `(sensed [b, H+T−1, W, 1], scene [b, T, H, W, 1] in [0, 1])`."""

    def __init__(self, config: ReconstructionConfig, preview: tuple | None = None, inputs: InputConfig | None = None,
                 quality_probe=None):
        """`preview`: optional fixed `(sensed, scene)` numpy batch shown in TensorBoard; without it, the first
        `PREVIEW_EXAMPLES` pairs of `inputs.data` (in file order) when `inputs` is given.
        `inputs`: the training data read by `build_inputs`. `quality_probe`: optional callable
        `probe(predict) -> {name: float}` (e.g. `tfvidgan.metrics.quality_probe.ReconstructionQualityProbe`:
        PSNR/SSIM on held-out pairs) run by `evaluate`, where `predict(sensed, mask)` is `self.predict`."""
        self.config = config
        self.preview = preview
        self.inputs = inputs
        self.quality_probe = quality_probe

    def build_inputs(self, input_context: tf.distribute.InputContext | None = None,
                     start_step: int = 0) -> tf.data.Dataset:
        """Endless shuffled per-replica batches `(sensed [b, H+T−1, W, 1] float32, scene [b, T, H, W, 1]
        float32 in [0, 1])` of `inputs.data` (b = the global batch / replicas), seeded `inputs.seed + start_step`."""
        i = require_inputs(self.inputs, self)
        return cup_pairs_dataset(i.data, i.per_replica_batch(input_context), seed=i.seed + start_step,
                                 input_context=input_context, skip_bad_records=i.skip_bad_records)

    def preview_batch(self) -> tuple | None:
        """The fixed `(sensed, scene)` numpy batch of the TensorBoard samples (read once), or None."""
        if self.preview is None and self.inputs is not None:
            batch = next(iter(cup_pairs_dataset(self.inputs.data, PREVIEW_EXAMPLES, shuffle=False, repeat=False,
                                                skip_bad_records=self.inputs.skip_bad_records)))
            self.preview = tuple(t.numpy() for t in batch)
        return self.preview

    def build(self) -> None:
        c = self.config
        with seeded_initializers(c.init_seed):
            self.reconstructor = build_model(c)
            self.discriminator = None
            if c.adversarial_weight > 0:
                self.discriminator = build_reconstruction_critic(c.num_frames, c.height, c.width,
                                                                 base_filters=c.discriminator_filters)
        self.optimizer = make_optimizer(c.optimizer, self.reconstructor.trainable_variables)
        self.d_optimizer = None
        if self.discriminator is not None:
            self.d_optimizer = make_optimizer(c.discriminator_optimizer, self.discriminator.trainable_variables)

    def model_inputs(self, sensed, scene, step):
        """The network's inputs for a batch: the sensed images for the U-Net; for the unfolded net
        ``{"sensed_image", "mask"}`` with the dataset's mask, or (``random_masks``) fresh per-example masks
        and the scene re-sensed through them with the dataset's noise model."""
        c = self.config
        if c.architecture == "unet":
            return sensed
        batch = tf.shape(sensed)[0]
        if not c.random_masks:
            masks = tf.tile(tf.constant(np.asarray(c.mask, np.float32))[None], [batch, 1, 1])
            return {SENSED_INPUT_NAME: sensed, MASK_INPUT_NAME: masks}
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        seed = step_seed(c.random_mask_seed, step, replica)
        mask_seed, noise_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        masks = random_masks(batch, c.height, c.width, mask_seed, c.mask_fill)
        resensed = add_noise(forward_with_masks(tf.cast(scene, tf.float32), masks), c.photons, c.read_noise,
                             noise_seed)
        return {SENSED_INPUT_NAME: resensed, MASK_INPUT_NAME: masks}

    def predict(self, sensed, mask=None, training=False):
        """Scenes ``[B, T, H, W, 1]`` from sensed ``[B, H+T−1, W, 1]`` (unfolded: ``mask`` ``[H, W]`` or
        ``[B, H, W]``, default the training mask)."""
        if self.config.architecture == "unet":
            return self.reconstructor(sensed, training=training)
        mask = self.config.mask if mask is None else mask
        mask = np.broadcast_to(np.asarray(mask, np.float32), (len(sensed), self.config.height, self.config.width))
        return self.reconstructor({SENSED_INPUT_NAME: tf.convert_to_tensor(sensed, tf.float32),
                                   MASK_INPUT_NAME: tf.constant(mask)}, training=training)

    def train_step(self, batch, step):
        sensed, scene = batch
        replicas = adversarial.replicas_in_sync()
        global_batch = sensed.shape[0] * replicas
        inputs = self.model_inputs(sensed, scene, step)

        def reconstruct(stream):
            prediction = self.reconstructor(inputs, training=True)
            return prediction, tf.reduce_sum(per_example_mse(prediction, scene)) / global_batch

        if self.discriminator is None:
            variables = self.reconstructor.trainable_variables
            with tf.GradientTape() as tape:
                _, mse = reconstruct(0)
            self.optimizer.apply_gradients(zip(tape.gradient(mse, variables), variables))
            return {"mse": mse}
        out = adversarial.train_step(
            real=scene, generate=reconstruct, discriminator=self.discriminator, d_optimizer=self.d_optimizer,
            generator_updates=[(self.optimizer, self.reconstructor.trainable_variables)],
            config=self.config.adversarial, adversarial_weight=self.config.adversarial_weight)
        # The reconstructor's objective is its MSE (the step's generator term) + weight · g_loss; the
        # summary keys are the frames and video trainers' (d_loss, g_loss).
        return {"mse": out.generator_term, "d_loss": out.d_loss, "g_loss": out.g_loss}

    def checkpoint_objects(self) -> dict:
        objects = {"reconstructor": self.reconstructor, "optimizer": self.optimizer}
        if self.discriminator is not None:
            # Checkpoint keys predate the discriminator_* names; kept so older runs resume.
            objects.update(critic=self.discriminator, critic_optimizer=self.d_optimizer)
        return objects

    def optimizers(self) -> list:
        pairs = [(self.optimizer, self.config.optimizer)]
        if self.discriminator is not None:
            pairs.append((self.d_optimizer, self.config.discriminator_optimizer))
        return pairs

    def write_samples(self, step: int) -> None:
        if self.preview_batch() is None:
            return
        sensed, scene = self.preview
        prediction = self.predict(sensed).numpy()
        # Rows: truth and reconstruction of each preview example, frames left to right, in [-1, 1].
        rows = np.concatenate([scene, prediction], axis=1)          # [N, 2T, H, W, 1]
        tiles = rows.reshape(-1, *rows.shape[2:]) * 2.0 - 1.0
        summaries.write_image_grid("samples/truth_vs_reconstruction", tiles, step, rows=2 * len(scene))
        tf.summary.scalar("preview_mse", float(np.mean((prediction - scene) ** 2)), step=step)

    def evaluate(self, step: int) -> dict:
        """Quality on the probe's held-out pairs (empty without a probe)."""
        if self.quality_probe is None:
            return {}
        return self.quality_probe(lambda sensed, mask: self.predict(sensed, mask).numpy())

    def export(self, directory: str) -> None:
        export_reconstructor(self.reconstructor, directory,
                             default_mask=self.config.mask if self.config.architecture == "unfolded" else None)


def build_model(config: ReconstructionConfig):
    """The configured network (`build_reconstructor` or `build_unfolded_reconstructor`)."""
    c = config
    if c.architecture == "unet":
        return build_reconstructor(c.num_frames, c.height, c.width, c.mask, base_filters=c.base_filters, depth=c.depth)
    return build_unfolded_reconstructor(c.num_frames, c.height, c.width, stages=c.unfolded_stages,
                                        filters=c.unfolded_filters, conv_layers=c.unfolded_conv_layers,
                                        conv=c.unfolded_conv, share_weights=c.unfolded_share_weights,
                                        levels=c.unfolded_levels, memory=c.unfolded_memory)

