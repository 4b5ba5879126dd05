"""The frames evaluation report (`python -m tfvidgan.evaluate frames`)."""
import json
import os
import subprocess
import sys

import keras
import pytest

from tfvidgan.data.bouncing_balls import BouncingBallsConfig, generate_dataset
from tfvidgan.export import export_frames_generator
from tfvidgan.metrics.balls import frame_statistics
from tfvidgan.metrics.frames_report import FramesEvalConfig, evaluate_frames
from tfvidgan.metrics.real_data import real_frames
from tfvidgan.models.frames_generator import build_frames_generator
from tfvidgan.training.frames_task import FramesGanConfig, describe


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("frames_report")
    data = str(root / "bb")
    generate_dataset(BouncingBallsConfig(num_scenes=50, num_frames=6, size=32, shards=2, seed=4), data,
                     workers=1, show_progress=False)
    keras.utils.set_random_seed(1)
    generator = build_frames_generator(32, 1, 6, base_filters=8)
    export_frames_generator(generator, describe(FramesGanConfig(latent_dim=6)), str(root / "export" / "1"))
    config = FramesEvalConfig(export_dir=str(root / "export"), data=data, num_samples=12, encoder_samples=20,
                              encoder_steps=10, encoder_cache=str(root / "cache"), seed=2)
    return root, config, evaluate_frames(config)


def test_rows_and_real_row_matches_direct_statistics(setup):
    root, config, report = setup
    assert {"generated", "untrained_generator", "real", "settings"} <= set(report)
    held_out, _ = real_frames(config.data, 12, config.seed + 2, first_scene=20 + 12)
    expected = frame_statistics(held_out, expected_balls=3)
    for key in ("fraction_expected_count", "count_mean", "blob_area_mean", "blob_area_std"):
        assert report["real"][key] == pytest.approx(expected[key])
    assert report["settings"]["expected_balls"] == 3
    # Real frames have (up to touching balls) 3 blobs; an untrained generator's noise-like frames don't.
    assert report["real"]["fraction_expected_count"] >= 0.5
    assert report["real"]["frechet_distance"] < report["untrained_generator"]["frechet_distance"]
    assert os.path.exists(os.path.join(config.encoder_cache, report["settings"]["encoder"] + ".keras"))


def test_same_config_same_numbers_and_cli_writes_json(setup):
    root, config, report = setup
    again = evaluate_frames(config)
    for row in ("generated", "untrained_generator", "real"):
        assert json.dumps(again[row], sort_keys=True) == json.dumps(report[row], sort_keys=True)  # NaN-safe
    out = root / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "tfvidgan.evaluate", "frames", f"--export_dir={config.export_dir}",
         f"--data={config.data}", "--num_samples=12", "--encoder_samples=20", "--encoder_steps=10",
         f"--encoder_cache={config.encoder_cache}", "--seed=2", f"--output={out}"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-2000:]
    written = json.loads(out.read_text())
    assert written["real"]["frechet_distance"] == pytest.approx(report["real"]["frechet_distance"], rel=1e-5)
    assert written["generated"]["fraction_expected_count"] == report["generated"]["fraction_expected_count"]


def test_missing_flags_are_named():
    result = subprocess.run([sys.executable, "-m", "tfvidgan.evaluate", "frames", "--data=x"],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode != 0 and "--export_dir is required" in result.stderr


def test_collapsed_row_wins_counts_but_fails_frechet_and_vs_real_is_the_difference(setup):
    _, _, report = setup
    collapsed, real = report["collapsed"], report["real"]
    assert collapsed["fraction_expected_count"] in (0.0, 1.0)   # one frame repeated: all or nothing
    assert collapsed["blob_area_std"] <= real["blob_area_std"]  # one frame's balls: no size spread to speak of
    assert collapsed["frechet_distance"] > 2 * real["frechet_distance"]
    for row in ("generated", "untrained_generator", "collapsed"):
        for key, value in report[row]["vs_real"].items():
            assert value == pytest.approx(abs(report[row][key] - real[key]), nan_ok=True)
    assert report["generator_weights"] == "raw" and "generated_raw_weights" not in report


def test_ema_export_is_reported_beside_its_raw_weights(setup, tmp_path):
    import dataclasses
    root, config, _ = setup
    keras.utils.set_random_seed(5)
    ema = build_frames_generator(32, 1, 6, base_filters=8)
    raw = build_frames_generator(32, 1, 6, base_filters=8)
    export_frames_generator(ema, describe(FramesGanConfig(latent_dim=6)), str(tmp_path / "export" / "1"),
                            raw_generator=raw)
    report = evaluate_frames(dataclasses.replace(config, export_dir=str(tmp_path / "export")))
    assert report["generator_weights"] == "ema"
    assert report["generated"] != report["generated_raw_weights"]


def test_encoder_cache_name_changes_with_every_scene_setting(setup):
    import dataclasses

    from tfvidgan.data.metadata import read_metadata
    from tfvidgan.metrics.frames_report import frame_encoder_name
    _, config, _ = setup
    metadata = read_metadata(config.data)
    base = frame_encoder_name(metadata, 20, 10)
    for change in ({"radius": metadata.radius + 0.5}, {"num_frames": metadata.num_frames + 1},
                   {"channels": 3}, {"generator": {"config": {**metadata.generator["config"], "max_speed": 9.0}}}):
        assert frame_encoder_name(dataclasses.replace(metadata, **change), 20, 10) != base, change
    scene_independent = {"generator": {"config": {**metadata.generator["config"], "shards": 99}}}
    assert frame_encoder_name(dataclasses.replace(metadata, **scene_independent), 20, 10) == base


def test_a_draw_of_the_seed_that_picked_a_best_export_is_flagged(setup, tmp_path):
    """A best export (`--best_metric`) carries the probe's sample; evaluating it on that seed re-uses the
    probe's latents (a prefix of the draw's), so the report says so; another seed is clean."""
    import dataclasses
    import shutil

    import numpy as np
    import tensorflow as tf

    from tfvidgan.export import write_selection
    root, config, plain = setup
    assert "selection_bias" not in plain and plain["settings"]["selection"] is None
    shutil.copytree(root / "export", tmp_path / "export")
    selection = {"metric": "worst_target_ratio", "mode": "min", "value": 0.9, "step": 4,
                 "probe": {"seed": config.seed, "num_samples": 8}}
    write_selection(str(tmp_path / "export" / "1"), selection)
    same = evaluate_frames(dataclasses.replace(config, export_dir=str(tmp_path / "export")))
    assert f"seed {config.seed}" in same["selection_bias"] and "--seed" in same["selection_bias"]
    assert same["settings"]["selection"] == selection
    assert json.dumps(same["generated"]) == json.dumps(plain["generated"])     # flagged, not changed
    other = evaluate_frames(dataclasses.replace(config, export_dir=str(tmp_path / "export"), seed=config.seed + 1))
    assert "selection_bias" not in other and other["settings"]["selection"] == selection
    # Why the same seed is biased: the probe's 8 latents are the first 8 of the report's 12.
    probe = tf.random.stateless_normal([8, 6], seed=[config.seed, 77]).numpy()
    draw = tf.random.stateless_normal([12, 6], seed=[config.seed, 77]).numpy()
    np.testing.assert_array_equal(probe, draw[:8])
