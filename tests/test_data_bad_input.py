"""Bad input: missing/empty/truncated/corrupt/wrong-shaped data and bad generator flags."""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import tensorflow as tf

from tfvidgan.data import bouncing_balls as bb
from tfvidgan.data import format as fmt
from tfvidgan.data import readers
from tfvidgan.errors import ConfigError, DatasetError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_SCENES, NUM_FRAMES, SHARDS = 12, 4, 3   # 4 records per shard
SHARD1 = "scenes-00001-of-00003.tfrecord"


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    config = bb.BouncingBallsConfig(num_scenes=NUM_SCENES, num_frames=NUM_FRAMES, size=32, shards=SHARDS, seed=9)
    directory = str(tmp_path_factory.mktemp("clean") / "data")
    bb.generate_dataset(config, directory, workers=1, show_progress=False)
    return directory, config, bb.generate_scenes(config, 0, NUM_SCENES)


@pytest.fixture
def copy(clean, tmp_path):
    directory = str(tmp_path / "data")
    shutil.copytree(clean[0], directory)
    return directory


def _record_offsets(path):
    """Byte offsets of the records of a TFRecord file (trusting the lengths)."""
    data = open(path, "rb").read()
    offsets, position = [], 0
    while position < len(data):
        offsets.append(position)
        position += 12 + struct.unpack_from("<Q", data, position)[0] + 4
    return offsets, data


def _positions(directory, **kwargs):
    return [s["positions"] for s in readers.scenes_dataset(directory, **kwargs).as_numpy_iterator()]


def _assert_scenes(got, truth, missing):
    expected = [truth.positions[i] for i in range(NUM_SCENES) if i not in missing]
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------------- patterns


def test_pattern_matching_nothing_names_the_pattern(tmp_path):
    pattern = str(tmp_path / "nowhere" / "scenes-*.tfrecord")
    with pytest.raises(DatasetError, match="nowhere/scenes-\\*.tfrecord: no files match"):
        readers.random_frames_dataset(pattern, 4)
    with pytest.raises(DatasetError, match="no such file or directory"):
        readers.scenes_dataset(str(tmp_path / "missing_dir"))


def test_empty_directory_names_the_directory(tmp_path):
    with pytest.raises(DatasetError, match=f"{tmp_path}: directory holds no scenes-\\*.tfrecord"):
        readers.clips_dataset(str(tmp_path), 2)


def test_missing_or_invalid_metadata_names_the_file_and_field(copy):
    meta_path = os.path.join(copy, "metadata.json")
    raw = json.load(open(meta_path))
    del raw["num_frames"]
    json.dump(raw, open(meta_path, "w"))
    with pytest.raises(DatasetError, match="metadata.json: field 'num_frames' is missing"):
        readers.scenes_dataset(copy)
    open(meta_path, "w").write("{not json")
    with pytest.raises(DatasetError, match="metadata.json: not readable as JSON"):
        readers.read_metadata(copy)
    os.remove(meta_path)
    with pytest.raises(DatasetError, match="metadata.json: dataset metadata not found"):
        readers.random_frames_dataset(copy, 2)


# ---------------------------------------------------------------------------------------------- shards


def test_truncated_shard_is_named_upfront_and_its_readable_records_are_kept(copy, clean):
    path = os.path.join(copy, SHARD1)
    offsets, data = _record_offsets(path)
    open(path, "wb").write(data[:offsets[2] + 100])  # records 0, 1 intact; record 2 cut
    with pytest.raises(DatasetError, match=f"{SHARD1}: records 2… \\(2 records\\).*truncated record"):
        readers.scenes_dataset(copy)
    report = readers.scan_shards(copy)
    assert report.num_bad_records == 2 and report.num_good_records == NUM_SCENES - 2
    _assert_scenes(_positions(copy, skip_bad_records=True), clean[2], missing={6, 7})


def test_shard_cut_at_a_record_boundary_is_caught_by_the_metadata_count(copy):
    path = os.path.join(copy, SHARD1)
    offsets, data = _record_offsets(path)
    open(path, "wb").write(data[:offsets[3]])
    with pytest.raises(DatasetError, match=f"{SHARD1}: record 3 .*ends after 3 records but metadata.json lists 4"):
        readers.clips_dataset(copy, 2)


def test_corrupt_record_is_named_and_skipped_without_losing_the_rest_of_the_shard(copy, clean):
    path = os.path.join(copy, SHARD1)
    offsets, data = _record_offsets(path)
    corrupt = bytearray(data)
    corrupt[offsets[1] + 12 + 300] ^= 0xFF  # a flipped byte inside record 1's data
    open(path, "wb").write(bytes(corrupt))
    with pytest.raises(DatasetError, match=f"{SHARD1}: record 1 at byte {offsets[1]}: data CRC mismatch"):
        readers.random_frames_dataset(copy, 4)
    assert readers.scan_shards(copy).num_bad_records == 1
    # Records 0, 2 and 3 of the damaged shard are still read (scene 4 + 1 = 5 is the lost one).
    _assert_scenes(_positions(copy, skip_bad_records=True), clean[2], missing={5})
    frames = list(readers.random_frames_dataset(copy, 1, seed=0, skip_bad_records=True, repeat=False))
    assert len(frames) == NUM_SCENES - 1


@pytest.mark.parametrize("pipelines", [2, 4])  # 3 shards: split by files for 2 pipelines, by records for 4
def test_skipping_keeps_per_worker_shards_disjoint(copy, pipelines):
    path = os.path.join(copy, SHARD1)
    offsets, data = _record_offsets(path)
    corrupt = bytearray(data)
    corrupt[offsets[1] + 12 + 300] ^= 0xFF   # scene 5 is lost
    open(path, "wb").write(bytes(corrupt))
    seen = []
    for k in range(pipelines):
        context = tf.distribute.InputContext(num_input_pipelines=pipelines, input_pipeline_id=k)
        ds = readers.clips_dataset(copy, 1, clip_length=1, input_context=context, repeat=False,
                                   with_positions=True, skip_bad_records=True)
        seen += [int(b["scene_index"][0]) for b in ds.as_numpy_iterator()]
    assert sorted(seen) == [i for i in range(NUM_SCENES) if i != 5]


def test_trailing_garbage_is_reported_without_losing_records(copy, clean):
    with open(os.path.join(copy, SHARD1), "ab") as f:
        f.write(b"\x00junk")
    with pytest.raises(DatasetError, match=f"{SHARD1}: after record 3 at byte .*truncated record header"):
        readers.scenes_dataset(copy)
    assert readers.scan_shards(copy).num_bad_records == 0
    _assert_scenes(_positions(copy, skip_bad_records=True), clean[2], missing=set())


def test_corrupt_length_header_loses_the_rest_of_the_shard_only(copy, clean):
    path = os.path.join(copy, SHARD1)
    offsets, data = _record_offsets(path)
    corrupt = bytearray(data)
    corrupt[offsets[2] + 1] ^= 0x01
    open(path, "wb").write(bytes(corrupt))
    with pytest.raises(DatasetError, match=f"{SHARD1}: records 2… \\(2 records\\).*corrupt record header"):
        readers.scenes_dataset(copy)
    _assert_scenes(_positions(copy, skip_bad_records=True), clean[2], missing={6, 7})


def _framed(record):
    """``record`` with TFRecord framing (length, CRCs), as `tf.io.TFRecordWriter` writes it."""
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "one.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
            writer.write(record)
        return open(path, "rb").read()


def _replace_record(path, index, record):
    offsets, data = _record_offsets(path)
    ends = offsets[1:] + [len(data)]
    pieces = [data[o:e] for o, e in zip(offsets, ends)]
    pieces[index] = _framed(record)
    open(path, "wb").write(b"".join(pieces))


def test_record_with_the_wrong_frame_size_is_named_and_skipped(copy, clean):
    small = np.zeros((NUM_FRAMES, 16, 16, 1), np.uint8)
    record = fmt.encode_scene_example(fmt.encode_pngs(small), (NUM_FRAMES, 16, 16, 1),
                                      np.zeros((NUM_FRAMES, 3, 2)), np.ones(3), 6)
    _replace_record(os.path.join(copy, SHARD1), 2, record)
    with pytest.raises(DatasetError, match=f"{SHARD1}: record 2 .*shape feature is \\[4, 16, 16, 1\\].*"
                                           "frame 0 is not a 32x32 8-bit gray PNG \\(16x16"):
        readers.clips_dataset(copy, 2)
    _assert_scenes(_positions(copy, skip_bad_records=True), clean[2], missing={6})


def test_record_with_too_few_frames_or_wrong_feature_type_is_named(copy):
    frames = np.zeros((NUM_FRAMES - 1, 32, 32, 1), np.uint8)
    short = fmt.encode_scene_example(fmt.encode_pngs(frames), (NUM_FRAMES - 1, 32, 32, 1),
                                     np.zeros((NUM_FRAMES - 1, 3, 2)), np.ones(3), 4)
    _replace_record(os.path.join(copy, "scenes-00000-of-00003.tfrecord"), 3, short)
    example = tf.train.Example()
    example.features.feature["frames"].int64_list.value.append(3)  # frames of the wrong type
    _replace_record(os.path.join(copy, SHARD1), 0, example.SerializeToString())
    with pytest.raises(DatasetError) as error:
        readers.scenes_dataset(copy)
    message = str(error.value)
    assert "(2 unusable record(s))" in message
    assert "scenes-00000-of-00003.tfrecord: record 3" in message and "has 3 frames, expected T = 4" in message
    assert f"{SHARD1}: record 0" in message and "not a bouncing-balls Example" in message
    assert len(_positions(copy, skip_bad_records=True)) == NUM_SCENES - 2


def test_bad_record_reached_while_iterating_names_the_file(copy, monkeypatch):
    # If the upfront scan is bypassed (e.g. a file changed after it), the in-graph check still names it.
    short = fmt.encode_scene_example(fmt.encode_pngs(np.zeros((2, 32, 32, 1), np.uint8)), (2, 32, 32, 1),
                                     np.zeros((2, 3, 2)), np.ones(3), 0)
    _replace_record(os.path.join(copy, "scenes-00000-of-00003.tfrecord"), 0, short)
    monkeypatch.setattr(readers, "_content_problems", lambda records, spec: [])
    with pytest.raises(tf.errors.InvalidArgumentError, match="scenes-00000-of-00003.tfrecord"):
        list(readers.scenes_dataset(copy))


def test_bad_reader_arguments_raise_config_errors(clean):
    directory = clean[0]
    with pytest.raises(ConfigError, match="clip_length=5 is longer than the scenes .* \\(T = 4\\)"):
        readers.clips_dataset(directory, 2, clip_length=5)
    with pytest.raises(ConfigError, match="batch_size=0"):
        readers.random_frames_dataset(directory, 0)


# ---------------------------------------------------------------------------------------------- generator


@pytest.mark.parametrize("fields, flag", [
    (dict(size=33), "--size=33: must be one of \\(30, 32, 64\\)"),
    (dict(size=32, num_balls=3, radius=6.0), "--radius=6.0: too large to place 3 non-overlapping balls"),
    (dict(radius=0.5), "--radius=0.5: must be at least 1 pixel"),
    (dict(channels=2), "--channels=2"),
    (dict(num_scenes=4, shards=5), "--shards=5: more shards than scenes"),
    (dict(num_frames=1), "--num_frames=1"),
    (dict(seed=-1), "--seed=-1"),
    (dict(max_speed=20.0), "--max_speed=20.0"),
])
def test_bad_generator_settings_name_the_flag(fields, flag):
    with pytest.raises(ConfigError, match=flag):
        bb.BouncingBallsConfig(**fields)


def test_bad_workers_and_output_dir_fail_before_generating(tmp_path):
    config = bb.BouncingBallsConfig(num_scenes=2, num_frames=2, shards=1)
    with pytest.raises(ConfigError, match="--workers=0"):
        bb.generate_dataset(config, str(tmp_path / "out"), workers=0)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="--output_dir=.*file: exists and is not a directory"):
        bb.generate_dataset(config, str(tmp_path / "file"), workers=1)
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_cli_with_a_bad_flag_exits_with_a_message_and_writes_nothing(tmp_path):
    out = tmp_path / "never"
    done = subprocess.run([sys.executable, "-m", "data_tools.make_bouncing_balls", f"--output_dir={out}",
                           "--size=48", "--num_scenes=10"], capture_output=True, text=True, timeout=120, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": REPO})
    assert done.returncode == 1
    assert "tfvidgan.errors.ConfigError: --size=48: must be one of (30, 32, 64)" in done.stderr
    assert not out.exists() and os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------------- listing + scan


def test_listed_shard_missing_is_named_and_unlisted_files_are_reported(copy, caplog):
    shutil.copy(os.path.join(copy, SHARD1), os.path.join(copy, "scenes-extra.tfrecord"))
    with caplog.at_level("WARNING"):
        assert len(_positions(copy)) == NUM_SCENES  # the unlisted copy is ignored
    assert "not listed in the metadata" in caplog.text and "scenes-extra.tfrecord" in caplog.text
    os.remove(os.path.join(copy, SHARD1))
    with pytest.raises(DatasetError, match=f"{SHARD1}: shard listed in .*metadata.json is missing"):
        readers.random_frames_dataset(copy, 4)
    with pytest.raises(DatasetError, match=f"{SHARD1}: shard listed in .*metadata.json is missing"):
        readers.scenes_dataset(os.path.join(copy, "scenes-*.tfrecord"))
    # A glob that does not cover the missing shard reads the shards it names.
    assert len(_positions(os.path.join(copy, "scenes-00000-*"))) == 4


def test_png_with_a_good_header_but_corrupt_pixels_is_caught_by_the_scan(copy, clean):
    frames = clean[2].frames[6]
    pngs = fmt.encode_pngs(frames)
    broken = bytearray(pngs[1])
    broken[45:60] = b"\xff" * 15  # inside the IDAT zlib stream; header intact
    pngs[1] = bytes(broken)
    record = fmt.encode_scene_example(pngs, frames.shape, clean[2].positions[6], clean[2].radii[6], 6)
    _replace_record(os.path.join(copy, SHARD1), 2, record)
    offsets, _ = _record_offsets(os.path.join(copy, SHARD1))
    with pytest.raises(DatasetError, match=f"{SHARD1}: record 2 at byte {offsets[2]}: wrong content: frame 1 does "
                                           "not decode as a PNG"):
        readers.random_frames_dataset(copy, 4)
    _assert_scenes(_positions(copy, skip_bad_records=True), clean[2], missing={6})
    # Training-style reading never meets the bad frame either.
    frames = list(readers.clips_dataset(copy, 1, seed=0, repeat=False, skip_bad_records=True))
    assert len(frames) == NUM_SCENES - 1


def test_non_example_record_with_non_utf8_bytes_is_named(copy, clean):
    _replace_record(os.path.join(copy, SHARD1), 3, bytes(range(128, 256)) * 4)
    offsets, _ = _record_offsets(os.path.join(copy, SHARD1))
    with pytest.raises(DatasetError, match=f"{SHARD1}: record 3 at byte {offsets[3]}: wrong content: not a "
                                           "tf.train.Example"):
        readers.scenes_dataset(copy)
    _assert_scenes(_positions(copy, skip_bad_records=True), clean[2], missing={7})


def test_nonexistent_data_path_is_named_itself(tmp_path):
    missing = str(tmp_path / "no_such_run" / "data")
    with pytest.raises(DatasetError, match=f"{missing}: no such file or directory"):
        readers.read_metadata(missing)
    with pytest.raises(DatasetError, match=f"{missing}: .*no such file or directory"):
        readers.random_frames_dataset(missing, 2)
