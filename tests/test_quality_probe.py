"""In-training quality probes (`--eval_every`): fixed rulers that separate good from bad samples."""
import numpy as np
import pytest

from tfvidgan.data.bouncing_balls import BouncingBallsConfig, generate_dataset
from tfvidgan.errors import ConfigError
from tfvidgan.metrics.quality_probe import FramesQualityProbe, ProbeConfig, VideoQualityProbe
from tfvidgan.metrics.real_data import real_clips, real_frames


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe")
    path = str(root / "bb")
    generate_dataset(BouncingBallsConfig(num_scenes=60, num_frames=10, size=32, shards=2, seed=5), path,
                     workers=1, show_progress=False)
    return path, ProbeConfig(data=path, num_samples=10, encoder_samples=30, encoder_steps=5,
                             cache_dir=str(root / "cache"))


def test_frames_probe_prefers_real_frames_to_noise_and_is_a_fixed_ruler(data):
    path, config = data
    probe = FramesQualityProbe(config, latent_dim=4)
    other_real, _ = real_frames(path, 10, seed=9, first_scene=50)   # scenes no probe set uses
    noise = np.random.default_rng(0).uniform(-1, 1, size=other_real.shape).astype(np.float32)
    good = probe(lambda z, training=False: other_real[: len(z)])
    bad = probe(lambda z, training=False: noise[: len(z)])
    assert good["fraction_expected_count"] > 0.5 > bad["fraction_expected_count"]
    # (At N = 10 the Fréchet distance itself is too noisy to rank; the reports' tests cover its ordering.)
    assert np.isfinite(good["frechet_distance"]) and good["frechet_floor"] > 0
    assert good["frechet_ratio"] == pytest.approx(good["frechet_distance"] / good["frechet_floor"])
    assert probe(lambda z, training=False: other_real[: len(z)]) == good        # same ruler every call


def test_video_probe_fails_a_frozen_video(data):
    path, config = data
    probe = VideoQualityProbe(config, num_frames=8)
    moving, _ = real_clips(path, 10, 8, seed=9, first_scene=50)
    good = probe(lambda n, t, seed: moving[:n])
    frozen = probe(lambda n, t, seed: np.repeat(moving[:n, :1], t, axis=1))
    assert frozen["consecutive_binarized_mse"] == 0.0 < good["consecutive_binarized_mse"]
    assert frozen["fraction_steps_in_speed_band"] == 0.0 < good["fraction_steps_in_speed_band"]
    assert good["real/mean_speed"] > 0


def test_too_small_dataset_names_the_flags(data):
    path, _ = data
    probe = FramesQualityProbe(ProbeConfig(data=path, num_samples=40, encoder_samples=30), latent_dim=4)
    with pytest.raises(ConfigError, match="--eval_samples"):
        probe(lambda z, training=False: z)


def test_video_probe_reports_the_targets_and_the_drift_of_long_videos(data):
    path, config = data
    long_config = ProbeConfig(**{**config.__dict__, "long_frames": 8})
    probe = VideoQualityProbe(long_config, num_frames=4)
    moving, _ = real_clips(path, 10, 8, seed=9, first_scene=50)

    def steady(n, t, seed):
        return moving[:n, :t]

    def stalls(n, t, seed):    # moves like real data for 4 frames, then freezes
        return np.concatenate([moving[:n, :4], np.repeat(moving[:n, 3:4], t - 4, axis=1)], axis=1)[:, :t]

    good, bad = probe(steady), probe(stalls)
    assert set(good) == set(probe.names()) == set(bad)
    assert 0 < good["motion_energy_cv"] < 1 and 0 < good["real/motion_energy_cv"] < 1  # real clips move steadily
    # The first frames of real clips are real frames: 3 balls as often as frames in general (10 clips: to 0.1).
    assert abs(good["fraction_expected_count_first_frame"] - good["fraction_expected_count_frames"]) <= 0.1 + 1e-9
    assert good["long/mean_speed"] < 0.5 and bad["long/mean_speed"] == pytest.approx(1.0)
    assert bad["long_video_drift"] >= bad["long/mean_speed"] > good["long_video_drift"] >= good["long/mean_speed"]
    assert bad["targets/long_video_drift"] == pytest.approx(bad["long_video_drift"] / 0.2)
    for out in (good, bad):
        ratios = [v for k, v in out.items() if k.startswith("targets/")]
        assert len(ratios) == 5 and out["targets_met"] == sum(r <= 1 for r in ratios)
        assert out["worst_target_ratio"] == max(ratios)
    # Both short samples are the same real clips: only the drift tells them apart.
    short = [k for k in good if "long" not in k and k != "worst_target_ratio"]
    assert {k: good[k] for k in short} == {k: bad[k] for k in short}
    assert bad["worst_target_ratio"] == bad["targets/long_video_drift"] > good["worst_target_ratio"]
    assert good["targets/speed_relative_error"] == pytest.approx(
        abs(good["mean_speed"] / good["real/mean_speed"] - 1) / 0.15)
    without = VideoQualityProbe(config, num_frames=4).names()
    assert "long_video_drift" not in without and "targets/long_video_drift" not in without


def test_frames_probe_reports_the_frames_targets(data):
    path, config = data
    probe = FramesQualityProbe(config, latent_dim=4)
    other_real, _ = real_frames(path, 10, seed=9, first_scene=50)
    out = probe(lambda z, training=False: other_real[: len(z)])
    assert set(out) == set(probe.names())
    assert out["targets/frechet_ratio_to_floor"] == pytest.approx(out["frechet_ratio"] / 1.5)
    assert out["targets/area_spread_ratio"] == pytest.approx(out["area_spread_ratio"] / 1.5)
    assert 0 <= out["targets_met"] <= 3


def test_long_video_settings_are_checked(data):
    _, config = data
    with pytest.raises(ConfigError, match="--eval_long_frames=6 must be 0 .off. or >= 2"):
        VideoQualityProbe(ProbeConfig(**{**config.__dict__, "long_frames": 6}), num_frames=4)
    with pytest.raises(ConfigError, match="video-trainer setting"):
        FramesQualityProbe(ProbeConfig(**{**config.__dict__, "long_frames": 8}), latent_dim=4)
    with pytest.raises(ConfigError, match="--eval_long_frames must be >= 0"):
        ProbeConfig(**{**config.__dict__, "long_frames": -1})
