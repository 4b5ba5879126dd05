r"""Step 2: train the recurrent sequence generator that navigates a frozen frames generator's latent space.

    python -m tfvidgan.train_video --flagfile=configs/video_bb3_small.cfg \
        --frames_generator=runs/frames_bb3_small/export

Writes `<model_dir>/checkpoints/`, `summaries/` (losses per discriminator, animated GIF samples that play
in TensorBoard's image tab, frame strips, flags), `export/<step>/` (SavedModel: `sample`,
`sample_latents`, `generate`) and `samples/` (GIFs and PNG strips). Re-running resumes.
"""
from __future__ import annotations

import os

from absl import flags, logging

from tfvidgan import cli, common_flags
from tfvidgan.data import readers
from tfvidgan.data.default_dataset import ensure_dataset
from tfvidgan.data.metadata import read_metadata
from tfvidgan.errors import ConfigError
from tfvidgan.export import FRAMES_GENERATOR, read_description
from tfvidgan.training.loop import run_training
from tfvidgan.training.strategy import is_chief
from tfvidgan.training.video_task import SMOOTHNESS_TARGETS, VideoGanConfig, VideoGanTask
from tfvidgan.video_sampling import write_video_samples

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines this trainer's flags (only when run as a program, so importing this module never
    defines flags twice)."""
    flags.DEFINE_string("frames_generator", None, "Export of the frames step (base directory or one version).")
    flags.DEFINE_string("data", "", "Bouncing-balls TFRecords (directory or glob). Empty: the embedded small "
                        "dataset under <model_dir>/data.")
    flags.DEFINE_integer("clip_length", 16, "Frames per training clip (random offsets within each scene).")
    flags.DEFINE_integer("sample_length", 30, "Frames per sampled video (summaries, samples/).")
    flags.DEFINE_integer("noise_dim", 64, "Per-video noise size of the sequence generator.")
    flags.DEFINE_integer("step_noise_dim", 8, "Per-step noise size of the sequence generator.")
    flags.DEFINE_integer("hidden_units", 256, "Width of the sequence generator's MLP and RNN layers.")
    flags.DEFINE_integer("num_layers", 2, "Stacked RNN layers.")
    flags.DEFINE_enum("cell", "lstm", ["lstm", "gru"], "Recurrent cell.")
    flags.DEFINE_bool("bidirectional", True, "Bidirectional RNN layers.")
    flags.DEFINE_enum("latent_constraint", "standardize", ["standardize", "tanh", "none"],
                      "Keeps emitted latents in the FG prior's range: standardize for N(0, I).")
    flags.DEFINE_enum("trajectory", VideoGanConfig.trajectory, ["absolute", "residual"],
                      "Latent trajectory: 'absolute' (a latent per step) or 'residual' (z_t = z_{t-1} + Δ_t with "
                      "|Δ_t| < --max_step: no jumps).")
    flags.DEFINE_float("max_step", VideoGanConfig.max_step, "Bound on each residual latent step's norm.")
    flags.DEFINE_integer("discriminator_filters", 8, "Filters of each video discriminator's first Conv3D.")
    flags.DEFINE_enum("discriminator_normalization", "batch", ["none", "batch", "sync_batch", "layer"],
                      "Normalization inside each video discriminator.")
    flags.DEFINE_bool("finetune_frames_generator", False, "Also train the frames generator (own learning rate).")
    flags.DEFINE_float("frames_generator_lr", 2e-5, "Learning rate of the frames generator when fine-tuned.")
    flags.DEFINE_float("smoothness_weight", 0.0, "Weight of the temporal smoothness regulariser (0 = off).")
    flags.DEFINE_enum("smoothness_on", "latents", list(SMOOTHNESS_TARGETS), "Regularise latents or frames.")
    flags.DEFINE_integer("num_sample_videos", 4, "Videos in each sample summary.", lower_bound=1)
    common_flags.define_loop_flags(model_dir="runs/video_quickstart", train_steps=600, batch_size=16,
                                   log_every=25, sample_every=200, checkpoint_every=200)
    common_flags.define_optimizer_flags("sequence", "sequence generator")
    common_flags.define_optimizer_flags("discriminator", "video discriminators")
    common_flags.define_adversarial_flags(num_discriminators=16)


def video_config(values, metadata) -> VideoGanConfig:
    """Builds the config, checking flags against the dataset and the frames generator."""
    if not values.frames_generator:
        raise ConfigError("--frames_generator is required (the export of `python -m tfvidgan.train_frames`)")
    _, description = read_description(values.frames_generator, FRAMES_GENERATOR, "frames_generator")
    if description["image_size"] != metadata.size or description["channels"] != metadata.channels:
        raise ConfigError(
            f"--frames_generator={values.frames_generator!r} makes {description['image_size']}×"
            f"{description['image_size']}×{description['channels']} frames but --data has "
            f"{metadata.size}×{metadata.size}×{metadata.channels}")
    if values.clip_length > metadata.num_frames:
        raise ConfigError(f"--clip_length={values.clip_length} is longer than the dataset's scenes "
                          f"({metadata.num_frames} frames)")
    return VideoGanConfig(
        frames_generator=values.frames_generator, clip_length=values.clip_length,
        sample_length=values.sample_length, noise_dim=values.noise_dim, step_noise_dim=values.step_noise_dim,
        hidden_units=values.hidden_units, num_layers=values.num_layers, cell=values.cell,
        bidirectional=values.bidirectional, latent_constraint=values.latent_constraint,
        trajectory=values.trajectory, max_step=values.max_step,
        num_discriminators=values.num_discriminators, discriminator_filters=values.discriminator_filters,
        discriminator_normalization=values.discriminator_normalization,
        projection_seed=values.projection_seed, noise_seed=values.noise_seed,
        finetune_frames_generator=values.finetune_frames_generator,
        smoothness_weight=values.smoothness_weight, smoothness_on=values.smoothness_on,
        num_sample_videos=values.num_sample_videos,
        adversarial=common_flags.adversarial_config(values),
        sequence_optimizer=common_flags.optimizer_config(values, "sequence"),
        frames_generator_optimizer=common_flags.OptimizerConfig(
            name=values.sequence_optimizer, learning_rate=values.frames_generator_lr,
            beta_1=values.sequence_beta1),
        discriminator_optimizer=common_flags.optimizer_config(values, "discriminator"))


def main(argv):
    if len(argv) > 1:
        raise ConfigError(f"unexpected positional arguments {argv[1:]} (flags are --name=value)")
    run = common_flags.prepare_run(FLAGS)
    data = ensure_dataset(FLAGS.data, FLAGS.model_dir)
    metadata = read_metadata(data)
    config = video_config(FLAGS, metadata)

    def dataset_fn(context, start_step):
        return readers.clips_dataset(data, run.per_replica_batch, clip_length=config.clip_length,
                                     seed=FLAGS.data_seed + start_step, skip_bad_records=FLAGS.skip_bad_records,
                                     input_context=context)

    probe = None
    if FLAGS.eval_every:
        from tfvidgan.metrics.quality_probe import ProbeConfig, VideoQualityProbe
        probe = VideoQualityProbe(ProbeConfig(data=data, num_samples=FLAGS.eval_samples,
                                              cache_dir=FLAGS.encoder_cache), config.sample_length)
    task = VideoGanTask(config, quality_probe=probe)
    result = run_training(task, dataset_fn, run.strategy, run.loop)
    if not is_chief(run.strategy):
        return
    clips, _ = task.sample(config.num_sample_videos, config.sample_length, config.noise_seed)
    written = write_video_samples(clips.numpy(), os.path.join(FLAGS.model_dir, "samples"),
                                  prefix=f"video_{result.final_step}")
    logging.info("Done at step %d; samples: %s; export: %s", result.final_step, written, result.export_path)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
