"""The CUP forward operator E = T·S·C·I, its exact adjoint, the sensing mask and sensor noise.

Compressed ultrafast photography (CUP) records a dynamic scene ``I(t, r, c)`` (``T`` frames of
``H × W`` intensities in ``[0, 1]``) as ONE 2-D image:

1. ``C``: every frame is multiplied by the same pseudo-random binary mask ``[H, W]``;
2. ``S``: frame ``t`` is sheared down by ``t`` rows (one row per frame);
3. ``T``: the sheared frames are summed over time, giving ``[H + T - 1, W]``.

So ``E[r, c] = sum_t C[r - t, c] · I[t, r - t, c]`` and the adjoint is
``(Eᵀ y)[t, r, c] = C[r, c] · y[r + t, c]``. ``A Aᵀ`` is diagonal: ``(A Aᵀ)[r, c] = sum_t C[r - t, c]²``,
which `CupOperator.aat_diagonal` returns and `CupOperator.normalized_back_projection` uses.

Everything here is pure TensorFlow, vectorised over the batch, and usable inside `tf.function`
(including ``jit_compile=True``). Scenes convert from the bouncing-balls convention ``[-1, 1]`` by
``(x + 1) / 2``.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfvidgan.errors import ConfigError

__all__ = ["CupOperator", "make_mask", "add_noise", "shear_and_sum", "unshear", "forward_with_masks",
           "adjoint_with_masks", "aat_diagonal_with_masks", "gap_step", "random_masks"]


def make_mask(height: int, width: int, seed: int, fill: float = 0.5) -> np.ndarray:
    """A pseudo-random binary coding mask.

    Args:
      height, width: mask size ``H, W`` (positive ints).
      seed: seed of `numpy.random.default_rng`; the same seed always gives the same mask.
      fill: probability that a pixel is open (1), in ``(0, 1]``.

    Returns:
      ``[H, W] float32`` array with values in ``{0, 1}``.

    Raises:
      ConfigError: a size is not positive or ``fill`` is outside ``(0, 1]``.
    """
    if int(height) <= 0 or int(width) <= 0:
        raise ConfigError(f"mask size must be positive, got height={height}, width={width}")
    if not 0.0 < float(fill) <= 1.0:
        raise ConfigError(f"mask fill must be in (0, 1], got fill={fill}")
    rng = np.random.default_rng(int(seed))
    return (rng.random((int(height), int(width))) < float(fill)).astype(np.float32)


def shear_and_sum(frames: tf.Tensor) -> tf.Tensor:
    """Shift frame ``t`` down by ``t`` rows and sum over time: ``[B, T, H, W] -> [B, H + T - 1, W]``.

    Implemented without a loop with the "skew" reshape trick: pad every frame with ``T`` zero rows
    (length ``H + T``), flatten time and rows, keep the first ``T·(H + T - 1)`` rows and fold them
    back with row length ``H + T - 1``: element ``(t, j)`` lands at ``(t, j + t)``. Works for any
    float dtype and static or dynamic batch size; ``T, H, W`` must be static.
    """
    _, num_frames, height, width = frames.shape
    padded = tf.pad(frames, [[0, 0], [0, 0], [0, num_frames], [0, 0]])
    flat = tf.reshape(padded, [-1, num_frames * (height + num_frames), width])
    out_rows = height + num_frames - 1
    skewed = tf.reshape(flat[:, : num_frames * out_rows], [-1, num_frames, out_rows, width])
    return tf.reduce_sum(skewed, axis=1)


def unshear(image: tf.Tensor, num_frames: int) -> tf.Tensor:
    """Adjoint of `shear_and_sum`: ``[B, H + T - 1, W] -> [B, T, H, W]`` with out[t, r] = in[r + t].

    Without a gather, by the inverse skew: tile the image ``T`` times, flatten time and rows, pad ``T``
    rows and fold with row length ``H + T``, so copy ``t`` starts ``t`` rows later; keep ``H`` rows.
    """
    out_rows, width = image.shape[1], image.shape[2]
    height = out_rows - num_frames + 1
    tiled = tf.tile(image[:, None], [1, num_frames, 1, 1])
    flat = tf.reshape(tiled, [-1, num_frames * out_rows, width])
    flat = tf.pad(flat, [[0, 0], [0, num_frames], [0, 0]])
    return tf.reshape(flat, [-1, num_frames, height + num_frames, width])[:, :, :height]


class CupOperator:
    """The linear CUP measurement ``A = T·S·C`` for a fixed mask and number of frames.

    Args:
      mask: ``[H, W]`` float array, normally binary ``{0, 1}`` (any real values work; the adjoint stays
        exact).
      num_frames: ``T``, the number of frames integrated into one sensed image.

    Attributes:
      mask: ``[H, W] float32`` constant tensor.
      num_frames, height, width: ints; ``sensed_height = height + num_frames - 1``.
    """

    def __init__(self, mask, num_frames: int):
        mask = np.asarray(mask, dtype=np.float32)
        if mask.ndim != 2 or min(mask.shape) <= 0:
            raise ConfigError(f"CUP mask must have shape [H, W], got {mask.shape}")
        if int(num_frames) <= 0:
            raise ConfigError(f"num_frames must be positive, got {num_frames}")
        self.num_frames = int(num_frames)
        self.height, self.width = (int(s) for s in mask.shape)
        self.sensed_height = self.height + self.num_frames - 1
        self.mask_np = mask
        self.mask = tf.constant(mask)

    # -- shapes -------------------------------------------------------------------------------
    @property
    def scene_shape(self) -> tuple[int, int, int, int]:
        """``(T, H, W, 1)``."""
        return (self.num_frames, self.height, self.width, 1)

    @property
    def sensed_shape(self) -> tuple[int, int, int]:
        """``(H + T - 1, W, 1)``."""
        return (self.sensed_height, self.width, 1)

    def _check_scene(self, scenes: tf.Tensor) -> tf.Tensor:
        scenes = tf.convert_to_tensor(scenes)
        if scenes.shape.rank == 5:
            if scenes.shape[-1] != 1:
                raise ConfigError(f"CUP scenes must have 1 channel, got shape {scenes.shape}")
            scenes = scenes[..., 0]
        if scenes.shape.rank != 4 or tuple(scenes.shape[1:]) != (self.num_frames, self.height, self.width):
            raise ConfigError(
                f"CUP scenes must be [B, {self.num_frames}, {self.height}, {self.width}(, 1)], got {scenes.shape}"
            )
        return scenes

    def _check_sensed(self, sensed: tf.Tensor) -> tf.Tensor:
        sensed = tf.convert_to_tensor(sensed)
        if sensed.shape.rank == 4:
            if sensed.shape[-1] != 1:
                raise ConfigError(f"CUP sensed images must have 1 channel, got shape {sensed.shape}")
            sensed = sensed[..., 0]
        if sensed.shape.rank != 3 or tuple(sensed.shape[1:]) != (self.sensed_height, self.width):
            raise ConfigError(
                f"CUP sensed images must be [B, {self.sensed_height}, {self.width}(, 1)], got {sensed.shape}"
            )
        return sensed

    # -- the operator ---------------------------------------------------------------------------
    def forward(self, scenes: tf.Tensor) -> tf.Tensor:
        """``A x``: scenes ``[B, T, H, W]`` or ``[B, T, H, W, 1]`` (float, normally in [0, 1]) ->
        sensed ``[B, H + T - 1, W, 1]`` of the same dtype (values in ``[0, T]`` for scenes in [0, 1])."""
        scenes = self._check_scene(scenes)
        coded = scenes * tf.cast(self.mask, scenes.dtype)
        return shear_and_sum(coded)[..., None]

    def adjoint(self, sensed: tf.Tensor) -> tf.Tensor:
        """``Aᵀ y``: sensed ``[B, H + T - 1, W]`` or ``[..., 1]`` -> ``[B, T, H, W, 1]``, same dtype."""
        sensed = self._check_sensed(sensed)
        frames = unshear(sensed, self.num_frames) * tf.cast(self.mask, sensed.dtype)
        return frames[..., None]

    def aat_diagonal(self, dtype=tf.float32) -> tf.Tensor:
        """Diagonal of ``A Aᵀ`` (i.e. ``A Aᵀ 1``) as an image ``[H + T - 1, W, 1]``: the sum over ``t``
        of the squared mask shifted down by ``t`` rows. Zero where no open mask pixel contributes."""
        mask_sq = tf.cast(tf.square(self.mask), dtype)
        tiled = tf.tile(mask_sq[None, None], [1, self.num_frames, 1, 1])
        return shear_and_sum(tiled)[0][..., None]

    def normalized_back_projection(self, sensed: tf.Tensor) -> tf.Tensor:
        """Least-norm solution ``Aᵀ (A Aᵀ)⁻¹ y`` = ``Aᵀ (y ⊘ A Aᵀ 1)`` -> ``[B, T, H, W, 1]``.

        Sensed pixels that no open mask pixel reaches (diagonal 0) contribute 0. For a noiseless
        constant scene of value v this gives ``v`` on open mask pixels and 0 on closed ones.
        """
        sensed = tf.convert_to_tensor(sensed)
        if sensed.shape.rank == 3:
            sensed = sensed[..., None]
        weights = self.aat_diagonal(sensed.dtype)
        return self.adjoint(tf.math.divide_no_nan(sensed, weights[None]))

    def __call__(self, scenes: tf.Tensor) -> tf.Tensor:
        return self.forward(scenes)


# -- the operator with one mask per example (masks as tensors: the unfolded reconstructor's input) -------


def forward_with_masks(scenes: tf.Tensor, masks: tf.Tensor) -> tf.Tensor:
    """``A_b x_b`` for a batch where example ``b`` has its own mask.

    Args:
      scenes: ``[B, T, H, W]`` or ``[B, T, H, W, 1]`` float (normally in [0, 1]); ``T, H, W`` static.
      masks: ``[B, H, W]`` float, same dtype (normally binary).

    Returns:
      Sensed images ``[B, H + T − 1, W, 1]``, same dtype (values in ``[0, T]`` for binary masks and
      scenes in [0, 1]). Equals `CupOperator(mask_b, T).forward` for every example.
    """
    scenes = tf.convert_to_tensor(scenes)
    masks = tf.cast(masks, scenes.dtype)
    if scenes.shape.rank == 5:
        scenes = scenes[..., 0]
    return shear_and_sum(scenes * masks[:, None])[..., None]


def adjoint_with_masks(sensed: tf.Tensor, masks: tf.Tensor, num_frames: int) -> tf.Tensor:
    """``A_bᵀ y_b``: sensed ``[B, H + T − 1, W]`` or ``[..., 1]``, masks ``[B, H, W]`` -> ``[B, T, H, W, 1]``."""
    sensed = tf.convert_to_tensor(sensed)
    masks = tf.cast(masks, sensed.dtype)
    if sensed.shape.rank == 4:
        sensed = sensed[..., 0]
    return (unshear(sensed, num_frames) * masks[:, None])[..., None]


def aat_diagonal_with_masks(masks: tf.Tensor, num_frames: int) -> tf.Tensor:
    """Diagonal of ``A_b A_bᵀ`` per example: masks ``[B, H, W]`` -> ``[B, H + T − 1, W, 1]`` (>= 0; 0 where
    no open mask pixel reaches the sensed pixel)."""
    tiled = tf.tile(tf.square(tf.convert_to_tensor(masks))[:, None], [1, num_frames, 1, 1])
    return shear_and_sum(tiled)[..., None]


def gap_step(x: tf.Tensor, sensed: tf.Tensor, masks: tf.Tensor, diagonal: tf.Tensor | None = None) -> tf.Tensor:
    """One GAP data-consistency (projection) step ``x + Aᵀ((y − A x) ⊘ diag(A Aᵀ))`` per example.

    The result satisfies ``A x' = y`` exactly on sensed pixels with a non-zero diagonal (``A Aᵀ`` is
    diagonal, so the projection onto ``{x : A x = y}`` is a per-pixel division); pixels with a zero
    diagonal are left unchanged (`tf.math.divide_no_nan`).

    Args:
      x: current estimate ``[B, T, H, W, 1]`` float32.
      sensed: ``[B, H + T − 1, W, 1]`` float32 (sensed units).
      masks: ``[B, H, W]`` float32.
      diagonal: optional precomputed `aat_diagonal_with_masks(masks, T)`.

    Returns:
      ``[B, T, H, W, 1]`` float32.
    """
    num_frames = x.shape[1]
    if diagonal is None:
        diagonal = aat_diagonal_with_masks(masks, num_frames)
    residual = tf.math.divide_no_nan(sensed - forward_with_masks(x, masks), diagonal)
    return x + adjoint_with_masks(residual, masks, num_frames)


def random_masks(batch: int, height: int, width: int, seed, fill: float = 0.5) -> tf.Tensor:
    """``[batch, H, W] float32 {0, 1}`` Bernoulli(``fill``) masks, deterministic given ``seed`` (an int
    tensor of shape ``[2]``, `tf.random.stateless_uniform`). Usable inside `tf.function`."""
    draws = tf.random.stateless_uniform([batch, height, width], seed=seed)
    return tf.cast(draws < fill, tf.float32)


def _stateless_seed(seed) -> tf.Tensor:
    """An int seed -> ``[seed, 0]``; a shape-[2] int tensor/array is used as is."""
    seed_t = tf.convert_to_tensor(seed)
    if seed_t.shape.rank == 0:
        return tf.stack([tf.cast(seed_t, tf.int64), tf.constant(0, tf.int64)])
    return tf.cast(tf.reshape(seed_t, [2]), tf.int64)


def add_noise(sensed: tf.Tensor, photons: float, read_noise_sigma: float, seed) -> tf.Tensor:
    """Poisson shot noise then Gaussian read noise, deterministic given ``seed``.

    Units: a sensed value of 1.0 (one fully bright frame on an open mask pixel) is ``photons`` expected
    photo-electrons. Shot noise: ``Poisson(photons · sensed) / photons`` (so variance = sensed/photons).
    Read noise: ``+ N(0, read_noise_sigma²)`` in sensed units. Either stage is skipped when its
    parameter is 0.

    Args:
      sensed: ``[B, H + T - 1, W, 1]`` float32, values >= 0 (negative values are clipped to 0 for
        the Poisson stage).
      photons: photons at full scale (sensed value 1.0), >= 0; 0 disables shot noise.
      read_noise_sigma: standard deviation of the read noise, >= 0; 0 disables it.
      seed: int, or an int tensor of shape ``[2]`` (e.g. ``[base_seed, example_index]``).

    Returns:
      Noisy sensed images, same shape and dtype (read noise can make values slightly negative).

    Raises:
      ConfigError: ``photons`` or ``read_noise_sigma`` is negative.
    """
    if photons < 0:
        raise ConfigError(f"photons must be >= 0 (0 = no shot noise), got {photons}")
    if read_noise_sigma < 0:
        raise ConfigError(f"read_noise_sigma must be >= 0 (0 = no read noise), got {read_noise_sigma}")
    sensed = tf.convert_to_tensor(sensed)
    shot_seed, read_seed = tf.unstack(tf.random.experimental.stateless_split(_stateless_seed(seed), 2))
    out = sensed
    if photons > 0:
        rate = tf.maximum(out, 0.0) * tf.cast(photons, out.dtype)
        counts = tf.random.stateless_poisson(tf.shape(out), seed=shot_seed, lam=rate, dtype=out.dtype)
        out = counts / tf.cast(photons, out.dtype)
    if read_noise_sigma > 0:
        out = out + tf.random.stateless_normal(
            tf.shape(out), seed=read_seed, stddev=tf.cast(read_noise_sigma, out.dtype), dtype=out.dtype
        )
    return out
