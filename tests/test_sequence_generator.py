"""Tests for tfvidgan.models.sequence_generator."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvidgan.errors import ConfigError
from tfvidgan.models import sequence_generator as sg

Z, NOISE, STEP = 12, 10, 3


def small(**kwargs):
    args = dict(latent_dim=Z, noise_dim=NOISE, step_noise_dim=STEP, hidden_units=16)
    args.update(kwargs)
    return sg.build_sequence_generator(**args)


def test_any_number_of_steps_with_the_same_weights():
    model = small()
    assert sg.sequence_generator_dims(model) == (NOISE, STEP, Z)
    for steps in (1, 4, 11):
        out = model(sg.sample_sequence_noise(3, steps, 0, NOISE, STEP))
        assert out.shape == (3, steps, Z) and out.dtype == tf.float32
    traced = tf.function(lambda x: model(x, training=True))
    for steps in (5, 9):
        assert traced(sg.sample_sequence_noise(2, steps, 1, NOISE, STEP)).shape == (2, steps, Z)


@pytest.mark.parametrize("cell,bidirectional", [("lstm", True), ("gru", False)])
def test_each_sample_depends_only_on_its_own_noise(cell, bidirectional):
    model = small(cell=cell, bidirectional=bidirectional, num_layers=2)
    x = sg.sample_sequence_noise(4, 6, 2, NOISE, STEP)
    base = model(x).numpy()
    changed = {k: v.numpy().copy() for k, v in x.items()}
    changed["noise"][1] += 3.0
    changed["step_noise"][1] = -changed["step_noise"][1]
    out = model(changed).numpy()
    others = [0, 2, 3]
    np.testing.assert_allclose(out[others], base[others], atol=1e-6)
    assert np.abs(out[1] - base[1]).max() > 1e-2
    # Permuting the batch permutes the outputs.
    perm = np.array([2, 0, 3, 1])
    permuted = model({k: tf.gather(v, perm) for k, v in x.items()}).numpy()
    np.testing.assert_allclose(permuted, base[perm], atol=1e-6)


def test_bidirectional_sees_the_future_and_unidirectional_is_causal():
    x = sg.sample_sequence_noise(2, 6, 3, NOISE, STEP)
    late = {k: v.numpy().copy() for k, v in x.items()}
    late["step_noise"][:, -1] += 5.0  # change only the last step's noise
    causal = small(bidirectional=False)
    np.testing.assert_allclose(causal(late).numpy()[:, :-1], causal(x).numpy()[:, :-1], atol=1e-6)
    both = small(bidirectional=True)
    assert np.abs(both(late).numpy()[:, 0] - both(x).numpy()[:, 0]).max() > 1e-4


def test_standardized_latents_look_like_prior_draws():
    keras.utils.set_random_seed(0)
    model = small(latent_dim=32, latent_constraint="standardize")
    out = model(sg.sample_sequence_noise(256, 8, 4, NOISE, STEP)).numpy().reshape(-1, 32)
    # Exact by construction: every emitted vector has mean 0, std 1 over Z and norm sqrt(Z).
    np.testing.assert_allclose(out.mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=1), 1.0, atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), np.sqrt(32), rtol=1e-3)
    # Per latent dimension over 2048 draws, an untrained generator is already roughly prior-like.
    # Loose bounds (they hold for any of 15 initialisations tried): the constraint fixes per-vector
    # statistics only; per-dimension statistics are pinned down by training.
    per_dim_mean, per_dim_std = out.mean(axis=0), out.std(axis=0)
    assert np.abs(per_dim_mean).mean() < 0.2 and np.abs(per_dim_mean).max() < 0.6
    assert 0.85 < np.median(per_dim_std) < 1.1
    assert np.mean(out**2) == pytest.approx(1.0, abs=1e-3)
    # The unconstrained head is nowhere near unit scale, so the constraint is what does this.
    raw = small(latent_dim=32, latent_constraint="none")(sg.sample_sequence_noise(64, 8, 4, NOISE, STEP)).numpy()
    assert raw.std() < 0.5
    # Standardising prior draws barely moves them: the constraint keeps the prior's typical set.
    prior = np.random.default_rng(0).normal(size=(2000, 256)).astype(np.float32)
    moved = sg.StandardizeLatent()(prior).numpy()
    assert np.sqrt(np.mean((moved - prior) ** 2)) < 0.1


def test_tanh_constraint_bounds_latents():
    model = small(latent_constraint="tanh")
    x = sg.sample_sequence_noise(8, 5, 5, NOISE, STEP)
    x = {k: 50.0 * v for k, v in x.items()}  # large inputs to push toward saturation
    out = model(x).numpy()
    assert np.all(np.abs(out) <= 1.0)
    assert np.abs(out).max() > 0.1


def test_gradients_reach_every_weight():
    model = small(num_layers=2, cell="gru")
    x = sg.sample_sequence_noise(2, 4, 6, NOISE, STEP)
    probe = tf.random.stateless_normal([2, 4, Z], seed=[1, 2])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(x, training=True) * probe)
    grads = tape.gradient(loss, model.trainable_variables)
    assert len(grads) == len(model.trainable_variables) > 0
    assert all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)


def test_save_and_load_round_trip(tmp_path):
    model = small(cell="gru", latent_constraint="standardize")
    path = str(tmp_path / "seq.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = sg.sample_sequence_noise(2, 7, 7, NOISE, STEP)
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), atol=1e-6)


def test_sample_sequence_noise_is_stateless_and_seeded():
    a = sg.sample_sequence_noise(3, 5, 11, 4, 2)
    b = sg.sample_sequence_noise(3, 5, 11, 4, 2)
    c = sg.sample_sequence_noise(3, 5, 12, 4, 2)
    d = sg.sample_sequence_noise(3, 5, tf.constant([11, 0]), 4, 2)
    assert a["noise"].shape == (3, 4) and a["step_noise"].shape == (3, 5, 2)
    for k in a:
        np.testing.assert_array_equal(a[k].numpy(), b[k].numpy())
        np.testing.assert_array_equal(a[k].numpy(), d[k].numpy())
        assert not np.allclose(a[k].numpy(), c[k].numpy())
    big = sg.sample_sequence_noise(64, 50, np.int64(3), 8, 8)["step_noise"].numpy()
    assert abs(big.mean()) < 0.05 and abs(big.std() - 1.0) < 0.05


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"cell": "rnn"}, "cell"),
        ({"latent_constraint": "sphere"}, "latent_constraint"),
        ({"num_layers": 0}, "num_layers"),
        ({"step_noise_dim": -1}, "step_noise_dim"),
        ({"latent_dim": 1}, "latent_dim"),
    ],
)
def test_bad_options_raise_config_error_naming_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        small(**kwargs)


def test_no_step_noise_makes_the_trajectory_a_function_of_the_clip_noise():
    model = small(step_noise_dim=0, bidirectional=False)
    noise = sg.sample_sequence_noise(3, 7, 5, NOISE, 0)
    assert noise["step_noise"].shape == (3, 7, 0)
    latents = model(noise).numpy()
    assert latents.shape == (3, 7, Z) and np.all(np.isfinite(latents))
    again = model({"noise": noise["noise"], "step_noise": tf.zeros([3, 12, 0])}).numpy()
    np.testing.assert_allclose(again[:, :7], latents, atol=1e-5)     # causal and noise-free: a longer rollout
    assert not np.allclose(latents[:, 0], latents[:, -1], atol=1e-3)   # starts the same; it still moves
    other = model(sg.sample_sequence_noise(3, 7, 6, NOISE, 0)).numpy()
    assert not np.allclose(other, latents, atol=1e-3)


def test_bad_noise_arguments():
    with pytest.raises(ConfigError, match="steps"):
        sg.sample_sequence_noise(2, 0, 1, 4, 2)
    with pytest.raises(ConfigError, match="seed"):
        sg.sample_sequence_noise(2, 3, [1, 2, 3], 4, 2)


def test_residual_trajectory_steps_are_bounded_and_start_at_the_code_latent():
    import keras
    import numpy as np

    from tfvidgan.models.sequence_generator import ResidualTrajectory, build_sequence_generator
    keras.utils.set_random_seed(0)
    model = build_sequence_generator(8, noise_dim=4, step_noise_dim=2, hidden_units=16, num_layers=1,
                                     latent_constraint="none", trajectory="residual", max_step=0.3)
    inputs = {"noise": np.random.default_rng(0).normal(size=(5, 4)).astype("float32") * 10,
              "step_noise": np.random.default_rng(1).normal(size=(5, 40, 2)).astype("float32") * 10}
    latents = model(inputs).numpy()
    steps = np.linalg.norm(np.diff(latents, axis=1), axis=-1)
    assert latents.shape == (5, 40, 8)
    assert steps.max() < 0.3 and steps.min() > 0             # bounded, yet moving
    start = model.get_layer("to_start_latent")(model.get_layer("code_dense1")(
        model.get_layer("code_dense0")(inputs["noise"]))).numpy()
    np.testing.assert_allclose(latents[:, 0], start, atol=1e-5)   # z_0 is the code's latent
    # The layer itself: z_t = z0 + sum of the clipped steps 1..t (step 0 is ignored).
    z0, u = np.zeros((1, 3), "float32"), np.array([[[9, 9, 9], [3, 0, 0], [0, 0.01, 0]]], "float32")
    out = ResidualTrajectory(max_step=2.0)([z0, u]).numpy()[0]
    np.testing.assert_allclose(out[0], 0)
    np.testing.assert_allclose(out[1], [2 * np.tanh(3.0), 0, 0], rtol=1e-5)
    np.testing.assert_allclose(out[2] - out[1], [0, 2 * np.tanh(0.01), 0], rtol=1e-4)


def test_causal_residual_model_rolls_out_any_length_and_prefixes_agree():
    import keras
    import numpy as np

    from tfvidgan.models.sequence_generator import build_sequence_generator
    keras.utils.set_random_seed(0)
    model = build_sequence_generator(8, noise_dim=4, step_noise_dim=2, hidden_units=16, num_layers=1,
                                     bidirectional=False, trajectory="residual", max_step=0.5)
    rng = np.random.default_rng(2)
    noise, step_noise = rng.normal(size=(2, 4)).astype("float32"), rng.normal(size=(2, 120, 2)).astype("float32")
    long = model({"noise": noise, "step_noise": step_noise}).numpy()
    short = model({"noise": noise, "step_noise": step_noise[:, :30]}).numpy()
    assert long.shape == (2, 120, 8)
    np.testing.assert_allclose(long[:, :30], short, atol=1e-5)   # causal: the future never changes the past


def test_unknown_trajectory_is_named():
    import pytest

    from tfvidgan.errors import ConfigError
    from tfvidgan.models.sequence_generator import build_sequence_generator
    with pytest.raises(ConfigError, match="--trajectory"):
        build_sequence_generator(8, trajectory="spline")


def _zero_clip_code(model):
    """Zeroes the code MLP, so every clip feeds the same input sequence to the recurrent layers."""
    for name in ("code_dense0", "code_dense1"):
        layer = model.get_layer(name)
        layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])


@pytest.mark.parametrize("cell,bidirectional", [("lstm", True), ("gru", False)])
def test_noise_initial_state_separates_clips_whose_inputs_are_equal(cell, bidirectional):
    # With the clip code zeroed and no step noise, the recurrent layers see the same inputs for every clip.
    # From zero states every clip then follows one trajectory (one phase of any oscillation); from the
    # noise's initial states they differ, and the difference is the start state alone.
    keras.utils.set_random_seed(0)
    x = sg.sample_sequence_noise(5, 40, 4, NOISE, 0)
    outputs = {}
    for start in ("zeros", "noise"):
        model = small(step_noise_dim=0, cell=cell, bidirectional=bidirectional, num_layers=2, initial_state=start)
        _zero_clip_code(model)
        outputs[start] = model(x).numpy()
    assert np.abs(outputs["zeros"] - outputs["zeros"][:1]).max() < 1e-6
    assert np.abs(outputs["noise"] - outputs["noise"][:1]).max(axis=(1, 2))[1:].min() > 1e-2


def test_noise_initial_state_is_frozen_standard_and_saved(tmp_path):
    keras.utils.set_random_seed(0)
    model = small(initial_state="noise", num_layers=2)
    frozen = [w for w in model.non_trainable_weights if "projection" in w.path]
    assert len(frozen) == 2 and not any("projection" in w.path for w in model.trainable_weights)
    # x = noise · W / sqrt(D) is N(0, 1) per unit: h_0 = tanh(x) in (-1, 1), c_0 = x with unit variance.
    layer = sg.NoiseInitialState(400, (True, False), seed=3)
    h0, c0 = (s.numpy() for s in layer(tf.random.stateless_normal([2000, 64], seed=[1, 2])))
    assert np.abs(h0).max() < 1 and np.allclose(np.arctanh(np.clip(h0, -0.999999, 0.999999)).std(), 1, atol=0.05)
    assert abs(c0.std() - 1) < 0.05 and abs(c0.mean()) < 0.05
    # Trainable weights all get gradients; the projection is saved with the model and reloaded exactly.
    x = sg.sample_sequence_noise(3, 6, 5, NOISE, STEP)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(model(x, training=True)[:, :, 0]))
    assert all(g is not None for g in tape.gradient(loss, model.trainable_weights))
    path = str(tmp_path / "seq.keras")
    model.save(path)
    np.testing.assert_allclose(keras.saving.load_model(path)(x).numpy(), model(x).numpy(), atol=1e-6)


def test_noise_initial_state_keeps_a_causal_model_causal():
    keras.utils.set_random_seed(0)
    model = small(bidirectional=False, initial_state="noise", step_noise_dim=0)
    x = sg.sample_sequence_noise(2, 90, 6, NOISE, 0)
    short = {"noise": x["noise"], "step_noise": x["step_noise"][:, :30]}
    np.testing.assert_allclose(model(x).numpy()[:, :30], model(short).numpy(), atol=1e-5)


def test_unknown_initial_state_is_named():
    with pytest.raises(ConfigError, match="--initial_state"):
        small(initial_state="learned")


def test_noise_initial_state_survives_the_video_export(tmp_path):
    # The export traces the model into SavedModel signatures: the frozen projection must travel with it.
    from tfvidgan.export import export_video_generator
    from tfvidgan.models.frames_generator import build_frames_generator
    keras.utils.set_random_seed(0)
    model = small(initial_state="noise", bidirectional=False, step_noise_dim=0)
    export_video_generator(model, build_frames_generator(32, 1, Z, base_filters=8),
                           {"latent_dim": Z, "noise_dim": NOISE, "step_noise_dim": 0}, str(tmp_path / "1"))
    x = sg.sample_sequence_noise(3, 9, 8, NOISE, 0)
    served = tf.saved_model.load(str(tmp_path / "1")).signatures["generate"](**x)["latents"]
    np.testing.assert_allclose(served.numpy(), model(x).numpy(), atol=1e-5)


@pytest.mark.parametrize("initial_state,bidirectional", [("noise", False), ("zeros", True)])
def test_burn_in_emits_the_steps_after_w_dropped_ones(initial_state, bidirectional):
    # The burn-in model on T steps computes exactly the last T outputs of the same weights without burn-in run
    # on W + T steps whose first W step noises are zero: frame 0 comes from the dynamics' W-th step.
    keras.utils.set_random_seed(0)
    w = 5
    model = small(initial_state=initial_state, bidirectional=bidirectional, burn_in_steps=w, num_layers=2)
    plain = small(initial_state=initial_state, bidirectional=bidirectional, num_layers=2)
    assert len(model.weights) == len(plain.weights)
    plain.set_weights(model.get_weights())
    x = sg.sample_sequence_noise(3, 8, 9, NOISE, STEP)
    out = model(x).numpy()
    assert out.shape == (3, 8, Z)
    padded = {"noise": x["noise"], "step_noise": tf.pad(x["step_noise"], [[0, 0], [w, 0], [0, 0]])}
    np.testing.assert_allclose(out, plain(padded).numpy()[:, w:], atol=1e-5)
    assert np.abs(out - plain(x).numpy()).max() > 1e-3  # and not the plain model's first T outputs


def test_burn_in_keeps_a_causal_model_causal_saved_and_exported(tmp_path):
    from tfvidgan.export import export_video_generator
    from tfvidgan.models.frames_generator import build_frames_generator
    keras.utils.set_random_seed(0)
    model = small(bidirectional=False, initial_state="noise", step_noise_dim=0, burn_in_steps=3)
    x = sg.sample_sequence_noise(2, 40, 6, NOISE, 0)
    short = {"noise": x["noise"], "step_noise": x["step_noise"][:, :1]}
    np.testing.assert_allclose(model(x).numpy()[:, :1], model(short).numpy(), atol=1e-5)
    traced = tf.function(lambda v: model(v, training=True))
    assert traced(sg.sample_sequence_noise(2, 7, 1, NOISE, 0)).shape == (2, 7, Z)
    path = str(tmp_path / "seq.keras")
    model.save(path)
    np.testing.assert_allclose(keras.saving.load_model(path)(x).numpy(), model(x).numpy(), atol=1e-6)
    export_video_generator(model, build_frames_generator(32, 1, Z, base_filters=8),
                           {"latent_dim": Z, "noise_dim": NOISE, "step_noise_dim": 0}, str(tmp_path / "1"))
    served = tf.saved_model.load(str(tmp_path / "1")).signatures["generate"](**x)["latents"]
    np.testing.assert_allclose(served.numpy(), model(x).numpy(), atol=1e-5)


@pytest.mark.parametrize("value", [-1, 1.5, True])
def test_bad_burn_in_is_named(value):
    with pytest.raises(ConfigError, match="--burn_in_steps"):
        small(burn_in_steps=value)


def test_a_longer_burn_in_can_share_the_trained_layers():
    # Sampling with more burn-in than was trained: the second model reuses the first one's variables (no copy
    # to go stale) and emits what a model built with that burn-in would from the same weights.
    keras.utils.set_random_seed(0)
    trained = small(initial_state="noise", burn_in_steps=2, num_layers=2)
    sampler = small(initial_state="noise", burn_in_steps=5, num_layers=2, share_layers_of=trained, name="s")
    assert [id(v) for v in sampler.weights] == [id(v) for v in trained.weights]
    built = small(initial_state="noise", burn_in_steps=5, num_layers=2)
    built.set_weights(trained.get_weights())
    x = sg.sample_sequence_noise(3, 6, 4, NOISE, STEP)
    np.testing.assert_allclose(sampler(x).numpy(), built(x).numpy(), atol=1e-5)
    trained.get_layer("to_latent").bias.assign(tf.ones([Z]))  # a later update shows at once
    built.set_weights(trained.get_weights())
    np.testing.assert_allclose(sampler(x).numpy(), built(x).numpy(), atol=1e-5)
    with pytest.raises(ConfigError, match="share_layers_of='sequence_generator' has no layer 'bi_gru0'"):
        small(cell="gru", share_layers_of=trained)
    with pytest.raises(ConfigError, match="other sequence-generator options"):
        small(initial_state="noise", num_layers=2, trajectory="residual", share_layers_of=trained)
