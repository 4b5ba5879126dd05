"""Tests for tfvidgan.metrics.trajectories and tfvidgan.metrics.plotting."""

import io

import numpy as np
import pytest
from PIL import Image

from tfvidgan.errors import ConfigError, DatasetError
from tfvidgan.metrics import plotting, trajectories


def test_linear_interpolation_is_evenly_spaced_between_the_ends():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3, 7, 5))
    lin = trajectories.linear_interpolation(z)
    assert lin.shape == z.shape
    np.testing.assert_allclose(lin[:, 0], z[:, 0])
    np.testing.assert_allclose(lin[:, -1], z[:, -1])
    steps = np.diff(lin, axis=1)
    np.testing.assert_allclose(steps, np.repeat((z[:, -1:] - z[:, :1]) / 6, 6, axis=1), atol=1e-12)
    np.testing.assert_allclose(trajectories.linear_interpolation(z[:, :1]), z[:, :1])


def test_straight_even_path_has_unit_ratios_and_zero_variation():
    rng = np.random.default_rng(1)
    line = trajectories.linear_interpolation(rng.normal(size=(4, 16, 8)))
    stats = trajectories.trajectory_statistics(line)
    assert stats["path_length_ratio"] == pytest.approx(1.0, abs=1e-9)
    assert stats["max_to_median_step"] == pytest.approx(1.0, abs=1e-9)
    assert stats["step_cv"] == pytest.approx(0.0, abs=1e-9)
    assert stats["mean_turn_degrees"] == pytest.approx(0.0, abs=1e-3)
    ends = np.linalg.norm(line[:, -1] - line[:, 0], axis=-1)
    assert stats["mean_step"] == pytest.approx(np.mean(ends / 15))


def test_a_single_jump_is_detected():
    # Along one axis: steps 1, 1, 1, 10, 1, 1 (still a straight line, but uneven).
    steps = np.array([1.0, 1.0, 1.0, 10.0, 1.0, 1.0])
    path = np.zeros((1, 7, 3))
    path[0, 1:, 0] = np.cumsum(steps)
    stats = trajectories.trajectory_statistics(path)
    assert stats["path_length_ratio"] == pytest.approx(1.0)
    assert stats["max_to_median_step"] == pytest.approx(10.0)
    assert stats["step_cv"] == pytest.approx(steps.std() / steps.mean())
    assert stats["max_step"] == pytest.approx(10.0)


def test_zigzag_path_has_known_detour_ratio_and_turns():
    # Steps alternate (1, 1) and (1, -1): length sqrt(2) each, net progress 1 per step, 90 degree turns.
    path = np.zeros((1, 5, 2))
    for t in range(1, 5):
        path[0, t] = path[0, t - 1] + [1.0, 1.0 if t % 2 else -1.0]
    stats = trajectories.trajectory_statistics(path)
    assert stats["path_length_ratio"] == pytest.approx(np.sqrt(2))
    assert stats["mean_turn_degrees"] == pytest.approx(90.0)
    assert stats["step_cv"] == pytest.approx(0.0, abs=1e-12)


def test_random_jumps_score_worse_than_smooth_paths():
    rng = np.random.default_rng(2)
    jumpy = rng.normal(size=(8, 16, 10))  # independent latents each step
    smooth = trajectories.linear_interpolation(jumpy)
    s_j, s_s = trajectories.trajectory_statistics(jumpy), trajectories.trajectory_statistics(smooth)
    assert s_j["path_length_ratio"] > 5 * s_s["path_length_ratio"]
    assert s_j["step_cv"] > 0.05 and s_s["step_cv"] < 1e-9
    assert s_j["mean_turn_degrees"] > 60


def test_isomap_unrolls_a_curve_in_order():
    # Points along an arc in 10-D: the 1st Isomap coordinate must be monotone along the arc.
    rng = np.random.default_rng(3)
    basis = np.linalg.qr(rng.normal(size=(10, 3)))[0]  # orthonormal [10, 3]
    s = np.linspace(0, 1.5 * np.pi, 40)
    curve = np.stack([np.cos(s), np.sin(s), 0.3 * s], axis=-1) @ basis.T  # helix segment [40, 10]
    traj = curve.reshape(2, 20, 10)
    emb = trajectories.isomap_embedding(traj, n_neighbors=5)
    assert emb.shape == (2, 20, 2)
    first = emb.reshape(40, 2)[:, 0]
    d = np.diff(first)
    assert np.all(d > 0) or np.all(d < 0)


def test_joint_embedding_shares_coordinates():
    rng = np.random.default_rng(4)
    z = rng.normal(size=(3, 6, 4))
    a, b = trajectories.joint_isomap_embedding([z, z.copy()], n_neighbors=4)
    assert a.shape == b.shape == (3, 6, 2)
    np.testing.assert_allclose(a, b, atol=1e-8)
    lin = trajectories.linear_interpolation(z)
    g, l_ = trajectories.joint_isomap_embedding([z, lin], n_neighbors=6)
    # The ends are the same latents, so they land on the same embedded points.
    np.testing.assert_allclose(g[:, [0, -1]], l_[:, [0, -1]], atol=1e-6)


def test_trajectory_bad_inputs():
    with pytest.raises(DatasetError, match="trajectories"):
        trajectories.trajectory_statistics(np.zeros((2, 1, 3)))
    with pytest.raises(DatasetError, match="trajectories"):
        trajectories.isomap_embedding(np.zeros((2, 3)))
    with pytest.raises(ConfigError, match="n_neighbors"):
        trajectories.isomap_embedding(np.zeros((1, 4, 3)), n_neighbors=4)
    with pytest.raises(DatasetError, match="latent size"):
        trajectories.joint_isomap_embedding([np.zeros((1, 4, 3)), np.zeros((1, 4, 2))])


# ---------------------------------------------------------------------------------- plotting


def test_image_grid_png_round_trips_pixels(tmp_path):
    rng = np.random.default_rng(5)
    images = rng.uniform(-1, 1, size=(5, 4, 3, 1)).astype(np.float32)
    path = tmp_path / "sub" / "grid.png"
    plotting.save_image_grid_png(images, str(path), rows=2, pad=1)
    got = np.asarray(Image.open(path))
    assert got.shape == (2 * 4 + 1, 3 * 3 + 2)  # 2 rows x 3 cols, 1-px gaps, mode L
    expected = np.rint((images + 1) * 127.5).astype(np.uint8)[..., 0]
    np.testing.assert_array_equal(got[0:4, 0:3], expected[0])
    np.testing.assert_array_equal(got[0:4, 4:7], expected[1])
    np.testing.assert_array_equal(got[5:9, 4:7], expected[4])
    assert np.all(got[5:9, 8:11] == 255)  # empty 6th cell
    assert np.all(got[4, :] == 255)  # gap row


def test_strip_png_is_one_row_and_rgb_is_kept(tmp_path):
    clip = np.zeros((6, 5, 7, 3), np.float32)
    clip[:, :, :, 0] = 1.0  # pure red
    path = tmp_path / "strip.png"
    plotting.save_strip_png(clip, str(path), pad=2, scale=2)
    img = Image.open(path)
    assert img.mode == "RGB" and img.size == ((6 * 7 + 5 * 2) * 2, 5 * 2)
    assert img.getpixel((0, 0)) == (255, 127, 127) or img.getpixel((0, 0)) == (255, 128, 128)


def test_gif_loops_with_all_frames_and_exact_gray_levels(tmp_path):
    t = 5
    clip = -np.ones((t, 6, 6, 1), np.float32)
    for k in range(t):
        clip[k, k, :, 0] = 1.0  # a bright row moving down
        clip[k, 0, 0, 0] = -1.0 + 0.4 * k
    data = plotting.gif_bytes(clip, fps=10)
    img = Image.open(io.BytesIO(data))
    assert img.format == "GIF" and img.n_frames == t
    assert img.info["loop"] == 0 and img.info["duration"] == 100
    expected = np.rint((clip + 1) * 127.5).astype(np.uint8)[..., 0]
    for k in range(t):
        img.seek(k)
        np.testing.assert_array_equal(np.asarray(img.convert("L")), expected[k])
    path = tmp_path / "clip.gif"
    plotting.save_gif(clip, str(path), fps=10)
    assert path.read_bytes() == data


def test_rgb_gif_keeps_colours():
    clip = -np.ones((3, 4, 4, 3), np.float32)
    for k in range(3):
        clip[k, k, :, k] = 1.0  # a red, then green, then blue row
    img = Image.open(io.BytesIO(plotting.gif_bytes(clip, fps=4, scale=3)))
    assert img.n_frames == 3 and img.size == (12, 12)
    assert img.info["duration"] == 250
    for k in range(3):
        img.seek(k)
        rgb = np.asarray(img.convert("RGB"))
        expected = [0, 0, 0]
        expected[k] = 255
        assert tuple(rgb[3 * k + 1, 5]) == tuple(expected)
        assert tuple(rgb[(3 * k + 4) % 12, 5]) == (0, 0, 0)


def test_trajectory_plot_draws_both_panels(tmp_path):
    rng = np.random.default_rng(6)
    emb = rng.normal(size=(3, 8, 2))
    base = np.stack([np.linspace(e[0], e[-1], 8) for e in emb])
    path = tmp_path / "traj.png"
    plotting.plot_trajectories_png(emb, str(path), baseline=base, title="test", panel_size=200)
    img = np.asarray(Image.open(path).convert("RGB"))
    assert img.shape[1] == 2 * 200 + 3 * 40 and img.shape[0] == 200 + 24 + 2 * 40
    half = img.shape[1] // 2
    for b in range(3):
        colour = np.array(plotting._PALETTE[b])
        hits = np.all(img == colour, axis=-1)
        assert hits[:, :half].sum() > 20 and hits[:, half:].sum() > 20  # drawn in both panels
    assert np.all(img[0:5] == 255)  # white margin above the title
    single = tmp_path / "one.png"
    plotting.plot_trajectories_png(emb, str(single), panel_size=200)
    assert np.asarray(Image.open(single)).shape[1] == 200 + 2 * 40


def test_plotting_bad_inputs(tmp_path):
    with pytest.raises(DatasetError, match="images"):
        plotting.save_image_grid_png(np.zeros((2, 4, 4, 2)), str(tmp_path / "x.png"))
    with pytest.raises(DatasetError, match="clip"):
        plotting.gif_bytes(np.zeros((4, 4, 1)))
    with pytest.raises(ConfigError, match="fps"):
        plotting.gif_bytes(np.zeros((2, 4, 4, 1)), fps=0)
    with pytest.raises(DatasetError, match="embedded"):
        plotting.plot_trajectories_png(np.zeros((2, 4, 3)), str(tmp_path / "t.png"))
