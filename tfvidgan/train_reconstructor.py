r"""Train the CUP reconstructor (sensed image → T-frame scene) and export it for TF Serving.

    python -m tfvidgan.train_reconstructor --flagfile=configs/cup_small.cfg
    python -m tfvidgan.train_reconstructor          # embedded default: simulated pairs, short run

`--architecture=unet|unfolded` picks the network; the unfolded net takes the mask as an input
(`--random_masks` trains it on fresh random masks) and its export also has a `with_mask` signature.
With no `--data`, simulates `<model_dir>/data/cup_train` and a held-out `<model_dir>/data/cup_test`
(other scenes, same mask). Writes `<model_dir>/checkpoints/`, `summaries/` (MSE, critic losses, truth-vs-reconstruction images),
and `export/<step>/`: a TF Serving model (`serving_default`: `sensed_image` → `scene`) written atomically;
point `tensorflow_model_server --model_base_path` at `<model_dir>/export`. `--eval_every=N` scores held-out
pairs (`--eval_data`) every N steps (TensorBoard `eval/psnr_db`, `eval/ssim`, `eval/mse`; `metrics.jsonl`);
add `--best_metric=psnr_db --best_metric_mode=max` to keep the best step's export in `best_export/`.
"""
from __future__ import annotations

from absl import flags, logging

from tfvidgan import cli, common_flags
from tfvidgan.data.cup_pairs import read_cup_metadata
from tfvidgan.data.default_dataset import ensure_cup_dataset
from tfvidgan.errors import ConfigError
from tfvidgan.training.loop import run_training
from tfvidgan.training.reconstruction_task import ARCHITECTURES, ReconstructionConfig, ReconstructionTask
from tfvidgan.training.strategy import is_chief

FLAGS = flags.FLAGS

# The embedded default run (`python -m tfvidgan.train_reconstructor`, no flags): the only defaults written
# here, all of the loop. The model is `ReconstructionConfig`'s.
QUICK_START = dict(model_dir="runs/cup_quickstart", train_steps=1000, batch_size=32, log_every=50,
                   sample_every=250, checkpoint_every=250)


def config_flags() -> dict:
    """{flag: FlagSpec} of the flags that feed `ReconstructionConfig` (defaults: its fields'). The scene size,
    mask and noise model come from the dataset's metadata."""
    return {
        "architecture": f"Reconstructor: one of {', '.join(ARCHITECTURES)} (U-Net on the back-projection, mask "
                        "baked in; or deep unfolding: GAP steps + learned denoisers, mask an input).",
        "base_filters": "unet: filters of the first level (doubling per level).",
        "depth": "unet: down/up-sampling levels.",
        "unfolded_stages": "unfolded: GAP step + denoiser stages S.",
        "unfolded_filters": "unfolded: channels inside each denoiser.",
        "unfolded_conv_layers": "unfolded: convolutions per denoiser.",
        "unfolded_levels": "unfolded, frames_unet: resolutions of each denoiser's U-Net (2 = full and half; each more "
                           "halves again; frame size divisible by 2^(levels-1)).",
        "unfolded_conv": "unfolded: '3d' (3x3x3) or '2plus1d' (3x3 per frame then 3 taps in time) or 'frames2d' "
                         "(2-D convs, frames as channels) or 'frames_unet' "
                         "(frames as channels through a two-level U-Net: wider context; 16 filters x 2 convs cost "
                         "what frames2d's 32 x 3 do per step).",
        "unfolded_share_weights": "unfolded: one denoiser for all stages.",
        "unfolded_memory": "unfolded, frames2d/frames_unet: each stage's denoiser also reads the previous stage's "
                           "last hidden features (memory between stages).",
        "random_masks": "unfolded: re-sense every training scene with a fresh random mask (the dataset's fill "
                        "and noise model), so the model serves any camera.",
        "random_mask_seed": "Seed of the --random_masks draws.",
        "adversarial_weight": "Weight of the adversarial loss (0 = MSE only).",
        "discriminator_filters": "Filters of the fully convolutional (patch) discriminator's first conv.",
        **common_flags.loss_flag(),
        **common_flags.INIT_SEED_FLAG,
        **common_flags.optimizer_flags("reconstructor", "optimizer", "reconstructor"),
        **common_flags.optimizer_flags("discriminator", "discriminator_optimizer", "patch discriminator"),
    }


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """Defines this trainer's flags (only when run as a program, so importing this module never
    defines flags twice)."""
    flags.DEFINE_string("data", "", "CUP pairs (directory or glob, from data_tools.make_cup_pairs). Empty: "
                        "simulate the embedded default under <model_dir>/data.", flag_values=flag_values)
    flags.DEFINE_string("eval_data", "", "Held-out CUP pairs of the training camera and size for --eval_every "
                        "(eval/psnr_db, eval/ssim, eval/mse on the first --eval_samples pairs). Empty: the embedded "
                        "default's held-out split when --data is empty (required otherwise).",
                        flag_values=flag_values)
    common_flags.define_config_flags(ReconstructionConfig, config_flags(), flag_values)
    common_flags.define_run_flags(QUICK_START, flag_values)


def reconstruction_config(values, metadata) -> ReconstructionConfig:
    """`ReconstructionConfig` from parsed flags and the training data's metadata (mask, size, noise model)."""
    return ReconstructionConfig(
        num_frames=metadata.num_frames, height=metadata.height, width=metadata.width, mask=metadata.mask,
        mask_fill=metadata.mask_fill, photons=metadata.photons, read_noise=metadata.read_noise,
        **common_flags.config_kwargs(ReconstructionConfig, values, config_flags()))


def _quality_probe(values, config: ReconstructionConfig, held_out: str = ""):
    """PSNR/SSIM on held-out pairs every --eval_every steps (None when off): --eval_data, else `held_out`
    (the embedded default's held-out split, when --data is empty)."""
    if not values.eval_every:
        return None
    eval_data = values.eval_data or held_out
    if not eval_data:
        raise ConfigError("--eval_every measures PSNR/SSIM on held-out pairs: give --eval_data (CUP pairs of "
                          "the training camera and size, e.g. the test split of data_tools.make_cup_pairs)")
    common_flags.check_data_path(eval_data, "--eval_data")
    from tfvidgan.metrics.quality_probe import ReconstructionQualityProbe
    probe = ReconstructionQualityProbe(common_flags.probe_config(values, eval_data),
                                       (config.num_frames, config.height, config.width, 1))
    common_flags.check_best_metric(values, probe)
    return probe


def main(argv):
    cli.check_positional(argv)
    if FLAGS.architecture not in ARCHITECTURES:  # before any data is simulated
        raise ConfigError(f"--architecture={FLAGS.architecture!r} is not one of {', '.join(ARCHITECTURES)}")
    run = common_flags.prepare_run(FLAGS)
    data = ensure_cup_dataset(FLAGS.data, FLAGS.model_dir, "train")
    # The embedded default also gets its held-out split, for `evaluate reconstruction` and --eval_every.
    held_out = "" if FLAGS.data else ensure_cup_dataset("", FLAGS.model_dir, "test")
    config = reconstruction_config(FLAGS, read_cup_metadata(data))
    task = ReconstructionTask(config, inputs=common_flags.input_config(FLAGS, data),
                              quality_probe=_quality_probe(FLAGS, config, held_out))
    result = run_training(task, strategy=run.strategy, config=run.loop)
    if not is_chief(run.strategy):
        return
    logging.info("Done at step %d; TF Serving export: %s", result.final_step, result.export_path)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
