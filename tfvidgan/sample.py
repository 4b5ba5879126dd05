r"""Writes samples from an exported generator.

    python -m tfvidgan.sample frames --export_dir=runs/frames/export --num_samples=64 --output=grid.png
    python -m tfvidgan.sample video  --export_dir=runs/video/export --num_samples=8 --output_dir=videos/

`--export_dir` is an export base directory (the newest numbered version is used) or one SavedModel.
Only TensorFlow is needed to run the SavedModels themselves; this tool adds the PNG/GIF writing.
"""
from __future__ import annotations

import os

from absl import app, flags, logging

from tfvidgan.errors import ConfigError
from tfvidgan.export import latest_version_dir
from tfvidgan.metrics.plotting import save_image_grid_png

FLAGS = flags.FLAGS
MODES = ("frames", "video")

flags.DEFINE_string("export_dir", None, "Exported SavedModel (base directory or one version).")
flags.DEFINE_integer("num_samples", 64, "How many frames (frames mode) or videos (video mode).")
flags.DEFINE_integer("seed", 0, "Sampling seed; the same seed gives the same samples.")
flags.DEFINE_string("output", "samples.png", "frames mode: PNG grid to write.")
flags.DEFINE_integer("rows", 0, "frames mode: grid rows (0 = about square).")


def load_signature(export_dir: str, name: str):
    """The signature `name` of the newest SavedModel under `export_dir` (with a clear error if absent)."""
    import tensorflow as tf
    path = latest_version_dir(export_dir)
    loaded = tf.saved_model.load(path)
    if name not in loaded.signatures:
        raise ConfigError(f"--export_dir={export_dir!r}: SavedModel {path!r} has no {name!r} signature "
                          f"(it has {sorted(loaded.signatures)}); is it the right kind of export?")
    return loaded.signatures[name]


def sample_frames(export_dir: str, num_samples: int, seed: int, output: str, rows: int = 0) -> str:
    """Draws `num_samples` frames with the export's `sample` signature and writes a PNG grid."""
    import tensorflow as tf
    sample = load_signature(export_dir, "sample")
    frames = sample(num_samples=tf.constant(num_samples, tf.int32), seed=tf.constant(seed, tf.int32))["frames"]
    save_image_grid_png(frames.numpy(), output, rows=rows or None)
    return output


def main(argv):
    if len(argv) != 2 or argv[1] not in MODES:
        raise ConfigError(f"usage: python -m tfvidgan.sample {{{'|'.join(MODES)}}} --export_dir=... "
                          f"(got {argv[1:]})")
    if not FLAGS.export_dir:
        raise ConfigError("--export_dir is required")
    if FLAGS.num_samples < 1:
        raise ConfigError(f"--num_samples must be >= 1, got {FLAGS.num_samples}")
    if argv[1] == "frames":
        path = sample_frames(FLAGS.export_dir, FLAGS.num_samples, FLAGS.seed, FLAGS.output, FLAGS.rows)
        logging.info("Wrote %s", path)
    else:
        from tfvidgan.video_sampling import sample_videos_cli
        sample_videos_cli(FLAGS)


if __name__ == "__main__":
    app.run(main)
