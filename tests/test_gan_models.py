"""Tests for the frames generator and the grouped discriminator ensembles (tiny sizes)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvidgan import losses
from tfvidgan.data.bouncing_balls import render
from tfvidgan.errors import ConfigError
from tfvidgan.models.ensemble_discriminator import (
    CentroidAccelerations,
    GroupedConv2D,
    GroupedConv3D,
    TemporalDifferences,
    build_frame_discriminators,
    build_video_discriminators,
    ensemble_cost,
    native_grouped_conv_supported,
    reference_logits,
    resolve_conv_implementation,
    unrolled_discriminators,
)
from tfvidgan.models.frames_generator import build_frames_generator
from tfvidgan.models.projection import RandomProjection


def _randomize_trainable(model, seed, std=0.3):
    """Replaces DCGAN's N(0, 0.02) init by larger weights so that logits are O(1)."""
    rng = np.random.default_rng(seed)
    for v in model.trainable_variables:
        v.assign(rng.normal(0.0, std, v.shape).astype(np.float32))


# ----------------------------------------------------------------------------- generator


@pytest.mark.parametrize("size", [30, 32, 64])
def test_generator_shapes_and_range(size):
    generator = build_frames_generator(size, channels=2, latent_dim=8, base_filters=4)
    assert generator.name == "frames_generator"
    assert generator.inputs[0].name == "z"
    # Make the pre-tanh values large so the range check is not trivially met by tiny weights.
    last = generator.get_layer("to_image")
    last.kernel.assign(last.kernel * 200.0)
    z = tf.random.normal((3, 8), seed=1)
    images = generator(z, training=True).numpy()
    assert images.shape == (3, size, size, 2) and images.dtype == np.float32
    assert images.min() >= -1.0 and images.max() <= 1.0
    assert images.min() < -0.9 and images.max() > 0.9  # saturated tanh reaches both ends
    assert np.std(images[0] - images[1]) > 0.01  # different z → different images


def test_generator_architecture_follows_dcgan_plan():
    generator = build_frames_generator(64, channels=1, latent_dim=8, base_filters=4)
    deconvs = [l for l in generator.layers if isinstance(l, keras.layers.Conv2DTranspose)]
    assert [tuple(l.output.shape[1:]) for l in deconvs] == [(8, 8, 16), (16, 16, 8), (32, 32, 4), (64, 64, 1)]
    assert tuple(generator.get_layer("to_4x4").output.shape[1:]) == (4, 4, 32)
    # 30 = 32 center-cropped by one pixel per side.
    g30 = build_frames_generator(30, channels=1, latent_dim=8, base_filters=4)
    assert tuple(g30.get_layer("to_image").output.shape[1:]) == (32, 32, 1)
    assert g30.get_layer("center_crop").cropping == ((1, 1), (1, 1))


def test_generator_normalization_options():
    kinds = {}
    for normalization in ("batch", "sync_batch", "none"):
        g = build_frames_generator(32, 1, 8, base_filters=4, normalization=normalization)
        kinds[normalization] = [l for l in g.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert len(kinds["batch"]) == 3 and not any(l.synchronized for l in kinds["batch"])
    assert len(kinds["sync_batch"]) == 3 and all(l.synchronized for l in kinds["sync_batch"])
    assert kinds["none"] == []


@pytest.mark.parametrize(
    "field,kwargs",
    [
        ("normalization", dict(normalization="instance")),
        ("image_size", dict(image_size=48)),
        ("latent_dim", dict(latent_dim=0)),
    ],
)
def test_generator_bad_config_names_field(field, kwargs):
    args = dict(image_size=32, channels=1, latent_dim=8, base_filters=4)
    args.update(kwargs)
    with pytest.raises(ConfigError, match=field):
        build_frames_generator(**args)


# ----------------------------------------------------------------------------- ensembles


@pytest.mark.parametrize("size", [30, 32, 64])
def test_frame_discriminator_logits_shape(size):
    model = build_frame_discriminators((size, size, 1), num_discriminators=3, base_filters=2)
    logits = model(tf.random.uniform((2, size, size, 1), -1.0, 1.0))
    assert tuple(logits.shape) == (2, 3) and logits.dtype == tf.float32
    convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    assert all(l.groups == 3 for l in convs)
    assert max(convs[-2].output.shape[1:3]) <= 4  # last hidden map is ≤ 4×4


@pytest.mark.parametrize("frames", [16, 30, 40])
def test_video_discriminator_logits_shape(frames):
    model = build_video_discriminators((frames, 32, 32, 1), num_discriminators=2, base_filters=2)
    logits = model(tf.random.uniform((2, frames, 32, 32, 1), -1.0, 1.0))
    assert tuple(logits.shape) == (2, 2) and logits.dtype == tf.float32
    first = model.get_layer("conv_0")
    assert first.groups == 2 and first.strides == (2, 2, 2)


def test_projection_is_reachable_non_trainable_and_per_discriminator():
    for model in (
        build_frame_discriminators((32, 32, 3), 4, base_filters=2, seed=3),
        build_video_discriminators((16, 32, 32, 3), 4, base_filters=2, seed=3),
    ):
        projection = model.get_layer("projection")
        assert isinstance(projection, RandomProjection) and not projection.trainable
        assert projection.num_projections == 4 and projection.seed == 3
        assert all(v is not projection.kernel for v in model.trainable_variables)
        assert len(model.trainable_variables) == len(model.trainable_weights) > 0


@pytest.mark.parametrize(
    "builder,shape,normalization,training,head",
    [
        (build_frame_discriminators, (30, 30, 1), "none", False, "linear"),
        (build_frame_discriminators, (64, 64, 3), "none", False, "linear"),
        (build_frame_discriminators, (32, 32, 1), "layer", False, "linear"),
        (build_frame_discriminators, (32, 32, 1), "batch", True, "linear"),
        (build_frame_discriminators, (32, 32, 1), "sync_batch", True, "mlp"),
        (build_video_discriminators, (16, 32, 32, 1), "none", False, "linear"),
        (build_video_discriminators, (30, 16, 16, 2), "layer", False, "linear"),
        (build_video_discriminators, (16, 32, 32, 1), "none", False, "mlp"),
        (build_frame_discriminators, (32, 32, 1), "batch", True, "linear+mbstd"),
        (build_video_discriminators, (16, 32, 32, 1), "none", False, "mlp+mbstd"),
    ],
)
def test_grouped_equals_unrolled(builder, shape, normalization, training, head):
    num_discriminators = 3
    head, _, mbstd = head.partition("+")
    model = builder(shape, num_discriminators, base_filters=2, seed=7, normalization=normalization, head=head,
                    minibatch_std=2 if mbstd else 0)
    # The mlp head adds a hidden layer (last width per discriminator) and a 1×1 logit conv.
    assert ("head_conv" in [layer.name for layer in model.layers]) == (head == "mlp")
    _randomize_trainable(model, seed=1)
    x = tf.random.uniform((4,) + shape, -1.0, 1.0, seed=5)
    grouped = model(x, training=training).numpy()
    singles = unrolled_discriminators(model)
    assert len(singles) == num_discriminators
    assert all(not any(getattr(l, "groups", 1) > 1 for l in m.layers) for m in singles)
    unrolled = np.concatenate([m(x, training=training).numpy() for m in singles], axis=1)
    assert grouped.shape == unrolled.shape == (4, num_discriminators)
    assert np.std(grouped) > 0.05  # logits are not all ~0, so the comparison is meaningful
    np.testing.assert_allclose(grouped, unrolled, rtol=1e-4, atol=1e-4 * np.abs(grouped).max())
    np.testing.assert_allclose(reference_logits(model, x, training=training).numpy(), unrolled, rtol=1e-6, atol=1e-6)
    # Each single model sees only its own projection filter.
    kernel = model.get_layer("projection").kernel.numpy()
    for k, single in enumerate(singles):
        np.testing.assert_array_equal(single.get_layer(f"projection_d{k}").kernel.numpy()[..., 0], kernel[..., k])


_IMPLEMENTATIONS = [
    pytest.param(
        "native",
        marks=pytest.mark.skipif(
            not native_grouped_conv_supported(),
            reason="this TF build cannot differentiate raw grouped conv2d on this device (e.g. oneDNN off)",
        ),
    ),
    "split",
    "xla",
]


@pytest.mark.parametrize("implementation", _IMPLEMENTATIONS)
@pytest.mark.parametrize(
    "builder,shape",
    [(build_frame_discriminators, (30, 30, 2)), (build_video_discriminators, (30, 16, 16, 1))],
)
def test_every_conv_implementation_equals_unrolled(builder, shape, implementation):
    """Odd sizes (30 → 15 → 8, T=30 → 15 → 8) exercise the asymmetric "same" padding."""
    model = builder(shape, 3, base_filters=2, seed=4, conv_implementation=implementation)
    grouped_layers = [l for l in model.layers if isinstance(l, (GroupedConv2D, GroupedConv3D))]
    assert grouped_layers and all(l.resolved_implementation == implementation for l in grouped_layers)
    _randomize_trainable(model, seed=3)
    x = tf.random.uniform((2,) + shape, -1.0, 1.0, seed=6)
    grouped = model(x).numpy()
    unrolled = reference_logits(model, x).numpy()
    assert np.std(grouped) > 0.05
    np.testing.assert_allclose(grouped, unrolled, rtol=1e-4, atol=1e-4 * np.abs(grouped).max())


@pytest.mark.parametrize("implementation", [p for p in _IMPLEMENTATIONS if p != "xla"])
@pytest.mark.parametrize(
    "builder,shape",
    [(build_frame_discriminators, (32, 32, 1)), (build_video_discriminators, (16, 16, 16, 1))],
)
def test_grouped_gradients_equal_unrolled_gradients(builder, shape, implementation):
    model = builder(shape, 3, base_filters=2, seed=4, conv_implementation=implementation)
    _randomize_trainable(model, seed=5)
    singles = unrolled_discriminators(model)
    x = tf.random.uniform((2,) + shape, -1.0, 1.0, seed=7)
    cotangent = tf.random.normal((2, 3), seed=8)

    conv_names = [l.name for l in model.layers if isinstance(l, (GroupedConv2D, GroupedConv3D))]
    grouped_kernels = [model.get_layer(n).kernel for n in conv_names]
    single_kernels = [[m.get_layer(f"{n}_d{k}").kernel for k, m in enumerate(singles)] for n in conv_names]

    @tf.function(jit_compile=False)
    def grads():
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            grouped = tf.reduce_sum(model(x) * cotangent)
            unrolled = tf.reduce_sum(tf.concat([m(x) for m in singles], axis=1) * cotangent)
        return (
            tape.gradient(grouped, [x] + grouped_kernels),
            tape.gradient(unrolled, [x] + [k for per_layer in single_kernels for k in per_layer]),
        )

    (gx, *gkernels), (ux, *ukernels) = grads()
    np.testing.assert_allclose(gx.numpy(), ux.numpy(), rtol=1e-4, atol=1e-5 * np.abs(ux.numpy()).max())
    assert np.abs(gx.numpy()).max() > 0
    for i, (name, grad) in enumerate(zip(conv_names, gkernels)):
        # Grouped kernel = per-discriminator kernels concatenated along the output channels.
        expected = np.concatenate([g.numpy() for g in ukernels[i * 3 : (i + 1) * 3]], axis=-1)
        np.testing.assert_allclose(grad.numpy(), expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max(), err_msg=name)


def test_auto_implementation_avoids_keras_xla_path():
    resolved = resolve_conv_implementation("auto", rank=2)
    assert resolved == ("native" if native_grouped_conv_supported() else "split")
    assert resolve_conv_implementation("auto", rank=3) == "split"
    frames_d = build_frame_discriminators((32, 32, 1), 2, base_filters=2)
    assert {l.resolved_implementation for l in frames_d.layers if isinstance(l, GroupedConv2D)} == {resolved}
    video_d = build_video_discriminators((16, 16, 16, 1), 2, base_filters=2)
    assert {l.resolved_implementation for l in video_d.layers if isinstance(l, GroupedConv3D)} == {"split"}
    with pytest.raises(ConfigError, match="conv_implementation"):
        build_video_discriminators((16, 32, 32, 1), 2, conv_implementation="cudnn")


def test_ensembles_round_trip_through_keras_saving(tmp_path):
    model = build_video_discriminators((16, 16, 16, 1), 2, base_filters=2, seed=9)
    _randomize_trainable(model, seed=1)
    model.save(tmp_path / "video_d.keras")
    restored = keras.models.load_model(tmp_path / "video_d.keras")
    x = tf.random.uniform((2, 16, 16, 16, 1), -1.0, 1.0, seed=2)
    np.testing.assert_allclose(restored(x).numpy(), model(x).numpy(), rtol=1e-6, atol=1e-6)
    assert restored.get_layer("projection").seed == 9
    assert isinstance(restored.get_layer("conv_0"), GroupedConv3D)


def test_video_discriminator_never_mixes_samples():
    model = build_video_discriminators((16, 16, 16, 1), 3, base_filters=2)
    _randomize_trainable(model, seed=2)
    clips = tf.random.uniform((4, 16, 16, 16, 1), -1.0, 1.0, seed=8)
    logits = model(clips).numpy()
    changed = tf.tensor_scatter_nd_update(clips, [[1]], -clips[1:2])  # only sample 1 differs
    logits_changed = model(changed).numpy()
    others = [0, 2, 3]
    np.testing.assert_allclose(logits_changed[others], logits[others], rtol=1e-5, atol=1e-6)
    assert np.max(np.abs(logits_changed[1] - logits[1])) > 1e-3
    # And each sample's logits equal those computed on that sample alone.
    for b in range(4):
        np.testing.assert_allclose(model(clips[b : b + 1]).numpy()[0], logits[b], rtol=1e-4, atol=1e-5)


def _check_video_discriminator_on_differences(tmp_path, inputs: str, channels: int):
    """A video ensemble with `inputs` reads `channels`·C projected channels, matches its unrolled reference,
    keeps samples independent and survives Keras saving."""
    model = build_video_discriminators((16, 16, 16, 1), 3, base_filters=2, normalization="none", inputs=inputs)
    _randomize_trainable(model, seed=3)
    assert model.get_layer("projection").kernel.shape[-2] == channels
    x = tf.random.uniform((4, 16, 16, 16, 1), -1.0, 1.0, seed=5)
    np.testing.assert_allclose(model(x).numpy(), reference_logits(model, x).numpy(), rtol=1e-5, atol=1e-5)
    changed = tf.tensor_scatter_nd_update(x, [[2]], -x[2:3])
    np.testing.assert_allclose(model(changed).numpy()[[0, 1, 3]], model(x).numpy()[[0, 1, 3]], rtol=1e-5, atol=1e-6)
    model.save(tmp_path / "d.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "d.keras")(x).numpy(), model(x).numpy(),
                               rtol=1e-6, atol=1e-6)


def test_video_discriminator_difference_input_sees_motion_and_stays_per_sample(tmp_path):
    layer = TemporalDifferences()
    clips = tf.random.uniform((3, 5, 8, 8, 2), -1.0, 1.0, seed=4)
    out = layer(clips).numpy()
    assert out.shape == (3, 5, 8, 8, 4)
    np.testing.assert_array_equal(out[..., :2], clips.numpy())
    np.testing.assert_array_equal(out[:, 0, ..., 2:], 0.0)  # no wrap-around from the last frame
    np.testing.assert_allclose(out[:, 1:, ..., 2:], (clips[:, 1:] - clips[:, :-1]).numpy(), atol=1e-6)
    # A frozen clip has all-zero difference channels.
    frozen = tf.repeat(clips[:, :1], 5, axis=1)
    np.testing.assert_array_equal(layer(frozen).numpy()[..., 2:], 0.0)

    _check_video_discriminator_on_differences(tmp_path, "clips_and_differences", channels=2)
    with pytest.raises(ConfigError, match="inputs"):
        build_video_discriminators((16, 16, 16, 1), 2, inputs="flow")


def test_video_discriminator_acceleration_input_separates_steady_from_jittering_motion(tmp_path):
    layer = TemporalDifferences(order=2)
    clips = tf.random.uniform((3, 6, 8, 8, 2), -1.0, 1.0, seed=6)
    out = layer(clips).numpy()
    assert out.shape == (3, 6, 8, 8, 6)
    np.testing.assert_array_equal(out[..., :4], TemporalDifferences()(clips).numpy())  # order 1 unchanged
    x = clips.numpy()
    np.testing.assert_array_equal(out[:, :2, ..., 4:], 0.0)  # no wrap-around, no velocity leaking in
    np.testing.assert_allclose(out[:, 2:, ..., 4:], x[:, 2:] - 2 * x[:, 1:-1] + x[:, :-2], atol=1e-5)
    # Brightness changing at a steady rate has zero acceleration; a jitter on one frame does not.
    ramp = tf.linspace(-1.0, 1.0, 6)[None, :, None, None, None] * tf.ones((1, 6, 8, 8, 1))
    np.testing.assert_allclose(TemporalDifferences(order=2)(ramp).numpy()[..., 2], 0.0, atol=1e-6)
    jitter = ramp + tf.one_hot(3, 6)[None, :, None, None, None] * 0.1
    second = TemporalDifferences(order=2)(jitter).numpy()[0, :, 0, 0, 2]
    np.testing.assert_allclose(second, [0, 0, 0, 0.1, -0.2, 0.1], atol=1e-6)
    # Short clips keep their length.
    assert TemporalDifferences(order=2)(clips[:, :1]).shape == (3, 1, 8, 8, 6)
    with pytest.raises(ConfigError, match="order"):
        TemporalDifferences(order=3)

    _check_video_discriminator_on_differences(tmp_path, "clips_and_accelerations", channels=3)


def _balls_clip(tracks, radius=3.2, size=32):
    """`tracks` `[T, N, 2]` (row, col) → one anti-aliased clip `[1, T, size, size, 1]` in [-1, 1] (the
    dataset's renderer)."""
    tracks = np.asarray(tracks, np.float64)
    frames = render(tracks[None], np.full((1, tracks.shape[1]), radius), size=size)
    return tf.constant(frames.astype(np.float32) / 127.5 - 1.0)


def test_centroid_accelerations_are_zero_in_steady_flight_and_show_a_sub_pixel_wobble(tmp_path):
    layer = CentroidAccelerations()

    def gated(clip):  # the centroid accelerations (pixels/frame²) where the layer shows them
        acceleration, gate = layer.accelerations_and_gate(clip)
        return (acceleration * gate).numpy()

    t = np.arange(9)[:, None]
    # Steady flight at several speeds and directions: every shown value is within anti-aliasing error of 0
    # (pixel second differences are not: the shape term).
    for velocity in ((0.0, 1.4), (0.9, -0.6), (-1.1, -1.1)):
        one = _balls_clip(np.stack([12.3 + velocity[0] * t[:, 0], 14.6 + velocity[1] * t[:, 0]], -1)[:, None])
        assert np.abs(gated(one)).max() < 0.08, velocity  # 8-bit anti-aliasing: up to 0.06
        assert np.abs(TemporalDifferences(order=2)(one).numpy()[..., 2]).max() > 0.1
    # Two balls crossing 11 px apart (an edge of another ball inside the window is gated out by the ring).
    two = _balls_clip(np.stack([np.concatenate([6 + 0 * t, 17 + 0 * t], 1),
                                np.concatenate([4 + 1.5 * t, 26 - 1.5 * t], 1)], -1))
    assert np.abs(gated(two)).max() < 0.08
    # A 0.3 px jump along x (columns, channel 0) at frame 4: centroid second differences +0.3, -0.6, +0.3 at
    # frames 4, 5, 6 (frames 2 … 8 here are 0 … 6), seen at the pixels the ball is centred on (gate >= 0.78).
    cols = 9.4 + 1.2 * t[:, 0] + 0.3 * (t[:, 0] == 4)
    wobble = _balls_clip(np.stack([15.2 + 0 * cols, cols], -1)[:, None])
    shown = gated(wobble)
    extreme = np.array([shown[0, f, ..., 0].flat[np.abs(shown[0, f, ..., 0]).argmax()] for f in range(7)])
    np.testing.assert_allclose(extreme[2:5], [0.3, -0.6, 0.3], rtol=0.25)
    assert np.abs(np.concatenate([extreme[:2], extreme[5:]])).max() < 0.08
    assert np.abs(shown[..., 1]).max() < 0.08  # nothing along y
    down = gated(_balls_clip(np.stack([cols - 1.0, 15.2 + 0 * cols], -1)[:, None]))  # the same jump along y
    assert down[..., 1].max() == pytest.approx(0.3, rel=0.25) and np.abs(down[..., 0]).max() < 0.08
    # The output: zeros for frames 0 and 1, then tanh(a / unit) · gate, within (-1, 1).
    acceleration, gate = layer.accelerations_and_gate(wobble)
    out = layer(wobble).numpy()
    assert out.shape == (1, 9, 32, 32, 2)
    np.testing.assert_array_equal(out[:, :2], 0.0)
    np.testing.assert_allclose(out[:, 2:], (tf.tanh(acceleration / layer.unit) * gate).numpy(), atol=1e-6)
    # Differentiable in the clip: the generator can learn to remove the wobble.
    with tf.GradientTape() as tape:
        tape.watch(wobble)
        energy = tf.reduce_sum(tf.square(layer(wobble)))
    assert float(tf.reduce_sum(tf.abs(tape.gradient(energy, wobble)))) > 0
    # Short clips give zeros; bad settings are refused by name.
    assert np.all(layer(wobble[:, :2]).numpy() == 0) and layer(wobble[:, :2]).shape == (1, 2, 32, 32, 2)
    for bad in ({"window_radius": 1}, {"window_radius": 2.5}, {"centre_sigma": 0.0}, {"ring_tolerance": -1.0},
                {"ring_width": 7}, {"unit": 0.0}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            CentroidAccelerations(**bad)

    _check_video_discriminator_on_differences(tmp_path, "clips_and_centroid_accelerations", channels=4)


def test_ensemble_cost_matches_hand_count():
    # K=2, 2 filters per discriminator, 32×32×1: projection 16×16, conv_0 → 8×8, conv_1 → 4×4.
    model = build_frame_discriminators((32, 32, 1), 2, base_filters=2, normalization="none")
    cost = ensemble_cost(model)
    projection_macs = (16 * 16 * 2) * (8 * 8 * 1)
    conv0_macs, conv0_params = (8 * 8 * 4) * (4 * 4 * 1), 4 * 4 * 1 * 4 + 4
    conv1_macs, conv1_params = (4 * 4 * 8) * (4 * 4 * 2), 4 * 4 * 2 * 8 + 8
    logits_macs, logits_params = 2 * (4 * 4 * 4), 4 * 4 * 4 * 2 + 2
    assert cost.macs_per_example == projection_macs + conv0_macs + conv1_macs + logits_macs
    assert cost.trainable_params == conv0_params + conv1_params + logits_params
    assert cost.non_trainable_params == 8 * 8 * 1 * 2
    singles = [ensemble_cost(m) for m in unrolled_discriminators(model)]
    assert sum(c.trainable_params for c in singles) == cost.trainable_params
    assert sum(c.macs_per_example for c in singles) == cost.macs_per_example


@pytest.mark.parametrize(
    "field,kwargs",
    [
        ("normalization", dict(normalization="instance")),
        ("head", dict(head="attention")),
        ("minibatch_std", dict(minibatch_std=1)),
        ("num_discriminators", dict(num_discriminators=0)),
        ("image_shape", dict(image_shape=(32, 32))),
    ],
)
def test_discriminator_bad_config_names_field(field, kwargs):
    args = dict(image_shape=(32, 32, 1), num_discriminators=2, base_filters=2)
    args.update(kwargs)
    with pytest.raises(ConfigError, match=field):
        build_frame_discriminators(**args)
    with pytest.raises(ConfigError, match="clip_shape"):
        build_video_discriminators((32, 32, 1), 2)


# ----------------------------------------------------------------------------- gradients


def test_gradients_exist_and_are_finite_inside_tf_function():
    generator = build_frames_generator(32, channels=1, latent_dim=8, base_filters=4, normalization="batch")
    frame_d = build_frame_discriminators((32, 32, 1), 3, base_filters=2, normalization="layer")
    video_d = build_video_discriminators((16, 32, 32, 1), 2, base_filters=2)
    real = tf.random.uniform((2, 32, 32, 1), -1.0, 1.0, seed=1)
    real_clips = tf.random.uniform((2, 16, 32, 32, 1), -1.0, 1.0, seed=2)
    z = tf.random.normal((2, 8), seed=3)
    clip_z = tf.random.normal((2 * 16, 8), seed=4)

    @tf.function(jit_compile=False)
    def step():
        with tf.GradientTape(persistent=True) as tape:
            fake = generator(z, training=True)
            fake_clips = tf.reshape(generator(clip_z, training=True), (2, 16, 32, 32, 1))
            d_frame = losses.discriminator_loss(frame_d(real, training=True), frame_d(fake, training=True), "hinge")
            d_frame = tf.reduce_mean(d_frame)
            d_video = tf.reduce_mean(losses.discriminator_loss(video_d(real_clips), video_d(fake_clips), "non_saturating"))
            g_frame = losses.generator_loss(frame_d(fake, training=True), "non_saturating")
            g_video = losses.generator_loss(video_d(fake_clips), "hinge")
            per_disc = tf.reduce_mean(g_frame, axis=0)
            weights = losses.build_combiner("hypervolume").weights(per_disc)
            g_total = tf.reduce_sum(tf.reduce_mean(g_frame, 0) * weights) + tf.reduce_mean(g_video)
        return (
            tape.gradient(d_frame, frame_d.trainable_variables),
            tape.gradient(d_video, video_d.trainable_variables),
            tape.gradient(g_total, generator.trainable_variables),
        )

    for grads, model in zip(step(), (frame_d, video_d, generator)):
        assert len(grads) == len(model.trainable_variables) > 0
        for g, v in zip(grads, model.trainable_variables):
            assert g is not None, v.path
            assert np.all(np.isfinite(g.numpy())), v.path
        assert sum(float(tf.reduce_sum(tf.abs(g))) for g in grads) > 0.0


def test_minibatch_stddev_reads_the_spread_of_each_group():
    """Per group of G contiguous samples and per discriminator: the std over the group, averaged over that
    discriminator's channels and positions, appended after its own channels; a constant group gives ~0."""
    from tfvidgan.models.ensemble_discriminator import MinibatchStdDev

    rng = np.random.default_rng(0)
    k, f, g = 2, 3, 2
    x = rng.normal(size=(4, 5, 5, k * f)).astype(np.float32)
    x[2:] = x[2]  # the second group: two identical samples
    out = MinibatchStdDev(k, g)(tf.constant(x)).numpy()
    assert out.shape == (4, 5, 5, k * (f + 1))
    per = out.reshape(4, 5, 5, k, f + 1)
    np.testing.assert_array_equal(per[..., :f].reshape(x.shape), x)  # the features pass through unchanged
    for d in range(k):
        expected = np.sqrt(x[:2].reshape(2, 5, 5, k, f)[..., d, :].var(axis=0) + 1e-8).mean()
        np.testing.assert_allclose(per[:2, :, :, d, f], expected, rtol=1e-5)
        np.testing.assert_allclose(per[2:, :, :, d, f], 1e-4, rtol=1e-3)  # sqrt(0 + 1e-8)
    with pytest.raises(tf.errors.InvalidArgumentError, match="multiple of the group size"):
        MinibatchStdDev(k, 2)(tf.constant(x[:3]))
