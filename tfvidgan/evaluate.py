r"""Evaluation reports, printed as JSON (and written to --output).

    python -m tfvidgan.evaluate frames --export_dir=runs/frames/export --data=data/bb3_32
    python -m tfvidgan.evaluate video --export_dir=runs/video/export --data=data/bb3_32 --plot=isomap.png
    python -m tfvidgan.evaluate reconstruction --export_dir=runs/cup/export --data=data/cup_test \
        --picture=cup.png
"""
from __future__ import annotations

from absl import flags

from tfvidgan import cli
from tfvidgan.errors import ConfigError
from tfvidgan.json_report import emit

FLAGS = flags.FLAGS
MODES = ("frames", "video", "reconstruction")

flags.DEFINE_string("export_dir", None, "The export to evaluate (base directory or one version).")
flags.DEFINE_string("data", None, "Real data: bouncing-balls TFRecords (frames, video) or held-out CUP pairs.")
flags.DEFINE_integer("num_samples", 1000, "Generated (and real) samples per row.")
flags.DEFINE_integer("seed", 0, "Seed of the sampling and of the real-data picks.")
flags.DEFINE_string("output", "", "Also write the JSON report to this file.")
flags.DEFINE_integer("encoder_samples", 1000, "Real samples the Fréchet encoder is trained on.")
flags.DEFINE_integer("encoder_steps", 300, "Training steps of the Fréchet encoder (cached after the first run).")
flags.DEFINE_string("encoder_cache", "eval_cache", "Directory where trained Fréchet encoders are cached.")
flags.DEFINE_integer("num_frames", 16, "video: frames per evaluated clip.")
flags.DEFINE_string("frames_generator", "", "video: render the trajectories with this frames export instead.")
flags.DEFINE_integer("long_frames", 0, "video: also sample clips this long (e.g. 120) and compare the physics of "
                     "their first and last --num_frames frames (drift); 0 = off.")
flags.DEFINE_integer("swap_expected_balls", 1, "video, with --frames_generator: balls the swapped FG draws "
                     "(the FG-swap section counts frames with exactly this many).")
flags.DEFINE_string("plot", "isomap.png", "video: where to write the Isomap plot of latent trajectories.")
flags.DEFINE_integer("gap_tv_iterations", 100, "reconstruction: GAP-TV iterations of the baseline.")
flags.DEFINE_float("gap_tv_weight", 0.3, "reconstruction: TV weight of the GAP-TV baseline.")
flags.DEFINE_string("picture", "reconstruction.png", "reconstruction: original / sensed / reconstructed strips.")


def main(argv):
    if len(argv) != 2 or argv[1] not in MODES:
        raise ConfigError(f"usage: python -m tfvidgan.evaluate {{{'|'.join(MODES)}}} --export_dir=... --data=... "
                          f"(got {argv[1:]})")
    for name in ("export_dir", "data"):
        if not FLAGS[name].value:
            raise ConfigError(f"--{name} is required")
    if FLAGS.num_samples < 2:
        raise ConfigError(f"--num_samples must be >= 2, got {FLAGS.num_samples}")
    mode = argv[1]
    if mode == "frames":
        from tfvidgan.metrics.frames_report import FramesEvalConfig, evaluate_frames
        report = evaluate_frames(FramesEvalConfig(
            export_dir=FLAGS.export_dir, data=FLAGS.data, num_samples=FLAGS.num_samples,
            encoder_samples=FLAGS.encoder_samples, encoder_steps=FLAGS.encoder_steps,
            encoder_cache=FLAGS.encoder_cache, seed=FLAGS.seed))
    elif mode == "video":
        from tfvidgan.metrics.video_report import VideoEvalConfig, evaluate_video
        report = evaluate_video(VideoEvalConfig(
            export_dir=FLAGS.export_dir, data=FLAGS.data, num_samples=FLAGS.num_samples,
            num_frames=FLAGS.num_frames, frames_generator=FLAGS.frames_generator, plot=FLAGS.plot,
            encoder_samples=FLAGS.encoder_samples, encoder_steps=FLAGS.encoder_steps,
            encoder_cache=FLAGS.encoder_cache, seed=FLAGS.seed, long_frames=FLAGS.long_frames,
            swap_expected_balls=FLAGS.swap_expected_balls))
    else:
        from tfvidgan.metrics.reconstruction_report import ReconstructionEvalConfig, evaluate_reconstruction
        report = evaluate_reconstruction(ReconstructionEvalConfig(
            export_dir=FLAGS.export_dir, data=FLAGS.data, num_samples=FLAGS.num_samples,
            gap_tv_iterations=FLAGS.gap_tv_iterations, tv_weight=FLAGS.gap_tv_weight, picture=FLAGS.picture))
    emit(report, FLAGS.output)


if __name__ == "__main__":
    cli.run(main)
