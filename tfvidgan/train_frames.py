r"""Step 1: train the frames generator against K randomly projected discriminators.

    python -m tfvidgan.train_frames --flagfile=configs/frames_bb3_small.cfg
    python -m tfvidgan.train_frames                      # embedded default: small dataset, short run

Writes `<model_dir>/checkpoints/`, `summaries/` (TensorBoard: losses per discriminator, sample grids,
flags), `export/<step>/` (SavedModel: `generate(z)`, `sample(num_samples, seed)`) and
`samples/frames_<step>.png`. Running again with the same flags resumes from the latest checkpoint.
"""
from __future__ import annotations

import os

from absl import flags, logging

from tfvidgan import cli, common_flags
from tfvidgan.data import readers
from tfvidgan.data.default_dataset import ensure_dataset
from tfvidgan.data.metadata import read_metadata
from tfvidgan.errors import ConfigError
from tfvidgan.metrics.plotting import save_image_grid_png
from tfvidgan.models.ensemble_discriminator import DISCRIMINATOR_HEADS
from tfvidgan.training.frames_task import FramesGanConfig, FramesGanTask
from tfvidgan.training.loop import run_training
from tfvidgan.training.strategy import is_chief

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines this trainer's flags (only when run as a program, so importing this module never
    defines flags twice)."""
    flags.DEFINE_string("data", "", "Bouncing-balls TFRecords: a directory or a glob. Empty: generate a small "
                        "dataset under <model_dir>/data (the embedded default).")
    flags.DEFINE_integer("image_size", 0, "Frame size (30, 32 or 64); 0 = the dataset's. Must match the dataset.")
    flags.DEFINE_integer("latent_dim", 100, "Size Z of the generator's latent (prior N(0, I)).")
    flags.DEFINE_integer("generator_filters", 64, "Filters of the generator's last hidden layer.")
    flags.DEFINE_enum("generator_normalization", "batch", ["batch", "sync_batch", "none"],
                      "Generator normalization; sync_batch computes statistics over the global batch.")
    flags.DEFINE_integer("discriminator_filters", 16, "Filters of each discriminator's first conv (doubling).")
    flags.DEFINE_enum("discriminator_normalization", "batch", ["none", "batch", "sync_batch", "layer"],
                      "Normalization inside each projected discriminator.")
    flags.DEFINE_enum("discriminator_head", FramesGanConfig.discriminator_head, list(DISCRIMINATOR_HEADS),
                      "Logit head of each discriminator: linear (one conv over the last map) or mlp (a hidden "
                      "layer, so a global count can be judged non-monotonically).")
    flags.DEFINE_integer("num_sample_images", 64, "Images in the sample grids.", lower_bound=1)
    flags.DEFINE_float("ema_beta", FramesGanConfig.ema_beta, "Decay of the exponential moving average of the "
                       "generator's weights (used by samples, summaries and the export); 0 disables it.")
    common_flags.define_loop_flags(model_dir="runs/frames_quickstart", train_steps=1500, batch_size=64,
                                   log_every=50, sample_every=250, checkpoint_every=250)
    common_flags.define_optimizer_flags("generator", "frames generator")
    common_flags.define_optimizer_flags("discriminator", "discriminators")
    common_flags.define_adversarial_flags(num_discriminators=8)


def frames_config(values, dataset_size: int, dataset_channels: int) -> FramesGanConfig:
    """Builds the model config, checking the flags against the dataset's metadata."""
    if values.image_size and values.image_size != dataset_size:
        raise ConfigError(f"--image_size={values.image_size} does not match the dataset's frames "
                          f"({dataset_size}×{dataset_size}); drop the flag or pick another --data")
    return FramesGanConfig(
        image_size=dataset_size, channels=dataset_channels, latent_dim=values.latent_dim,
        generator_filters=values.generator_filters, generator_normalization=values.generator_normalization,
        num_discriminators=values.num_discriminators, discriminator_filters=values.discriminator_filters,
        discriminator_normalization=values.discriminator_normalization,
        discriminator_head=values.discriminator_head,
        projection_seed=values.projection_seed, noise_seed=values.noise_seed,
        num_sample_images=values.num_sample_images, ema_beta=values.ema_beta,
        adversarial=common_flags.adversarial_config(values),
        generator_optimizer=common_flags.optimizer_config(values, "generator"),
        discriminator_optimizer=common_flags.optimizer_config(values, "discriminator"))


def main(argv):
    if len(argv) > 1:
        raise ConfigError(f"unexpected positional arguments {argv[1:]} (flags are --name=value)")
    run = common_flags.prepare_run(FLAGS)
    data = ensure_dataset(FLAGS.data, FLAGS.model_dir, size=FLAGS.image_size or 32)
    metadata = read_metadata(data)
    config = frames_config(FLAGS, metadata.size, metadata.channels)
    logging.info("Training the frames GAN on %s (%d scenes, %d×%d) with %d replica(s)", data,
                 metadata.num_scenes, metadata.size, metadata.size, run.strategy.num_replicas_in_sync)

    def dataset_fn(context, start_step):
        return readers.random_frames_dataset(data, run.per_replica_batch, seed=FLAGS.data_seed + start_step,
                                             skip_bad_records=FLAGS.skip_bad_records, input_context=context)

    probe = None
    if FLAGS.eval_every:
        from tfvidgan.metrics.quality_probe import FramesQualityProbe, ProbeConfig
        probe = FramesQualityProbe(ProbeConfig(data=data, num_samples=FLAGS.eval_samples,
                                               cache_dir=FLAGS.encoder_cache), config.latent_dim)
    task = FramesGanTask(config, quality_probe=probe)
    result = run_training(task, dataset_fn, run.strategy, run.loop)
    if not is_chief(run.strategy):
        return
    samples_path = os.path.join(FLAGS.model_dir, "samples", f"frames_{result.final_step}.png")
    save_image_grid_png(task.sampling_generator(task.sample_latents(), training=False).numpy(), samples_path)
    logging.info("Done at step %d; samples: %s; export: %s", result.final_step, samples_path,
                 result.export_path)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
