"""CUP reconstruction networks: a physics-informed U-Net (sensed image -> scene) and its critic.

`build_reconstructor` maps one sensed CUP image ``[B, H + T − 1, W, 1]`` to the scene
``[B, T, H, W, 1]`` in ``[0, 1]``:

1. `CupBackProjection`, a fixed (non-trainable) layer computing the normalised back-projection
   ``Aᵀ (y ⊘ A Aᵀ 1)`` (the least-norm solution, see `tfvidgan.cup.operator`) with the coding
   mask stored as a non-trainable weight (so it is saved with the model and in SavedModels);
   output ``[B, H, W, T]``, frames as channels;
2. a 2-D U-Net (two 3×3 conv + GroupNorm + ReLU per block, stride-2 convs down, transposed convs
   up, skip connections); inputs are zero-padded to a multiple of ``2**depth`` and cropped back,
   so 30×30, 32×32 and 64×64 frames (and any other size) work;
3. a 1×1 conv to ``T`` channels, crop, sigmoid, and a transpose to ``[B, T, H, W, 1]``.

`build_reconstruction_critic` is a fully convolutional DCGAN-style discriminator on scenes
``[B, T, H, W, 1]`` in ``[0, 1]`` (frames as channels) returning patch logits ``[B, h, w, 1]``.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from tfvidgan.cup.operator import shear_and_sum, unshear
from tfvidgan.errors import ConfigError

__all__ = [
    "CupBackProjection",
    "build_reconstructor",
    "build_reconstruction_critic",
    "SENSED_INPUT_NAME",
    "SCENE_OUTPUT_NAME",
]

SENSED_INPUT_NAME = "sensed_image"
SCENE_OUTPUT_NAME = "scene"
# Defaults shared with `ReconstructionConfig` (and so the trainer's flags): U-Net of 32 base filters and 3
# levels (configs/cup_small.cfg); a critic of 32 base filters (the trainer's default; the builder used 64).
DEFAULT_BASE_FILTERS = 32
DEFAULT_DEPTH = 3
DEFAULT_CRITIC_FILTERS = 32


@keras.saving.register_keras_serializable(package="tfvidgan")
class CupBackProjection(keras.layers.Layer):
    """Fixed physics layer: sensed ``[B, H + T − 1, W, 1]`` -> ``Aᵀ (y ⊘ A Aᵀ 1)`` as ``[B, H, W, T]``.

    The ``[H, W]`` coding mask is a non-trainable float32 weight named ``mask``: it is saved in
    ``.keras`` files, checkpoints and SavedModels. ``get_config`` does not contain the mask, so a
    layer re-created from its config alone has an all-zero mask until its weights are loaded.

    Args:
      num_frames, height, width: ``T, H, W``.
      mask: ``[H, W]`` array (normally binary); ``None`` = zeros, to be filled by loading weights.
    """

    def __init__(self, num_frames: int, height: int, width: int, mask=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(trainable=False, **kwargs)
        self.num_frames = int(num_frames)
        self.height = int(height)
        self.width = int(width)
        if mask is not None:
            mask = np.asarray(mask, np.float32)
            if mask.shape != (self.height, self.width):
                raise ConfigError(f"reconstructor mask must have shape ({self.height}, {self.width}), got {mask.shape}")
        self._initial_mask = mask

    def build(self, input_shape):
        init = (
            keras.initializers.Constant(self._initial_mask)
            if self._initial_mask is not None
            else keras.initializers.Zeros()
        )
        self.mask = self.add_weight(
            name="mask", shape=(self.height, self.width), initializer=init, trainable=False, dtype="float32"
        )
        self._initial_mask = None

    def call(self, sensed):
        mask = tf.convert_to_tensor(self.mask)
        y = tf.cast(sensed, tf.float32)[..., 0]  # [B, H+T-1, W]
        weights = shear_and_sum(tf.tile(tf.square(mask)[None, None], [1, self.num_frames, 1, 1]))  # [1, H+T-1, W]
        frames = unshear(tf.math.divide_no_nan(y, weights), self.num_frames) * mask  # [B, T, H, W]
        return tf.transpose(frames, [0, 2, 3, 1])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, self.num_frames)

    def get_config(self):
        config = super().get_config()
        config.update(num_frames=self.num_frames, height=self.height, width=self.width)
        config.pop("trainable", None)
        return config


def _conv_block(x, filters: int, name: str):
    groups = math.gcd(8, filters)
    for i in (1, 2):
        x = keras.layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv{i}")(x)
        x = keras.layers.GroupNormalization(groups=groups, name=f"{name}_norm{i}")(x)
        x = keras.layers.ReLU(name=f"{name}_relu{i}")(x)
    return x


def _check_sizes(num_frames, height, width, **positive):
    for field, value in dict(num_frames=num_frames, height=height, width=width, **positive).items():
        if int(value) < 1:
            raise ConfigError(f"{field} must be >= 1, got {value}")


def build_reconstructor(
    num_frames: int, height: int, width: int, mask, base_filters: int = DEFAULT_BASE_FILTERS,
    depth: int = DEFAULT_DEPTH
) -> keras.Model:
    """The physics-informed U-Net reconstructor.

    Args:
      num_frames, height, width: scene size ``T, H, W`` (any positive ints; 30, 32, 64 are tested).
      mask: ``[H, W]`` coding mask (normally binary ``{0, 1}`` float), stored as a fixed weight.
      base_filters: filters of the first U-Net level (doubled at every level).
      depth: number of down/up-sampling levels.

    Returns:
      A `keras.Model` named ``cup_reconstructor``: input ``"sensed_image"`` ``[B, H + T − 1, W, 1]``
      float32 (sensed units, ``[0, T]`` for noiseless data); output ``"scene"`` ``[B, T, H, W, 1]``
      float32 in ``[0, 1]``.

    Raises:
      ConfigError: a size is not positive or the mask shape is not ``[H, W]``.
    """
    _check_sizes(num_frames, height, width, base_filters=base_filters, depth=depth)
    num_frames, height, width = int(num_frames), int(height), int(width)
    sensed = keras.Input((height + num_frames - 1, width, 1), name=SENSED_INPUT_NAME)
    x = CupBackProjection(num_frames, height, width, mask, name="back_projection")(sensed)

    multiple = 2**depth
    pad_h = -height % multiple
    pad_w = -width % multiple
    padding = ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2))
    if pad_h or pad_w:
        x = keras.layers.ZeroPadding2D(padding, name="pad")(x)

    skips = []
    for level in range(depth):
        x = _conv_block(x, base_filters * 2**level, f"down{level}")
        skips.append(x)
        x = keras.layers.Conv2D(base_filters * 2**level, 3, strides=2, padding="same", name=f"downsample{level}")(x)
    x = _conv_block(x, base_filters * 2**depth, "bottleneck")
    for level in reversed(range(depth)):
        x = keras.layers.Conv2DTranspose(base_filters * 2**level, 2, strides=2, name=f"upsample{level}")(x)
        x = keras.layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        x = _conv_block(x, base_filters * 2**level, f"up{level}")
    x = keras.layers.Conv2D(num_frames, 1, name="to_frames")(x)
    if pad_h or pad_w:
        x = keras.layers.Cropping2D(padding, name="crop")(x)
    x = keras.layers.Activation("sigmoid", dtype="float32", name="sigmoid")(x)
    x = keras.layers.Permute((3, 1, 2), name="frames_first")(x)
    scene = keras.layers.Reshape((num_frames, height, width, 1), name=SCENE_OUTPUT_NAME)(x)
    return keras.Model(sensed, scene, name="cup_reconstructor")


def build_reconstruction_critic(
    num_frames: int, height: int, width: int, base_filters: int = DEFAULT_CRITIC_FILTERS,
    num_downsamples: int = 3
) -> keras.Model:
    """Fully convolutional DCGAN-style critic on scenes (frames as channels).

    Layers: ``num_downsamples`` × (4×4 stride-2 conv, LeakyReLU 0.2; filters doubling from
    ``base_filters``), then a 3×3 conv to one logit per patch. No normalisation (safe for any GAN
    loss and for per-replica batches).

    Args:
      num_frames, height, width: scene size ``T, H, W``.
      base_filters: filters of the first conv.
      num_downsamples: stride-2 convs; the patch grid is ``ceil(H / 2**n) × ceil(W / 2**n)``.

    Returns:
      A `keras.Model` named ``cup_critic``: input ``"scene"`` ``[B, T, H, W, 1]`` float32 in ``[0, 1]``
      (rescaled to ``[-1, 1]`` inside); output ``[B, h, w, 1]`` float32 logits.
    """
    _check_sizes(num_frames, height, width, base_filters=base_filters, num_downsamples=num_downsamples)
    num_frames, height, width = int(num_frames), int(height), int(width)
    scene = keras.Input((num_frames, height, width, 1), name=SCENE_OUTPUT_NAME)
    x = keras.layers.Reshape((num_frames, height, width), name="drop_channel")(scene)
    x = keras.layers.Permute((2, 3, 1), name="frames_as_channels")(x)
    x = keras.layers.Rescaling(2.0, offset=-1.0, name="to_signed")(x)
    for i in range(num_downsamples):
        x = keras.layers.Conv2D(base_filters * 2**i, 4, strides=2, padding="same", name=f"conv{i}")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"lrelu{i}")(x)
    logits = keras.layers.Conv2D(1, 3, padding="same", dtype="float32", name="patch_logits")(x)
    return keras.Model(scene, logits, name="cup_critic")
