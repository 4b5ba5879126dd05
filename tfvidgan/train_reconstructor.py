r"""Train the CUP reconstructor (sensed image → T-frame scene) and export it for TF Serving.

    python -m tfvidgan.train_reconstructor --flagfile=configs/cup_small.cfg
    python -m tfvidgan.train_reconstructor          # embedded default: simulated pairs, short run

`--architecture=unet|unfolded` picks the network; the unfolded net takes the mask as an input
(`--random_masks` trains it on fresh random masks) and its export also has a `with_mask` signature.
With no `--data`, simulates `<model_dir>/data/cup_train` and a held-out `<model_dir>/data/cup_test`
(other scenes, same mask). Writes `<model_dir>/checkpoints/`, `summaries/` (MSE, critic losses, truth-vs-reconstruction images),
and `export/<step>/`: a TF Serving model (`serving_default`: `sensed_image` → `scene`) written atomically;
point `tensorflow_model_server --model_base_path` at `<model_dir>/export`.
"""
from __future__ import annotations

import dataclasses

from absl import flags, logging

from tfvidgan import cli, common_flags
from tfvidgan.data.cup_pairs import cup_pairs_dataset, read_cup_metadata
from tfvidgan.data.default_dataset import ensure_cup_dataset
from tfvidgan.errors import ConfigError
from tfvidgan.training.loop import run_training
from tfvidgan.training.reconstruction_task import ARCHITECTURES, ReconstructionConfig, ReconstructionTask

FLAGS = flags.FLAGS
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(ReconstructionConfig)}


def define_flags() -> None:
    """Defines this trainer's flags (only when run as a program, so importing this module never
    defines flags twice)."""
    flags.DEFINE_string("data", "", "CUP pairs (directory or glob, from data_tools.make_cup_pairs). Empty: "
                        "simulate the embedded default under <model_dir>/data.")
    d = _DEFAULTS
    flags.DEFINE_string("architecture", d["architecture"], f"Reconstructor: one of {', '.join(ARCHITECTURES)} "
                        "(U-Net on the back-projection, mask baked in; or deep unfolding: GAP steps + learned "
                        "denoisers, mask an input).")
    flags.DEFINE_integer("base_filters", d["base_filters"], "unet: filters of the first level (doubling per level).")
    flags.DEFINE_integer("depth", d["depth"], "unet: down/up-sampling levels.")
    flags.DEFINE_integer("unfolded_stages", d["unfolded_stages"], "unfolded: GAP step + denoiser stages S.")
    flags.DEFINE_integer("unfolded_filters", d["unfolded_filters"], "unfolded: channels inside each denoiser.")
    flags.DEFINE_integer("unfolded_conv_layers", d["unfolded_conv_layers"], "unfolded: convolutions per denoiser.")
    flags.DEFINE_string("unfolded_conv", d["unfolded_conv"], "unfolded: '3d' (3x3x3) or '2plus1d' (3x3 per frame then 3 taps in time) or 'frames2d' (2-D convs, frames as channels).")
    flags.DEFINE_bool("unfolded_share_weights", d["unfolded_share_weights"], "unfolded: one denoiser for all stages.")
    flags.DEFINE_bool("random_masks", d["random_masks"], "unfolded: re-sense every training scene with a fresh "
                      "random mask (the dataset's fill and noise model), so the model serves any camera.")
    flags.DEFINE_integer("random_mask_seed", d["random_mask_seed"], "Seed of the --random_masks draws.")
    flags.DEFINE_float("adversarial_weight", d["adversarial_weight"], "Weight of the adversarial loss (0 = MSE only).")
    flags.DEFINE_integer("critic_filters", d["critic_filters"], "Filters of the fully convolutional critic's first conv.")
    flags.DEFINE_enum("loss", "non_saturating", ["non_saturating", "hinge"], "Adversarial loss kind.")
    common_flags.define_loop_flags(model_dir="runs/cup_quickstart", train_steps=1000, batch_size=32,
                                   log_every=50, sample_every=250, checkpoint_every=250)
    common_flags.define_optimizer_flags("reconstructor", "reconstructor", learning_rate=1e-3)
    common_flags.define_optimizer_flags("critic", "adversarial critic")


def reconstruction_config(values, metadata) -> ReconstructionConfig:
    """`ReconstructionConfig` from parsed flags and the training data's metadata (mask, size, noise model)."""
    return ReconstructionConfig(
        num_frames=metadata.num_frames, height=metadata.height, width=metadata.width, mask=metadata.mask,
        architecture=values.architecture, base_filters=values.base_filters, depth=values.depth,
        unfolded_stages=values.unfolded_stages, unfolded_filters=values.unfolded_filters,
        unfolded_conv_layers=values.unfolded_conv_layers, unfolded_conv=values.unfolded_conv,
        unfolded_share_weights=values.unfolded_share_weights, random_masks=values.random_masks,
        random_mask_seed=values.random_mask_seed, mask_fill=metadata.mask_fill, photons=metadata.photons,
        read_noise=metadata.read_noise, adversarial_weight=values.adversarial_weight,
        critic_filters=values.critic_filters,
        adversarial=common_flags.AdversarialConfig(loss=values.loss),
        optimizer=common_flags.optimizer_config(values, "reconstructor"),
        critic_optimizer=common_flags.optimizer_config(values, "critic"))


def main(argv):
    if len(argv) > 1:
        raise ConfigError(f"unexpected positional arguments {argv[1:]} (flags are --name=value)")
    if FLAGS.architecture not in ARCHITECTURES:  # before any data is simulated
        raise ConfigError(f"--architecture={FLAGS.architecture!r} is not one of {', '.join(ARCHITECTURES)}")
    run = common_flags.prepare_run(FLAGS)
    data = ensure_cup_dataset(FLAGS.data, FLAGS.model_dir, "train")
    if not FLAGS.data:  # the embedded default also gets its held-out split, for `evaluate reconstruction`
        ensure_cup_dataset("", FLAGS.model_dir, "test")
    metadata = read_cup_metadata(data)
    config = reconstruction_config(FLAGS, metadata)
    preview = next(iter(cup_pairs_dataset(data, 4, shuffle=False, repeat=False, skip_bad_records=FLAGS.skip_bad_records)))
    task = ReconstructionTask(config, preview=tuple(t.numpy() for t in preview))

    def dataset_fn(context, start_step):
        return cup_pairs_dataset(data, run.per_replica_batch, seed=FLAGS.data_seed + start_step,
                                 input_context=context, skip_bad_records=FLAGS.skip_bad_records)

    result = run_training(task, dataset_fn, run.strategy, run.loop)
    logging.info("Done at step %d; TF Serving export: %s", result.final_step, result.export_path)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
