"""CUP (sensed, scene) pairs: simulation, TFRecord round trip, metadata, reader errors, sharding."""
import dataclasses
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tfvidgan.cup.operator import make_mask
from tfvidgan.data.cup_pairs import (
    MASK_FILE,
    METADATA_FILE,
    cup_pairs_dataset,
    encode_example,
    read_cup_metadata,
    shard_name,
)
from tfvidgan.data.cup_simulation import CupPairsConfig, clip_offsets, generate_cup_pairs, scene_to_intensity
from tfvidgan.errors import ConfigError, DatasetError

LENGTH, HEIGHT, WIDTH = 7, 6, 5


def synthetic_scenes(num, seed=0, channels=1):
    """Dicts like readers.scenes_dataset yields: frames [L, H, W, C] in [-1, 1] on the uint8 grid."""
    rng = np.random.default_rng(seed)
    return [
        {"frames": (rng.integers(0, 256, (LENGTH, HEIGHT, WIDTH, channels)) / 127.5 - 1.0).astype(np.float32)}
        for _ in range(num)
    ]


def read_all(pattern, **kwargs):
    kwargs.setdefault("shuffle", False)
    sensed, scenes = [], []
    for s, x in cup_pairs_dataset(pattern, 64, repeat=False, **kwargs):
        sensed.append(s.numpy())
        scenes.append(x.numpy())
    return np.concatenate(sensed), np.concatenate(scenes)


@pytest.fixture(scope="module")
def noiseless(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("cup") / "pairs")
    scenes = synthetic_scenes(5)
    config = CupPairsConfig(scenes="synthetic", num_frames=3, clips_per_scene=2, mask_seed=4, shards=2, batch_size=3)
    metadata = generate_cup_pairs(config, directory, scenes=scenes)
    return directory, scenes, metadata


def test_pairs_round_trip_exactly_and_sensed_is_the_operator_applied_to_the_scene(noiseless):
    directory, scenes, metadata = noiseless
    assert metadata.clip_offsets == (0, 4) and metadata.num_examples == 10 and metadata.num_scenes == 5
    assert sorted(os.listdir(directory)) == sorted([MASK_FILE, METADATA_FILE, shard_name(0, 2), shard_name(1, 2)])
    sensed, got = read_all(os.path.join(directory, "cup-pairs-*.tfrecord"))
    assert sensed.shape == (10, HEIGHT + 2, WIDTH, 1) and got.shape == (10, 3, HEIGHT, WIDTH, 1)
    expected = [scene_to_intensity(s["frames"])[o : o + 3] for s in scenes for o in (0, 4)]
    # Every expected clip comes back exactly once (order is interleaved over shards).
    matches = [[i for i, e in enumerate(expected) if np.array_equal(g, e)] for g in got]
    assert sorted(m[0] for m in matches if len(m) == 1) == list(range(10))
    assert got.min() >= 0.0 and got.max() <= 1.0 and got.max() > 0.9
    np.testing.assert_allclose(sensed, metadata.operator().forward(got).numpy(), atol=1e-6)


def test_metadata_and_mask_files(noiseless):
    directory, _, written = noiseless
    metadata = read_cup_metadata(directory)
    np.testing.assert_array_equal(metadata.mask, make_mask(HEIGHT, WIDTH, seed=4))
    np.testing.assert_array_equal(np.load(os.path.join(directory, MASK_FILE)), metadata.mask)
    assert (metadata.num_frames, metadata.height, metadata.width) == (3, HEIGHT, WIDTH)
    assert metadata.sensed_shape == (HEIGHT + 2, WIDTH, 1) and metadata.scene_shape == (3, HEIGHT, WIDTH, 1)
    assert metadata.examples_per_shard == (5, 5) and metadata.photons == 0 and metadata.read_noise == 0
    assert metadata.to_json_dict() == written.to_json_dict()


def test_noise_is_seeded_per_record_and_independent_of_the_simulation_batch(tmp_path):
    scenes = synthetic_scenes(4, seed=1, channels=3)
    config = CupPairsConfig(scenes="s", num_frames=4, photons=50.0, read_noise=0.02, noise_seed=3, shards=1)
    a = generate_cup_pairs(dataclasses.replace(config, batch_size=1), str(tmp_path / "a"), scenes=scenes)
    generate_cup_pairs(dataclasses.replace(config, batch_size=64), str(tmp_path / "b"), scenes=scenes)
    shard = shard_name(0, 1)
    assert (tmp_path / "a" / shard).read_bytes() == (tmp_path / "b" / shard).read_bytes()
    sensed, scene = read_all(str(tmp_path / "a"))
    assert scene.shape == (4, 4, HEIGHT, WIDTH, 1)  # colour converted to one channel
    clean = a.operator().forward(scene).numpy()
    noise = sensed - clean
    assert np.abs(noise).max() > 0
    # Poisson/50 + N(0, 0.02²): variance clean/50 + 0.0004 per pixel; standardised noise ~ unit variance.
    z = noise / np.sqrt(clean / 50.0 + 0.02**2)
    assert abs(z.mean()) < 0.3 and 0.6 < z.std() < 1.4
    generate_cup_pairs(dataclasses.replace(config, noise_seed=4), str(tmp_path / "c"), scenes=scenes)
    assert (tmp_path / "a" / shard).read_bytes() != (tmp_path / "c" / shard).read_bytes()


def test_scene_to_intensity_maps_the_signed_range_and_converts_colour_to_luma():
    frames = np.array([[[[-1.0], [1.0], [0.0]]]], np.float32)  # [1, 1, 3, 1]
    np.testing.assert_allclose(scene_to_intensity(frames)[0, 0, :, 0], [0.0, 1.0, 0.5])
    rgb = np.array([[[[1.0, 1.0, 1.0], [-1.0, 1.0, -1.0], [-1.0, -1.0, -1.0]]]], np.float32)
    # pure green: ((0.587 - 0.299 - 0.114) + 1) / 2 = 0.587
    np.testing.assert_allclose(scene_to_intensity(rgb)[0, 0, :, 0], [1.0, 0.587, 0.0], atol=1e-6)
    with pytest.raises(DatasetError, match="channels"):
        scene_to_intensity(np.zeros((1, 2, 2, 2), np.float32))


def test_clip_offsets_are_evenly_spaced_and_validated(tmp_path):
    assert clip_offsets(10, 4, 1) == (0,)
    assert clip_offsets(10, 4, 3) == (0, 3, 6)
    assert clip_offsets(10, 4, 7) == tuple(range(7))
    assert clip_offsets(4, 4, 1) == (0,)
    with pytest.raises(ConfigError, match="--clips_per_scene"):
        clip_offsets(10, 4, 8)
    with pytest.raises(ConfigError, match="--num_frames"):
        clip_offsets(3, 4, 1)
    with pytest.raises(ConfigError, match="--photons"):
        CupPairsConfig(scenes="x", photons=-1).validate()
    with pytest.raises(ConfigError, match="--num_frames"):
        generate_cup_pairs(CupPairsConfig(scenes="x", num_frames=8), str(tmp_path / "out"), scenes=synthetic_scenes(1))
    assert os.listdir(tmp_path) == []  # nothing left behind


def test_existing_output_dir_needs_overwrite_and_must_be_a_cup_dataset(tmp_path):
    out = str(tmp_path / "pairs")
    config = CupPairsConfig(scenes="s", num_frames=3, shards=1)
    generate_cup_pairs(config, out, scenes=synthetic_scenes(2))
    with pytest.raises(ConfigError, match="--overwrite"):
        generate_cup_pairs(config, out, scenes=synthetic_scenes(3))
    assert read_cup_metadata(out).num_examples == 2
    generate_cup_pairs(config, out, overwrite=True, scenes=synthetic_scenes(3))
    assert read_cup_metadata(out).num_examples == 3
    assert sorted(os.listdir(tmp_path)) == ["pairs"]  # no temporary directories left behind
    other = tmp_path / "precious"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a CUP pairs dataset"):
        generate_cup_pairs(config, str(other), overwrite=True, scenes=synthetic_scenes(1))
    assert (other / "notes.txt").read_text() == "keep me"


def copy_dataset(src, tmp_path):
    dst = str(tmp_path / "copy")
    shutil.copytree(src, dst)
    return dst


def test_reader_errors_name_the_file(noiseless, tmp_path):
    directory, _, metadata = noiseless
    with pytest.raises(DatasetError, match=r"nothing-\*\.tfrecord: no files match this pattern"):
        cup_pairs_dataset(str(tmp_path / "nothing-*.tfrecord"), 4)

    broken = copy_dataset(directory, tmp_path)
    os.remove(os.path.join(broken, METADATA_FILE))
    with pytest.raises(DatasetError, match=r"copy/metadata\.json"):
        cup_pairs_dataset(broken, 4)
    shutil.rmtree(broken)

    broken = copy_dataset(directory, tmp_path)
    np.save(os.path.join(broken, MASK_FILE), np.ones((HEIGHT, WIDTH), np.float32))
    with pytest.raises(DatasetError, match=r"mask\.npy.*differs"):
        read_cup_metadata(broken)
    shutil.rmtree(broken)

    broken = copy_dataset(directory, tmp_path)
    shard = os.path.join(broken, shard_name(1, 2))
    data = bytearray(open(shard, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(shard, "wb").write(bytes(data))
    with pytest.raises(DatasetError, match=shard_name(1, 2)):
        cup_pairs_dataset(broken, 4)
    shutil.rmtree(broken)

    broken = copy_dataset(directory, tmp_path)
    shard = os.path.join(broken, shard_name(0, 2))
    with tf.io.TFRecordWriter(shard) as writer:
        good = np.zeros(metadata.scene_shape, np.float32)
        writer.write(encode_example(np.zeros(metadata.sensed_shape, np.float32), good, 0, 0))
        writer.write(encode_example(np.zeros((HEIGHT + 1, WIDTH, 1), np.float32), good, 1, 0))
    with pytest.raises(DatasetError, match=shard_name(0, 2) + r": record 1 at byte \d+: wrong content: sensed_shape"):
        cup_pairs_dataset(broken, 4)
    # Opting out of the check: the bad record is dropped, the rest is read.
    sensed, _ = read_all(broken, skip_bad_records=True)
    assert sensed.shape[0] == 1 + 5


def test_input_context_splits_shards_and_batches_are_static_when_repeating(noiseless):
    directory, _, _ = noiseless
    parts = []
    for pipeline in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline, num_replicas_in_sync=2)
        parts.append(read_all(directory, input_context=context)[1])
    assert [len(p) for p in parts] == [5, 5]
    everything = read_all(directory)[1]
    union = np.concatenate(parts)
    assert sorted(map(bytes, union)) == sorted(map(bytes, everything))

    ds = cup_pairs_dataset(directory, 4, seed=1)
    assert ds.element_spec[0].shape == (4, HEIGHT + 2, WIDTH, 1)
    assert ds.element_spec[1].shape == (4, 3, HEIGHT, WIDTH, 1)
    first = [x.numpy() for _, x in ds.take(4)]  # 16 > 10 examples: repeats
    again = [x.numpy() for _, x in cup_pairs_dataset(directory, 4, seed=1).take(4)]
    np.testing.assert_array_equal(np.stack(first), np.stack(again))
    # Fewer shards (2) than pipelines (3): every third record each, disjoint and complete.
    parts = [read_all(directory, input_context=tf.distribute.InputContext(3, k, 3))[1] for k in range(3)]
    assert [len(p) for p in parts] == [4, 3, 3]
    assert sorted(map(bytes, np.concatenate(parts))) == sorted(map(bytes, everything))


def test_command_line_on_real_bouncing_balls(tmp_path):
    import subprocess
    import sys

    from tfvidgan.data.bouncing_balls import BouncingBallsConfig, generate_dataset
    from tfvidgan.data.readers import scenes_dataset

    balls = str(tmp_path / "balls")
    generate_dataset(BouncingBallsConfig(num_scenes=3, num_frames=9, size=30, shards=1, seed=0), balls,
                     workers=1, show_progress=False)
    out = str(tmp_path / "cup")
    args = [sys.executable, "-m", "data_tools.make_cup_pairs", f"--scenes={balls}", f"--output_dir={out}",
            "--num_frames=5", "--clips_per_scene=2", "--mask_seed=7", "--shards=3"]
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=repo)
    assert done.returncode == 0, done.stderr[-2000:]
    metadata = read_cup_metadata(out)
    assert (metadata.num_examples, metadata.clip_offsets, metadata.sensed_shape) == (6, (0, 4), (34, 30, 1))
    np.testing.assert_array_equal(metadata.mask, make_mask(30, 30, seed=7))
    # Records are dealt round-robin: shard k holds records k, k + 3, ... in scene/offset order.
    expected = [(s["frames"] + 1.0) / 2.0 for s in scenes_dataset(balls).as_numpy_iterator()]
    expected = [e[o : o + 5] for e in expected for o in (0, 4)]
    for k in range(3):
        sensed, scenes = read_all(os.path.join(out, shard_name(k, 3)))
        np.testing.assert_allclose(scenes, np.stack(expected[k::3]), atol=1e-6)
        np.testing.assert_allclose(sensed, metadata.operator().forward(scenes).numpy(), atol=1e-5)


# -- the shared reader core: the same guarantees as the bouncing-balls reader --------------------


def _spans(path):
    from tfvidgan.data import records

    return records.scan_framing(open(path, "rb").read()).good


def test_truncated_cup_shard_fails_naming_it_and_skipping_keeps_the_rest(noiseless, tmp_path, caplog):
    directory = copy_dataset(noiseless[0], tmp_path)
    shard = os.path.join(directory, shard_name(1, 2))
    spans = _spans(shard)
    data = open(shard, "rb").read()
    open(shard, "wb").write(data[:spans[3].offset - 12])  # records 0-2 intact, 3 and 4 gone
    with pytest.raises(DatasetError, match=shard_name(1, 2) + r": records 3… \(2 records\) at byte \d+: file ends "
                                                              "after 3 records but metadata.json lists 5"):
        cup_pairs_dataset(directory, 4)
    with caplog.at_level("WARNING"):
        sensed, _ = read_all(directory, skip_bad_records=True)
    assert sensed.shape[0] == 10 - 2
    assert "Skipping 2 bad record(s) in 1 shard(s)" in caplog.text


def test_corrupt_cup_record_is_named_exactly_and_only_it_is_skipped(noiseless, tmp_path, caplog):
    directory = copy_dataset(noiseless[0], tmp_path)
    shard = os.path.join(directory, shard_name(0, 2))
    spans = _spans(shard)
    data = bytearray(open(shard, "rb").read())
    data[spans[3].offset + 40] ^= 0xFF  # inside record 3's data
    open(shard, "wb").write(bytes(data))
    with pytest.raises(DatasetError, match=shard_name(0, 2) + f": record 3 at byte {spans[3].offset - 12}: "
                                                              "data CRC mismatch"):
        cup_pairs_dataset(directory, 4, shuffle=False, repeat=False)
    _, all_scenes = read_all(noiseless[0])
    with caplog.at_level("WARNING"):
        _, scenes = read_all(directory, skip_bad_records=True)
    assert scenes.shape[0] == 9 and "Skipping 1 bad record(s)" in caplog.text
    # File order: shard 0 holds records 0, 2, 4, ... of the simulation; its record 3 is the lost one.
    np.testing.assert_array_equal(scenes, np.delete(all_scenes, 3, axis=0))


def test_cup_shard_listed_but_missing_is_named_and_unlisted_files_are_reported(noiseless, tmp_path, caplog):
    directory = copy_dataset(noiseless[0], tmp_path)
    shutil.copy(os.path.join(directory, shard_name(1, 2)), os.path.join(directory, "cup-pairs-extra.tfrecord"))
    with caplog.at_level("WARNING"):
        sensed, _ = read_all(directory)
    assert sensed.shape[0] == 10  # the unlisted copy is not read
    assert "not listed in the metadata" in caplog.text and "cup-pairs-extra.tfrecord" in caplog.text
    os.remove(os.path.join(directory, shard_name(1, 2)))
    with pytest.raises(DatasetError, match=shard_name(1, 2) + r": shard listed in .*metadata\.json is missing"):
        cup_pairs_dataset(directory, 4)


def test_cup_glob_data_and_non_example_records(noiseless, tmp_path):
    directory = copy_dataset(noiseless[0], tmp_path)
    pattern = os.path.join(directory, "cup-pairs-*.tfrecord")
    assert read_cup_metadata(pattern).num_examples == 10  # --data=<glob> is accepted everywhere
    assert read_all(pattern)[0].shape[0] == 10
    with pytest.raises(DatasetError, match="nope: no such file or directory"):
        read_cup_metadata(os.path.join(directory, "nope"))
    shard = os.path.join(directory, shard_name(0, 2))
    garbage = bytes(range(128, 256)) * 3  # not an Example, not UTF-8
    with tf.io.TFRecordWriter(shard) as writer:
        for record in [garbage] + [r.numpy() for r in tf.data.TFRecordDataset(os.path.join(noiseless[0],
                                                                                          shard_name(0, 2)))][1:]:
            writer.write(record)
    with pytest.raises(DatasetError, match=shard_name(0, 2) + ": record 0 at byte 0: wrong content: not a "
                                                              "tf.train.Example"):
        cup_pairs_dataset(pattern, 4)
    assert read_all(pattern, skip_bad_records=True)[0].shape[0] == 9


@pytest.mark.parametrize("batch_size", [0, -2, 2.5, True])
def test_bad_batch_sizes_fail_the_same_way_in_both_readers(noiseless, batch_size):
    from tfvidgan.data import readers

    with pytest.raises(ConfigError, match=f"batch_size={batch_size!r} must be a positive integer"):
        cup_pairs_dataset(noiseless[0], batch_size)
    with pytest.raises(ConfigError, match=f"batch_size={batch_size!r} must be a positive integer"):
        readers.random_frames_dataset(noiseless[0], batch_size)
