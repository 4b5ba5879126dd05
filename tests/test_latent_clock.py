"""`benchmarks/latent_clock.py`: a phase-locked clock in the mean latent step is found (its size and period),
unsynchronised clocks and even steps are not, the penalty is what `--stationarity_weight` pays for, and the
command line prints it for a video export."""
import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_frames_export, tiny_video_config, train_tiny_video

from benchmarks.latent_clock import clock_statistics
from tfvidgan.errors import ConfigError
from tfvidgan.training.video_task import latent_step_stationarity


def _walks(step_sizes, dim=5, seed=0):
    """`[N, T + 1, dim]` random walks whose step t of walk n has length `step_sizes[n, t]`."""
    rng = np.random.default_rng(seed)
    d = rng.normal(size=(*step_sizes.shape, dim))
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    steps = d * step_sizes[..., None]
    return np.concatenate([np.zeros((step_sizes.shape[0], 1, dim)), np.cumsum(steps, axis=1)], axis=1)


def test_a_phase_locked_clock_is_found_and_an_unsynchronised_one_or_even_steps_are_not():
    t = np.arange(239)
    rng = np.random.default_rng(1)
    locked = _walks(np.tile(1.0 + 0.15 * np.sin(2 * np.pi * t / 60), (200, 1)))
    own_phase = _walks(1.0 + 0.15 * np.sin(2 * np.pi * (t[None] + rng.integers(60, size=(200, 1))) / 60))
    even = _walks(np.full((200, 239), 0.7))
    s_locked, s_own, s_even = (clock_statistics(z, window=30, skip=5) for z in (locked, own_phase, even))
    assert s_locked["clock_cv"] == pytest.approx(0.15 / np.sqrt(2), rel=0.05)
    assert s_locked["period_frames"] == pytest.approx(60, rel=0.05)
    assert s_locked["unsynchronised"]["clock_cv"] < 0.3 * s_locked["clock_cv"]       # the baseline fails it
    assert s_own["clock_cv"] < 0.3 * s_locked["clock_cv"]                              # each clip its own time
    assert s_own["sample_cv"] == pytest.approx(s_locked["sample_cv"], rel=0.05)        # same per-clip swing
    assert s_even["clock_cv"] < 1e-9 and s_even["sample_cv"] < 1e-9
    assert len(s_locked["window_means"]) == 238 // 30 and len(s_locked["profile"]) == 239
    # The training term's penalty on the same trajectories (float32 there).
    out = latent_step_stationarity(tf.constant(locked[:8], tf.float32), 8, weight=1.0)
    assert float(out.penalty) == pytest.approx(clock_statistics(locked[:8])["stationarity_penalty"], rel=1e-4)


def test_trajectories_converging_on_one_point_show_a_falling_spread_and_a_rising_mean():
    rng = np.random.default_rng(2)
    start = rng.normal(size=(300, 1, 4))
    target = np.array([3.0, 0.0, 0.0, 0.0])
    weight = np.linspace(0.0, 0.8, 60)[None, :, None]
    converging = (1 - weight) * start + weight * target                      # [300, 60, 4]
    wandering = start + 0.0 * weight
    out, steady = (clock_statistics(z, window=20, skip=2)["ensemble"] for z in (converging, wandering))
    assert out["frames"] == [0, 19, 39, 59]
    assert out["spread"][-1] == pytest.approx(0.2 * out["spread"][0], rel=1e-6)
    assert out["mean_norm"][-1] > 2.2 and out["mean_norm"][0] < 0.3
    assert steady["spread"] == pytest.approx([steady["spread"][0]] * 4)


def test_bad_shapes_and_settings_are_named():
    with pytest.raises(ConfigError, match="--num_frames"):
        clock_statistics(np.zeros((2, 6, 3)), skip=5)
    with pytest.raises(ConfigError, match="--window"):
        clock_statistics(np.zeros((2, 20, 3)), window=1)


def test_the_command_line_prints_json_for_a_video_export(tmp_path):
    train_tiny_video(tiny_video_config(tiny_frames_export(tmp_path)), tmp_path / "run", 1)
    out = subprocess.run([sys.executable, "-m", "benchmarks.latent_clock", f"--export_dir={tmp_path / 'run' / 'export'}",
                          "--num_samples=3", "--num_frames=20", "--window=5", f"--output={tmp_path / 'c.json'}"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads((tmp_path / "c.json").read_text())
    assert report["num_samples"] == 3 and report["num_frames"] == 20 and len(report["window_means"]) == 3
    assert report["clock_cv"] >= 0 and report["unsynchronised"]["clock_cv"] >= 0
