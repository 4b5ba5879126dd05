"""Round trips through the bouncing-balls TFRecord format and the tf.data readers."""
import os

import numpy as np
import pytest
import tensorflow as tf

from tfvidgan.data import bouncing_balls as bb
from tfvidgan.data import format as fmt
from tfvidgan.data import readers, records

NUM_SCENES, NUM_FRAMES, SIZE, BALLS, SHARDS = 24, 8, 32, 3, 4


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    config = bb.BouncingBallsConfig(num_scenes=NUM_SCENES, num_frames=NUM_FRAMES, num_balls=BALLS, size=SIZE,
                                    shards=SHARDS, seed=21)
    directory = str(tmp_path_factory.mktemp("bb") / "data")
    bb.generate_dataset(config, directory, workers=1, show_progress=False)
    truth = bb.generate_scenes(config, 0, NUM_SCENES)
    return directory, truth


def _unit(frames_uint8):
    return frames_uint8.astype(np.float32) * np.float32(2.0 / 255.0) - np.float32(1.0)


# ---------------------------------------------------------------------------------------------- format


def test_framing_scan_reads_tensorflow_written_records_and_finds_corrupt_ones(tmp_path):
    rng = np.random.default_rng(0)
    payloads = [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in (0, 1, 3, 4, 511, 512, 513, 5000)]
    path = str(tmp_path / "x.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for record in payloads:
            writer.write(record)
    data = open(path, "rb").read()
    report = records.scan_framing(data)
    assert report.tail_problem == "" and report.bad == ()
    assert [data[s.offset:s.offset + s.length] for s in report.good] == payloads
    assert [s.index for s in report.good] == list(range(8))
    # The masked CRC-32C of the first length header is what TensorFlow stored.
    assert records.masked_crc32c(data[:8]) == int.from_bytes(data[8:12], "little")
    corrupt = bytearray(data)
    corrupt[report.good[6].offset + 100] ^= 1          # record 6's data
    report = records.scan_framing(bytes(corrupt))
    assert [b[:2] for b in report.bad] == [(6, report.good[5].offset + 512 + 4)]  # record 5 holds 512 bytes
    assert len(report.good) == 7


def test_example_and_png_encoding_parse_back_with_tensorflow():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (3, 5, 7, 3), dtype=np.uint8)
    pngs = fmt.encode_pngs(frames)
    for png, frame in zip(pngs, frames):
        np.testing.assert_array_equal(tf.io.decode_png(png, channels=3).numpy(), frame)
    positions = rng.normal(size=(3, 2, 2)).astype(np.float32)
    example = tf.train.Example.FromString(fmt.encode_scene_example(pngs, (3, 5, 7, 3), positions, [1.5, 2.5], 17))
    feature = example.features.feature
    assert list(feature["frames"].bytes_list.value) == pngs
    assert list(feature["shape"].int64_list.value) == [3, 5, 7, 3]
    np.testing.assert_array_equal(np.array(feature["positions"].float_list.value, np.float32), positions.ravel())
    assert list(feature["radii"].float_list.value) == [1.5, 2.5]
    assert list(feature["scene_index"].int64_list.value) == [17]


# ---------------------------------------------------------------------------------------------- readers


def test_metadata_and_shard_listing(dataset):
    directory, _ = dataset
    meta = readers.read_metadata(directory)
    assert (meta.num_scenes, meta.shape, meta.num_balls, meta.num_shards) == (24, (8, 32, 32, 1), 3, 4)
    assert meta.radius == pytest.approx(3.2) and meta.seed == 21
    assert sum(s.num_records for s in meta.shards) == 24
    shards = readers.list_shards(directory)
    assert [os.path.basename(p) for p in shards] == [f"scenes-0000{i}-of-00004.tfrecord" for i in range(4)]
    assert readers.list_shards(os.path.join(directory, "scenes-0000[12]-*")) == shards[1:3]
    assert readers.read_metadata(os.path.join(directory, "scenes-*.tfrecord")) == meta


def test_scenes_round_trip_frames_positions_and_radii_in_order(dataset):
    directory, truth = dataset
    scenes = list(readers.scenes_dataset(directory).as_numpy_iterator())
    assert len(scenes) == NUM_SCENES
    for index, scene in enumerate(scenes):
        assert scene["frames"].dtype == np.float32 and scene["frames"].shape == (NUM_FRAMES, SIZE, SIZE, 1)
        np.testing.assert_array_equal(scene["frames"], _unit(truth.frames[index]))
        np.testing.assert_array_equal(scene["positions"], truth.positions[index])
        np.testing.assert_array_equal(scene["radii"], truth.radii[index])
    assert scenes[0]["frames"].min() == -1.0 and scenes[0]["frames"].max() == 1.0


def test_clips_equal_the_matching_slice_of_their_scene(dataset):
    directory, truth = dataset
    ds = readers.clips_dataset(directory, 4, clip_length=3, seed=5, with_positions=True)
    offsets = []
    for batch in ds.take(6).as_numpy_iterator():
        assert batch["frames"].shape == (4, 3, SIZE, SIZE, 1)
        for k in range(4):
            scene, start = batch["scene_index"][k], batch["offset"][k]
            assert 0 <= start <= NUM_FRAMES - 3
            np.testing.assert_array_equal(batch["frames"][k], _unit(truth.frames[scene, start:start + 3]))
            np.testing.assert_array_equal(batch["positions"][k], truth.positions[scene, start:start + 3])
            np.testing.assert_array_equal(batch["radii"][k], truth.radii[scene])
            offsets.append(start)
    assert len(set(offsets)) >= 4  # offsets are random


def test_whole_scene_clips_by_default(dataset):
    directory, truth = dataset
    clips = next(iter(readers.clips_dataset(directory, 2, seed=0, with_positions=True)))
    assert clips["frames"].shape == (2, NUM_FRAMES, SIZE, SIZE, 1)
    assert clips["offset"].numpy().tolist() == [0, 0]
    plain = next(iter(readers.clips_dataset(directory, 2, seed=0)))
    np.testing.assert_array_equal(plain.numpy(), clips["frames"].numpy())


def _identify(frames, truth):
    """(scene, t) of each frame, by exact match against every frame of the dataset."""
    table = {_unit(truth.frames[s, t]).tobytes(): (s, t)
             for s in range(truth.frames.shape[0]) for t in range(truth.frames.shape[1])}
    return [table[f.tobytes()] for f in frames]


def test_random_frames_vary_over_scenes_and_frames_and_follow_the_seed(dataset):
    directory, truth = dataset
    batches = list(readers.random_frames_dataset(directory, 16, seed=3).take(5).as_numpy_iterator())
    assert batches[0].shape == (16, SIZE, SIZE, 1) and batches[0].dtype == np.float32
    assert -1.0 <= batches[0].min() and batches[0].max() <= 1.0
    picked = _identify(np.concatenate(batches), truth)
    assert len({s for s, _ in picked}) >= 20
    assert len({t for _, t in picked}) == NUM_FRAMES
    again = list(readers.random_frames_dataset(directory, 16, seed=3).take(5).as_numpy_iterator())
    np.testing.assert_array_equal(np.concatenate(again), np.concatenate(batches))
    other = next(iter(readers.random_frames_dataset(directory, 16, seed=4))).numpy()
    assert not np.array_equal(other, batches[0])


def test_one_pass_without_repeat_visits_every_scene_once(dataset):
    directory, truth = dataset
    frames = np.concatenate(list(readers.random_frames_dataset(directory, 8, seed=1, repeat=False)
                                 .as_numpy_iterator()))
    assert frames.shape[0] == NUM_SCENES
    assert sorted(s for s, _ in _identify(frames, truth)) == list(range(NUM_SCENES))
    # drop_remainder: 24 scenes in batches of 5 give 4 full batches
    assert len(list(readers.random_frames_dataset(directory, 5, seed=1, repeat=False))) == 4


@pytest.mark.parametrize("pipelines", [2, 5])  # 4 shards: by files for 2 pipelines, by records for 5
def test_per_worker_sharding_gives_disjoint_data_covering_everything(dataset, pipelines):
    directory, _ = dataset
    seen = []
    for k in range(pipelines):
        context = tf.distribute.InputContext(num_input_pipelines=pipelines, input_pipeline_id=k,
                                             num_replicas_in_sync=pipelines)
        ds = readers.clips_dataset(directory, 1, clip_length=1, seed=None, input_context=context, repeat=False,
                                   with_positions=True)
        seen.append([int(b["scene_index"][0]) for b in ds.as_numpy_iterator()])
    flat = [s for worker in seen for s in worker]
    assert sorted(flat) == list(range(NUM_SCENES))  # disjoint and complete
    assert all(worker for worker in seen)


def test_scan_reports_a_healthy_dataset(dataset):
    directory, _ = dataset
    report = readers.scan_shards(directory)
    assert report.num_good_records == NUM_SCENES and report.num_bad_records == 0
    assert [len(s.good) for s in report.shards] == [6, 6, 6, 6]
