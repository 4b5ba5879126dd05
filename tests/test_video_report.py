"""The video evaluation report (`tfvidgan.metrics.video_report`, `python -m tfvidgan.evaluate video`).

One tiny real dataset, one tiny frames export and one tiny video export (2 training steps each) are
built once per module; the report is computed once and its rows are checked against the same numbers
computed independently (real clips re-read, latents re-sampled from the export, frames rendered by the
Keras frames generator).
"""
import dataclasses
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import mirrored_strategy
from PIL import Image
from scipy.special import gammaln

from tfvidgan.data.bouncing_balls import BouncingBallsConfig, generate_dataset
from tfvidgan.errors import ConfigError, ExportKindError
from tfvidgan.export import (
    export_frames_generator,
    latest_version_dir,
    load_frames_generator,
    load_signature,
    write_selection,
)
from tfvidgan.metrics.balls import clip_physics, consecutive_binarized_mse
from tfvidgan.metrics.frechet import FrechetEncoder, frechet_distance
from tfvidgan.metrics.real_data import real_clips
from tfvidgan.metrics.trajectories import linear_interpolation, trajectory_statistics
from tfvidgan.metrics.video_report import (
    PHYSICS_COLUMNS,
    ROWS,
    VideoEvalConfig,
    _rejection,
    evaluate_video,
    load_renderer,
)
from tfvidgan.models.frames_generator import build_frames_generator
from tfvidgan.training import loop
from tfvidgan.training.frames_task import FramesGanConfig, FramesGanTask, describe
from tfvidgan.training.video_task import VideoGanConfig, VideoGanTask

SIZE, SCENE_FRAMES, LATENT = 32, 12, 6
N, T, ENCODER_SAMPLES = 8, 12, 40
STRATEGY = mirrored_strategy(("/cpu:0",))
FRAMES = FramesGanConfig(image_size=SIZE, channels=1, latent_dim=LATENT, generator_filters=8, num_discriminators=2,
                         discriminator_filters=4, num_sample_images=4)


def _train_frames(model_dir, data_dir):
    frames = np.stack([s["frames"][0] for s in _scenes(data_dir, 8)])
    loop.run_training(FramesGanTask(FRAMES), lambda c, s: tf.data.Dataset.from_tensor_slices(frames).repeat().batch(
        4, drop_remainder=True), STRATEGY, loop.LoopConfig(model_dir=str(model_dir), train_steps=2, log_every=2,
                                                              sample_every=100, checkpoint_every=100))
    return str(model_dir / "export")


def _scenes(data_dir, count):
    from tfvidgan.data.readers import scenes_dataset
    return list(scenes_dataset(str(data_dir)).take(count).as_numpy_iterator())


def _train_video(model_dir, frames_export, data_dir):
    # Trained on 4-frame clips (cheap); sampled at any length through the export's signatures.
    clips = np.stack([s["frames"][:4] for s in _scenes(data_dir, 4)])
    config = VideoGanConfig(frames_generator=frames_export, clip_length=4, sample_length=4, noise_dim=4,
                            step_noise_dim=2, hidden_units=8, num_layers=1, num_discriminators=2,
                            discriminator_filters=2, num_sample_videos=1)
    loop.run_training(VideoGanTask(config), lambda c, s: tf.data.Dataset.from_tensor_slices(clips).repeat().batch(
        2, drop_remainder=True), STRATEGY, loop.LoopConfig(model_dir=str(model_dir), train_steps=2, log_every=2,
                                                              sample_every=100, checkpoint_every=100))
    return str(model_dir / "export")


def _untrained_frames_export(directory, latent_dim, seed, size=SIZE):
    """A frames export with fresh (seeded) weights: another FG to swap in."""
    import keras
    keras.utils.set_random_seed(seed)
    generator = build_frames_generator(size, 1, latent_dim, base_filters=8)
    export_frames_generator(generator, describe(dataclasses.replace(FRAMES, latent_dim=latent_dim, image_size=size)),
                            str(directory))
    return str(directory)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("video_report")
    data = str(root / "bb")
    generate_dataset(BouncingBallsConfig(num_scenes=60, num_frames=SCENE_FRAMES, size=SIZE, shards=2, seed=3),
                     data, workers=1, show_progress=False)
    frames_export = _train_frames(root / "frames", data)
    video_export = _train_video(root / "video", frames_export, data)
    config = VideoEvalConfig(export_dir=video_export, data=data, num_samples=N, num_frames=T,
                             plot=str(root / "isomap.png"), encoder_samples=ENCODER_SAMPLES, encoder_steps=20,
                             encoder_cache=str(root / "cache"), seed=5)
    report = evaluate_video(config)
    return {"root": root, "data": data, "frames_export": frames_export, "video_export": video_export,
            "config": config, "report": report}


def test_rejection_row_keeps_clips_the_frame_discriminators_prefer(setup):
    """The default report adds "generated_rejection" (after "generated"): N clips kept from about N /
    acceptance candidates by the frames export's own discriminators, each the render of its kept latents.
    (That the kept clips are the ones the discriminators prefer is tested in test_rejection.py with a
    discriminator that separates clips: this fixture's two-step discriminators score every clip within
    1e-8 of each other, so here the kept and plain means differ by float noise.)"""
    from tfvidgan.video_sampling import clip_rejection_sampler, load_renderer

    report, c = setup["report"], setup["config"]
    assert list(report)[:3] == ["generated", "generated_rejection", "real"]
    assert report["generated_rejection"]["num_clips"] == N and "vs_real" in report["generated_rejection"]
    info = report["rejection"]
    assert info["target_acceptance"] == c.rejection_acceptance and info["candidates"] >= N
    sampler = clip_rejection_sampler(c.export_dir, 4, 0.25, seed=1)
    kept = sampler.sample(32, seed=1)
    render, _ = load_renderer(c.export_dir)
    assert kept.samples.shape == (32, 4, SIZE, SIZE, 1) and kept.candidates >= 32
    np.testing.assert_allclose(kept.samples, render(kept.latents), atol=1e-5)


def test_rejection_row_is_missing_with_the_reason_when_off_or_without_discriminators(setup, tmp_path):
    import shutil

    from tfvidgan.export import FRAME_DISCRIMINATORS_FILE
    from tfvidgan.video_sampling import clip_rejection_sampler

    c = setup["config"]
    off = _rejection(dataclasses.replace(c, rejection_acceptance=0.0))
    assert off == {"unavailable": "off (--rejection_acceptance=0)"}
    bare = tmp_path / "fg_without_ds"
    shutil.copytree(os.path.join(setup["frames_export"], sorted(os.listdir(setup["frames_export"]))[-1]), bare)
    os.remove(bare / FRAME_DISCRIMINATORS_FILE)
    video = tmp_path / "video_export"
    version = sorted(os.listdir(c.export_dir))[-1]
    shutil.copytree(os.path.join(c.export_dir, version), video)
    description_file = video / "assets.extra" / "tfvidgan.json"
    description = json.loads(description_file.read_text())
    description["frames_generator"] = str(bare)
    description_file.write_text(json.dumps(description))
    with pytest.raises(ExportKindError, match=r"--export_dir=.*clip rejection sampling needs the discriminators.*"
                                              r"fg_without_ds"):
        clip_rejection_sampler(str(video), 4, 0.25)


def _generated_latents(setup):
    c = setup["config"]
    out = load_signature(c.export_dir, "sample_latents")(num_samples=tf.constant(c.num_samples),
                                                        num_frames=tf.constant(c.num_frames),
                                                        seed=tf.constant(c.seed))
    return out["latents"].numpy().astype(np.float64)


def _rows_only(report):
    """The measured rows, NaN mapped to None (as the CLI writes them)."""
    def safe(v):
        if isinstance(v, float) and math.isnan(v):
            return None
        if isinstance(v, dict):
            return {k: safe(x) for k, x in v.items()}
        return v
    return {row: safe(report[row]) for row in ROWS}


def test_plot_is_a_png_of_two_panels_with_coloured_trajectories(setup):
    path = setup["config"].plot
    assert setup["report"]["isomap"]["plot"] == path
    with Image.open(path) as img:
        assert img.format == "PNG"
        width, height = img.size
        pixels = np.asarray(img.convert("RGB"))
    assert 800 <= width <= 1200 and 400 <= height <= 700 and width > height  # two square panels side by side
    # Polylines in saturated colours (one per trajectory) cover a visible part of the picture, and both
    # panels (left: generated, right: interpolation) have some.
    coloured = (pixels.max(axis=-1).astype(int) - pixels.min(axis=-1)) > 60
    assert coloured[:, : width // 2].sum() > 500 and coloured[:, width // 2:].sum() > 500
    assert setup["report"]["isomap"]["num_trajectories"] == N  # N < ISOMAP_TRAJECTORIES: all of them
    assert setup["report"]["isomap"]["num_points"] == 2 * N * T


def test_trajectory_statistics_straight_lines_vs_generated(setup):
    report = setup["report"]
    latents = _generated_latents(setup)
    # The generated row is the export's own sample_latents(num_samples, num_frames, seed).
    assert report["generated"]["trajectory"] == trajectory_statistics(latents)
    line = report["latent_interpolation"]["trajectory"]
    assert line["path_length_ratio"] == pytest.approx(1.0, abs=1e-9)
    assert line["step_cv"] == pytest.approx(0.0, abs=1e-9)
    assert line["max_to_median_step"] == pytest.approx(1.0, abs=1e-9)
    assert line["mean_turn_degrees"] == pytest.approx(0.0, abs=1e-3)
    # Evenly spaced between the same end points.
    ends = np.linalg.norm(latents[:, -1] - latents[:, 0], axis=-1) / (T - 1)
    assert line["mean_step"] == pytest.approx(ends.mean(), rel=1e-9)
    assert report["generated"]["trajectory"]["path_length_ratio"] >= 1.0
    # Independent N(0, I) latents: steps are |x - y| with x - y ~ N(0, 2I), mean sqrt(2) * E[chi_Z].
    expected_step = math.sqrt(2) * math.sqrt(2) * math.exp(gammaln((LATENT + 1) / 2) - gammaln(LATENT / 2))
    independent = report["independent_latents"]["trajectory"]
    assert independent["mean_step"] == pytest.approx(expected_step, rel=0.15)  # 88 steps: ~4 standard errors
    assert independent["path_length_ratio"] > 2.0


def test_real_row_matches_metrics_on_the_held_out_real_clips(setup):
    report, config = setup["report"], setup["config"]
    # Documented layout: encoder scenes [0, 40), reference [40, 48) with seed + 1, real row [48, 56) seed + 2.
    held_out, _ = real_clips(config.data, N, T, config.seed + 2, first_scene=ENCODER_SAMPLES + N)
    reference, _ = real_clips(config.data, N, T, config.seed + 1, first_scene=ENCODER_SAMPLES)
    expected = clip_physics(held_out, 3)
    real = report["real"]
    for key, value in expected.items():
        assert real[key] == pytest.approx(value, nan_ok=True), key
    assert real["num_free_triples"] > 0 and 0 < real["fraction_expected_count_frames"] <= 1
    assert real["consecutive_binarized_mse"] == pytest.approx(consecutive_binarized_mse(held_out))
    assert 0 < real["consecutive_binarized_mse"] < 0.2  # moving balls: a few pixels flip per frame
    # The Fréchet distance is measured with the cached encoder, trained on the first scenes.
    encoder_file = os.path.join(config.encoder_cache, report["settings"]["encoder"] + ".keras")
    encoder = FrechetEncoder.load(encoder_file)
    assert real["frechet_distance"] == pytest.approx(
        frechet_distance(encoder.features(reference), encoder.features(held_out)), rel=1e-6)
    assert report["settings"]["scenes"] == {"encoder": [0, 40], "reference": [40, 48], "real_row": [48, 56]}
    assert report["settings"]["expected_balls"] == 3 and report["settings"]["seed"] == config.seed


def test_interpolation_row_is_the_straight_lines_rendered_by_the_frames_generator(setup):
    report = setup["report"]
    line = linear_interpolation(_generated_latents(setup))
    render, shape = load_renderer(setup["video_export"], latent_dim=LATENT)
    assert shape == (SIZE, SIZE, 1)
    clips = render(line)
    generator, _ = load_frames_generator(setup["frames_export"])
    direct = generator(line.reshape(-1, LATENT).astype(np.float32), training=False).numpy()
    np.testing.assert_allclose(clips.reshape(direct.shape), direct, atol=1e-5)
    row = report["latent_interpolation"]
    assert row["consecutive_binarized_mse"] == pytest.approx(consecutive_binarized_mse(clips))
    assert row["fraction_expected_count_frames"] == pytest.approx(
        clip_physics(clips, 3)["fraction_expected_count_frames"])
    for name in ROWS:
        assert math.isfinite(report[name]["frechet_distance"]) and report[name]["frechet_distance"] >= 0


def test_the_frame_renderer_draws_the_clip_renderers_frames_and_is_differentiable(setup):
    from tfvidgan.models.frames_generator import render_paths
    from tfvidgan.video_sampling import load_frame_renderer

    latents = _generated_latents(setup)[:2].astype(np.float32)  # [2, T, Z]
    for frames_export in ("", setup["frames_export"]):  # the export's own FG, then the FG swap
        render_frames, size, shape = load_frame_renderer(setup["video_export"], frames_export, latent_dim=LATENT)
        assert size == LATENT and shape == (SIZE, SIZE, 1)
        render, _ = load_renderer(setup["video_export"], frames_export, latent_dim=LATENT)
        clips = render(latents)
        np.testing.assert_allclose(render_paths(render_frames, latents).numpy(), clips, atol=1e-6)
        # Frame (b, t) is the render of latents[b, t] alone.
        np.testing.assert_allclose(render_frames(tf.constant(latents[1, 2:3])).numpy()[0], clips[1, 2], atol=1e-6)
        z = tf.Variable(latents.reshape(-1, LATENT))
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(render_frames(z) ** 2)
        gradient = tape.gradient(loss, z)
        assert gradient is not None and np.all(np.isfinite(gradient.numpy())) and np.abs(gradient.numpy()).max() > 0
    with pytest.raises(ExportKindError, match="--export_dir="):
        load_frame_renderer(setup["frames_export"])
    with pytest.raises(ExportKindError, match="--frames_generator="):
        load_frame_renderer(setup["video_export"], setup["video_export"])


def test_same_config_gives_identical_json_and_reuses_the_cached_encoder(setup):
    config = setup["config"]
    encoder_file = os.path.join(config.encoder_cache, setup["report"]["settings"]["encoder"] + ".keras")
    mtime = os.path.getmtime(encoder_file)
    again = evaluate_video(config)
    assert json.dumps(again, sort_keys=True) == json.dumps(setup["report"], sort_keys=True)
    assert os.path.getmtime(encoder_file) == mtime  # loaded, not retrained


def test_frames_generator_swap_changes_videos_not_latents(setup):
    config, report = setup["config"], setup["report"]
    other = _untrained_frames_export(setup["root"] / "other_fg", LATENT, seed=11)
    swapped = evaluate_video(dataclasses.replace(config, frames_generator=other, plot=""))
    for row in ("generated", "latent_interpolation", "independent_latents"):
        assert swapped[row]["trajectory"] == report[row]["trajectory"]  # same latents
    assert swapped["real"] == report["real"]
    assert swapped["generated"]["frechet_distance"] != report["generated"]["frechet_distance"]
    assert swapped["settings"]["frames_generator"] == other and swapped["isomap"]["plot"] is None
    # The rendered videos are the other FG's frames of the same latents.
    latents = _generated_latents(setup)
    own, _ = load_renderer(config.export_dir, latent_dim=LATENT)
    swap, _ = load_renderer(config.export_dir, other, latent_dim=LATENT)
    own_clips, swap_clips = own(latents), swap(latents)
    generator, _ = load_frames_generator(other)
    direct = generator(latents.reshape(-1, LATENT).astype(np.float32), training=False).numpy()
    np.testing.assert_allclose(swap_clips.reshape(direct.shape), direct, atol=1e-5)
    # Both FGs are barely trained, so their frames are faint (|x| ~ 1e-3): compare the difference with the
    # frames' own magnitude (float noise would be ~1e-7 of it), not with a fixed threshold.
    scale = max(np.abs(own_clips).max(), np.abs(swap_clips).max())
    assert np.abs(swap_clips - own_clips).max() > 0.1 * scale


def test_swapping_in_a_frames_generator_of_another_latent_size_is_a_config_error(setup):
    other = _untrained_frames_export(setup["root"] / "fg_z5", LATENT - 1, seed=12)
    with pytest.raises(ConfigError, match=r"--frames_generator=.*latents of size 5.*emits 6"):
        evaluate_video(dataclasses.replace(setup["config"], frames_generator=other))


def test_swapping_in_a_frames_generator_of_another_image_size_is_a_config_error(setup):
    other = _untrained_frames_export(setup["root"] / "fg_30", LATENT, seed=13, size=30)
    with pytest.raises(ConfigError, match=r"--frames_generator=.*\(30, 30, 1\).*--data="):
        evaluate_video(dataclasses.replace(setup["config"], frames_generator=other))


def test_a_video_export_as_frames_generator_is_a_config_error(setup):
    with pytest.raises(ConfigError, match=r"--frames_generator=.*not a frames[-_]generator"):
        evaluate_video(dataclasses.replace(setup["config"], frames_generator=setup["video_export"]))


@pytest.mark.parametrize("change, flag", [
    ({"num_frames": SCENE_FRAMES + 1}, "--num_frames"),
    ({"num_samples": 11}, "--num_samples"),  # 40 + 2 * 11 > 60 scenes
    ({"num_samples": 1}, "--num_samples"),
])
def test_bad_settings_name_the_flag(setup, change, flag):
    with pytest.raises(ConfigError, match=flag):
        evaluate_video(dataclasses.replace(setup["config"], **change))


def test_a_frames_export_as_export_dir_is_a_config_error(setup):
    with pytest.raises(ConfigError, match=r"--export_dir=.*not a video_generator"):
        evaluate_video(dataclasses.replace(setup["config"], export_dir=setup["frames_export"]))


def test_cli_writes_the_report(setup):
    """In a fresh process, reading the encoder the in-process report trained from the shared cache: same rows.

    (Retraining the encoder in another process moves Fréchet distances by a few per cent, CPU reductions are
    not bit-reproducible across processes; sharing the cache is also how users compare runs.)"""
    config, root = setup["config"], setup["root"]
    output = root / "cli" / "report.json"
    cmd = [sys.executable, "-m", "tfvidgan.evaluate", "video", f"--export_dir={config.export_dir}",
           f"--data={config.data}", f"--num_samples={N}", f"--num_frames={T}", f"--seed={config.seed}",
           f"--encoder_samples={ENCODER_SAMPLES}", "--encoder_steps=20", f"--encoder_cache={config.encoder_cache}",
           f"--plot={root / 'cli' / 'isomap.png'}", f"--output={output}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-3000:]
    written = json.loads(output.read_text())
    assert set(ROWS) <= set(written) and written["settings"]["num_samples"] == N
    assert os.path.isfile(root / "cli" / "isomap.png")
    # Equal up to float noise (same encoder weights; multi-threaded CPU reductions differ in the last bits).
    expected = _flatten(_rows_only(setup["report"]))
    got = _flatten(_rows_only(written))
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, float):
            rel = 1e-3 if key.endswith("frechet_distance") else 1e-4
            assert got[key] == pytest.approx(value, rel=rel, abs=1e-6), key
        elif isinstance(value, list) and all(isinstance(v, float) or v is None for v in value):
            def missing(v):  # NaN in memory is None in the JSON
                return v is None or math.isnan(v)
            assert [missing(v) for v in got[key]] == [missing(v) for v in value], key
            assert [v for v in got[key] if not missing(v)] == pytest.approx(
                [v for v in value if not missing(v)], rel=1e-4, abs=1e-6), key
        else:
            assert got[key] == value, key


def _flatten(tree, prefix=""):
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat = {}
    for key, value in tree.items():
        flat.update(_flatten(value, f"{prefix}/{key}"))
    return flat


def test_static_and_collapsed_rows_fail_what_they_should(setup):
    report = setup["report"]
    real, static, collapsed = report["real"], report["static"], report["collapsed"]
    # A frozen video wins the columns that reward not moving ...
    assert static["consecutive_binarized_mse"] == 0.0 < real["consecutive_binarized_mse"]
    assert static["mean_count_changes"] == 0.0
    # ... but not free flight: a ball that does not move is not flying (undefined, which fails) ...
    assert static["num_free_triples"] == 0 < real["num_free_triples"]
    assert math.isnan(static["free_flight_second_difference"])
    # ... and fails the speed columns: nothing moves, no step is in the real speed band.
    assert static["mean_speed"] == 0.0 or math.isnan(static["mean_speed"])
    assert static["fraction_steps_in_speed_band"] == 0.0 < real["fraction_steps_in_speed_band"]
    # Steadiness of motion is undefined for rows that never move (NaN fails), real clips move steadily.
    assert math.isnan(static["motion_energy_cv"]) and 0.0 < real["motion_energy_cv"] < 0.5
    assert static["vs_real"]["fraction_steps_in_speed_band"] == pytest.approx(real["fraction_steps_in_speed_band"])
    # One real clip for every sample has real physics but fails the Fréchet distance. (At N=8 the real row's
    # distance is mostly small-sample bias, so the margin is modest: 1.6x seen here.)
    assert collapsed["frechet_distance"] > 1.25 * real["frechet_distance"]
    for row in ROWS:
        if row != "real":
            assert set(report[row]["vs_real"]) == set(PHYSICS_COLUMNS)
            assert set(report[row]["vs_real_distribution"]) == set(PHYSICS_COLUMNS)
            assert "per_clip" not in report[row]
            # W1 >= the distance of the means, where the row's value is the mean of its per-clip values
            # (free flight and speed average over triples and steps: clips with more of them weigh more).
            for k in ("fraction_expected_count_frames", "mean_count_changes", "fraction_steps_in_speed_band",
                      "consecutive_binarized_mse"):
                assert report[row]["vs_real_distribution"][k] >= report[row]["vs_real"][k] - 1e-9, (row, k)
    assert "per_clip" not in real and "vs_real_distribution" not in real


def test_real_clips_beat_one_repeated_real_clip_on_distributions(setup):
    """`benchmarks.quality real`: a second, disjoint set of real clips (a perfect generator) against the
    static and collapsed rows of the first set. By distribution it is closer to real on the columns that
    vary between clips, though the repeated clip is a real one; the report rows carry both distances."""
    from benchmarks.quality import real_against_baselines
    out = real_against_baselines(setup["data"], 25, T)
    for column in ("mean_speed", "fraction_steps_in_speed_band", "consecutive_binarized_mse"):
        assert column not in out["by_distribution"]["collapsed"] and column not in out["by_distribution"]["static"]
    assert set(out["rows"]) == {"real_again", "static", "collapsed"}
    assert all(set(row) == {"vs_real", "vs_real_distribution"} for row in out["rows"].values())


def test_quality_benchmark_real_mode_prints_json_and_names_a_missing_flag(setup, tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    output = tmp_path / "real.json"
    cmd = [sys.executable, "-m", "benchmarks.quality", "real", f"--data={setup['data']}", "--num_samples=20",
           f"--num_frames={T}", f"--output={output}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=root, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    written = json.loads(output.read_text())
    assert json.loads(out.stdout) == written and written["samples"] == 20
    assert isinstance(written["distribution_check_passes"], bool) and set(written["by_mean"]) == {"static", "collapsed"}
    missing = subprocess.run(cmd[:4], capture_output=True, text=True, timeout=300, cwd=root, env=env)
    assert missing.returncode != 0 and "--data is required" in missing.stderr


def test_speed_band_metric_fails_frozen_and_stuttering_real_clips(setup):
    """On real bouncing-balls clips: a frozen copy and a stuttering copy (every frame shown twice) score
    far below the real clips on the in-band fraction, though both win the binarised MSE."""
    from tfvidgan.metrics.balls import clip_physics, consecutive_binarized_mse
    from tfvidgan.metrics.real_data import real_clips
    clips, _ = real_clips(setup["data"], 20, T, seed=0)
    real = clip_physics(clips, 3)
    band = real["speed_band"]
    frozen = clip_physics(np.repeat(clips[:, :1], T, axis=1), 3, speed_band=band)
    stutter_clips = np.repeat(clips[:, : T // 2], 2, axis=1)
    stutter = clip_physics(stutter_clips, 3, speed_band=band)
    assert 0 < band[0] < band[1]
    assert frozen["fraction_steps_in_speed_band"] == 0.0
    assert stutter["fraction_steps_in_speed_band"] < 0.6 * real["fraction_steps_in_speed_band"]
    assert consecutive_binarized_mse(stutter_clips) < consecutive_binarized_mse(clips)


def test_long_video_and_fg_swap_sections(setup):
    other = _untrained_frames_export(setup["root"] / "swap_fg", LATENT, seed=11)
    report = evaluate_video(dataclasses.replace(setup["config"], frames_generator=other, plot="",
                                                long_frames=2 * T, swap_expected_balls=1))
    long = report["long_video"]
    assert long["num_frames"] == 2 * T and long["window"] == T
    assert set(long["relative_change"]) == set(PHYSICS_COLUMNS)
    # The mean latent step of each window of the same long trajectories (the export's sample_latents).
    z = load_signature(setup["config"].export_dir, "sample_latents")(
        num_samples=tf.constant(N), num_frames=tf.constant(2 * T), seed=tf.constant(setup["config"].seed))
    steps = np.linalg.norm(np.diff(z["latents"].numpy().astype(np.float64), axis=1), axis=-1)   # [N, 2T - 1]
    step = long["latent_step"]
    assert step["first"] == pytest.approx(steps[:, :T - 1].mean(), rel=1e-5)
    assert step["last"] == pytest.approx(steps[:, T:].mean(), rel=1e-5)
    assert step["relative_change"] == pytest.approx(abs(step["last"] - step["first"]) / step["first"], rel=1e-9)
    swap = report["fg_swap"]
    assert swap["expected_balls"] == 1 and 0.0 <= swap["fraction_expected_count_frames"] <= 1.0
    with pytest.raises(ConfigError, match="--long_frames"):
        dataclasses.replace(setup["config"], long_frames=T + 1)


def test_a_draw_of_the_seed_that_picked_a_best_export_is_flagged(setup, tmp_path):
    """The video twin of the frames report's check: the same seed as the probe that picked the export is
    flagged (the probe's clips are the first ones of the draw), another seed is not; the numbers stay."""
    import shutil
    config = setup["config"]
    assert "selection_bias" not in setup["report"] and setup["report"]["settings"]["selection"] is None
    shutil.copytree(config.export_dir, tmp_path / "video")
    probe = {"seed": config.seed, "num_samples": 2, "long_frames": 0}
    write_selection(latest_version_dir(str(tmp_path / "video")), {"metric": "worst_target_ratio", "step": 2,
                                                                  "probe": probe})
    same = evaluate_video(dataclasses.replace(config, export_dir=str(tmp_path / "video"), plot=""))
    assert f"seed {config.seed}" in same["selection_bias"]
    assert json.dumps(same["generated"]) == json.dumps(setup["report"]["generated"])
    other = evaluate_video(dataclasses.replace(config, export_dir=str(tmp_path / "video"), plot="",
                                               seed=config.seed + 1))
    assert "selection_bias" not in other and other["settings"]["selection"]["probe"] == probe

    def latents(n):
        return load_signature(config.export_dir, "sample_latents")(
            num_samples=tf.constant(n), num_frames=tf.constant(config.num_frames),
            seed=tf.constant(config.seed))["latents"].numpy()
    np.testing.assert_array_equal(latents(2), latents(config.num_samples)[:2])
