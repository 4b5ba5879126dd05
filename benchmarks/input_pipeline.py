r"""Throughput of the tf.data readers against a plain single-threaded Python reader of the same files.

    python -m benchmarks.input_pipeline                       # generates 2000 scenes in a temp dir
    python -m benchmarks.input_pipeline --data=data/bb32 --seconds=10

Measures, in one run: frames/s of `random_frames_dataset`, clips/s of `clips_dataset`, and the same
work done by a baseline that reads the shards with `tf.compat.v1.io.tf_record_iterator`, parses with
`tf.train.Example.FromString` and decodes with Pillow, one record at a time (sequential reading, so
the baseline gets no shuffling cost). The two readers of a comparison run in alternating short
rounds, so that load from other processes affects both alike. Also reports how long the upfront
shard scan took. Prints one JSON object with the rates and the tf.data / baseline ratios.

``codecs`` compares, on 64 generated scenes, the encoders the generator uses against the library
alternatives: PNG frames by `format.encode_pngs` (numpy + zlib, kept because it is faster) vs
Pillow, one `tf.train.Example` per scene, and the TFRecord framing scan (`google_crc32c`).
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import sys
import tempfile
import time

from absl import flags

from tfvidgan import cli

FLAGS = flags.FLAGS
flags.DEFINE_string("data", "", "Dataset directory or shard glob; empty: generate one in a temp dir.")
flags.DEFINE_integer("num_scenes", 2000, "Scenes to generate when --data is empty.")
flags.DEFINE_integer("size", 32, "Frame size when generating (30, 32 or 64).")
flags.DEFINE_integer("frames_batch", 64, "Batch size of the frames pipeline.")
flags.DEFINE_integer("clips_batch", 16, "Batch size of the clips pipeline.")
flags.DEFINE_integer("clip_length", 16, "Clip length L (≤ T).")
flags.DEFINE_float("seconds", 8.0, "Measuring time per reader (after a warm-up), in alternating rounds.")


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig:
    data: str
    num_scenes: int
    size: int
    frames_batch: int
    clips_batch: int
    clip_length: int
    seconds: float


class _Meter:
    """Counts items per second of one reader over several short rounds."""

    def __init__(self, next_item, items_per_call: int, warmup: int = 3):
        self.next_item, self.items_per_call = next_item, items_per_call
        for _ in range(warmup):
            next_item()
        self.items, self.seconds = 0, 0.0

    def run(self, seconds: float) -> None:
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            self.next_item()
            self.items += self.items_per_call
        self.seconds += time.perf_counter() - start

    @property
    def rate(self) -> float:
        return self.items / self.seconds


def _compare(tf_meter: _Meter, python_meter: _Meter, seconds: float, rounds: int = 4) -> tuple[float, float]:
    """Alternates the two readers in short rounds so that a shared machine's load hits both alike."""
    for _ in range(rounds):
        tf_meter.run(seconds / rounds)
        python_meter.run(seconds / rounds)
    return tf_meter.rate, python_meter.rate


def _compare_readers(dataset, python_batches, batch: int, seconds: float) -> tuple[float, float]:
    """Items/s of a tf.data pipeline and of a Python batch iterator (the pipeline is freed after)."""
    iterator = iter(dataset)
    return _compare(_Meter(lambda: next(iterator), batch), _Meter(lambda: next(python_batches), batch), seconds)


def _python_reader(paths: list[str], clip_length: int | None, batch: int, rng):
    """Yields batches like the tf.data readers, in plain single-threaded Python."""
    import numpy as np
    import tensorflow as tf
    from PIL import Image

    def decode(png):
        return np.asarray(Image.open(io.BytesIO(png)), np.uint8)

    items = []
    while True:
        for path in paths:
            for record in tf.compat.v1.io.tf_record_iterator(path):
                feature = tf.train.Example.FromString(record).features.feature
                pngs = feature["frames"].bytes_list.value
                if clip_length is None:
                    chosen = [pngs[rng.integers(len(pngs))]]
                else:
                    offset = rng.integers(len(pngs) - clip_length + 1)
                    chosen = pngs[offset:offset + clip_length]
                frames = np.stack([decode(p) for p in chosen]).astype(np.float32) * (2.0 / 255.0) - 1.0
                items.append(frames[0] if clip_length is None else frames)
                if len(items) == batch:
                    yield np.stack(items)
                    items = []


def _best_seconds(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def codecs(size: int, num_scenes: int = 64) -> dict:
    """Encoder speeds of the generator's formats (best of 3), with Pillow's PNG encoder as the reference."""
    import numpy as np
    import tensorflow as tf
    from PIL import Image

    from tfvidgan.data import bouncing_balls as bb
    from tfvidgan.data import format as fmt

    config = bb.BouncingBallsConfig(num_scenes=num_scenes, num_frames=40, size=size, shards=1)
    batch = bb.generate_scenes(config, 0, num_scenes)
    frames = batch.frames.reshape((-1,) + batch.frames.shape[2:])

    def pillow_pngs():
        mode = "L" if frames.shape[-1] == 1 else "RGB"
        out = []
        for frame in frames:
            buffer = io.BytesIO()  # same zlib level and strategy as format.encode_pngs
            Image.fromarray(frame[..., 0] if mode == "L" else frame, mode).save(buffer, format="PNG",
                                                                               compress_level=6, compress_type=3)
            out.append(buffer.getvalue())
        return out

    ours = _best_seconds(lambda: fmt.encode_pngs(frames))
    pillow = _best_seconds(pillow_pngs)
    pngs = fmt.encode_pngs(frames)
    shape = batch.frames.shape[1:]
    records = [fmt.encode_scene_example(pngs[k * 40:(k + 1) * 40], shape, batch.positions[k], batch.radii[k], k)
               for k in range(num_scenes)]
    example = _best_seconds(lambda: [fmt.encode_scene_example(pngs[k * 40:(k + 1) * 40], shape, batch.positions[k],
                                                              batch.radii[k], k) for k in range(num_scenes)])
    path = os.path.join(tempfile.mkdtemp(prefix="codecs_"), "x.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for record in records * 10:
            writer.write(record)
    data = open(path, "rb").read()
    shutil.rmtree(os.path.dirname(path))
    scan = _best_seconds(lambda: fmt.scan_framing(data))
    decode = _best_seconds(lambda: [np.asarray(Image.open(io.BytesIO(p))) for p in pngs[:2000]]) / min(len(pngs), 2000)
    return {
        "png_encode_us_per_frame": round(ours / len(frames) * 1e6, 1),
        "pillow_png_encode_us_per_frame": round(pillow / len(frames) * 1e6, 1),
        "png_encode_speedup_vs_pillow": round(pillow / ours, 2),
        "png_bytes_per_frame": round(sum(map(len, pngs)) / len(pngs), 1),
        "pillow_png_bytes_per_frame": round(sum(map(len, pillow_pngs())) / len(pngs), 1),
        "pillow_png_decode_us_per_frame": round(decode * 1e6, 1),
        "tf_example_us_per_scene": round(example / num_scenes * 1e6, 1),
        "framing_scan_mb_per_s": round(len(data) / scan / 1e6, 1),
    }


def run(config: BenchmarkConfig) -> dict:
    import numpy as np

    from tfvidgan.data import readers

    temp = None
    data = config.data
    generate_seconds = None
    if not data:
        from tfvidgan.data.bouncing_balls import BouncingBallsConfig, generate_dataset
        temp = tempfile.mkdtemp(prefix="bb_bench_")
        data = os.path.join(temp, "data")
        start = time.perf_counter()
        generate_dataset(BouncingBallsConfig(num_scenes=config.num_scenes, size=config.size, shards=8), data,
                         show_progress=False)
        generate_seconds = time.perf_counter() - start
    try:
        meta = readers.read_metadata(data)
        start = time.perf_counter()
        readers.scan_shards(data)
        scan_seconds = time.perf_counter() - start
        paths = readers.list_shards(data)
        tf_frames, py_frames = _compare_readers(
            readers.random_frames_dataset(data, config.frames_batch, seed=0),
            _python_reader(paths, None, config.frames_batch, np.random.default_rng(0)),
            config.frames_batch, config.seconds)
        tf_clips, py_clips = _compare_readers(
            readers.clips_dataset(data, config.clips_batch, clip_length=config.clip_length, seed=0),
            _python_reader(paths, config.clip_length, config.clips_batch, np.random.default_rng(0)),
            config.clips_batch, config.seconds)
    finally:
        if temp:
            shutil.rmtree(temp, ignore_errors=True)
    return {
        "data": config.data or f"generated: {config.num_scenes} scenes",
        "shape": list(meta.shape), "num_scenes": meta.num_scenes, "shards": meta.num_shards,
        "cpus": os.cpu_count(), "generate_seconds": generate_seconds and round(generate_seconds, 2),
        "scan_seconds": round(scan_seconds, 3),
        "tf_frames_per_s": round(tf_frames, 1), "python_frames_per_s": round(py_frames, 1),
        "frames_ratio": round(tf_frames / py_frames, 2),
        "clip_length": config.clip_length,
        "tf_clips_per_s": round(tf_clips, 1), "python_clips_per_s": round(py_clips, 1),
        "clips_ratio": round(tf_clips / py_clips, 2),
        "codecs": codecs(meta.size),
    }


def main(argv) -> None:
    del argv
    config = BenchmarkConfig(data=FLAGS.data, num_scenes=FLAGS.num_scenes, size=FLAGS.size,
                             frames_batch=FLAGS.frames_batch, clips_batch=FLAGS.clips_batch,
                             clip_length=FLAGS.clip_length, seconds=FLAGS.seconds)
    print(json.dumps(run(config)))
    sys.stdout.flush()


if __name__ == "__main__":
    cli.run(main)
