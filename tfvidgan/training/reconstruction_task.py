"""CUP reconstruction: a U-Net maps a sensed image to the T-frame scene.

Trained with MSE, optionally plus an adversarial loss from a fully convolutional critic (each patch
logit counts as one discriminator of the shared ensemble GAN step, so the adversarial part reuses
`tfvidgan.training.adversarial` exactly as the frames and video GANs do).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from tfvidgan.errors import ConfigError
from tfvidgan.export import check_trailing_shape, write_archive
from tfvidgan.models.reconstructor import (SCENE_OUTPUT_NAME, SENSED_INPUT_NAME, build_reconstruction_critic,
                                           build_reconstructor)
from tfvidgan.training import adversarial, summaries
from tfvidgan.training.optimizers import OptimizerConfig, make_optimizer


@dataclasses.dataclass(frozen=True, eq=False)
class ReconstructionConfig:
    """Scene size T×H×W, the dataset's coding mask `[H, W]`, network and loss settings."""
    num_frames: int
    height: int
    width: int
    mask: np.ndarray
    base_filters: int = 32
    depth: int = 3
    adversarial_weight: float = 0.0
    critic_filters: int = 32
    adversarial: adversarial.AdversarialConfig = adversarial.AdversarialConfig()
    optimizer: OptimizerConfig = OptimizerConfig(name="adam", learning_rate=1e-3, beta_1=0.9)
    critic_optimizer: OptimizerConfig = OptimizerConfig(name="adam", learning_rate=2e-4, beta_1=0.5)

    def __post_init__(self):
        if self.adversarial_weight < 0:
            raise ConfigError(f"--adversarial_weight must be >= 0, got {self.adversarial_weight}")
        if tuple(np.shape(self.mask)) != (self.height, self.width):
            raise ConfigError(f"mask shape {np.shape(self.mask)} does not match the scene's "
                              f"{(self.height, self.width)}")


def per_example_mse(prediction: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """`[B, T, H, W, 1]` × 2 → `[B]` mean squared error per example."""
    prediction = tf.cast(prediction, target.dtype)
    return tf.reduce_mean(tf.reshape(tf.square(prediction - target), [tf.shape(target)[0], -1]), axis=1)


class ReconstructionTask:
    """Task for `run_training`; batches are `(sensed [b, H+T−1, W, 1], scene [b, T, H, W, 1] in [0, 1])`."""

    def __init__(self, config: ReconstructionConfig, preview: tuple | None = None):
        """`preview`: optional fixed `(sensed, scene)` numpy batch shown in TensorBoard."""
        self.config = config
        self.preview = preview

    def build(self) -> None:
        c = self.config
        self.reconstructor = build_reconstructor(c.num_frames, c.height, c.width, c.mask,
                                                 base_filters=c.base_filters, depth=c.depth)
        self.optimizer = make_optimizer(c.optimizer, self.reconstructor.trainable_variables)
        self.critic = self.critic_optimizer = None
        if c.adversarial_weight > 0:
            self.critic = build_reconstruction_critic(c.num_frames, c.height, c.width, base_filters=c.critic_filters)
            self.critic_optimizer = make_optimizer(c.critic_optimizer, self.critic.trainable_variables)

    def train_step(self, batch, step):
        sensed, scene = batch
        replicas = tf.distribute.get_replica_context().num_replicas_in_sync
        global_batch = sensed.shape[0] * replicas

        def reconstruct(stream):
            prediction = self.reconstructor(sensed, training=True)
            return prediction, tf.reduce_sum(per_example_mse(prediction, scene)) / global_batch

        if self.critic is None:
            variables = self.reconstructor.trainable_variables
            with tf.GradientTape() as tape:
                _, mse = reconstruct(0)
            self.optimizer.apply_gradients(zip(tape.gradient(mse, variables), variables))
            return {"mse": mse}
        out = adversarial.train_step(
            real=scene, generate=reconstruct, discriminator=self.critic, d_optimizer=self.critic_optimizer,
            generator_updates=[(self.optimizer, self.reconstructor.trainable_variables)],
            config=self.config.adversarial, adversarial_weight=self.config.adversarial_weight)
        return {"mse": out["g_regularizer"], "critic_loss": out["d_loss"], "adversarial_loss": out["g_loss"]}

    def checkpoint_objects(self) -> dict:
        objects = {"reconstructor": self.reconstructor, "optimizer": self.optimizer}
        if self.critic is not None:
            objects.update(critic=self.critic, critic_optimizer=self.critic_optimizer)
        return objects

    def optimizers(self) -> list:
        pairs = [(self.optimizer, self.config.optimizer)]
        if self.critic is not None:
            pairs.append((self.critic_optimizer, self.config.critic_optimizer))
        return pairs

    def write_samples(self, step: int) -> None:
        if self.preview is None:
            return
        sensed, scene = self.preview
        prediction = self.reconstructor(sensed, training=False).numpy()
        # Rows: truth and reconstruction of each preview example, frames left to right, in [-1, 1].
        rows = np.concatenate([scene, prediction], axis=1)          # [N, 2T, H, W, 1]
        tiles = rows.reshape(-1, *rows.shape[2:]) * 2.0 - 1.0
        summaries.write_image_grid("samples/truth_vs_reconstruction", tiles, step, rows=2 * len(scene))
        tf.summary.scalar("preview_mse", float(np.mean((prediction - scene) ** 2)), step=step)

    def export(self, directory: str) -> None:
        export_reconstructor(self.reconstructor, directory)


def export_reconstructor(reconstructor, directory: str) -> None:
    """TF Serving SavedModel: `serving_default(sensed_image [B, H+T−1, W, 1] float32)
    → {"scene": [B, T, H, W, 1] float32 in [0, 1]}`; inputs of another shape are rejected."""
    sensed_shape = tuple(int(d) for d in reconstructor.inputs[0].shape[1:])
    described = f"[batch, {sensed_shape[0]}, {sensed_shape[1]}, 1] (H + T - 1 rows, W columns) for this model"

    def serve(sensed_image):
        sensed_image = check_trailing_shape(sensed_image, sensed_shape, SENSED_INPUT_NAME, described)
        return {SCENE_OUTPUT_NAME: reconstructor(sensed_image, training=False)}

    write_archive(directory, [reconstructor], {
        "serving_default": (serve, [tf.TensorSpec([None, *sensed_shape], tf.float32, name=SENSED_INPUT_NAME)])})
