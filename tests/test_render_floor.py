"""benchmarks.render_floor: inverting clips into a generator's latents, on a renderer whose answer is known."""
import numpy as np
import pytest
import tensorflow as tf

from benchmarks.render_floor import invert_clips, latent_path_stats, nearest_latents, render_floor, standardized
from tfvidgan.errors import ConfigError

SIZE, RADIUS = 16, 2.5


def disc_renderer(z):
    """`[n, Z]` -> `[n, 16, 16, 1]` in [-1, 1]: one soft disc centred at 8 + 5.5 tanh(z[:, :2]) (row, col);
    the other latent entries do nothing. Smooth, so its inversion is well posed."""
    z = tf.convert_to_tensor(z, tf.float32)
    centre = SIZE / 2 + (SIZE / 2 - 2.5) * tf.tanh(z[:, :2])
    grid = tf.stack(tf.meshgrid(tf.range(SIZE, dtype=tf.float32), tf.range(SIZE, dtype=tf.float32), indexing="ij"), -1)
    distance2 = tf.reduce_sum(tf.square(grid[None] - centre[:, None, None]), -1)
    return (2.0 * tf.sigmoid(2.0 * (RADIUS ** 2 - distance2) / RADIUS) - 1.0)[..., None]


def straight_latents(n, t, latent_dim=3, seed=0):
    """`[n, t, Z]` latents whose discs fly straight at constant speed (positions linear in time)."""
    rng = np.random.default_rng(seed)
    start, end = rng.uniform(-0.6, 0.6, (n, 1, 2)), rng.uniform(-0.6, 0.6, (n, 1, 2))
    fraction = np.linspace(0.0, 1.0, t)[None, :, None]
    position = np.arctanh(start + (end - start) * fraction)  # tanh(z) linear in t
    rest = rng.normal(size=(n, 1, latent_dim - 2)).repeat(t, axis=1)
    return np.concatenate([position, rest], -1).astype(np.float32)


def _render(z):
    n, t = z.shape[:2]
    return disc_renderer(z.reshape(n * t, -1)).numpy().reshape(n, t, SIZE, SIZE, 1)


def test_latent_path_stats_of_a_straight_and_a_zigzag_path():
    straight = np.arange(5, dtype=np.float32)[None, :, None] * np.array([3.0, 4.0])  # steps of length 5
    stats = latent_path_stats(straight)
    assert stats["latent_step"] == pytest.approx(5.0) and stats["latent_second_difference"] == pytest.approx(0.0)
    zigzag = np.array([[[0.0], [1.0], [0.0], [1.0]]])  # steps 1, second differences 2
    assert latent_path_stats(zigzag) == pytest.approx({"latent_step": 1.0, "latent_second_difference": 2.0,
                                                       "latent_turn_per_step": 2.0})


def test_standardized_has_zero_mean_and_unit_variance():
    z = standardized(tf.constant([[1.0, 2.0, 6.0], [-4.0, 0.0, 1.0]])).numpy()
    np.testing.assert_allclose(z.mean(-1), 0.0, atol=1e-6)
    np.testing.assert_allclose(z.var(-1), 1.0, atol=1e-4)


def test_nearest_latents_pick_the_candidate_a_frame_was_rendered_from():
    draws = tf.random.stateless_normal([64, 3], seed=[5, 7]).numpy()
    frames = disc_renderer(draws[[3, 40, 17]]).numpy()
    picked = nearest_latents(disc_renderer, frames, 3, candidates=64, seed=5, standardize=False, batch=16)
    np.testing.assert_array_equal(picked, draws[[3, 40, 17]])
    with pytest.raises(ConfigError, match="--candidates"):
        nearest_latents(disc_renderer, frames, 3, candidates=0, seed=5, standardize=False)


def test_inversion_recovers_clips_the_renderer_can_draw_and_the_penalty_smooths_the_path():
    truth = straight_latents(2, 6)
    clips = _render(truth)
    start = nearest_latents(disc_renderer, clips.reshape(12, SIZE, SIZE, 1), 3, candidates=256, seed=1,
                            standardize=False).reshape(2, 6, 3)
    start_mse = float(np.mean((_render(start) - clips) ** 2))
    free = invert_clips(disc_renderer, clips, start, steps=150, learning_rate=0.05, smoothness=0.0, standardize=False)
    assert free.losses[-1] < free.losses[0]
    assert free.pixel_mse < 0.05 * start_mse
    np.testing.assert_allclose(free.clips, _render(free.latents), atol=1e-5)
    # Positions come back: the disc's centre (from the first two latents) within a tenth of a pixel.
    centre = (SIZE / 2 - 2.5) * np.tanh(free.latents[..., :2])
    np.testing.assert_allclose(centre, (SIZE / 2 - 2.5) * np.tanh(truth[..., :2]), atol=0.1)

    def roughness(z):
        return float(np.mean(np.sum(np.square(z[:, 2:] - 2 * z[:, 1:-1] + z[:, :-2]), -1)))

    smooth = invert_clips(disc_renderer, clips, start, steps=150, learning_rate=0.05, smoothness=1.0,
                          standardize=False)
    assert roughness(smooth.latents) < 0.5 * roughness(free.latents)
    with pytest.raises(ConfigError, match="--smoothness"):
        invert_clips(disc_renderer, clips, start, steps=1, learning_rate=0.05, smoothness=-1.0, standardize=False)


def test_the_report_rows_put_the_inverted_clips_beside_real_and_collapsed():
    """Rows and their columns, on 3-pixel "balls" the tracker sees (one disc per clip, straight flight)."""
    real = _render(straight_latents(4, 8, seed=3))
    generated = straight_latents(4, 8, seed=9)
    rows = render_floor(disc_renderer, 3, real, 1, smoothness_values=[0.0], steps=60, learning_rate=0.05,
                        candidates=128, standardize=False, seed=0, generated_latents=generated)
    assert list(rows) == ["real", "nearest", "collapsed", "inverted_0", "generated"]
    assert rows["generated"]["latent_step"] == pytest.approx(latent_path_stats(generated)["latent_step"])
    assert "latent_step" in rows["inverted_0"] and "latent_step" not in rows["real"]
    assert rows["real"]["pixel_mse"] == 0.0 and "pixel_mse" not in rows["collapsed"]
    assert rows["inverted_0"]["pixel_mse"] < rows["nearest"]["pixel_mse"]
    objective = rows["inverted_0"]["objective_every_50_steps"]
    assert len(objective) == 3 and objective[-1] < objective[0]  # steps 0, 50 and the last (59)
    for name in ("nearest", "collapsed", "inverted_0"):
        assert set(rows[name]["vs_real_distribution"]) == set(rows[name]["vs_real"])
    assert rows["real"]["fraction_expected_count_frames"] == 1.0
