"""`benchmarks/wobble_source.py`: the latent variants it renders and the rows it reports."""
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import tiny_frames_export, tiny_video_config, train_tiny_video

from benchmarks.wobble_source import great_circles, latent_variants, phase_speed_modulation, stride_scaling, wobble_rows
from tfvidgan.data.bouncing_balls import BouncingBallsConfig, generate_dataset, render
from tfvidgan.errors import ConfigError


def test_variants_keep_the_shape_and_the_straight_row_is_an_even_line():
    latents = np.random.default_rng(0).normal(size=(3, 7, 5)).astype(np.float32)
    rows = latent_variants(latents, [1.0, 2.5])
    assert list(rows) == ["generated", "smoothed_1", "smoothed_2.5", "straight"]
    assert all(z.shape == latents.shape for z in rows.values())
    np.testing.assert_array_equal(rows["generated"], latents)
    straight = rows["straight"]
    np.testing.assert_allclose(straight[:, [0, -1]], latents[:, [0, -1]], atol=1e-6)
    steps = np.diff(straight, axis=1)
    np.testing.assert_allclose(steps, np.broadcast_to(steps[:, :1], steps.shape), atol=1e-5)
    # Smoothing lowers the paths' second differences, more for a wider kernel.
    accel = {k: np.abs(np.diff(z, 2, axis=1)).mean() for k, z in rows.items()}
    assert accel["smoothed_2.5"] < accel["smoothed_1"] < accel["generated"]
    with pytest.raises(ConfigError, match="sigmas"):
        latent_variants(latents, [0.0])
    with pytest.raises(ConfigError, match="T>=3"):
        latent_variants(latents[:, :2], [1.0])


def test_rows_measure_steady_and_wobbling_balls():
    t = np.arange(12, dtype=np.float64)
    steady = np.stack([np.stack([8 + t, 10 + 0 * t], -1), np.stack([20 + 0 * t, 8 + 0.8 * t], -1)], 1)  # [T, 2, 2]
    wobble = steady + np.where(t % 3 == 1, 0.6, 0.0)[:, None, None] * np.array([0.0, 1.0])
    clips = {name: render(p[None], np.full((1, 2), 3.0), size=32).astype(np.float32) / 127.5 - 1.0
             for name, p in dict(steady=steady, wobble=wobble).items()}
    rows = wobble_rows(clips, 2)
    assert rows["steady"]["free_flight_second_difference"] < 0.1 < rows["wobble"]["free_flight_second_difference"]
    assert rows["wobble"]["wobble_per_speed"] > 3 * rows["steady"]["wobble_per_speed"]
    assert rows["steady"]["mean_speed"] == pytest.approx(0.9, abs=0.15)
    # What the centroid-acceleration input shows: about 0 for steady balls, the wobble's 0.6-1.2 otherwise.
    assert rows["steady"]["centroid_acceleration_median"] < 0.08 < 0.5 < rows["wobble"]["centroid_acceleration_p75"]
    assert 0 < rows["steady"]["centroid_acceleration_shown"] < 1


def test_the_command_line_prints_the_rows(tmp_path):
    train_tiny_video(tiny_video_config(tiny_frames_export(tmp_path)), tmp_path / "run", 1)
    data = str(tmp_path / "bb")
    generate_dataset(BouncingBallsConfig(num_scenes=4, num_frames=8, size=32, shards=1, seed=1), data, workers=1,
                     show_progress=False)
    out = subprocess.run([sys.executable, "-m", "benchmarks.wobble_source", f"--export_dir={tmp_path / 'run' / 'export'}",
                          "--num_samples=4", "--num_frames=6", "--sigmas=1", "--expected_balls=3", f"--data={data}",
                          f"--output={tmp_path / 'w.json'}"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads((tmp_path / "w.json").read_text())
    assert set(report["rows"]) == {"generated", "smoothed_1", "straight", "real"}
    assert report["rows"]["real"]["centroid_acceleration_median"] < 0.1  # real balls fly straight
    assert report["num_samples"] == 4 and "wobble_per_speed" in report["rows"]["generated"]


def test_great_circles_stay_on_the_prior_sphere_at_constant_speed():
    paths = great_circles(6, 9, 12, 0.8, seed=3)
    assert paths.shape == (6, 9, 12) and paths.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(paths, axis=-1), np.sqrt(12), rtol=1e-5)
    chords = np.linalg.norm(np.diff(paths, axis=1), axis=-1)
    arc = 2 * np.sqrt(12) * np.arcsin(chords / (2 * np.sqrt(12)))     # arc length of each step
    np.testing.assert_allclose(arc, 0.8, rtol=1e-4)
    # Constant speed along a circle: every second difference has the same (centripetal) length.
    accel = np.linalg.norm(np.diff(paths, 2, axis=1), axis=-1)
    np.testing.assert_allclose(accel, np.broadcast_to(accel[:, :1], accel.shape), rtol=1e-3)
    np.testing.assert_array_equal(paths, great_circles(6, 9, 12, 0.8, seed=3))
    with pytest.raises(ConfigError, match="latent_steps"):
        great_circles(2, 5, 12, 0.0, seed=0)


def test_the_command_line_renders_great_circles_of_a_frames_export(tmp_path):
    export = tiny_frames_export(tmp_path)
    out = subprocess.run([sys.executable, "-m", "benchmarks.wobble_source", f"--frames_generator={export}",
                          "--num_samples=3", "--num_frames=5", "--latent_steps=0.5,2", "--expected_balls=3",
                          "--fine_step=0.05", "--strides=1,2", f"--output={tmp_path / 'g.json'}"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads((tmp_path / "g.json").read_text())
    assert set(report["rows"]) == {"great_circle_0.5", "great_circle_2"}
    assert report["stride_scaling"]["num_frames"] == 9 and set(report["stride_scaling"]["strides"]) == {"1", "2"}
    bad = subprocess.run([sys.executable, "-m", "benchmarks.wobble_source", f"--frames_generator={export}",
                          "--fine_step=0.05", "--strides=1,x"], capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "--strides" in bad.stderr
    both = subprocess.run([sys.executable, "-m", "benchmarks.wobble_source", f"--frames_generator={export}",
                           f"--export_dir={export}"], capture_output=True, text=True, timeout=300)
    assert both.returncode != 0 and "exactly one of --export_dir" in both.stderr


def test_phase_speed_modulation_is_small_for_even_motion_and_large_for_motion_that_sticks_to_pixels():
    t = np.arange(24, dtype=np.float64)
    rng = np.random.default_rng(2)
    starts, speeds = rng.uniform(6, 10, size=(40, 1, 2)), rng.uniform(0.3, 0.6, size=(40, 1, 2))
    even = starts + speeds * t[None, :, None]                              # [40, T, 2], one ball per clip
    sticky = even - 0.35 * np.sin(2 * np.pi * even) / (2 * np.pi)          # slow near cell borders

    def clips(paths):
        return render(paths[:, :, None], np.full((len(paths), 1), 3.0), size=32).astype(np.float32) / 127.5 - 1

    smooth, stuck = phase_speed_modulation(clips(even)), phase_speed_modulation(clips(sticky))
    print(f"\nphase speed modulation: even {smooth:.3f}, sticky {stuck:.3f}")
    assert smooth < 0.15 < 0.4 < stuck
    assert np.isnan(phase_speed_modulation(clips(even[:1, :3])))           # too few displacements


def test_stride_scaling_tells_smooth_curves_from_per_frame_jitter():
    t = np.arange(65, dtype=np.float64)
    rng = np.random.default_rng(4)
    angle = 0.02 * t                                                       # 0.16 px/frame on a radius-8 circle
    circle = np.stack([16 + 8 * np.cos(angle), 16 + 8 * np.sin(angle)], -1)[None].repeat(6, 0)
    circle = circle + rng.uniform(-2, 2, size=(6, 1, 2))
    line = np.stack([10 + 0.1 * t, 12 + 0.05 * t], -1)[None].repeat(6, 0)
    jitter = line + rng.normal(scale=0.3, size=line.shape)

    def clips(paths):
        return render(paths[:, :, None], np.full((len(paths), 1), 3.0), size=32).astype(np.float32) / 127.5 - 1

    smooth = stride_scaling(clips(circle), [4, 8, 16], expected_balls=1)
    noisy = stride_scaling(clips(jitter), [4, 8, 16], expected_balls=1)
    straight = stride_scaling(clips(line), [4, 8, 16], expected_balls=1)
    # A circle of radius R = 8 walked at ω = 0.02 rad/frame: D(k) = 4R sin²(kω/2) = 32 sin²(0.01 k) ≈ 0.0032 k².
    np.testing.assert_allclose(smooth["16"]["median"], 32 * np.sin(0.16) ** 2, rtol=0.1)
    assert 1.7 < smooth["16"]["exponent"] < 2.3
    # Independent 0.3-px jitter per frame: D does not grow with the stride.
    assert abs(noisy["16"]["exponent"]) < 0.4 and noisy["16"]["median"] > 0.4
    assert straight["16"]["mean"] < 0.05 and straight["16"]["triples"] > 0
    np.testing.assert_allclose(straight["16"]["mean_step"], 16 * np.hypot(0.1, 0.05), rtol=0.05)
    assert "exponent" not in smooth["4"]
    with pytest.raises(ConfigError, match="strides"):
        stride_scaling(clips(line), [8, 4], expected_balls=1)
    with pytest.raises(ConfigError, match="T >= 2 \\* 40"):
        stride_scaling(clips(line), [40], expected_balls=1)
