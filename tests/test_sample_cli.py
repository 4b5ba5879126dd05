"""`python -m tfvidgan.sample frames|video` on real exports: files written, FG swap by flag."""
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

from tfvidgan.export import export_frames_generator, export_video_generator
from tfvidgan.models.frames_generator import build_frames_generator
from tfvidgan.models.sequence_generator import build_sequence_generator
from tfvidgan.training.frames_task import FramesGanConfig, describe

Z = 6


def _frames_export(directory, seed):
    keras.utils.set_random_seed(seed)
    generator = build_frames_generator(32, 1, Z, base_filters=8)
    export_frames_generator(generator, describe(FramesGanConfig(latent_dim=Z)), str(directory / "1"))
    return generator


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample_cli")
    generator = _frames_export(root / "fg_a", seed=1)
    _frames_export(root / "fg_b", seed=2)
    keras.utils.set_random_seed(3)
    sequence = build_sequence_generator(Z, noise_dim=4, step_noise_dim=2, hidden_units=8, num_layers=1)
    export_video_generator(sequence, generator, {"latent_dim": Z, "noise_dim": 4, "step_noise_dim": 2,
                                                 "kind": "video_generator"}, str(root / "video" / "1"))
    return root


def _sample(*args):
    result = subprocess.run([sys.executable, "-m", "tfvidgan.sample", *args], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-2000:]


def test_sample_frames_writes_a_grid_png_reproducibly(exports, tmp_path):
    _sample("frames", f"--export_dir={exports / 'fg_a'}", "--num_samples=6", "--rows=2", "--seed=4",
            f"--output={tmp_path / 'a.png'}")
    _sample("frames", f"--export_dir={exports / 'fg_a'}", "--num_samples=6", "--rows=2", "--seed=4",
            f"--output={tmp_path / 'b.png'}")
    a, b = (np.asarray(Image.open(tmp_path / n)) for n in ("a.png", "b.png"))
    assert a.shape[:2] == (2 * 32 + 1, 3 * 32 + 2)  # 2 rows × 3 columns of 32×32 tiles, 1-pixel gaps
    np.testing.assert_array_equal(a, b)


def test_sample_video_writes_gifs_and_swapping_the_fg_keeps_the_latents(exports, tmp_path):
    _sample("video", f"--export_dir={exports / 'video'}", "--num_samples=2", "--num_frames=9", "--seed=1",
            f"--output_dir={tmp_path / 'own'}")
    _sample("video", f"--export_dir={exports / 'video'}", "--num_samples=2", "--num_frames=9", "--seed=1",
            f"--frames_generator={exports / 'fg_b'}", f"--output_dir={tmp_path / 'swapped'}")
    own, swapped = tmp_path / "own", tmp_path / "swapped"
    listing = json.loads((own / "samples.json").read_text())
    assert sorted(listing["files"]) == sorted(
        ["video_000.gif", "video_000_strip.png", "video_001.gif", "video_001_strip.png"])
    with Image.open(own / "video_000.gif") as gif:
        assert gif.n_frames <= 9 and gif.info.get("loop") == 0
    np.testing.assert_array_equal(np.load(own / "latents.npy"), np.load(swapped / "latents.npy"))
    assert np.load(own / "latents.npy").shape == (2, 9, Z)
    strips = [np.asarray(Image.open(d / "video_000_strip.png")) for d in (own, swapped)]
    assert strips[0].shape == strips[1].shape and not np.array_equal(*strips)


def test_sample_frames_with_rejection_uses_the_exported_discriminators(exports, tmp_path):
    """--rejection_acceptance: frames drawn by rejection sampling with the export's own discriminators, the
    same for the same seed; an export without discriminators is named."""
    from tfvidgan.errors import ExportKindError
    from tfvidgan.models.ensemble_discriminator import build_frame_discriminators
    from tfvidgan.sample import sample_frames

    keras.utils.set_random_seed(5)
    generator = build_frames_generator(32, 1, Z, base_filters=8)
    discriminators = build_frame_discriminators((32, 32, 1), 2, base_filters=2)
    export_frames_generator(generator, describe(FramesGanConfig(latent_dim=Z)), str(tmp_path / "fg" / "1"),
                            discriminators=discriminators)
    for name in ("a.png", "b.png"):
        sample_frames(str(tmp_path / "fg"), 4, 3, str(tmp_path / name), rows=2, rejection_acceptance=0.5)
    a, b = (np.asarray(Image.open(tmp_path / n)) for n in ("a.png", "b.png"))
    assert a.shape[:2] == (2 * 32 + 1, 2 * 32 + 1)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ExportKindError, match="--export_dir=.*has no discriminators"):
        sample_frames(str(exports / "fg_a"), 4, 3, str(tmp_path / "c.png"), rejection_acceptance=0.5)
