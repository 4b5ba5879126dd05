"""`evaluate reconstruction`: per-frame scores that match a direct computation, timings, picture, errors, CLI.

Uses a tiny noisy CUP dataset of moving discs (T=4, 16×16) and an UNTRAINED reconstructor export:
nothing here needs a good network, only its exact outputs.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfvidgan.cup.operator import make_mask
from tfvidgan.cup.synthetic import moving_discs
from tfvidgan.data.cup_pairs import cup_pairs_dataset, read_cup_metadata
from tfvidgan.data.cup_simulation import CupPairsConfig, generate_cup_pairs
from tfvidgan.errors import ConfigError
from tfvidgan.export import export_reconstructor, export_version
from tfvidgan.metrics import reconstruction_report as rr
from tfvidgan.metrics.image_quality import psnr_per_frame, ssim_per_frame
from tfvidgan.models.reconstructor import build_reconstructor

T, H, W = 4, 16, 16
NUM_PAIRS = 12


def _make_pairs(directory, num_frames, mask_seed=0):
    scenes = moving_discs(NUM_PAIRS, 6, H, W, seed=3)
    config = CupPairsConfig(scenes="synthetic moving discs", num_frames=num_frames, mask_seed=mask_seed,
                            photons=2000.0, read_noise=0.01, noise_seed=1, shards=2, batch_size=8)
    return generate_cup_pairs(config, str(directory), scenes=[{"frames": 2.0 * s - 1.0} for s in scenes])


def _export(directory, mask):
    model = build_reconstructor(T, H, W, mask, base_filters=4, depth=1)
    export_version(str(directory), lambda d: export_reconstructor(model, d))
    return str(directory)


def _first_pairs(data, n):
    sensed, scenes = next(iter(cup_pairs_dataset(data, n, shuffle=False, repeat=False)))
    return sensed.numpy(), scenes.numpy()


def _served(export_dir, sensed):
    """The export's outputs, computed independently of the report code."""
    versions = sorted(int(v) for v in os.listdir(export_dir) if v.isdigit())
    loaded = tf.saved_model.load(os.path.join(export_dir, str(versions[-1])))
    return loaded.signatures["serving_default"](sensed_image=tf.constant(sensed))["scene"].numpy()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("recon_report")
    metadata = _make_pairs(root / "pairs", T)
    export_dir = _export(root / "export", metadata.mask)
    config = rr.ReconstructionEvalConfig(export_dir=export_dir, data=str(root / "pairs"), num_samples=10,
                                         gap_tv_iterations=30, picture=str(root / "picture.png"), batch_size=4,
                                         gap_tv_xla=False, picture_examples=2, picture_scale=2)
    return root, config, rr.evaluate_reconstruction(config)


def test_scores_are_per_frame_and_equal_a_direct_computation_on_the_exports_outputs(setup):
    _, config, report = setup
    sensed, scenes = _first_pairs(config.data, config.num_samples)
    served = _served(config.export_dir, sensed)
    psnr = psnr_per_frame(served, scenes).numpy()
    ssim = ssim_per_frame(served, scenes).numpy()
    network = report["network"]
    assert len(network["psnr_db_per_frame"]) == T and len(network["ssim_per_frame"]) == T
    np.testing.assert_allclose(network["psnr_db_per_frame"], psnr.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(network["ssim_per_frame"], ssim.mean(axis=0), rtol=1e-5, atol=1e-6)
    assert network["psnr_db"] == pytest.approx(float(psnr.mean()), rel=1e-5)
    assert network["ssim"] == pytest.approx(float(ssim.mean()), rel=1e-5, abs=1e-6)
    # The floor row is the clipped normalised back-projection of the same pairs.
    operator = read_cup_metadata(config.data).operator()
    back_projection = np.clip(operator.normalized_back_projection(tf.constant(sensed)).numpy(), 0, 1)
    np.testing.assert_allclose(report["back_projection"]["psnr_db_per_frame"],
                               psnr_per_frame(back_projection, scenes).numpy().mean(axis=0), rtol=1e-5)
    for name in rr.METHODS:
        assert len(report[name]["psnr_db_per_frame"]) == T
        assert report[name]["psnr_db"] == pytest.approx(np.mean(report[name]["psnr_db_per_frame"]), rel=1e-6)


def test_gap_tv_beats_back_projection_and_timings_are_consistent(setup):
    _, config, report = setup
    assert report["gap_tv"]["psnr_db"] > report["back_projection"]["psnr_db"] + 1.0, report
    assert report["gap_tv"]["ssim"] > report["back_projection"]["ssim"]
    for name in rr.METHODS:
        assert report[name]["seconds_per_sample"] > 0
    assert report["speedup_vs_gap_tv"] == pytest.approx(
        report["gap_tv"]["seconds_per_sample"] / report["network"]["seconds_per_sample"])
    settings = report["settings"]
    assert settings["batch_size"] == 4 and settings["num_samples"] == 10 and settings["num_frames"] == T
    assert settings["photons"] == 2000.0 and settings["read_noise"] == 0.01
    assert settings["export_mask_matches_data"] is True
    assert report["gap_tv"]["iterations"] == 30
    json.dumps(report)  # JSON-able as is


def test_picture_has_the_documented_size_and_shows_the_original_frames(setup):
    _, config, report = setup
    image = np.asarray(Image.open(config.picture))
    s, n = config.picture_scale, config.picture_examples
    width = 2 * rr.MARGIN + rr.LABEL_WIDTH + s * (T * W + (T - 1) * rr.STRIP_PAD)
    height = 2 * rr.MARGIN + n * (s * (4 * H + T - 1) + 3 * rr.ROW_GAP) + (n - 1) * rr.BLOCK_GAP
    assert image.shape == (height, width)
    assert rr.picture_size(n, T, H, W, s) == (width, height)
    _, scenes = _first_pairs(config.data, 1)
    # Top-left image of the picture: frame 0 of example 0, enlarged s times.
    expected = np.kron(np.rint(scenes[0, 0, ..., 0] * 255), np.ones((s, s)))
    x0, y0 = rr.MARGIN + rr.LABEL_WIDTH, rr.MARGIN
    np.testing.assert_array_equal(image[y0:y0 + s * H, x0:x0 + s * W], expected)


def test_shape_and_size_mismatches_raise_config_errors_naming_the_flags(setup):
    root, config, _ = setup
    _make_pairs(root / "pairs_t3", 3)
    with pytest.raises(ConfigError, match=r"--export_dir=.*\[19, 16, 1\].*--data=.*\[18, 16, 1\]"):
        rr.evaluate_reconstruction(rr.ReconstructionEvalConfig(
            export_dir=config.export_dir, data=str(root / "pairs_t3"), num_samples=2, gap_tv_iterations=1,
            picture=""))
    with pytest.raises(ConfigError, match=r"--num_samples=13 exceeds the 12 pairs"):
        rr.evaluate_reconstruction(rr.ReconstructionEvalConfig(
            export_dir=config.export_dir, data=config.data, num_samples=13, gap_tv_iterations=1, picture=""))
    with pytest.raises(ConfigError, match="--gap_tv_iterations"):
        rr.ReconstructionEvalConfig(export_dir="e", data="d", gap_tv_iterations=0)


def test_data_for_another_mask_is_flagged(setup):
    root, config, _ = setup
    other = _make_pairs(root / "pairs_other_mask", T, mask_seed=5)
    assert not np.array_equal(other.mask, make_mask(H, W, seed=0))
    _, _, matches = rr.load_reconstructor_signature(config.export_dir, other)
    assert matches is False


def test_cli_writes_the_json_report(setup, tmp_path):
    """The report to --output; without --picture, the picture beside it (report.json -> report.reconstruction.png),
    not into the working directory."""
    _, config, _ = setup
    output, picture = tmp_path / "report.json", tmp_path / "report.reconstruction.png"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    (tmp_path / "cwd").mkdir()
    run = subprocess.run([sys.executable, "-m", "tfvidgan.evaluate", "reconstruction",
                          f"--export_dir={config.export_dir}", f"--data={config.data}", "--num_samples=2",
                          "--gap_tv_iterations=2", f"--output={output}"],
                         capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path / "cwd")
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(output.read_text())
    assert json.loads(run.stdout[run.stdout.index("{"):]) == report
    sensed, scenes = _first_pairs(config.data, 2)
    expected = psnr_per_frame(_served(config.export_dir, sensed), scenes).numpy().mean(axis=0)
    np.testing.assert_allclose(report["network"]["psnr_db_per_frame"], expected, rtol=1e-5)
    assert report["settings"]["num_samples"] == 2 and report["gap_tv"]["iterations"] == 2
    assert picture.is_file() and report["settings"]["picture"] == str(picture)
    assert not any((tmp_path / "cwd").iterdir())


def test_an_unfolded_export_is_given_the_datas_own_mask(setup):
    """Another camera: the unfolded net's `with_mask` signature gets the DATA's mask (not its training mask)."""
    from tfvidgan.models.unfolded import build_unfolded_reconstructor

    root, _, _ = setup
    other = _make_pairs(root / "pairs_camera7", T, mask_seed=7)
    model = build_unfolded_reconstructor(T, H, W, stages=2, filters=4)
    for w in model.trainable_weights:
        w.assign(tf.random.stateless_normal(w.shape, seed=[2, len(w.path)], stddev=0.1))
    export_dir = str(root / "unfolded_export")
    export_version(export_dir, lambda d: export_reconstructor(model, d, default_mask=make_mask(H, W, seed=0)))
    reconstruct, _, matches = rr.load_reconstructor_signature(export_dir, other)
    assert matches is False and reconstruct.uses_data_mask
    assert reconstruct.parameters == model.count_params()
    sensed, _ = _first_pairs(str(root / "pairs_camera7"), 3)
    masks = tf.constant(np.broadcast_to(other.mask, (3, H, W)).astype(np.float32))
    expected = model({"sensed_image": tf.constant(sensed), "mask": masks}).numpy()
    np.testing.assert_allclose(reconstruct(sensed), expected, atol=1e-5)
    default_only, _, _ = rr.load_reconstructor_signature(export_dir, other, use_data_mask=False)
    assert not default_only.uses_data_mask and np.abs(default_only(sensed) - expected).max() > 1e-3


def test_timing_counts_the_fastest_pass_and_returns_every_sample_in_order():
    """Warm-up calls are not timed; of `repeats` timed passes the fastest counts (a pass slowed by another
    job does not show); outputs cover every sample in order, across a short last batch."""
    import time as _time

    calls = []

    def method(batch):
        calls.append(len(batch))
        if len(calls) == 3:  # the first timed pass's first batch (after 2 warm-up calls: shapes 4 and 2)
            _time.sleep(0.3)
        return np.repeat(batch[:, None], 2, axis=1)

    sensed = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1)
    out, seconds = rr.timed_reconstruction(method, sensed, 4, repeats=3)
    assert calls == [4, 2] + [4, 4, 2] * 3
    np.testing.assert_array_equal(out[:, 0, 0, 0, 0], np.arange(10))
    assert seconds < 0.3 / 10 / 3  # the slow pass (≥ 0.03 s per sample) is not the one reported
    calls.clear()
    _, slow = rr.timed_reconstruction(method, sensed, 4, repeats=1)  # the slow pass is the only one
    assert slow >= 0.3 / 10
    with pytest.raises(ConfigError, match="--repeats=0"):
        rr.timed_reconstruction(method, sensed, 4, repeats=0)


def test_timed_reconstructions_interleave_the_methods_rounds():
    """Several methods are timed in rounds (A, B, A, B, ...) after all warm-ups, so a load burst lands on
    one pass of each neighbour rather than on every pass of one method; each keeps its fastest pass."""
    import time as _time

    calls = []

    def make(name, slow_call=None):
        def method(batch):
            calls.append(name)
            if len([c for c in calls if c == name]) == slow_call:
                _time.sleep(0.3)
            return np.repeat(batch[:, None], 2, axis=1) + (name == "b")
        return method

    sensed = np.arange(8, dtype=np.float32).reshape(8, 1, 1, 1)
    timed = rr.timed_reconstructions({"a": make("a", slow_call=2), "b": make("b")}, sensed, 8, repeats=3)
    assert calls == ["a", "b"] + ["a", "b"] * 3  # warm-ups, then three interleaved rounds
    assert list(timed) == ["a", "b"]
    np.testing.assert_array_equal(timed["b"][0][:, 0, 0, 0, 0], np.arange(8) + 1)
    assert timed["a"][1] < 0.3 / 8  # a's slow first timed pass is not the one reported
