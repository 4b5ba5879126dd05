"""Own videos → dataset (`tfvidgan.data.video_ingest`): round trip through MP4, GIF and an image folder,
frame-rate resampling, centre crop, scene cutting and stride, every bad-input kind, output protection,
determinism, the command line, readers without positions, and a few frames-GAN steps on the result."""
import glob
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import mirrored_strategy
from PIL import Image

av = pytest.importorskip("av", reason="PyAV encodes the test videos; it is in the test extra (pip install -e '.[test]')")

from tfvidgan.data import bouncing_balls as bb  # noqa: E402
from tfvidgan.data import readers, video_ingest  # noqa: E402
from tfvidgan.data.format import encode_pngs  # noqa: E402
from tfvidgan.data.metadata import read_metadata  # noqa: E402
from tfvidgan.data.video_ingest import VideoDatasetConfig, make_video_dataset  # noqa: E402
from tfvidgan.errors import ConfigError, DatasetError  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _encode(path, frames, codec="libx264", pix_fmt="yuv444p", rate=25, options=None):
    """Writes ``[T, H, W, 3] uint8`` frames as a video file with PyAV."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, options=options or {})
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _folder(path, frames, name="frame{}.png"):
    os.makedirs(path, exist_ok=True)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(os.path.join(path, name.format(i)))


def _uint8(scene_frames):
    return np.round((scene_frames + 1.0) * 127.5).astype(np.int16)


@pytest.fixture(scope="module")
def balls():
    """Two 50-frame RGB bouncing-balls scenes at 64×64: ``[2, 50, 64, 64, 3] uint8``."""
    config = bb.BouncingBallsConfig(num_scenes=2, num_frames=50, num_balls=3, size=64, channels=3, shards=1)
    return bb.generate_scenes(config, 0, 2).frames


@pytest.fixture(scope="module")
def ingested(balls, tmp_path_factory):
    root = tmp_path_factory.mktemp("own")
    videos = root / "videos"
    videos.mkdir()
    _encode(videos / "a.mp4", balls[0], options={"crf": "0"})           # lossless H.264, 25 fps
    _encode(videos / "b.gif", balls[1], codec="gif", pix_fmt="rgb8")    # 256-colour palette, 25 fps
    _folder(videos / "imgs", balls[0][:45])                              # frame0.png … frame44.png
    (videos / "notes.txt").write_text("not a video")
    config = VideoDatasetConfig(input=str(videos), size=64, num_frames=20, fps=25, channels=3, shards=2)
    result = make_video_dataset(config, str(root / "data"), workers=1, show_progress=False)
    return root, result


def test_round_trip_mp4_gif_and_image_folder(ingested, balls):
    root, result = ingested
    s = result.summary
    # a.mp4: 50 frames → 2 scenes (10 unused); b.gif the same; imgs: 45 → 2 scenes (5 unused).
    assert (s["num_scenes"], s["sources"], s["sources_used"], s["shards"]) == (6, 3, 3, 2)
    assert (s["source_frames"], s["output_frames"], s["frames_unused"], s["ignored_files"]) == (145, 145, 25, 1)
    assert s["skipped"] == {} and s["problems"] == []
    metadata = read_metadata(str(root / "data"))
    assert metadata.shape == (20, 64, 64, 3) and metadata.num_balls == 0 and metadata.num_scenes == 6
    assert [sh.num_records for sh in metadata.shards] == [3, 3]
    assert [src["scenes"] for src in metadata.generator["sources"]] == [2, 2, 2]
    assert [src["first_scene"] for src in metadata.generator["sources"]] == [0, 2, 4]
    assert metadata.generator["sources"][0]["source_fps"] == pytest.approx(25.0)
    scenes = list(readers.scenes_dataset(str(root / "data")).as_numpy_iterator())
    assert len(scenes) == 6
    assert scenes[0]["frames"].shape == (20, 64, 64, 3) and scenes[0]["positions"].shape == (20, 0, 2)
    assert scenes[0]["radii"].shape == (0,)
    truth = balls.astype(np.int16)
    mp4 = np.abs(_uint8(np.concatenate([scenes[0]["frames"], scenes[1]["frames"]])) - truth[0, :40])
    gif = np.abs(_uint8(np.concatenate([scenes[2]["frames"], scenes[3]["frames"]])) - truth[1, :40])
    images = _uint8(np.concatenate([scenes[4]["frames"], scenes[5]["frames"]]))
    # Lossless H.264 in 4:4:4 YUV: only the RGB↔YUV rounding is left.
    assert mp4.max() <= 3 and mp4.mean() < 0.2
    # GIF: 256-colour palette (anti-aliased edges are quantised), so a looser bound.
    assert gif.mean() < 3.0
    np.testing.assert_array_equal(images, truth[0, :40])   # PNG folder: exact, in natural order
    # The readers the trainers use.
    batch = next(iter(readers.random_frames_dataset(str(root / "data"), 8, seed=0)))
    assert batch.shape == (8, 64, 64, 3) and batch.dtype == tf.float32
    assert -1.0 <= float(tf.reduce_min(batch)) and float(tf.reduce_max(batch)) <= 1.0
    clips = next(iter(readers.clips_dataset(str(root / "data"), 2, clip_length=16, seed=0)))
    assert clips.shape == (2, 16, 64, 64, 3)


def test_readers_that_need_positions_say_so(ingested):
    root, _ = ingested
    with pytest.raises(DatasetError, match=r"with_positions needs ball positions.*num_balls = 0"):
        readers.clips_dataset(str(root / "data"), 2, with_positions=True)


def test_resample_indices_and_scene_starts_by_hand():
    times = np.arange(10) / 25.0                      # 10 frames at 25 fps, shown until 0.4 s
    np.testing.assert_array_equal(video_ingest.resample_indices(times, 0.4, 12.5), [0, 2, 4, 6, 8])
    np.testing.assert_array_equal(video_ingest.resample_indices(times, 0.4, 50.0), np.repeat(np.arange(10), 2))
    np.testing.assert_array_equal(video_ingest.resample_indices(times, 0.4, 10.0), [0, 2, 5, 7])  # 0, .1, .2, .3 s
    uneven = np.array([0.0, 0.05, 0.3])               # GIF-like frame delays
    np.testing.assert_array_equal(video_ingest.resample_indices(uneven, 0.4, 10.0), [0, 1, 1, 2])
    assert video_ingest.scene_starts(23, 10, 5) == [0, 5, 10]
    assert video_ingest.scene_starts(40, 20, 20) == [0, 20]
    assert video_ingest.scene_starts(19, 20, 20) == []


def test_frame_rate_resampling_and_stride_on_an_image_folder(balls, tmp_path):
    _folder(tmp_path / "clip", balls[0][:45], name="img_{:03d}.png")
    # Images at 25 fps read at 12.5 fps: every second image, 23 output frames; scenes of 10 every 5.
    config = VideoDatasetConfig(input=str(tmp_path / "clip"), size=64, num_frames=10, fps=12.5, image_fps=25,
                                channels=3, shards=1, stride=5)
    result = make_video_dataset(config, str(tmp_path / "data"), workers=1, show_progress=False)
    assert (result.summary["num_scenes"], result.summary["output_frames"], result.summary["frames_unused"]) == (3, 23, 3)
    scenes = list(readers.scenes_dataset(str(tmp_path / "data")).as_numpy_iterator())
    for k, scene in enumerate(scenes):
        np.testing.assert_array_equal(_uint8(scene["frames"]), balls[0][10 * k:10 * k + 20:2])
    # The same folder at 50 fps: every image twice.
    config = VideoDatasetConfig(input=str(tmp_path / "clip"), size=64, num_frames=10, fps=50, image_fps=25,
                                channels=1, shards=1)
    make_video_dataset(config, str(tmp_path / "twice"), workers=1, show_progress=False)
    first = next(readers.scenes_dataset(str(tmp_path / "twice")).as_numpy_iterator())["frames"]
    assert first.shape == (10, 64, 64, 1)
    gray = np.asarray([np.asarray(Image.fromarray(f).convert("L")) for f in balls[0][:5]])
    np.testing.assert_array_equal(_uint8(first)[..., 0], np.repeat(gray, 2, axis=0))


def test_mp4_frame_rate_halved_keeps_every_second_frame(balls, tmp_path):
    _encode(tmp_path / "v.mp4", balls[1], options={"crf": "0"})
    config = VideoDatasetConfig(input=str(tmp_path / "v.mp4"), size=64, num_frames=25, fps=12.5, shards=1)
    make_video_dataset(config, str(tmp_path / "data"), workers=1, show_progress=False)
    scene = next(readers.scenes_dataset(str(tmp_path / "data")).as_numpy_iterator())["frames"]
    assert np.abs(_uint8(scene) - balls[1][::2].astype(np.int16)).max() <= 3


def test_centre_crop_then_resize():
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:, :8] = 255          # the 8 leftmost and 8 rightmost columns are cropped away
    frame[:, 56:] = 255
    frame[0, 8] = (10, 20, 30)  # top-left corner of the centred square
    out = video_ingest.crop_and_resize(frame, 48)
    assert out.shape == (48, 48, 3) and out.max() == 30 and tuple(out[0, 0]) == (10, 20, 30)
    small = video_ingest.crop_and_resize(np.full((90, 30, 1), 200, np.uint8), 16)
    assert small.shape == (16, 16, 1) and np.all(small == 200)


def _bad_inputs(root, balls):
    """One good video and one file or folder for each problem kind, under ``root``."""
    rng = np.random.default_rng(0)
    good = balls[0][:30]
    _encode(root / "good.mp4", good)
    (root / "empty.mp4").write_bytes(b"")                                          # empty_file
    (root / "garbage.mp4").write_bytes(rng.integers(0, 256, 5000, np.uint8).tobytes())  # unreadable
    with av.open(str(root / "audio.mkv"), "w") as out:                               # no_video_stream
        stream = out.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in list(stream.encode(frame)) + list(stream.encode()):
            out.mux(packet)
    _encode(root / "tmp.avi", good, codec="mpeg4", pix_fmt="yuv420p")
    data = (root / "tmp.avi").read_bytes()
    (root / "tmp.avi").unlink()
    assert data.count(b"FMP4") == 2
    (root / "codec.avi").write_bytes(data.replace(b"FMP4", b"ZZZZ"))               # unsupported_codec
    (root / "truncated.avi").write_bytes(data[:len(data) * 8 // 10])                     # corrupt
    _encode(root / "short.mp4", good[:5])                                            # too_short
    _folder(root / "mixed", good[:12])                                               # mixed_resolution
    Image.fromarray(good[0][:32]).save(root / "mixed" / "frame5.png")
    _folder(root / "zero", good[:12])                                                # zero_size_frame
    (root / "zero" / "frame3.png").write_bytes(encode_pngs(np.zeros((1, 0, 64, 3), np.uint8))[0])
    _folder(root / "empty_image", good[:12])                                          # empty_file (an image)
    (root / "empty_image" / "frame7.png").write_bytes(b"")


def test_every_bad_input_is_named_counted_and_skipped(balls, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    _bad_inputs(inputs, balls)
    config = VideoDatasetConfig(input=str(inputs), size=32, num_frames=10, fps=25, channels=3, shards=4)
    result = make_video_dataset(config, str(tmp_path / "data"), workers=1, show_progress=False)
    s = result.summary
    assert s["skipped"] == {"empty_file": 2, "unreadable": 1, "no_video_stream": 1, "unsupported_codec": 1,
                            "corrupt": 1, "zero_size_frame": 1, "mixed_resolution": 1, "too_short": 1}
    assert (s["sources"], s["sources_used"], s["sources_skipped"], s["num_scenes"]) == (10, 1, 9, 3)
    by_file = {os.path.basename(p["file"]): p for p in s["problems"]}
    assert by_file["empty.mp4"]["message"] == "is empty (0 bytes)"
    assert "image frame7.png is empty" in by_file["empty_image"]["message"]
    assert by_file["audio.mkv"]["kind"] == "no_video_stream"
    assert "has no decoder" in by_file["codec.avi"]["message"]
    assert "of the 30 frames its header announces decode" in by_file["truncated.avi"]["message"]  # 80 % kept
    assert "frame 5 is 32x64 but frame 0 is 64x64" in by_file["mixed"]["message"]
    assert "frame3.png is 0x64 pixels (zero size)" in by_file["zero"]["message"]   # H x W
    assert "gives 5 frame(s)" in by_file["short.mp4"]["message"] and "--num_frames=10" in by_file["short.mp4"]["message"]
    assert "Invalid data" in by_file["garbage.mp4"]["message"]
    # The metadata keeps the same record; the good video is all that was written.
    metadata = read_metadata(str(tmp_path / "data"))
    assert metadata.num_scenes == 3 and len(metadata.generator["problems"]) == 9
    assert [src["file"] for src in metadata.generator["sources"]] == [str(inputs / "good.mp4")]


def test_on_error_fail_names_the_first_bad_file_and_writes_nothing(balls, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    _bad_inputs(inputs, balls)
    config = VideoDatasetConfig(input=str(inputs), size=32, num_frames=10, fps=25, on_error="fail", shards=1)
    with pytest.raises(DatasetError, match=r"audio\.mkv: holds no video stream .*\[no_video_stream\].*--on_error"):
        make_video_dataset(config, str(tmp_path / "data"), workers=1, show_progress=False)
    assert not os.path.exists(tmp_path / "data")
    assert not glob.glob(str(tmp_path / ".data.*"))   # no scratch left behind


def test_no_usable_video_and_bad_flags_are_config_or_dataset_errors(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.mp4").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"no file gave a full scene.*x\.mp4: is empty"):
        make_video_dataset(VideoDatasetConfig(input=str(tmp_path / "in")), str(tmp_path / "d"), workers=1,
                           show_progress=False)
    (tmp_path / "none").mkdir()
    with pytest.raises(ConfigError, match=r"--input=.*none: found no video file"):
        make_video_dataset(VideoDatasetConfig(input=str(tmp_path / "none")), str(tmp_path / "d"))
    with pytest.raises(ConfigError, match=r"--input=.*nothing\*\.mp4: no such file"):
        make_video_dataset(VideoDatasetConfig(input=str(tmp_path / "nothing*.mp4")), str(tmp_path / "d"))
    for field, value in (("fps", 0.0), ("channels", 2), ("num_frames", 1), ("stride", 0), ("on_error", "ignore"),
                         ("size", 2), ("image_fps", float("nan"))):
        with pytest.raises(ConfigError, match=f"--{field}="):
            VideoDatasetConfig(input="x", **{field: value})
    with pytest.raises(ConfigError, match="--input="):
        VideoDatasetConfig()


def test_missing_pyav_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(ConfigError, match=r'needs PyAV.*pip install "tfvidgan\[video\]"'):
        video_ingest.require_pyav()


def test_existing_dataset_is_protected_and_overwrite_replaces_it(ingested, tmp_path):
    root, _ = ingested
    config = VideoDatasetConfig(input=str(root / "videos" / "imgs"), size=32, num_frames=20, fps=25, shards=1)
    target = tmp_path / "data"
    shutil.copytree(root / "data", target)
    (target / "notes.md").write_text("mine")
    with pytest.raises(ConfigError, match=r"--output_dir=.*already holds a dataset.*--overwrite"):
        make_video_dataset(config, str(target), workers=1, show_progress=False)
    assert read_metadata(str(target)).num_scenes == 6
    make_video_dataset(config, str(target), overwrite=True, workers=1, show_progress=False)
    metadata = read_metadata(str(target))
    assert (metadata.num_scenes, metadata.size, metadata.num_shards) == (2, 32, 1)
    assert sorted(os.listdir(target)) == ["metadata.json", "notes.md", "scenes-00000-of-00001.tfrecord"]


def test_deterministic_whatever_the_workers(ingested, tmp_path):
    root, _ = ingested
    config = VideoDatasetConfig(input=str(root / "videos"), size=32, num_frames=20, fps=25, channels=1, shards=3)
    one = make_video_dataset(config, str(tmp_path / "one"), workers=1, show_progress=False)
    two = make_video_dataset(config, str(tmp_path / "two"), workers=2, show_progress=False)
    assert two.summary["workers"] == 2
    names = sorted(os.listdir(tmp_path / "one"))
    assert names == sorted(os.listdir(tmp_path / "two")) and len(names) == 4
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    assert one.metadata.generator["config"]["content_sha256"] == two.metadata.generator["config"]["content_sha256"]


def test_command_line_end_to_end_and_bad_flag(ingested, tmp_path):
    root, _ = ingested
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-m", "data_tools.make_video_dataset", f"--input={root / 'videos'}",
                          f"--output_dir={tmp_path / 'data'}", "--size=32", "--num_frames=20", "--fps=25",
                          "--channels=3", "--shards=2", "--workers=1", "--noprogress"],
                         capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert (summary["num_scenes"], summary["shape"], summary["shards"]) == (6, [20, 32, 32, 3], 2)
    bad = subprocess.run([sys.executable, "-m", "data_tools.make_video_dataset", f"--input={root / 'videos'}",
                          f"--output_dir={tmp_path / 'other'}", "--channels=2"],
                         capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert bad.returncode == 1 and "tfvidgan.errors.ConfigError: --channels=2: must be 1 (grayscale) or 3 (RGB)" in bad.stderr


def test_a_few_frames_gan_steps_on_an_ingested_colour_dataset(ingested, tmp_path):
    from tfvidgan.training import loop
    from tfvidgan.training.frames_task import FramesGanConfig, FramesGanTask

    root, _ = ingested
    data = str(root / "data")
    metadata = read_metadata(data)
    config = FramesGanConfig(image_size=metadata.size, channels=metadata.channels, latent_dim=8,
                             generator_filters=8, num_discriminators=2, discriminator_filters=4, num_sample_images=4)
    task = FramesGanTask(config)
    result = loop.run_training(
        task, lambda context, start: readers.random_frames_dataset(data, 4, seed=start, input_context=context),
        mirrored_strategy(("/cpu:0",)),
        loop.LoopConfig(model_dir=str(tmp_path / "run"), train_steps=3, log_every=1, sample_every=3,
                        checkpoint_every=3))
    assert result.final_step == 3
    samples = task.sampling_generator(task.sample_latents(), training=False).numpy()
    assert samples.shape == (4, 64, 64, 3) and np.all(np.isfinite(samples))

    # `evaluate frames`: the Fréchet distance works without positions; the ball columns say why they are absent.
    from tfvidgan.metrics.frames_report import FramesEvalConfig, evaluate_frames
    from tfvidgan.metrics.quality_probe import FramesQualityProbe, ProbeConfig

    report = evaluate_frames(FramesEvalConfig(export_dir=str(tmp_path / "run" / "export"), data=data, num_samples=2,
                                              encoder_samples=2, encoder_steps=2,
                                              encoder_cache=str(tmp_path / "cache")))
    assert "num_balls = 0" in report["unavailable"]
    for row in ("generated", "untrained_generator", "real", "collapsed"):
        assert set(report[row]) == {"frechet_distance"} and np.isfinite(report[row]["frechet_distance"]), row
    from tfvidgan.metrics.real_data import expected_balls  # the benchmarks' check (quality, render_floor)
    with pytest.raises(ConfigError, match=r"^--data='.*' has no balls \(num_balls = 0"):
        expected_balls(data)
    probe = FramesQualityProbe(ProbeConfig(data=data, num_samples=2, encoder_samples=2), latent_dim=8)
    with pytest.raises(ConfigError, match=r"--eval_every: the quality probe counts balls.*num_balls = 0"):
        probe(task.sampling_generator)
