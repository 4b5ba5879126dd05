"""The deep-unfolding reconstructor: per-example-mask operator, GAP step, model I/O, mask as an input."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvidgan.cup.operator import (
    CupOperator,
    aat_diagonal_with_masks,
    adjoint_with_masks,
    forward_with_masks,
    gap_step,
    make_mask,
    random_masks,
)
from tfvidgan.errors import ConfigError
from tfvidgan.models.unfolded import build_unfolded_reconstructor

T, H, W = 4, 12, 10


def test_per_example_operator_equals_cup_operator_for_each_mask():
    masks = np.stack([make_mask(H, W, seed=s) for s in (0, 1, 2)])
    scenes = tf.random.stateless_uniform([3, T, H, W, 1], seed=[0, 1])
    sensed = tf.random.stateless_uniform([3, H + T - 1, W, 1], seed=[0, 2])
    forward = forward_with_masks(scenes, tf.constant(masks)).numpy()
    adjoint = adjoint_with_masks(sensed, tf.constant(masks), T).numpy()
    diagonal = aat_diagonal_with_masks(tf.constant(masks), T).numpy()
    for b in range(3):
        op = CupOperator(masks[b], T)
        np.testing.assert_allclose(forward[b], op.forward(scenes[b:b + 1]).numpy()[0], atol=1e-6)
        np.testing.assert_allclose(adjoint[b], op.adjoint(sensed[b:b + 1]).numpy()[0], atol=1e-6)
        np.testing.assert_allclose(diagonal[b], op.aat_diagonal().numpy(), atol=0)


def test_gap_step_is_the_projection_onto_the_measurements():
    masks = tf.constant(np.stack([make_mask(H, W, seed=s) for s in (3, 4)]))
    truth = tf.random.stateless_uniform([2, T, H, W, 1], seed=[1, 1])
    sensed = forward_with_masks(truth, masks)
    start = tf.random.stateless_uniform([2, T, H, W, 1], seed=[1, 2])
    projected = gap_step(start, sensed, masks)
    diagonal = aat_diagonal_with_masks(masks, T).numpy()
    reached = diagonal > 0
    # A x' = y exactly where the diagonal is non-zero; projecting twice changes nothing.
    np.testing.assert_allclose(forward_with_masks(projected, masks).numpy()[reached], sensed.numpy()[reached],
                               atol=1e-5)
    np.testing.assert_allclose(gap_step(projected, sensed, masks).numpy(), projected.numpy(), atol=1e-5)
    # Pixels behind closed mask pixels are untouched by the step.
    closed = np.broadcast_to(masks.numpy()[:, None, :, :, None] == 0, start.shape)
    np.testing.assert_array_equal(projected.numpy()[closed], start.numpy()[closed])


def test_random_masks_are_seeded_binary_with_the_fill():
    a = random_masks(64, 16, 16, tf.constant([5, 6], tf.int64), fill=0.3).numpy()
    b = random_masks(64, 16, 16, tf.constant([5, 6], tf.int64), fill=0.3).numpy()
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) == {0.0, 1.0} and abs(a.mean() - 0.3) < 0.02
    assert not np.array_equal(a[0], a[1])


@pytest.mark.parametrize("conv,share", [("2plus1d", False), ("3d", True), ("frames_unet", False), ("frames_unet", True)])
def test_model_io_range_gradients_and_weight_sharing(conv, share):
    model = build_unfolded_reconstructor(T, H, W, stages=3, filters=4, conv=conv, share_weights=share)
    assert [i.name for i in model.inputs] == ["sensed_image", "mask"] and model.output_names == ["scene"]
    masks = tf.constant(np.stack([make_mask(H, W, seed=s) for s in (0, 1)]))
    truth = tf.random.stateless_uniform([2, T, H, W, 1], seed=[2, 2])
    sensed = forward_with_masks(truth, masks)
    with tf.GradientTape() as tape:
        scene = model({"sensed_image": 40.0 * sensed, "mask": masks}, training=True)  # far out of range too
        loss = tf.reduce_mean(tf.square(scene - truth))
    assert scene.shape == (2, T, H, W, 1)
    assert float(tf.reduce_min(scene)) >= 0.0 and float(tf.reduce_max(scene)) <= 1.0
    grads = tape.gradient(loss, model.trainable_weights)
    assert all(g is not None and bool(tf.reduce_all(tf.math.is_finite(g))) for g in grads)
    assert sum(float(tf.reduce_sum(tf.abs(g))) for g in grads) > 0
    per_stage = build_unfolded_reconstructor(T, H, W, stages=3, filters=4, conv=conv, share_weights=False)
    shared = build_unfolded_reconstructor(T, H, W, stages=3, filters=4, conv=conv, share_weights=True)
    assert per_stage.count_params() == 3 * shared.count_params()


@pytest.mark.parametrize("conv", ["frames2d", "frames_unet"])
def test_untrained_model_is_the_clipped_gap_reconstruction_and_uses_the_given_mask(conv):
    """Denoisers start as the identity (zero last conv), so the untrained net returns the clipped GAP
    estimate for the mask it is GIVEN: feeding another camera's mask changes the answer accordingly."""
    model = build_unfolded_reconstructor(T, H, W, stages=2, filters=4, conv=conv)
    truth = tf.random.stateless_uniform([1, T, H, W, 1], seed=[3, 3])
    for seed in (0, 1):
        mask = tf.constant(make_mask(H, W, seed=seed)[None])
        sensed = forward_with_masks(truth, mask)
        op = CupOperator(mask.numpy()[0], T)
        expected = np.clip(op.normalized_back_projection(sensed).numpy(), 0, 1)
        np.testing.assert_allclose(model({"sensed_image": sensed, "mask": mask}).numpy(), expected, atol=1e-5)
    other = model({"sensed_image": sensed, "mask": tf.constant(make_mask(H, W, seed=0)[None])}).numpy()
    assert np.abs(other - expected).max() > 0.1


@pytest.mark.parametrize("conv", ["3d", "frames_unet"])
def test_saved_and_restored(tmp_path, conv):
    model = build_unfolded_reconstructor(T, H, W, stages=2, filters=4, conv=conv)
    for w in model.trainable_weights:
        w.assign(tf.random.stateless_normal(w.shape, seed=[4, len(w.path)], stddev=0.1))
    model.save(tmp_path / "u.keras")
    restored = keras.models.load_model(tmp_path / "u.keras")
    inputs = {"sensed_image": tf.random.stateless_uniform([2, H + T - 1, W, 1], seed=[5, 5], maxval=3.0),
              "mask": tf.constant(np.stack([make_mask(H, W, seed=s) for s in (0, 1)]))}
    np.testing.assert_allclose(restored(inputs).numpy(), model(inputs).numpy(), atol=1e-6)


def _set_random_weights(model, seed: int, keep_zero: str = "") -> None:
    for w in model.trainable_weights:
        if keep_zero and w.path.startswith(keep_zero):
            w.assign(tf.zeros(w.shape))
        else:
            w.assign(tf.random.stateless_normal(w.shape, seed=[seed, len(w.path)], stddev=0.1))


@pytest.mark.parametrize("conv", ["frames2d", "frames_unet"])
def test_memory_carries_a_stages_hidden_features_into_the_next_stage(conv):
    """Stage 0's output conv is zero, so its residual is zero whatever its hidden layers compute: without
    memory its hidden weights cannot reach the output; with memory they reach it through stage 1."""
    masks = tf.constant(np.stack([make_mask(H, W, seed=s) for s in (0, 1)]))
    sensed = forward_with_masks(tf.random.stateless_uniform([2, T, H, W, 1], seed=[6, 6]), masks)
    inputs = {"sensed_image": sensed, "mask": masks}
    first_hidden = "denoiser0_conv0/kernel" if conv == "frames2d" else "denoiser0_enc0/kernel"
    for memory in (False, True):
        model = build_unfolded_reconstructor(T, H, W, stages=2, filters=4, conv=conv, memory=memory)
        _set_random_weights(model, 9, keep_zero="denoiser0_" + ("conv1" if conv == "frames2d" else "out"))
        before = model(inputs).numpy()
        hidden = next(w for w in model.trainable_weights if w.path == first_hidden)
        hidden.assign(hidden + 0.5)
        changed = np.abs(model(inputs).numpy() - before).max()
        assert (changed > 1e-4) == memory, (memory, changed)
        # The next stage's first conv reads T frames + the mask (+ 4 memory channels).
        stage1 = next(w for w in model.trainable_weights if w.path == first_hidden.replace("denoiser0", "denoiser1"))
        assert stage1.shape[2] == T + 1 + (4 if memory else 0)


@pytest.mark.parametrize("share", [False, True])
def test_memory_models_train_save_and_restore(tmp_path, share):
    model = build_unfolded_reconstructor(T, H, W, stages=3, filters=4, conv="frames_unet", share_weights=share,
                                         memory=True)
    masks = tf.constant(np.stack([make_mask(H, W, seed=s) for s in (0, 1)]))
    truth = tf.random.stateless_uniform([2, T, H, W, 1], seed=[2, 3])
    inputs = {"sensed_image": forward_with_masks(truth, masks), "mask": masks}
    _set_random_weights(model, 10)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(inputs, training=True) - truth))
    grads = tape.gradient(loss, model.trainable_weights)
    assert all(g is not None and bool(tf.reduce_all(tf.math.is_finite(g))) for g in grads)
    model.save(tmp_path / "m.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "m.keras")(inputs).numpy(),
                               model(inputs).numpy(), atol=1e-6)
    if share:  # one denoiser, reading T + 1 + 4 channels in every stage (zeros in the first)
        without = build_unfolded_reconstructor(T, H, W, stages=3, filters=4, conv="frames_unet", share_weights=True)
        assert model.count_params() == without.count_params() + 3 * 3 * 4 * 4


def test_bad_settings_name_the_field():
    with pytest.raises(ConfigError, match="unfolded_memory needs unfolded_conv='frames2d' or 'frames_unet'.*'3d'"):
        build_unfolded_reconstructor(T, H, W, conv="3d", memory=True)
    with pytest.raises(ConfigError, match="unfolded_stages"):
        build_unfolded_reconstructor(T, H, W, stages=0)
    with pytest.raises(ConfigError, match="unfolded_conv.*'4d'"):
        build_unfolded_reconstructor(T, H, W, conv="4d")
    with pytest.raises(ConfigError, match="unfolded_conv_layers"):
        build_unfolded_reconstructor(T, H, W, conv_layers=1)
    with pytest.raises(ConfigError, match="frames_unet.*divisible by 2.*7×8"):
        build_unfolded_reconstructor(T, 7, 8, conv="frames_unet")
    with pytest.raises(ConfigError, match="unfolded_levels=3.*divisible by 4.*10×12"):
        build_unfolded_reconstructor(T, 10, 12, conv="frames_unet", levels=3)
    with pytest.raises(ConfigError, match="unfolded_levels must be >= 2"):
        build_unfolded_reconstructor(T, H, W, levels=1)
    with pytest.raises(ConfigError, match="unfolded_levels=3 needs unfolded_conv='frames_unet'.*frames2d"):
        build_unfolded_reconstructor(T, 12, 12, conv="frames2d", levels=3)


def _denoiser_reach(levels: int, size: int = 32) -> int:
    """How far (Chebyshev distance, pixels) an input pixel of a randomly weighted `frames_unet` denoiser of
    `levels` resolutions can move its output at the frame's centre."""
    from tfvidgan.models.unfolded import _FramesUNet

    inputs = keras.Input((size, size, 3))
    net = keras.Model(inputs, _FramesUNet(4, 2, "d", num_frames=2, levels=levels)(inputs))
    for w in net.trainable_weights:
        w.assign(tf.random.stateless_uniform(w.shape, seed=[7, len(w.path)], minval=0.01, maxval=0.1))
    x = tf.random.stateless_uniform([1, size, size, 3], seed=[8, 8])
    with tf.GradientTape() as tape:
        tape.watch(x)
        centre = net(x)[0, size // 2, size // 2, 0]
    moved = np.argwhere(np.abs(tape.gradient(centre, x).numpy()[0]).sum(-1) > 0)
    return int(np.abs(moved - size // 2).max())


def test_more_unet_levels_widen_the_denoisers_context_and_keep_the_two_level_names():
    two, three = _denoiser_reach(2), _denoiser_reach(3)
    assert 4 <= two < three, (two, three)
    names = lambda m: {layer.name for layer in m.layers}  # noqa: E731
    default = build_unfolded_reconstructor(T, 12, 12, stages=1, filters=4)
    deeper = build_unfolded_reconstructor(T, 12, 12, stages=1, filters=4, levels=3)
    assert names(default) == names(build_unfolded_reconstructor(T, 12, 12, stages=1, filters=4, levels=2))
    # Checkpoints of two-level nets keep loading: the default's denoiser weights keep their paths, and a
    # third level only adds weights.
    paths = lambda m: {w.path for w in m.weights}  # noqa: E731
    assert {"denoiser0_enc0/kernel", "denoiser0_down/kernel", "denoiser0_up/kernel",
            "denoiser0_dec0/kernel", "denoiser0_out/kernel"} <= paths(default)
    assert paths(default) < paths(deeper)
    assert deeper.count_params() > default.count_params()


def test_mixed_precision_keeps_the_physics_float32():
    """Under "mixed_bfloat16" the denoisers compute in bfloat16 but the GAP steps, the residual sums and the
    clip stay float32: the untrained net (identity denoisers) still returns the clipped GAP estimate to
    float32 precision (bfloat16 GAP arithmetic misses it by ~1e-2), and trained-like weights give what the
    float32 model gives up to bfloat16 rounding of the denoisers."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        mixed = build_unfolded_reconstructor(T, H, W, stages=2, filters=4, conv="frames_unet")
    finally:
        keras.config.set_dtype_policy(previous)
    compute = {layer.name: layer.compute_dtype for layer in mixed.layers}
    assert compute["gap0"] == compute["back_projection"] == compute["stage0_residual"] == "float32"
    assert compute["scene"] == "float32" and "bfloat16" in compute.values()
    truth = tf.random.stateless_uniform([2, T, H, W, 1], seed=[6, 6])
    masks = tf.constant(np.stack([make_mask(H, W, seed=s) for s in (0, 1)]))
    inputs = {"sensed_image": forward_with_masks(truth, masks), "mask": masks}
    expected = np.stack([np.clip(CupOperator(masks.numpy()[i], T).normalized_back_projection(
        inputs["sensed_image"][i:i + 1]).numpy()[0], 0, 1) for i in range(2)])
    scene = mixed(inputs)
    assert scene.dtype == tf.float32
    np.testing.assert_allclose(scene.numpy(), expected, atol=1e-5)
    full = build_unfolded_reconstructor(T, H, W, stages=2, filters=4, conv="frames_unet")
    for w in full.trainable_weights:
        w.assign(tf.random.stateless_normal(w.shape, seed=[4, len(w.path)], stddev=0.1))
    mixed.set_weights(full.get_weights())
    difference = np.abs(mixed(inputs).numpy() - full(inputs).numpy())
    assert 0 < difference.max() < 0.05, difference.max()
