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
from tfvidgan.common_flags import FlagSpec
from tfvidgan.data.default_dataset import ensure_dataset
from tfvidgan.data.metadata import read_metadata
from tfvidgan.errors import ConfigError
from tfvidgan.metrics.plotting import save_image_grid_png
from tfvidgan.models.frames_generator import GENERATOR_NORMALIZATIONS
from tfvidgan.training.frames_task import FramesGanConfig, make_frames_task
from tfvidgan.training.loop import run_training
from tfvidgan.training.strategy import is_chief

FLAGS = flags.FLAGS

# The embedded default run (`python -m tfvidgan.train_frames`, no flags): the only defaults written here, all
# of the loop. The model is `FramesGanConfig`'s (the paper's K = 48).
QUICK_START = dict(model_dir="runs/frames_quickstart", train_steps=1500, batch_size=64, log_every=50,
                   sample_every=250, checkpoint_every=250)


def config_flags() -> dict:
    """{flag: FlagSpec} of the flags that feed `FramesGanConfig` (defaults: its fields')."""
    return {
        "latent_dim": "Size Z of the generator's latent (prior N(0, I)).",
        "generator_filters": "Filters of the generator's last hidden layer.",
        "generator_normalization": FlagSpec("Generator normalization; sync_batch computes statistics over the "
                                            "global batch.", choices=GENERATOR_NORMALIZATIONS),
        **common_flags.discriminator_flags("projected discriminator", "conv"),
        "discriminator_minibatch_std": FlagSpec("Group size G of a minibatch-stddev layer before each "
                                                "discriminator's head (how much its features vary over G "
                                                "samples); 0 = off. The per-replica batch must be a multiple "
                                                "of G.", minimum=0),
        "num_sample_images": FlagSpec("Images in the sample grids.", minimum=1),
        "ema_beta": "Decay of the exponential moving average of the generator's weights (used by samples, "
                    "summaries and the export); 0 disables it.",
        "path_length_weight": FlagSpec("Weight of the path-length regulariser (Karras et al. 2020): the generator "
                                       "pays for the spread of ||J_z^T y|| over latents z and random image "
                                       "directions y, so equal latent steps change frames equally; 0 = off.",
                                       minimum=0.0),
        "straightness_weight": FlagSpec("Weight of the latent-line straightness regulariser: the generator pays "
                                        "for the squared centroid acceleration of its balls across latent "
                                        "triples z - d*u, z, z + d*u (d = --straightness_step, u a random unit "
                                        "direction), so straight latent lines move balls in straight lines at "
                                        "constant speed, as step 2 needs; 0 = off.", minimum=0.0),
        "straightness_step": FlagSpec("Latent units d between the straightness regulariser's frames (a video "
                                      "frame's latent step).", minimum=0.0, strict=True),
        "refine_discriminators_of": "A frames export (base directory or version) whose discriminators to keep "
                                    "training against its FROZEN sampling generator, for discriminator rejection "
                                    "sampling (Azadi et al. 2019: KeepTraining(D)); this run's export is the same "
                                    "generator with the refined discriminators. Pass the flags of the run that "
                                    "wrote it, and --r1_weight=0 to drop its penalty. Empty: train the GAN.",
        **common_flags.adversarial_flags(),
        **common_flags.INIT_SEED_FLAG,
        **common_flags.optimizer_flags("generator", "generator_optimizer", "frames generator"),
        **common_flags.optimizer_flags("discriminator", "discriminator_optimizer", "discriminators"),
    }


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """Defines this trainer's flags (only when run as a program, so importing this module never
    defines flags twice)."""
    flags.DEFINE_string("data", "", "Bouncing-balls TFRecords: a directory or a glob. Empty: generate a small "
                        "dataset under <model_dir>/data (the embedded default).", flag_values=flag_values)
    flags.DEFINE_integer("image_size", 0, "Frame size (30, 32 or 64); 0 = the dataset's. Must match the dataset.",
                         flag_values=flag_values)
    common_flags.define_config_flags(FramesGanConfig, config_flags(), flag_values)
    common_flags.define_run_flags(QUICK_START, flag_values)


def frames_config(values, dataset_size: int, dataset_channels: int) -> FramesGanConfig:
    """Builds the model config, checking the flags against the dataset's metadata."""
    if values.image_size and values.image_size != dataset_size:
        raise ConfigError(f"--image_size={values.image_size} does not match the dataset's frames "
                          f"({dataset_size}×{dataset_size}); drop the flag or pick another --data")
    common_flags.check_adversarial_flags(values)
    return FramesGanConfig(image_size=dataset_size, channels=dataset_channels,
                           **common_flags.config_kwargs(FramesGanConfig, values, config_flags()))


def _quality_probe(values, data: str, config: FramesGanConfig):
    settings = common_flags.probe_config(values, data)
    if settings is None:
        return None
    refining = bool(config.refine_discriminators_of)
    if refining != bool(settings.rejection_acceptance):
        raise ConfigError(
            f"--eval_rejection_acceptance={settings.rejection_acceptance}: a --refine_discriminators_of run "
            f"(frozen generator) is evaluated on rejection samples, so it needs an acceptance in (0, 1]; "
            f"plain GAN training takes 0" if refining else
            f"--eval_rejection_acceptance={settings.rejection_acceptance} needs --refine_discriminators_of "
            f"(rejection-sampled evaluation of a frozen generator); plain GAN training takes 0")
    from tfvidgan.metrics.quality_probe import FramesQualityProbe
    probe = FramesQualityProbe(settings, config.latent_dim)
    common_flags.check_best_metric(values, probe)
    return probe


def main(argv):
    cli.check_positional(argv)
    run = common_flags.prepare_run(FLAGS)
    data = ensure_dataset(FLAGS.data, FLAGS.model_dir, size=FLAGS.image_size or FramesGanConfig.image_size)
    metadata = read_metadata(data)
    config = frames_config(FLAGS, metadata.size, metadata.channels)
    logging.info("Training the frames GAN on %s (%d scenes, %d×%d) with %d replica(s)", data,
                 metadata.num_scenes, metadata.size, metadata.size, run.strategy.num_replicas_in_sync)
    task = make_frames_task(config, quality_probe=_quality_probe(FLAGS, data, config),
                            inputs=common_flags.input_config(FLAGS, data))
    result = run_training(task, strategy=run.strategy, config=run.loop)
    if not is_chief(run.strategy):
        return
    samples_path = os.path.join(FLAGS.model_dir, "samples", f"frames_{result.final_step}.png")
    save_image_grid_png(task.sampling_generator(task.sample_latents(), training=False).numpy(), samples_path)
    logging.info("Done at step %d; samples: %s; export: %s", result.final_step, samples_path,
                 result.export_path)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
