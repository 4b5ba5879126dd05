"""GAP-TV: the classical iterative CUP reconstruction baseline (Yuan 2016), in TensorFlow.

Generalised alternating projection (GAP) alternates a Euclidean projection onto the measurement
set ``{x : A x = y}`` with a total-variation (TV) denoising step. Because ``A Aᵀ`` is diagonal for
CUP (`CupOperator.aat_diagonal`), the projection is a per-pixel division:

    yₖ   = yₖ₋₁ + (y − A vₖ₋₁)                      (accelerated GAP; plain GAP keeps yₖ = y)
    xₖ   = vₖ₋₁ + Aᵀ ((yₖ − A vₖ₋₁) ⊘ diag(A Aᵀ))
    vₖ   = clip(TV_denoise(xₖ, tv_weight), 0, 1)

started from the least-norm solution ``v₀ = Aᵀ (y ⊘ diag(A Aᵀ))`` (clipped to ``[0, 1]``). The TV
denoiser is Chambolle's (2004) dual projection algorithm for isotropic TV over rows and columns,
plus (optionally, with a relative weight) the time axis.

The whole loop is one `tf.function` (a `tf.while_loop`), batched over samples; the number of
iterations and the TV weight are tensors, so changing them does not retrace.
"""

from __future__ import annotations

import tensorflow as tf

from tfvidgan.cup.operator import CupOperator
from tfvidgan.errors import ConfigError

__all__ = ["gap_tv_reconstruct", "tv_denoise"]


def _forward_diff(u: tf.Tensor, axis: int) -> tf.Tensor:
    """Forward difference along ``axis`` of a 4-D tensor, 0 at the last index (Neumann boundary)."""
    n = u.shape[axis]
    if n == 1:
        return tf.zeros_like(u)
    head = tf.gather(u, tf.range(1, n), axis=axis) - tf.gather(u, tf.range(0, n - 1), axis=axis)
    return tf.concat([head, tf.zeros_like(tf.gather(u, [0], axis=axis))], axis=axis)


def _backward_diff(p: tf.Tensor, axis: int) -> tf.Tensor:
    """``p[i] − p[i−1]`` with ``p[−1] = 0``; equals ``−(forward diff)ᵀ p`` when ``p[last] = 0``."""
    n = p.shape[axis]
    if n == 1:
        return tf.zeros_like(p)
    shifted = tf.concat(
        [tf.zeros_like(tf.gather(p, [0], axis=axis)), tf.gather(p, tf.range(0, n - 1), axis=axis)], axis=axis
    )
    return p - shifted


def tv_denoise(
    frames: tf.Tensor, weight, iterations: int = 5, temporal_weight: float = 1.0
) -> tf.Tensor:
    """Isotropic TV denoising ``argmin_u ½‖u − f‖² + weight · TV(u)`` by Chambolle's projection.

    ``TV(u) = Σ sqrt((∂_r u)² + (∂_c u)² + (temporal_weight · ∂_t u)²)`` (forward differences,
    Neumann boundary), solved with ``iterations`` fixed-step dual iterations started from 0.

    Args:
      frames: ``[B, T, H, W]`` float32 (any range).
      weight: TV weight (float or scalar tensor, >= 0) in intensity units; 0 returns ``frames``.
      iterations: number of dual iterations (static int >= 1).
      temporal_weight: relative weight of the time derivative (0 = frame-by-frame 2-D TV).

    Returns:
      ``[B, T, H, W]`` float32, the denoised frames.
    """
    frames = tf.convert_to_tensor(frames, tf.float32)
    weight = tf.cast(weight, tf.float32)
    axes_weights = [(2, 1.0), (3, 1.0)]
    if temporal_weight > 0:
        axes_weights.append((1, float(temporal_weight)))
    # ‖∇‖² ≤ 4 Σ w²; Chambolle's step τ ≤ 1 / ‖∇‖².
    tau = 1.0 / (4.0 * sum(w * w for _, w in axes_weights))
    safe_weight = tf.maximum(weight, 1e-12)

    def grad(u):
        return [w * _forward_diff(u, a) for a, w in axes_weights]

    def div(ps):
        return tf.add_n([w * _backward_diff(p, a) for (a, w), p in zip(axes_weights, ps)])

    ps = [tf.zeros_like(frames) for _ in axes_weights]
    for _ in range(int(iterations)):
        g = grad(div(ps) - frames / safe_weight)
        norm = tf.sqrt(tf.add_n([tf.square(gi) for gi in g]))
        ps = [(p + tau * gi) / (1.0 + tau * norm) for p, gi in zip(ps, g)]
    denoised = frames - safe_weight * div(ps)
    return tf.where(weight > 0, denoised, frames)


def _gap_tv_loop(sensed, operator, iterations, tv_weight, tv_iterations, temporal_weight, accelerate):
    y = sensed[..., 0]  # [B, H+T-1, W]
    weights = operator.aat_diagonal(tf.float32)[None, ..., 0]  # [1, H+T-1, W]

    def project(v, target):
        residual = tf.math.divide_no_nan(target - operator.forward(v)[..., 0], weights)
        return v + operator.adjoint(residual)[..., 0]

    v0 = tf.clip_by_value(operator.normalized_back_projection(sensed)[..., 0], 0.0, 1.0)
    history = tf.TensorArray(tf.float32, size=iterations, element_shape=tf.TensorShape([None]))

    def body(k, v, y_acc, history):
        if accelerate:
            y_acc = y_acc + (y - operator.forward(v)[..., 0])
        x = project(v, y_acc)
        v = tf.clip_by_value(tv_denoise(x, tv_weight, tv_iterations, temporal_weight), 0.0, 1.0)
        residual = tf.sqrt(tf.reduce_sum(tf.square(operator.forward(v)[..., 0] - y), axis=[1, 2]))
        return k + 1, v, y_acc, history.write(k, residual)

    _, v, _, history = tf.while_loop(
        lambda k, *_: k < iterations,
        body,
        (tf.constant(0), v0, y, history),
        shape_invariants=(tf.TensorShape([]), v0.shape, y.shape, tf.TensorShape(None)),
    )
    return v[..., None], tf.transpose(history.stack())  # [B, T, H, W, 1], [B, iterations]


_gap_tv_graph = tf.function(_gap_tv_loop, reduce_retracing=True)
_gap_tv_xla = tf.function(_gap_tv_loop, jit_compile=True, reduce_retracing=True)


def gap_tv_reconstruct(
    sensed,
    operator: CupOperator,
    iterations: int = 100,
    tv_weight: float = 0.3,
    *,
    tv_iterations: int = 5,
    temporal_weight: float = 1.0,
    accelerate: bool = True,
    jit_compile: bool = False,
    return_history: bool = False,
):
    """Reconstruct CUP scenes from sensed images with GAP-TV.

    Args:
      sensed: ``[B, H + T − 1, W, 1]`` (or ``[B, H + T − 1, W]``) float32, in the operator's units
        (values in ``[0, T]`` for noiseless scenes in ``[0, 1]``).
      operator: the `CupOperator` (mask and ``T``) that produced ``sensed``.
      iterations: GAP iterations, >= 1 (a tensor in the compiled loop: changing it does not retrace).
      tv_weight: TV denoising strength in intensity units, >= 0 (0 = plain GAP with the [0, 1] box).
      tv_iterations: Chambolle dual iterations per GAP iteration (static), >= 1.
      temporal_weight: relative weight of the time derivative in the TV term (0 = 2-D TV per frame).
      accelerate: use the accelerated GAP update (adds back the measurement residual each iteration).
      jit_compile: compile the loop with XLA (faster per call, slower first call).
      return_history: also return the residual norms ``‖A vₖ − y‖₂`` per sample and iteration.

    Returns:
      ``[B, T, H, W, 1]`` float32 scenes in ``[0, 1]``; with ``return_history`` a tuple
      ``(scenes, residuals [B, iterations] float32)``.

    Raises:
      ConfigError: a parameter is out of range or ``sensed`` does not match the operator.
    """
    if int(iterations) < 1:
        raise ConfigError(f"GAP-TV iterations must be >= 1, got {iterations}")
    if int(tv_iterations) < 1:
        raise ConfigError(f"GAP-TV tv_iterations must be >= 1, got {tv_iterations}")
    if tv_weight < 0 or temporal_weight < 0:
        raise ConfigError(f"GAP-TV weights must be >= 0, got tv_weight={tv_weight}, temporal_weight={temporal_weight}")
    sensed = tf.convert_to_tensor(sensed, tf.float32)
    if sensed.shape.rank == 3:
        sensed = sensed[..., None]
    if sensed.shape.rank != 4 or tuple(sensed.shape[1:]) != operator.sensed_shape:
        raise ConfigError(f"GAP-TV input must be [B, {', '.join(map(str, operator.sensed_shape))}], got {sensed.shape}")
    fn = _gap_tv_xla if jit_compile else _gap_tv_graph
    scenes, history = fn(
        sensed,
        operator,
        tf.constant(int(iterations), tf.int32),
        tf.constant(float(tv_weight), tf.float32),
        int(tv_iterations),
        float(temporal_weight),
        bool(accelerate),
    )
    return (scenes, history) if return_history else scenes
