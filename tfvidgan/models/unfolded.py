"""A deep-unfolding CUP reconstructor: GAP data-consistency steps alternating with a learned denoiser.

`build_unfolded_reconstructor` maps a sensed CUP image ``[B, H + T − 1, W, 1]`` AND the coding mask
``[B, H, W]`` (an input tensor, so one model serves any camera and training can randomise masks) to
the scene ``[B, T, H, W, 1]`` in ``[0, 1]``:

1. ``x₀ = Aᵀ (y ⊘ diag(A Aᵀ))``, the normalised back-projection (`tfvidgan.cup.operator`);
2. ``stages`` times: the GAP projection ``x ← x + Aᵀ((y − A x) ⊘ diag(A Aᵀ))`` (`gap_step`; exact
   because ``A Aᵀ`` is diagonal), then a residual spatio-temporal denoiser ``x ← x + D_s([x, mask])``:
   ``conv_layers`` convolutions over (T, H, W) with ``filters`` channels (ReLU between), on the estimate
   and the mask broadcast over time as a second channel. ``conv="3d"``: 3×3×3 kernels; ``conv="2plus1d"``:
   each 3-D conv factored into a 3×3 spatial conv per frame, ReLU, and a 3-tap temporal conv per pixel
   (both run as 2-D convolutions); ``conv="frames2d"``: 3×3 2-D convolutions on the frames (and the
   mask) as channels, every filter seeing all T frames (by far the cheapest); ``conv="frames_unet"``:
   the same frames-as-channels input through a U-Net of ``levels`` resolutions (default two:
   ``conv_layers`` 3×3 convs at full resolution with ``filters`` channels, a stride-2 conv down to
   ``2·filters`` channels and ``conv_layers`` − 1 more convs there, a stride-2 transposed conv back up, the
   full-resolution features concatenated, ``conv_layers`` − 1 convs and the zero-initialised output conv;
   each further level halves the resolution again and doubles the channels): the coarser levels widen
   each stage's context (H and W must be divisible by 2^(levels − 1)). Measured per training step: with
   32 filters × 3 convs it costs 3.6× ``frames2d`` at 32 × 3; with 16 × 2 (the default) the same as
   ``frames2d`` at 32 × 3. With ``share_weights`` every stage uses the same denoiser; with ``memory``
   (frames-as-channels denoisers) each stage's denoiser also reads the previous stage's last hidden
   features (``filters`` channels), so the stages pass on more than the estimate;
3. the estimate clipped to ``[0, 1]`` (straight-through: the gradient passes the clip, so the MSE
   still pulls out-of-range pixels back).

Under the "mixed_bfloat16" policy (`--mixed_precision`) only the denoisers compute in bfloat16: the GAP
layers, the residual sums and the clip stay float32, so the data-consistency arithmetic is exact to float32.
"""
from __future__ import annotations

import functools

import keras
import numpy as np
import tensorflow as tf

from tfvidgan.cup.operator import aat_diagonal_with_masks, adjoint_with_masks, gap_step
from tfvidgan.errors import ConfigError

__all__ = ["build_unfolded_reconstructor", "GapInit", "AatDiagonal", "GapStep", "MaskChannel", "DefaultMask",
           "ZeroFeatures", "CONV_KINDS", "FRAMES_AS_CHANNELS", "MASK_INPUT_NAME"]

MASK_INPUT_NAME = "mask"
CONV_KINDS = ("3d", "2plus1d", "frames2d", "frames_unet")
FRAMES_AS_CHANNELS = ("frames2d", "frames_unet")  # denoisers on [B, H, W, T + 1]; the only ones with memory
# Defaults shared with `ReconstructionConfig` (and so the trainer's flags): configs/cup_unfolded_small.cfg.
# Measured (docs/experiments_cup.md): frames_unet with 16 filters × 2 convs costs what frames2d with 32 × 3 costs
# per training step and is 4.1 dB better after 1,200 steps (26.0 against 21.9 dB on the noisy test pairs).
DEFAULT_STAGES = 8
DEFAULT_FILTERS = 16
DEFAULT_CONV_LAYERS = 2
DEFAULT_CONV = "frames_unet"
DEFAULT_LEVELS = 2  # frames_unet resolutions; 3 adds a quarter-resolution level (docs/experiments_cup.md, 64×64)


class _Float32Layer(keras.layers.Layer):
    """A layer of the measurement physics: it computes in float32 even under the "mixed_bfloat16" policy
    (bfloat16's 8-bit mantissa would put ~0.4 % relative error into every data-consistency step, and the
    running estimate ``x`` would be rounded between stages); only the learned denoisers run in bfloat16."""

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)


class _NumFramesLayer(_Float32Layer):
    """A layer configured by the number of frames ``T`` alone (serialised as ``num_frames``)."""

    def __init__(self, num_frames: int, **kwargs):
        super().__init__(**kwargs)
        self.num_frames = int(num_frames)

    def get_config(self):
        return {**super().get_config(), "num_frames": self.num_frames}


@keras.saving.register_keras_serializable(package="tfvidgan")
class GapInit(_NumFramesLayer):
    """``[sensed [B, H+T−1, W, 1], mask [B, H, W]]`` (and optionally the precomputed ``diag(A Aᵀ)`` of
    `AatDiagonal`) -> ``Aᵀ (y ⊘ diag(A Aᵀ))`` ``[B, T, H, W, 1]`` float32."""

    def call(self, inputs):
        sensed, mask, *diagonal = inputs
        diagonal = diagonal[0] if diagonal else aat_diagonal_with_masks(mask, self.num_frames)
        return adjoint_with_masks(tf.math.divide_no_nan(sensed, diagonal), mask, self.num_frames)


@keras.saving.register_keras_serializable(package="tfvidgan")
class GapStep(_Float32Layer):
    """``[x [B, T, H, W, 1], sensed [B, H+T−1, W, 1], mask [B, H, W]]`` (and optionally the precomputed
    ``diag(A Aᵀ)`` ``[B, H+T−1, W, 1]`` of `AatDiagonal`, so S stages compute it once) -> `gap_step`
    ``[B, T, H, W, 1]``."""

    def call(self, inputs):
        x, sensed, mask, *diagonal = inputs
        return gap_step(x, sensed, mask, diagonal[0] if diagonal else None)


@keras.saving.register_keras_serializable(package="tfvidgan")
class AatDiagonal(_NumFramesLayer):
    """``mask [B, H, W]`` -> ``diag(A Aᵀ)`` ``[B, H+T−1, W, 1]`` float32 (`aat_diagonal_with_masks`)."""

    def call(self, mask):
        return aat_diagonal_with_masks(mask, self.num_frames)


@keras.saving.register_keras_serializable(package="tfvidgan")
class MaskChannel(_NumFramesLayer):
    """``mask [B, H, W]`` -> ``[B, T, H, W, 1]`` (the same mask for every frame)."""

    def call(self, mask):
        return tf.tile(mask[:, None, :, :, None], [1, self.num_frames, 1, 1, 1])


@keras.saving.register_keras_serializable(package="tfvidgan")
class StraightThroughClip(_Float32Layer):
    """Clips to ``[0, 1]`` in the forward pass; identity gradient."""

    def call(self, x):
        return x + tf.stop_gradient(tf.clip_by_value(x, 0.0, 1.0) - x)


@keras.saving.register_keras_serializable(package="tfvidgan")
class DefaultMask(keras.layers.Layer):
    """Holds a camera's ``[H, W]`` mask as a non-trainable float32 weight named ``mask`` and returns it
    tiled to the batch of its input: ``sensed [B, ...]`` -> ``[B, H, W]``. Used by exports whose
    ``serving_default`` takes no mask (the training camera's mask is the default)."""

    def __init__(self, mask, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(trainable=False, **kwargs)
        mask = np.asarray(mask, np.float32)
        if mask.ndim != 2:
            raise ConfigError(f"default mask must have shape [H, W], got {mask.shape}")
        self.mask = self.add_weight(name="mask", shape=mask.shape, initializer=keras.initializers.Constant(mask),
                                    trainable=False, dtype="float32")
        self.built = True

    def call(self, sensed):
        mask = tf.convert_to_tensor(self.mask)
        return tf.tile(mask[None], [tf.shape(sensed)[0], 1, 1])


@keras.saving.register_keras_serializable(package="tfvidgan")
class ZeroFeatures(keras.layers.Layer):
    """``[B, H, W, C]`` -> zeros ``[B, H, W, channels]`` (of the layer's compute dtype): the memory a
    weight-shared denoiser gets in the first stage, where no earlier stage has written any."""

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)

    def call(self, x):
        shape = tf.shape(x)
        return tf.zeros([shape[0], shape[1], shape[2], self.channels], self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


def _denoise(layers: list, h):
    """Runs a denoiser's layers on ``h``; returns ``(residual, features)``, ``features`` being the input of
    the denoiser's last (output) convolution: ``filters`` channels at full resolution."""
    for layer in layers[:-1]:
        h = layer(h)
    return layers[-1](h), h


@keras.saving.register_keras_serializable(package="tfvidgan")
class TemporalConv(keras.layers.Layer):
    """A 3×1×1 convolution over time (zero padding): ``[B, T, H, W, C]`` -> ``[B, T, H, W, filters]``,
    computed as a (3, 1) `Conv2D` on ``[B, T, H·W, C]``."""

    def __init__(self, filters: int, kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.conv = keras.layers.Conv2D(self.filters, (3, 1), padding="same", kernel_initializer=kernel_initializer,
                                        bias_initializer=bias_initializer, name="conv")
        self._initializers = (keras.initializers.serialize(keras.initializers.get(kernel_initializer)),
                              keras.initializers.serialize(keras.initializers.get(bias_initializer)))

    def build(self, input_shape):
        _, frames, height, width, channels = input_shape
        self.conv.build((None, frames, height * width, channels))

    def call(self, x):
        _, frames, height, width, channels = x.shape
        y = self.conv(tf.reshape(x, [-1, frames, height * width, channels]))
        return tf.reshape(y, [-1, frames, height, width, self.filters])

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_initializer": self._initializers[0],
                "bias_initializer": self._initializers[1]}


def _frames2d_stack(filters: int, conv_layers: int, conv: str, name: str, num_frames: int) -> list:
    """Frames-as-channels denoiser: 3×3 `Conv2D`s on ``[B, H, W, T + 1]`` (every filter sees all frames),
    the last to ``T`` channels, zero-initialised."""
    layers = []
    for i in range(conv_layers - 1):
        layers += [keras.layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv{i}"),
                   keras.layers.ReLU(name=f"{name}_relu{i}")]
    layers.append(keras.layers.Conv2D(num_frames, 3, padding="same", kernel_initializer="zeros",
                                      name=f"{name}_conv{conv_layers - 1}"))
    return layers


class _FramesUNet:
    """The ``frames_unet`` denoiser: ``[B, H, W, T + 1] → [B, H, W, T]`` (see the module docstring); its
    layers are created once, so calling the same instance in every stage shares the weights.

    ``levels`` resolutions (>= 2): level l (0 = full resolution) has ``filters · 2^l`` channels; each
    level below the first is reached by a stride-2 conv and holds ``conv_layers`` − 1 more convs, and
    each is left by a stride-2 transposed conv whose output is concatenated with the level above's
    features and followed by ``conv_layers`` − 1 convs. Layer names of levels 0 and 1 are those of the
    two-level net (``enc*``, ``down``, ``low*``, ``up``, ``skip``, ``dec*``), so two-level checkpoints load."""

    def __init__(self, filters: int, conv_layers: int, name: str, num_frames: int, levels: int = 2):
        conv = lambda f, n, **kw: keras.layers.Conv2D(f, 3, padding="same", activation="relu",  # noqa: E731
                                                      name=f"{name}_{n}", **kw)
        suffix = lambda level: "" if level == 1 else str(level)  # noqa: E731
        self.encoder = [conv(filters, f"enc{i}") for i in range(conv_layers)]
        self.downs, self.ups, self.merges, self.decoders = [], [], [], []
        for level in range(1, levels):
            width, tag = filters * 2**level, suffix(level)
            low = [conv(width, f"low{tag}_{i}" if tag else f"low{i}") for i in range(conv_layers - 1)]
            self.downs.append([conv(width, f"down{tag}", strides=2)] + low)
            self.ups.append(keras.layers.Conv2DTranspose(width // 2, 2, strides=2, activation="relu",
                                                         name=f"{name}_up{tag}"))
            self.merges.append(keras.layers.Concatenate(name=f"{name}_skip{tag}"))
            self.decoders.append([conv(width // 2, f"dec{tag}_{i}" if tag else f"dec{i}")
                                  for i in range(conv_layers - 1)])
        self.out = keras.layers.Conv2D(num_frames, 3, padding="same", kernel_initializer="zeros",
                                       name=f"{name}_out")

    def __call__(self, h):
        return self.out(self.features(h))

    def features(self, h):
        """``[B, H, W, C] → [B, H, W, filters]``: the last decoder features (the output conv's input)."""
        for layer in self.encoder:
            h = layer(h)
        skips = []
        for down in self.downs:
            skips.append(h)
            for layer in down:
                h = layer(h)
        for up, merge, decoder, skip in reversed(list(zip(self.ups, self.merges, self.decoders, skips))):
            h = merge([skip, up(h)])
            for layer in decoder:
                h = layer(h)
        return h


def _frames_unet(filters: int, conv_layers: int, conv: str, name: str, num_frames: int, levels: int = 2) -> list:
    unet = _FramesUNet(filters, conv_layers, name, num_frames, levels)
    return [unet.features, unet.out]


def _conv_stack(filters: int, conv_layers: int, conv: str, name: str, num_frames: int = 0) -> list:
    """The denoiser's layers: ``conv_layers`` convolutions (last one to 1 channel, zero-initialised so
    every stage starts as the identity)."""
    layers = []
    for i in range(conv_layers):
        last = i == conv_layers - 1
        out = 1 if last else filters
        init = {"kernel_initializer": "zeros", "bias_initializer": "zeros"} if last else {}
        if conv == "3d":
            layers.append(keras.layers.Conv3D(out, 3, padding="same", name=f"{name}_conv{i}", **init))
        else:  # as 2-D convolutions (much faster than Conv3D on CPUs): per frame, then along time per pixel
            layers.append(keras.layers.TimeDistributed(keras.layers.Conv2D(filters, 3, padding="same"),
                                                       name=f"{name}_conv{i}_space"))
            layers.append(keras.layers.ReLU(name=f"{name}_relu{i}_space"))
            layers.append(TemporalConv(out, name=f"{name}_conv{i}_time", **init))
        if not last:
            layers.append(keras.layers.ReLU(name=f"{name}_relu{i}"))
    return layers


def build_unfolded_reconstructor(num_frames: int, height: int, width: int, *, stages: int = DEFAULT_STAGES,
                                 filters: int = DEFAULT_FILTERS, conv_layers: int = DEFAULT_CONV_LAYERS,
                                 conv: str = DEFAULT_CONV, share_weights: bool = False,
                                 levels: int = DEFAULT_LEVELS, memory: bool = False) -> keras.Model:
    """The deep-unfolding (GAP + learned denoiser) reconstructor; see the module docstring.

    Args:
      num_frames, height, width: scene size ``T, H, W`` (positive ints).
      stages: ``S``, GAP step + denoiser pairs (>= 1).
      filters: channels inside each denoiser (>= 1).
      conv_layers: convolutions per denoiser (>= 2).
      conv: ``"3d"``, ``"2plus1d"``, ``"frames2d"`` or ``"frames_unet"`` (needs even H and W).
      share_weights: one denoiser for all stages (else one per stage).
      levels: resolutions of the ``frames_unet`` denoiser (>= 2; H and W must be divisible by
        ``2^(levels − 1)``); other denoisers accept only the default 2.
      memory: carry each stage's denoiser features (the ``filters`` channels its output conv reads) into the
        next stage's denoiser input, beside the frames and the mask (frames-as-channels denoisers only):
        stages then share what they found instead of starting each from the estimate alone, as in
        memory-augmented unfolding (MADUN, Song et al. 2021). Stage 0 gets no memory (zeros when the
        weights are shared). Off by default.

    Returns:
      A `keras.Model` named ``cup_unfolded_reconstructor`` with inputs ``"sensed_image"``
      ``[B, H + T − 1, W, 1]`` float32 (sensed units) and ``"mask"`` ``[B, H, W]`` float32 (normally
      binary; any finite values work), output ``"scene"`` ``[B, T, H, W, 1]`` float32 in ``[0, 1]``.

    Raises:
      ConfigError: a size or setting out of range (naming the field).
    """
    from tfvidgan.models.reconstructor import SCENE_OUTPUT_NAME, SENSED_INPUT_NAME

    for field, value, minimum in (("num_frames", num_frames, 1), ("height", height, 1), ("width", width, 1),
                                  ("unfolded_stages", stages, 1), ("unfolded_filters", filters, 1),
                                  ("unfolded_conv_layers", conv_layers, 2), ("unfolded_levels", levels, 2)):
        if int(value) < minimum:
            raise ConfigError(f"{field} must be >= {minimum}, got {value}")
    if conv not in CONV_KINDS:
        raise ConfigError(f"unfolded_conv must be one of {', '.join(CONV_KINDS)}, got {conv!r}")
    num_frames, height, width = int(num_frames), int(height), int(width)
    levels = int(levels)
    if conv != "frames_unet" and levels != DEFAULT_LEVELS:
        raise ConfigError(f"unfolded_levels={levels} needs unfolded_conv='frames_unet' (got {conv!r})")
    if memory and conv not in FRAMES_AS_CHANNELS:
        raise ConfigError(f"unfolded_memory needs unfolded_conv='frames2d' or 'frames_unet' (got {conv!r})")
    factor = 2 ** (levels - 1)
    if conv == "frames_unet" and (height % factor or width % factor):
        raise ConfigError(f"unfolded_conv='frames_unet' with unfolded_levels={levels} halves the frame "
                          f"{levels - 1} time(s): height and width must be divisible by {factor}, "
                          f"got {height}×{width}")
    sensed = keras.Input((height + num_frames - 1, width, 1), name=SENSED_INPUT_NAME)
    mask = keras.Input((height, width), name=MASK_INPUT_NAME)
    mask_channel = MaskChannel(num_frames, name="mask_channel")(mask)
    diagonal = AatDiagonal(num_frames, name="aat_diagonal")(mask)  # once for the init and every stage
    x = GapInit(num_frames, name="back_projection")([sensed, mask, diagonal])
    make = {"frames2d": _frames2d_stack,
            "frames_unet": functools.partial(_frames_unet, levels=levels)}.get(conv, _conv_stack)
    frames_last = conv in FRAMES_AS_CHANNELS
    shared = make(filters, conv_layers, conv, "denoiser", num_frames) if share_weights else None
    mask_image = keras.layers.Reshape((height, width, 1), name="mask_image")(mask)
    carried = ZeroFeatures(filters, name="memory_start")(mask_image) if memory and share_weights else None
    for s in range(int(stages)):
        x = GapStep(name=f"gap{s}")([x, sensed, mask, diagonal])
        layers = shared or make(filters, conv_layers, conv, f"denoiser{s}", num_frames)
        if frames_last:  # frames as channels: [B, H, W, T + 1]
            frames = keras.layers.Permute((2, 3, 1), name=f"stage{s}_frames_last")(
                keras.layers.Reshape((num_frames, height, width), name=f"stage{s}_drop_channel")(x))
            h = keras.layers.Concatenate(name=f"stage{s}_input")(
                [frames, mask_image] + ([carried] if carried is not None else []))
        else:
            h = keras.layers.Concatenate(name=f"stage{s}_input")([x, mask_channel])
        h, features = _denoise(layers, h)
        if memory:
            carried = features
        if frames_last:
            h = keras.layers.Reshape((num_frames, height, width, 1), name=f"stage{s}_as_scene")(
                keras.layers.Permute((3, 1, 2), name=f"stage{s}_frames_first")(h))
        x = keras.layers.Add(name=f"stage{s}_residual", dtype="float32")([x, h])  # the estimate stays float32
    scene = StraightThroughClip(name=SCENE_OUTPUT_NAME)(x)
    return keras.Model([sensed, mask], scene, name="cup_unfolded_reconstructor")
