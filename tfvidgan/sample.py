r"""Writes samples from an exported generator.

    python -m tfvidgan.sample frames --export_dir=runs/frames/export --num_samples=64 --output=grid.png
    python -m tfvidgan.sample frames --export_dir=runs/frames/export --rejection_acceptance=0.1  # refined by its Ds
    python -m tfvidgan.sample video  --export_dir=runs/video/export --num_samples=8 --output_dir=videos/
    python -m tfvidgan.sample video  --export_dir=runs/video/export --rejection_acceptance=0.25  # clips kept by
        # the frame discriminators of the frames export the model was trained on

`--export_dir` is an export base directory (the newest numbered version is used) or one SavedModel.
Only TensorFlow is needed to run the SavedModels themselves; this tool adds the PNG/GIF writing.
"""
from __future__ import annotations

import os

import numpy as np
from absl import flags, logging

from tfvidgan import cli
from tfvidgan.errors import ConfigError
from tfvidgan.export import load_signature
from tfvidgan.json_report import write_json
from tfvidgan.metrics.plotting import save_image_grid_png
from tfvidgan.video_sampling import sample_videos, write_video_samples

FLAGS = flags.FLAGS
MODES = ("frames", "video")

def define_flags() -> None:
    """Defines this tool's flags (only when run as a program, so importing this module never defines flags,
    and `tfvidgan.evaluate` and `tfvidgan.sample` can be imported together)."""
    flags.DEFINE_string("export_dir", None, "Exported SavedModel (base directory or one version).")
    flags.DEFINE_integer("num_samples", 64, "How many frames (frames mode) or videos (video mode).")
    flags.DEFINE_integer("seed", 0, "Sampling seed; the same seed gives the same samples.")
    flags.DEFINE_string("output", "samples.png", "frames mode: PNG grid to write.")
    flags.DEFINE_integer("rows", 0, "frames mode: grid rows (0 = about square).")
    flags.DEFINE_float("rejection_acceptance", 0.0, "Keep this fraction of candidates by discriminator rejection "
                       "sampling (tfvidgan.rejection; about 1/acceptance generator calls per sample). frames mode: "
                       "with the export's own discriminators; video mode: clips judged by the discriminators of "
                       "the frames export the model was trained on. 0 = plain sampling.")
    flags.DEFINE_integer("num_frames", 30, "video mode: frames per video (any length, not only the training one).")
    flags.DEFINE_string("output_dir", "video_samples", "video mode: directory for GIFs, PNG strips, latents.npy.")
    flags.DEFINE_string("frames_generator", "", "video mode: render the trajectories with this frames export "
                        "instead of the one trained with (same latent size), e.g. an FG trained on 1 ball.")


def sample_frames(export_dir: str, num_samples: int, seed: int, output: str, rows: int = 0,
                  rejection_acceptance: float = 0.0) -> str:
    """Draws `num_samples` frames and writes a PNG grid: with the export's `sample` signature, or, when
    `rejection_acceptance` > 0, by discriminator rejection sampling with the export's own discriminators."""
    import tensorflow as tf
    if rejection_acceptance > 0:
        from tfvidgan.export import load_frame_discriminators, load_frames_generator
        from tfvidgan.rejection import DiscriminatorRejectionSampler, RejectionConfig

        config = RejectionConfig(acceptance=rejection_acceptance)
        generator, description = load_frames_generator(export_dir, flag="export_dir")
        sampler = DiscriminatorRejectionSampler(generator, load_frame_discriminators(export_dir),
                                                description["latent_dim"], config, seed=seed)
        result = sampler.sample(num_samples, seed=seed)
        logging.info("Rejection sampling: kept %d of %d candidates (%.3f)", num_samples, result.candidates,
                     result.acceptance)
        frames = result.samples
    else:
        sample = load_signature(export_dir, "sample", inputs={"num_samples", "seed"})
        frames = sample(num_samples=tf.constant(num_samples, tf.int32), seed=tf.constant(seed, tf.int32))["frames"]
        frames = frames.numpy()
    save_image_grid_png(frames, output, rows=rows or None)
    return output


def sample_videos_to_dir(export_dir: str, num_samples: int, num_frames: int, seed: int, frames_generator: str,
                         output_dir: str, rejection_acceptance: float = 0.0) -> list[str]:
    """video mode: GIFs and PNG strips per video, `latents.npy` and a `samples.json` listing in `output_dir`
    (with `rejection_acceptance` > 0, clips kept by clip rejection sampling: `video_sampling.sample_videos`)."""
    if num_frames < 1:
        raise ConfigError(f"--num_frames must be >= 1, got {num_frames}")
    videos, latents = sample_videos(export_dir, num_samples, num_frames, seed, frames_generator,
                                    rejection_acceptance)
    written = write_video_samples(videos, output_dir)
    np.save(os.path.join(output_dir, "latents.npy"), latents)
    write_json(os.path.join(output_dir, "samples.json"),
               {"export_dir": export_dir, "frames_generator": frames_generator or None,
                "num_samples": num_samples, "num_frames": num_frames, "seed": seed,
                "rejection_acceptance": rejection_acceptance, "files": [os.path.basename(p) for p in written]})
    return written


def main(argv):
    if len(argv) != 2 or argv[1] not in MODES:
        raise ConfigError(f"usage: python -m tfvidgan.sample {{{'|'.join(MODES)}}} --export_dir=... "
                          f"(got {argv[1:]})")
    if not FLAGS.export_dir:
        raise ConfigError("--export_dir is required")
    if FLAGS.num_samples < 1:
        raise ConfigError(f"--num_samples must be >= 1, got {FLAGS.num_samples}")
    if argv[1] == "frames":
        path = sample_frames(FLAGS.export_dir, FLAGS.num_samples, FLAGS.seed, FLAGS.output, FLAGS.rows,
                             FLAGS.rejection_acceptance)
        logging.info("Wrote %s", path)
    else:
        written = sample_videos_to_dir(FLAGS.export_dir, FLAGS.num_samples, FLAGS.num_frames, FLAGS.seed,
                                       FLAGS.frames_generator, FLAGS.output_dir, FLAGS.rejection_acceptance)
        logging.info("Wrote %d files to %s", len(written), FLAGS.output_dir)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
