"""K projected discriminators evaluated as ONE computation (grouped convolutions).

Discriminator k sees channel k of a shared `RandomProjection` (its own fixed random 8×8 filter)
and owns channel group k of every following convolution (`groups=K`), so the K discriminators
never exchange information yet run as a single graph. Channel layout everywhere after the
projection is discriminator-major: channels `[k·f, (k+1)·f)` of a layer with f filters per
discriminator belong to discriminator k.

Architecture (DCGAN-like, Neyshabur et al. 2017), with f₀ = `base_filters`:

  projection (K channels, non-trainable)
  → repeat while a SPATIAL dimension is > 4: grouped conv, kernel 4 (4×4 or 4×4×4), stride 2
    along every dimension (time included) still > 4, else 1, "same" padding, K·fᵢ filters with
    fᵢ = f₀·2ⁱ,
    normalization (not after the first conv), LeakyReLU(0.2)
  → grouped conv whose kernel covers the whole remaining map ("valid") to one logit per
    discriminator → `[B, K]` float32 (head "linear", the default); head "mlp": that conv to
    fᵢ hidden units per discriminator, LeakyReLU(0.2), grouped 1×1 conv to one logit.

Frames: 64×64 → projection 32×32 → 16, 8, 4 (3 convs); 32 → 16 → 8, 4; 30 → 15 → 8, 4.
Clips: the same spatial plan, time strided by 2 alongside while T > 4; the last conv covers the
remaining T×4×4 volume. 64×64 clips: T=16 → 8, 4, 4; T=30 → 15, 8, 4; T=40 → 20, 10, 5.
32×32 clips: T=16 → 8, 4; T=30 → 15, 8; T=40 → 20, 10.

Grouped convolutions: Keras evaluates `groups > 1` convolutions on CPU through XLA, whose
BACKWARD pass is 100-300× slower than anything else on this machine (K=48, 32×32 frames,
batch 32: 18 s per discriminator forward+backward, against 0.04 s for the same work as 48
ungrouped models). `GroupedConv2D` / `GroupedConv3D` are Keras `Conv2D` / `Conv3D` subclasses
(same weights, same layout, same maths) that compute the grouped convolution differently:

- "native": the raw `tf.nn.conv2d` op with a grouped kernel (cuDNN on GPU, oneDNN on CPU; TF's
  plain-Eigen CPU kernels cannot differentiate it, e.g. with `TF_ENABLE_ONEDNN_OPTS=0`). Raw
  grouped 3-D convolution is not supported, so for Conv3D "native" is a sum over the temporal
  kernel offsets of native grouped 2-D convolutions of time-strided frame stacks.
- "split": split the channels into the K groups, K ordinary convolutions, concatenate — still
  one layer in one graph; works on every device.
- "xla": Keras' own path (slow backward on CPU; kept for reference and benchmarks).
- "auto" (default): Conv2D → "native" if a tiny grouped convolution and its gradient ops run
  correctly on the default device (probed once per process), else "split"; Conv3D → "split"
  (measured faster than the "native" sum of 2-D convolutions on this CPU).

`unrolled_discriminators` rebuilds the K discriminators as K separate ordinary (ungrouped) Keras
models holding copies of the SAME weights, for tests and benchmarks; `ensemble_cost` counts
parameters and multiply-accumulates.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import weakref

import keras
import numpy as np
import tensorflow as tf

from tfvidgan.errors import ConfigError
from tfvidgan.models.projection import RandomProjection, projected_size

DISCRIMINATOR_NORMALIZATIONS = ("none", "batch", "sync_batch", "layer")
# Logit heads: "linear" = one grouped conv over the whole last map (a logit linear in the last
# features); "mlp" = that conv to a hidden layer of the last width per discriminator, LeakyReLU,
# then a 1×1 grouped conv to the logit, so a global statistic (e.g. the ball count, a sum of
# local detections) can be judged non-monotonically (exactly 3 real, 2 and 4 both fake).
DISCRIMINATOR_HEADS = ("linear", "mlp")
# Defaults shared with the trainers' configs (FramesGanConfig, VideoGanConfig) and hence their flags:
# 16 filters per discriminator (frames: both shipped frames configs; clips: the paper-scale
# configs/video_bb3.cfg); synchronised batch norm, which with real and fake judged as one batch makes
# N replicas compute what one replica computes, and is what the shipped configs and README results use.
DEFAULT_FRAME_BASE_FILTERS = 16
DEFAULT_VIDEO_BASE_FILTERS = 16
DEFAULT_NORMALIZATION = "sync_batch"
DEFAULT_HEAD = "linear"
# What a video discriminator's projections see: the clip, or the clip with its temporal differences
# x_t − x_{t−1} as extra channels (motion made explicit: their magnitude grows with the speed), or with
# those and the second differences x_t − 2x_{t−1} + x_{t−2} (acceleration made explicit: a ball moving at a
# steady speed leaves only a small second difference, one whose position jitters leaves a first-order one).
# "clips_and_centroid_accelerations" keeps the clip and its first differences and replaces the pixel second
# differences by the acceleration of each ball's centroid (`CentroidAccelerations`): in pixel second
# differences a steadily moving ball's shape term hides a sub-pixel wobble; a centroid's second difference
# is zero in steady flight and equals the wobble otherwise.
VIDEO_DISCRIMINATOR_INPUTS = ("clips", "clips_and_differences", "clips_and_accelerations",
                              "clips_and_centroid_accelerations")
# The `TemporalDifferences` order each input uses (0: the clip alone).
VIDEO_INPUT_DIFFERENCE_ORDER = {"clips": 0, "clips_and_differences": 1, "clips_and_accelerations": 2,
                                "clips_and_centroid_accelerations": 1}
DEFAULT_VIDEO_INPUT = "clips"
CONV_IMPLEMENTATIONS = ("auto", "native", "split", "xla")
_MAX_FINAL_SIZE = 4


# ---------------------------------------------------------------------------------------------
# Grouped convolutions that train fast on CPU.


@tf.function(jit_compile=False, autograph=False)
def _probe_native_grouped_conv():
    x = tf.reshape(tf.range(32, dtype=tf.float32), (1, 4, 4, 2))
    kernel = tf.reshape(tf.range(8, dtype=tf.float32), (2, 2, 1, 2))
    strides = [1, 1, 1, 1]
    y = tf.nn.conv2d(x, kernel, strides, "VALID")  # groups = 2
    # The two ops a gradient needs, called directly (tapes are paused inside tf.init_scope).
    grad_x = tf.raw_ops.Conv2DBackpropInput(
        input_sizes=tf.shape(x), filter=kernel, out_backprop=y, strides=strides, padding="VALID"
    )
    grad_kernel = tf.raw_ops.Conv2DBackpropFilter(
        input=x, filter_sizes=tf.shape(kernel), out_backprop=y, strides=strides, padding="VALID"
    )
    expected_y = tf.concat([tf.nn.conv2d(x[..., g : g + 1], kernel[..., g : g + 1], strides, "VALID") for g in (0, 1)], -1)
    expected_grad_kernel = tf.concat(
        [
            tf.raw_ops.Conv2DBackpropFilter(
                input=x[..., g : g + 1], filter_sizes=[2, 2, 1, 1], out_backprop=y[..., g : g + 1],
                strides=strides, padding="VALID",
            )
            for g in (0, 1)
        ],
        -1,
    )
    return (
        tf.reduce_max(tf.abs(y - expected_y)),
        tf.reduce_max(tf.abs(grad_kernel - expected_grad_kernel)),
        tf.reduce_sum(tf.abs(grad_x)),
    )


@functools.lru_cache(maxsize=None)
def native_grouped_conv_supported() -> bool:
    """True if raw grouped `tf.nn.conv2d` and its two gradient ops run correctly (graph mode,
    default device). Probed once per process on a 4×4×2 input."""
    with tf.init_scope():
        try:
            forward_error, kernel_grad_error, input_grad_size = (float(v) for v in _probe_native_grouped_conv())
        except (tf.errors.OpError, ValueError):
            return False
    return forward_error < 1e-3 and kernel_grad_error < 1e-2 and input_grad_size > 0.0


def resolve_conv_implementation(implementation: str, rank: int = 2) -> str:
    """Maps "auto" to "native" or "split" for a `rank`-D conv (module docstring); validates."""
    if implementation not in CONV_IMPLEMENTATIONS:
        raise ConfigError(f"`conv_implementation` must be one of {CONV_IMPLEMENTATIONS}, got {implementation!r}")
    if implementation == "auto":
        return "native" if rank == 2 and native_grouped_conv_supported() else "split"
    return implementation


def _conv_geometry(size, kernel, stride, padding):
    """(output size, padding before, padding after) with TF's "same"/"valid" conventions."""
    if padding == "same":
        out = -(-size // stride)
        total = max((out - 1) * stride + kernel - size, 0)
        return out, total // 2, total - total // 2
    return (size - kernel) // stride + 1, 0, 0


def _native_grouped_conv2d(x, kernel, strides, padding):
    """Raw op; the group count is implied by in_channels / kernel.shape[-2]."""
    return tf.nn.conv2d(x, kernel, list(strides), padding.upper())


def _split_grouped_conv(x, kernel, strides, padding, groups):
    """Grouped N-D conv as `groups` ordinary convs on channel slices, concatenated."""
    inputs = tf.split(x, groups, axis=-1)
    kernels = tf.split(kernel, groups, axis=-1)  # group g owns output channels [g·f, (g+1)·f)
    return tf.concat([tf.nn.convolution(a, k, list(strides), padding.upper()) for a, k in zip(inputs, kernels)], -1)


def _native_grouped_conv3d_by_frames(x, kernel, strides, padding):
    """Grouped 3-D conv = Σ over temporal kernel offsets of grouped 2-D convs of frame stacks."""
    kt, st = kernel.shape[0], strides[0]
    out_t, before, after = _conv_geometry(x.shape[1], kt, st, padding)
    x = tf.pad(x, [[0, 0], [before, after], [0, 0], [0, 0], [0, 0]])
    height, width, channels = x.shape[2:]
    total = None
    for dt in range(kt):
        frames = x[:, dt : dt + st * (out_t - 1) + 1 : st]  # [B, out_t, H, W, C], sample-major
        out = _native_grouped_conv2d(tf.reshape(frames, (-1, height, width, channels)), kernel[dt], strides[1:], padding)
        total = out if total is None else total + out
    return tf.reshape(total, (-1, out_t, *total.shape[1:]))


class _FastGroupedConvMixin:
    """Overrides `convolution_op` of a Keras Conv layer; weights and config stay Keras'. A subclass sets
    `_native_conv(x, kernel, strides, padding)`, its "native" grouped convolution."""

    _native_conv = None

    def __init__(self, *args, implementation="auto", **kwargs):
        super().__init__(*args, **kwargs)
        self._init_implementation(implementation)

    def _init_implementation(self, implementation):
        resolved = resolve_conv_implementation(implementation, self.rank)  # probes once for "auto"
        if resolved != "xla" and (self.data_format != "channels_last" or max(self.dilation_rate) != 1):
            raise ConfigError(
                f"{type(self).__name__}: `conv_implementation`={implementation!r} needs channels_last and no dilation"
            )
        self.implementation = implementation  # what the config saves (e.g. "auto", portable)
        self.resolved_implementation = resolved

    def convolution_op(self, inputs, kernel):
        if self.groups == 1 or self.resolved_implementation == "xla":
            return super().convolution_op(inputs, kernel)
        if self.resolved_implementation == "native":
            return type(self)._native_conv(inputs, kernel, self.strides, self.padding)
        return _split_grouped_conv(inputs, kernel, self.strides, self.padding, self.groups)

    def get_config(self):
        config = super().get_config()
        config["implementation"] = self.implementation
        return config


@keras.saving.register_keras_serializable(package="tfvidgan")
class GroupedConv2D(_FastGroupedConvMixin, keras.layers.Conv2D):
    """`keras.layers.Conv2D` whose grouped case uses the "native"/"split" path (module doc).

    Same constructor as `Conv2D` plus `implementation` in `CONV_IMPLEMENTATIONS`. Input
    `[B, H, W, C]` (static H, W, C) → `[B, H', W', filters]`, identical to `Conv2D`.
    """

    _native_conv = staticmethod(_native_grouped_conv2d)


@keras.saving.register_keras_serializable(package="tfvidgan")
class GroupedConv3D(_FastGroupedConvMixin, keras.layers.Conv3D):
    """`keras.layers.Conv3D` whose grouped case uses the "split"/"native" path (module doc).

    Same constructor as `Conv3D` plus `implementation`. Input `[B, T, H, W, C]` (static T, H, W,
    C) → `[B, T', H', W', filters]`, identical to `Conv3D`.
    """

    _native_conv = staticmethod(_native_grouped_conv3d_by_frames)


# ---------------------------------------------------------------------------------------------
# Minibatch standard deviation (Karras et al. 2018, "Progressive growing of GANs", §3).


@keras.saving.register_keras_serializable(package="tfvidgan")
class MinibatchStdDev(keras.layers.Layer):
    """Appends, per discriminator, one channel holding how much its features vary across a group of samples.

    Input `[B, *dims, K·f]` (discriminator-major channels, module docstring) → `[B, *dims, K·(f+1)]`:
    the batch is cut into contiguous groups of `group_size` samples (`min(group_size, B)`; B must be a
    multiple of it); for each group and discriminator k, the standard deviation over the group of every
    feature of k, averaged over k's f channels and all positions, is a scalar broadcast to one extra
    channel appended after k's f channels. A real batch of 3-ball frames has (almost) no spread in its
    count features, a generated batch with 2-, 3- and 4-ball frames has; a linear head can read that.

    Groups are contiguous, so with real and fake judged as one batch (`[real; fake]`, joint batch) each
    group is all real or all fake when the per-replica batch is a multiple of `group_size`; groups never
    cross replicas, so N replicas compute what one replica computes when the global batch is split in
    contiguous slices. Computed in float32.
    """

    def __init__(self, num_discriminators: int, group_size: int = 4, **kwargs):
        super().__init__(**kwargs)
        if num_discriminators < 1 or group_size < 2:
            raise ConfigError(f"MinibatchStdDev: need num_discriminators >= 1 and group_size >= 2, got "
                              f"{num_discriminators}, {group_size}")
        self.num_discriminators = int(num_discriminators)
        self.group_size = int(group_size)

    def call(self, inputs):
        x = tf.cast(inputs, tf.float32)
        shape = tf.shape(x)
        batch = shape[0]
        dims = inputs.shape[1:-1]
        k = self.num_discriminators
        f = inputs.shape[-1] // k
        group = tf.minimum(self.group_size, batch)
        tf.debugging.assert_equal(batch % group, 0, message=(
            f"MinibatchStdDev: the batch a discriminator sees must be a multiple of the group size "
            f"{self.group_size} (--discriminator_minibatch_std)"))
        grouped = tf.reshape(x, tf.concat([[batch // group, group], shape[1:-1], [k, f]], 0))
        std = tf.sqrt(tf.math.reduce_variance(grouped, axis=1) + 1e-8)  # [B/G, *dims, K, f]
        spatial = list(range(1, 1 + len(dims)))
        per_group = tf.reduce_mean(std, axis=spatial + [len(dims) + 2])  # [B/G, K]
        per_sample = tf.repeat(per_group, group, axis=0)  # [B, K]
        extra = tf.reshape(per_sample, tf.concat([[batch], tf.ones([len(dims)], tf.int32), [k, 1]], 0))
        extra = tf.broadcast_to(extra, tf.concat([[batch], shape[1:-1], [k, 1]], 0))
        features = tf.reshape(x, tf.concat([[batch], shape[1:-1], [k, f]], 0))
        out = tf.reshape(tf.concat([features, extra], -1), tf.concat([[batch], shape[1:-1], [k * (f + 1)]], 0))
        return tf.cast(out, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + self.num_discriminators)

    def get_config(self):
        return dict(super().get_config(), num_discriminators=self.num_discriminators, group_size=self.group_size)


@keras.saving.register_keras_serializable(package="tfvidgan")
class TemporalDifferences(keras.layers.Layer):
    """`[B, T, H, W, C]` → `[B, T, H, W, (order + 1)·C]`: the clip, then its differences up to `order`.

    `order=1` (default): the clip and `x_t − x_{t−1}` (values in [-2, 2] for clips in [-1, 1]); the first
    frame's difference is zero. `order=2` adds the second differences `x_t − 2x_{t−1} + x_{t−2}` (values in
    [-4, 4]), zero for the first two frames. No frame sees another sample or wraps around in time.
    """

    def __init__(self, order: int = 1, **kwargs):
        super().__init__(**kwargs)
        if order not in (1, 2):
            raise ConfigError(f"TemporalDifferences: `order` must be 1 or 2, got {order!r}")
        self.order = int(order)

    def call(self, inputs):
        channels = [inputs]
        difference = tf.concat([tf.zeros_like(inputs[:, :1]), inputs[:, 1:] - inputs[:, :-1]], axis=1)
        channels.append(difference)
        if self.order == 2:
            second = difference[:, 2:] - difference[:, 1:-1]
            channels.append(tf.concat([tf.zeros_like(inputs[:, :2]), second], axis=1))
        return tf.concat(channels, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], (self.order + 1) * input_shape[-1])

    def get_config(self):
        return dict(super().get_config(), order=self.order)


@keras.saving.register_keras_serializable(package="tfvidgan")
class CentroidAccelerations(keras.layers.Layer):
    """`[B, T, H, W, C]` in [-1, 1] → `[B, T, H, W, 2]` float32 in (-1, 1): the acceleration of the local
    centroid of ink around every pixel, shown only where one blob lies wholly inside a window centred on it.

    Ink is `m = (mean over channels + 1) / 2` in [0, 1]. For pixel q and frame s, over the square window of
    `window_radius` r around q (zero outside the frame): mass `M_s(q) = Σ_d m_s(q + d)` and first moment
    `P_s(q) = Σ_d d · m_s(q + d)` (d in pixels, x along W then y along H); `ring_s(q)` is the ink in the
    window's outer `ring_width` pixels. For t ≥ 2,
    `a_t(q) = (P_t − 2 P_{t−1} + P_{t−2}) / max(M_{t−1}, min_mass)` (pixels/frame²). A
    blob that stays inside the window over the three frames and keeps its ink has `a = its centroid's second
    difference`: zero in steady flight, whatever its speed or shape, the wobble otherwise; a bounce shows as
    one large value. (In pixel second differences a steady blob's shape term, about v² times its curvature,
    hides a sub-pixel wobble.) The output is `tanh(a / unit) · g`: bounded like the clip's channels, so the
    random projection weighs it as much as the ink (0.25 px/frame² → 0.76, bounces saturate at ±1), with
    the gate (no gradient through it)
    `g = exp(−|P_{t−1} / M_{t−1}|² / (2 σ²)) · [M_{t−1} ≥ min_mass] · [max_s ring_s < ring_tolerance · M_{t−1}]`
    (σ = `centre_sigma`, s = t−2 … t): about 1 only where a blob's centroid lies within σ of q and no ink
    crosses the window's edge (a blob cut by the edge, or another ball's edge, moves the moments). Frames 0
    and 1 are zero. Differentiable in the clips.

    Measured at 32×32 (defaults; 150 real 30-frame 3-ball clips against 150 clips of two step-2 runs, seed
    0): where g > 0.6, |a| has median 0.035 and 75th percentile 0.058 px/frame² on the real clips (bounces
    make the top 10 %), median 0.25 and 0.30 on the generated ones.
    """

    def __init__(self, window_radius: int = 7, ring_width: int = 1, min_mass: float = 8.0,
                 centre_sigma: float = 1.0, ring_tolerance: float = 0.02, unit: float = 0.25, **kwargs):
        super().__init__(**kwargs)
        for name, value, low in (("window_radius", window_radius, 2), ("ring_width", ring_width, 1)):
            if int(value) != value or value < low:
                raise ConfigError(f"CentroidAccelerations: `{name}` must be an int >= {low}, got {value!r}")
        if ring_width >= window_radius:
            raise ConfigError(f"CentroidAccelerations: `ring_width` ({ring_width}) must be < `window_radius` "
                              f"({window_radius})")
        for name, value in (("min_mass", min_mass), ("centre_sigma", centre_sigma),
                            ("ring_tolerance", ring_tolerance), ("unit", unit)):
            if not value > 0:
                raise ConfigError(f"CentroidAccelerations: `{name}` must be > 0, got {value!r}")
        self.window_radius = int(window_radius)
        self.ring_width = int(ring_width)
        self.min_mass = float(min_mass)
        self.centre_sigma = float(centre_sigma)
        self.ring_tolerance = float(ring_tolerance)
        self.unit = float(unit)

    def accelerations_and_gate(self, inputs):
        """`(a [B, T − 2, H, W, 2], g [B, T − 2, H, W, 1])` for frames 2 … T − 1: the accelerations in
        pixels/frame², neither squashed nor gated, and the gate (class docstring)."""
        x = tf.cast(inputs, tf.float32)
        height, width = x.shape[2], x.shape[3]
        ink = (tf.reduce_mean(x, axis=-1) + 1.0) / 2.0  # [B, T, H, W]
        # Window sums are separable: banded matrices along H (left) and W (right), exact at the borders.
        r, inner_r = self.window_radius, self.window_radius - self.ring_width
        box_h, box_w = tf.constant(_band(height, r, False)), tf.constant(_band(width, r, False))
        row_sums = tf.matmul(ink, box_w)  # [B, T, H, W]
        mass = tf.matmul(box_h, row_sums, transpose_a=True)
        moment_x = tf.matmul(box_h, tf.matmul(ink, tf.constant(_band(width, r, True))), transpose_a=True)
        moment_y = tf.matmul(tf.constant(_band(height, r, True)), row_sums, transpose_a=True)
        inner = tf.matmul(tf.constant(_band(height, inner_r, False)),
                          tf.matmul(ink, tf.constant(_band(width, inner_r, False))), transpose_a=True)
        mass, first, ring = mass[..., None], tf.stack([moment_x, moment_y], -1), (mass - inner)[..., None]
        middle = tf.maximum(mass[:, 1:-1], self.min_mass)
        acceleration = (first[:, 2:] - 2.0 * first[:, 1:-1] + first[:, :-2]) / middle
        offset = first[:, 1:-1] / middle
        edge = tf.maximum(tf.maximum(ring[:, 2:], ring[:, 1:-1]), ring[:, :-2])
        gate = (tf.exp(-tf.reduce_sum(tf.square(offset), -1, keepdims=True) / (2.0 * self.centre_sigma**2))
                * tf.cast(mass[:, 1:-1] >= self.min_mass, tf.float32)
                * tf.cast(edge < self.ring_tolerance * middle, tf.float32))
        return acceleration, tf.stop_gradient(gate)

    def call(self, inputs):
        if inputs.shape[1] < 3:
            return tf.zeros(tf.concat([tf.shape(inputs)[:-1], [2]], 0), tf.float32)
        acceleration, gate = self.accelerations_and_gate(inputs)
        shown = tf.tanh(acceleration / self.unit) * gate
        return tf.concat([tf.zeros_like(shown[:, :2]), shown], axis=1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 2)

    def get_config(self):
        return dict(super().get_config(), window_radius=self.window_radius, ring_width=self.ring_width,
                    min_mass=self.min_mass, centre_sigma=self.centre_sigma, ring_tolerance=self.ring_tolerance,
                    unit=self.unit)


def centroid_acceleration_energy(clips, layer: CentroidAccelerations | None = None):
    """`(energy_sum, shown)`, float32 scalars over a batch of clips `[b, T, H, W, C]` in [-1, 1] (T >= 3):
    `Σ g · |tanh(a / unit)|²` and `Σ g` over pixels and frames 2 … T − 1, with `a` and `g` the centroid
    accelerations and gate of `CentroidAccelerations` (default settings unless `layer` is given). Their ratio is
    the mean squared (squashed, in [0, 2)) acceleration where a whole ball is centred: near 0 in steady flight;
    0.15 on 150 real 3-ball 32×32 clips (bounces), 0.71 and 0.83 on the clips of two step-2 runs whose balls
    wobble. Gradients flow through `a` only (the gate is a constant). Used by the video task's
    `centroid_acceleration_match` and the frames task's straightness regulariser."""
    layer = layer or CentroidAccelerations()
    acceleration, gate = layer.accelerations_and_gate(clips)
    squashed = tf.reduce_sum(tf.square(tf.tanh(acceleration / layer.unit)), axis=-1, keepdims=True)
    return tf.reduce_sum(gate * squashed), tf.reduce_sum(gate)


def _band(size: int, radius: int, weighted: bool) -> np.ndarray:
    """`[size, size]` float32 `B[p, q] = w(p − q)` for |p − q| <= radius, else 0; w = 1, or p − q if
    `weighted`: `m @ B` sums (or takes first moments of) m along its last axis over the window around q."""
    offsets = np.arange(size)[:, None] - np.arange(size)[None, :]
    return np.where(np.abs(offsets) <= radius, offsets if weighted else 1, 0).astype(np.float32)


def _video_input_channels(clips, inputs: str):
    """The channels a video discriminator's projection sees for `inputs` (`VIDEO_DISCRIMINATOR_INPUTS`)."""
    order = VIDEO_INPUT_DIFFERENCE_ORDER[inputs]
    x = TemporalDifferences(order, name="temporal_differences")(clips) if order else clips
    if inputs == "clips_and_centroid_accelerations":
        x = keras.layers.Concatenate(name="with_centroid_accelerations")(
            [x, CentroidAccelerations(name="centroid_accelerations")(clips)])
    return x


# ---------------------------------------------------------------------------------------------
# The ensembles.


def _check_common(num_discriminators, base_filters, normalization, conv_implementation, caller, head="linear",
                  minibatch_std=0):
    if not isinstance(minibatch_std, (int, np.integer)) or minibatch_std < 0 or minibatch_std == 1:
        raise ConfigError(f"{caller}: `minibatch_std` must be 0 (off) or a group size >= 2, got {minibatch_std!r}")
    if head not in DISCRIMINATOR_HEADS:
        raise ConfigError(f"{caller}: `head` must be one of {DISCRIMINATOR_HEADS}, got {head!r}")
    if not isinstance(num_discriminators, (int, np.integer)) or num_discriminators < 1:
        raise ConfigError(f"{caller}: `num_discriminators` must be a positive integer, got {num_discriminators!r}")
    if not isinstance(base_filters, (int, np.integer)) or base_filters < 1:
        raise ConfigError(f"{caller}: `base_filters` must be a positive integer, got {base_filters!r}")
    if normalization not in DISCRIMINATOR_NORMALIZATIONS:
        raise ConfigError(
            f"{caller}: `normalization` must be one of {DISCRIMINATOR_NORMALIZATIONS}, got {normalization!r}"
        )
    if conv_implementation not in CONV_IMPLEMENTATIONS:
        raise ConfigError(
            f"{caller}: `conv_implementation` must be one of {CONV_IMPLEMENTATIONS}, got {conv_implementation!r}"
        )


def _check_dims(shape, names, field, caller):
    if len(shape) != len(names) or any(not isinstance(d, (int, np.integer)) or d < 1 for d in shape):
        raise ConfigError(f"{caller}: `{field}` must be {tuple(names)} positive integers, got {shape!r}")


def _normalization(normalization, num_discriminators, name):
    """Per-discriminator normalization: never mixes channel groups."""
    if normalization == "batch":
        return keras.layers.BatchNormalization(name=name)
    if normalization == "sync_batch":
        return keras.layers.BatchNormalization(synchronized=True, name=name)
    if normalization == "layer":
        # One group per discriminator = layer norm over (space, that discriminator's channels).
        return keras.layers.GroupNormalization(groups=num_discriminators, name=name)
    return None


def _grouped_trunk(x, dims, num_discriminators, base_filters, normalization, conv_cls, implementation,
                   head="linear", minibatch_std=0):
    """Grouped conv stack on `x` whose non-channel dims are `dims` ([T,] H', W'); → logits [B, K].

    Depth is set by space (convs until H', W' ≤ 4); time, if present, is strided alongside while
    it is > 4 and whatever remains is covered by the last conv's kernel.
    """
    dims = list(dims)
    i = 0
    while max(dims[-2:]) > _MAX_FINAL_SIZE:
        strides = tuple(2 if d > _MAX_FINAL_SIZE else 1 for d in dims)
        norm = _normalization(normalization, num_discriminators, f"norm_{i}") if i > 0 else None
        x = conv_cls(
            num_discriminators * base_filters * 2**i,
            4,
            strides=strides,
            padding="same",
            groups=num_discriminators,
            use_bias=norm is None,
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.02),
            implementation=implementation,
            name=f"conv_{i}",
        )(x)
        if norm is not None:
            x = norm(x)
        x = keras.layers.LeakyReLU(negative_slope=0.2, name=f"lrelu_{i}")(x)
        dims = [math.ceil(d / s) for d, s in zip(dims, strides)]
        i += 1
    if minibatch_std:
        x = MinibatchStdDev(num_discriminators, minibatch_std, name="minibatch_std")(x)

    def whole_map_conv(filters_per_discriminator, map_dims, name):
        """Grouped conv whose kernel covers the whole `map_dims` map ("valid")."""
        return conv_cls(
            num_discriminators * filters_per_discriminator,
            tuple(map_dims),
            padding="valid",
            groups=num_discriminators,
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.02),
            implementation=implementation,
            name=name,
        )

    if head == "mlp":
        x = whole_map_conv(base_filters * 2 ** max(i - 1, 0), dims, "head_conv")(x)
        x = keras.layers.LeakyReLU(negative_slope=0.2, name="head_lrelu")(x)
        dims = [1] * len(dims)
    x = whole_map_conv(1, dims, "logits_conv")(x)
    return keras.layers.Reshape((num_discriminators,), dtype="float32", name="logits")(x)


def build_frame_discriminators(
    image_shape,
    num_discriminators: int,
    base_filters: int = DEFAULT_FRAME_BASE_FILTERS,
    seed: int = 0,
    normalization: str = DEFAULT_NORMALIZATION,
    conv_implementation: str = "auto",
    head: str = DEFAULT_HEAD,
    minibatch_std: int = 0,
) -> keras.Model:
    """K projected image discriminators as one grouped model.

    Args:
      image_shape: `(H, W, C)`; H, W ≥ 8 (30, 32 and 64 are the sizes used).
      num_discriminators: K ≥ 1.
      base_filters: filters PER DISCRIMINATOR of the first conv; doubled at each further conv
        (default 16: 16, 32, 64 for 64×64 inputs).
      seed: seed of the random projections (see `RandomProjection`).
      normalization: "sync_batch" (default: synchronised batch norm), "none" (as in the paper),
        "batch" or "layer" (per-sample, per-discriminator); never after the first conv.
      conv_implementation: how grouped convs run: "auto" (default), "native", "split" or
        "xla" (see the module docstring; the result is the same up to float rounding).
      head: "linear" (default) or "mlp" (`DISCRIMINATOR_HEADS`; module docstring).
      minibatch_std: 0 (default: off) or the group size G ≥ 2 of a `MinibatchStdDev` layer before
        the head (each discriminator also sees how much its features vary over G samples).

    Returns:
      `keras.Model` "frame_discriminators": input "images" `[B, H, W, C]` float32 in [-1, 1] →
      logits `[B, K]` float32 (unbounded; column k is discriminator k). The projection is layer
      "projection" (non-trainable, excluded from `trainable_variables`).

    Raises:
      ConfigError: naming the field for a bad shape, K, filter count, normalization or
        conv_implementation.
    """
    caller = "build_frame_discriminators"
    image_shape = tuple(image_shape)
    _check_dims(image_shape, ("H", "W", "C"), "image_shape", caller)
    _check_common(num_discriminators, base_filters, normalization, conv_implementation, caller, head, minibatch_std)
    height, width, channels = image_shape
    if min(height, width) < 8:
        raise ConfigError(f"{caller}: `image_shape` must be at least 8×8, got {image_shape!r}")

    images = keras.Input(shape=image_shape, name="images", dtype="float32")
    x = RandomProjection(num_discriminators, seed=seed, name="projection")(images)
    dims = (projected_size(height), projected_size(width))
    logits = _grouped_trunk(x, dims, num_discriminators, base_filters, normalization, GroupedConv2D, conv_implementation,
                             head, minibatch_std)
    return keras.Model(images, logits, name="frame_discriminators")


def build_video_discriminators(
    clip_shape,
    num_discriminators: int,
    base_filters: int = DEFAULT_VIDEO_BASE_FILTERS,
    seed: int = 0,
    normalization: str = DEFAULT_NORMALIZATION,
    conv_implementation: str = "auto",
    head: str = DEFAULT_HEAD,
    minibatch_std: int = 0,
    inputs: str = DEFAULT_VIDEO_INPUT,
) -> keras.Model:
    """K projected clip discriminators (3-D convs) as one grouped model.

    Every frame of a clip goes through discriminator k's own spatial projection (frames are
    folded into the batch for it without mixing samples), then grouped Conv3D layers (kernel
    4×4×4, stride 2 in time while T > 4 and in space while H, W > 4) and a last grouped conv
    covering the remaining volume give one logit per discriminator.

    Args:
      clip_shape: `(T, H, W, C)`; T ≥ 1 (16, 30, 40 are the lengths used), H, W ≥ 8.
      num_discriminators: K ≥ 1.
      base_filters: filters PER DISCRIMINATOR of the first Conv3D, doubled per layer (default 16).
      seed: seed of the random projections.
      normalization: as in `build_frame_discriminators` (default "sync_batch"); pick "none" or
        "layer" when per-sample independence matters (batch norm couples the samples of a batch).
      conv_implementation: as in `build_frame_discriminators`.
      head, minibatch_std: as in `build_frame_discriminators`.
      inputs: "clips" (default), "clips_and_differences", "clips_and_accelerations" or
        "clips_and_centroid_accelerations" (`VIDEO_DISCRIMINATOR_INPUTS`): the projections also see
        `TemporalDifferences` of order 1 (2C input channels: a slow or frozen clip is visible as near-zero
        difference channels), of order 2 (3C channels: also the second differences, where jittering
        positions stand out), or of order 1 and the 2 `CentroidAccelerations` channels (2C + 2: each blob's
        centroid acceleration, zero in steady flight, the sub-pixel wobble otherwise).

    Returns:
      `keras.Model` "video_discriminators": input "clips" `[B, T, H, W, C]` float32 in [-1, 1] →
      logits `[B, K]` float32. Projection layer "projection" is non-trainable.

    Raises:
      ConfigError: naming the field for a bad shape, K, filter count, normalization or
        conv_implementation.
    """
    caller = "build_video_discriminators"
    clip_shape = tuple(clip_shape)
    _check_dims(clip_shape, ("T", "H", "W", "C"), "clip_shape", caller)
    _check_common(num_discriminators, base_filters, normalization, conv_implementation, caller, head, minibatch_std)
    if inputs not in VIDEO_DISCRIMINATOR_INPUTS:
        raise ConfigError(f"{caller}: `inputs` must be one of {VIDEO_DISCRIMINATOR_INPUTS}, got {inputs!r}")
    frames, height, width, _ = clip_shape
    if min(height, width) < 8:
        raise ConfigError(f"{caller}: `clip_shape` frames must be at least 8×8, got {clip_shape!r}")

    clips = keras.Input(shape=clip_shape, name="clips", dtype="float32")
    x = _video_input_channels(clips, inputs)
    x = RandomProjection(num_discriminators, seed=seed, name="projection")(x)
    dims = (frames, projected_size(height), projected_size(width))
    logits = _grouped_trunk(x, dims, num_discriminators, base_filters, normalization, GroupedConv3D, conv_implementation,
                             head, minibatch_std)
    return keras.Model(clips, logits, name="video_discriminators")


# ---------------------------------------------------------------------------------------------
# Unrolled reference: K ordinary models with the same weights.


def _slice_per_channel(weights, k, num_discriminators):
    out = []
    for w in weights:
        per = w.shape[-1] // num_discriminators
        out.append(w[..., k * per : (k + 1) * per])
    return out


def _single_discriminator_layer(layer, k, num_discriminators):
    """Returns (new ungrouped layer, function(new_layer) setting its weights from `layer`)."""
    name = f"{layer.name}_d{k}"
    if isinstance(layer, RandomProjection):
        new = RandomProjection(1, layer.kernel_size, layer.stride, layer.padding, seed=layer.seed, name=name)
        return new, lambda n: n.set_weights([layer.get_weights()[0][..., k : k + 1]])
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv3D)):
        config = layer.get_config()
        config.pop("implementation", None)
        config.update(name=name, filters=layer.filters // layer.groups, groups=1)
        plain_cls = keras.layers.Conv3D if isinstance(layer, keras.layers.Conv3D) else keras.layers.Conv2D
        new = plain_cls.from_config(config)
        # Grouped kernel [*ks, Cin/groups, Cout]: group k owns output channels [k·f, (k+1)·f).
        return new, lambda n: n.set_weights(_slice_per_channel(layer.get_weights(), k, num_discriminators))
    if isinstance(layer, keras.layers.BatchNormalization):
        config = layer.get_config()
        config.update(name=name, synchronized=False)
        new = keras.layers.BatchNormalization.from_config(config)
        return new, lambda n: n.set_weights(_slice_per_channel(layer.get_weights(), k, num_discriminators))
    if isinstance(layer, keras.layers.GroupNormalization):
        config = layer.get_config()
        config.update(name=name, groups=layer.groups // num_discriminators)
        new = keras.layers.GroupNormalization.from_config(config)
        return new, lambda n: n.set_weights(_slice_per_channel(layer.get_weights(), k, num_discriminators))
    if isinstance(layer, MinibatchStdDev):
        return MinibatchStdDev(1, layer.group_size, name=name), lambda n: None
    if isinstance(layer, keras.layers.LeakyReLU):
        config = layer.get_config()
        config.update(name=name)
        return keras.layers.LeakyReLU.from_config(config), lambda n: None
    if isinstance(layer, keras.layers.Reshape):
        return keras.layers.Reshape((1,), dtype=layer.dtype_policy.name, name=name), lambda n: None
    raise TypeError(f"unrolled_discriminators: cannot unroll layer {layer.name!r} of type {type(layer).__name__}")


def unrolled_discriminators(ensemble: keras.Model) -> list[keras.Model]:
    """The K discriminators of a grouped ensemble as K separate, ordinary Keras models.

    Each returned model `discriminator_k` has the ensemble's input shape and computes column k
    of the ensemble's logits with ungrouped convolutions on a 1-channel projection, using COPIES
    (taken now) of the ensemble's current weights: `[B, ...] → [B, 1]` float32. Used to test the
    grouped computation and to benchmark it against a Python loop over K models.

    Raises:
      TypeError: if the ensemble contains a layer type this function does not know.
    """
    projection = ensemble.get_layer("projection")
    num_discriminators = projection.num_projections
    input_shape = tuple(ensemble.inputs[0].shape[1:])
    # The weightless input channels before the projection (clip, differences, ...), shared as they are.
    channels = keras.Model(ensemble.inputs, projection.input, name=f"{ensemble.name}_input_channels")
    trunk = ensemble.layers[ensemble.layers.index(projection):]
    models = []
    for k in range(num_discriminators):
        inputs = keras.Input(shape=input_shape, name=f"{ensemble.inputs[0].name}_d{k}")
        x = channels(inputs)
        for layer in trunk:
            new, set_weights = _single_discriminator_layer(layer, k, num_discriminators)
            x = new(x)
            set_weights(new)
        models.append(keras.Model(inputs, x, name=f"discriminator_{k}"))
    return models


_SPLITS = weakref.WeakKeyDictionary()


def split_at_projection(ensemble: keras.Model) -> tuple[keras.Model, keras.Model, int]:
    """`(front, trunk, K)`: the ensemble as `trunk(front(x)) == ensemble(x)`, cut after its projection.

    `front` maps the ensemble's input to the projected maps `[B, ..., K·c]` (discriminator k owns the
    channel block `[k·c, (k+1)·c)`), `trunk` maps those to the logits; both share the ensemble's layers and
    weights. Used for per-discriminator gradient penalties (discriminator k's gradient w.r.t. its own
    input, one backward pass for all K). Cached per ensemble.

    Raises:
      ConfigError: the model has no `RandomProjection` layer named "projection".
    """
    if ensemble not in _SPLITS:
        try:
            projection = ensemble.get_layer("projection")
        except ValueError:
            projection = None
        if not isinstance(projection, RandomProjection):
            raise ConfigError(f"model {ensemble.name!r} is not a projected discriminator ensemble (no "
                              f"RandomProjection layer named 'projection'): R1 needs one")
        front = keras.Model(ensemble.inputs, projection.output, name=f"{ensemble.name}_front")
        trunk = keras.Model(projection.output, ensemble.outputs, name=f"{ensemble.name}_trunk")
        _SPLITS[ensemble] = (front, trunk, projection.num_projections)
    return _SPLITS[ensemble]


def reference_logits(ensemble: keras.Model, inputs, training: bool = False):
    """Logits `[B, K]` computed by a Python loop over `unrolled_discriminators(ensemble)`."""
    return keras.ops.concatenate([m(inputs, training=training) for m in unrolled_discriminators(ensemble)], axis=-1)


# ---------------------------------------------------------------------------------------------
# Cost accounting.


@dataclasses.dataclass(frozen=True)
class EnsembleCost:
    """Size and compute of an ensemble model for one example.

    trainable_params: number of trainable scalars (all K discriminators).
    non_trainable_params: projection kernel plus normalization statistics.
    macs_per_example: multiply-accumulates of all convolutions (projection included) for one
      image or clip; FLOPs ≈ 2 × MACs. Activations/normalization are not counted.
    """

    trainable_params: int
    non_trainable_params: int
    macs_per_example: int


def ensemble_cost(model: keras.Model) -> EnsembleCost:
    """Counts parameters and conv multiply-accumulates of a (grouped or ungrouped) model."""
    macs = 0
    for layer in model.layers:
        if isinstance(layer, RandomProjection):
            out = layer.output.shape[1:]  # [(T,) H', W', K]
            channels = layer.kernel.shape[2]
            macs += math.prod(out) * layer.kernel_size**2 * channels
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv3D)):
            out = layer.output.shape[1:]
            cin_per_group = layer.kernel.shape[-2]
            macs += math.prod(out) * math.prod(layer.kernel_size) * cin_per_group
    trainable = sum(math.prod(v.shape) for v in model.trainable_weights)
    non_trainable = sum(math.prod(v.shape) for v in model.non_trainable_weights)
    return EnsembleCost(int(trainable), int(non_trainable), int(macs))
