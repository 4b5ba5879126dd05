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
from tfvidgan.common_flags import FlagSpec
from tfvidgan.data.default_dataset import ensure_dataset
from tfvidgan.data.metadata import read_metadata
from tfvidgan.errors import ConfigError
from tfvidgan.export import FRAMES_GENERATOR, read_description
from tfvidgan.models.ensemble_discriminator import VIDEO_DISCRIMINATOR_INPUTS
from tfvidgan.models.sequence_generator import _CELLS as CELLS
from tfvidgan.models.sequence_generator import _CONSTRAINTS as LATENT_CONSTRAINTS
from tfvidgan.models.sequence_generator import INITIAL_STATES, TRAJECTORIES
from tfvidgan.training.loop import run_training
from tfvidgan.training.strategy import is_chief
from tfvidgan.training.video_task import SMOOTHNESS_TARGETS, VideoGanConfig, VideoGanTask
from tfvidgan.video_sampling import write_video_samples

FLAGS = flags.FLAGS

# The embedded default run (`python -m tfvidgan.train_video --frames_generator=...`): the only defaults written
# here, all of the loop. The model is `VideoGanConfig`'s (the paper's K' = 16).
QUICK_START = dict(model_dir="runs/video_quickstart", train_steps=600, batch_size=16, log_every=25,
                   sample_every=200, checkpoint_every=200)


def config_flags() -> dict:
    """{flag: FlagSpec} of the flags that feed `VideoGanConfig` (defaults: its fields')."""
    return {
        "frames_generator": "Export of the frames step (base directory or one version). Required.",
        "clip_length": "Frames per training clip (random offsets within each scene).",
        "sample_length": "Frames per sampled video (summaries, samples/).",
        "noise_dim": "Per-video noise size of the sequence generator.",
        "step_noise_dim": FlagSpec("Per-step noise size of the sequence generator; 0 = none (the trajectory is a "
                                   "deterministic function of the clip noise, as bouncing balls are of their "
                                   "start).", minimum=0),
        "hidden_units": "Width of the sequence generator's MLP and RNN layers.",
        "num_layers": "Stacked RNN layers.",
        "cell": FlagSpec("Recurrent cell.", choices=CELLS),
        "bidirectional": "Bidirectional RNN layers.",
        "latent_constraint": FlagSpec("Keeps emitted latents in the FG prior's range: standardize for N(0, I).",
                                      choices=LATENT_CONSTRAINTS),
        "trajectory": FlagSpec("Latent trajectory: 'absolute' (a latent per step) or 'residual' (z_t = z_{t-1} + "
                               "Δ_t with |Δ_t| < --max_step: no jumps).", choices=TRAJECTORIES),
        "max_step": "Bound on each residual latent step's norm.",
        "initial_state": FlagSpec("Where each RNN layer starts: 'zeros' (every clip at the same point, so "
                                  "oscillations of the dynamics are in phase across clips) or 'noise' (a frozen "
                                  "random projection of the clip noise, as MoCoGAN; clips start at different "
                                  "phases).", choices=INITIAL_STATES),
        "burn_in_steps": FlagSpec("Recurrent steps run and dropped before the first emitted latent, so the first "
                                  "frame comes from the dynamics, not from their start state (0 = none). Measured "
                                  "once with 8 from step 0: the start broke (README).",
                                  minimum=0),
        "sample_burn_in_steps": FlagSpec("Burn-in steps added for sampling only (samples, evaluations, exports), "
                                         "on top of --burn_in_steps: the trained weights settle before the first "
                                         "frame. May change on a resume; a finished run resumed with another "
                                         "value is exported again as a new version.", minimum=0),
        **common_flags.discriminator_flags("video discriminator", "Conv3D"),
        "discriminator_input": FlagSpec("What each video discriminator's projection sees: the clips; the clips "
                                        "and their frame differences x_t - x_{t-1} as extra channels (motion made "
                                        "explicit, so slow or frozen clips stand out); or those and the second "
                                        "differences x_t - 2x_{t-1} + x_{t-2} (jittering positions stand out); "
                                        "or the first differences and each blob's centroid acceleration "
                                        "(clips_and_centroid_accelerations: zero in steady flight, the "
                                        "sub-pixel wobble otherwise).",
                                        choices=VIDEO_DISCRIMINATOR_INPUTS),
        "finetune_frames_generator": "Also train the frames generator (own optimizer: --frames_generator_*).",
        "smoothness_weight": "Weight of the temporal smoothness regulariser (0 = off).",
        "smoothness_on": FlagSpec("Regularise latents or frames.", choices=SMOOTHNESS_TARGETS),
        "smoothness_order": FlagSpec("1 penalises each step (slows motion), 2 each change of step "
                                     "(acceleration; straight constant-speed paths are free).", minimum=1),
        "motion_energy_weight": FlagSpec("Weight of the motion-energy regulariser: the squared coefficient of "
                                         "variation over time of each rendered clip's frame-difference energy "
                                         "(steady motion keeps it constant; speeding up, stalling and wobbling "
                                         "do not; scale-free, so slowing down does not pay); 0 = off.",
                                         minimum=0.0),
        "motion_energy_match_weight": FlagSpec("Weight of the motion-energy matching term: the squared log-ratio "
                                               "of the generated and real batches' mean frame-difference energy "
                                               "(global means over the replicas), so the balls keep the real "
                                               "amount of motion instead of slowing down; 0 = off.", minimum=0.0),
        "centroid_acceleration_match_weight": FlagSpec(
            "Weight of the centroid-acceleration matching term: the squared log-ratio of the generated and real "
            "batches' mean squared centroid acceleration where a whole ball is centred (tracker-free window "
            "moments; global means over the replicas), against balls wobbling in free flight; 0 = off.",
            minimum=0.0),
        "stationarity_weight": FlagSpec(
            "Weight of the stationarity term: each generator update also rolls out --stationarity_length latent "
            "steps (not rendered) and pays for the squared coefficient of variation over time of the batch-mean "
            "latent step, so long videos keep their speed (no clock tied to the first frame; scale-free); "
            "0 = off.", minimum=0.0),
        "stationarity_length": FlagSpec("Latent steps of the stationarity term's rollouts (e.g. the length of "
                                        "the long videos users sample).", minimum=3),
        "late_motion_match_weight": FlagSpec(
            "Weight of the late-motion matching term: each generator update also rolls out --late_motion_length "
            "latent steps, renders one pair of consecutive frames per sample past the training clips, and pays "
            "the squared log-ratio of their mean frame-difference energy to the real clips' (balls keep the real "
            "amount of motion in long videos; no discriminator sees those frames); 0 = off.", minimum=0.0),
        "late_motion_length": FlagSpec("Latent steps of the late-motion term's rollouts (> --clip_length; e.g. "
                                       "the length of the long videos users sample).", minimum=3),
        "late_motion_start_step": FlagSpec("First step at which the late-motion term counts (before it the term "
                                           "is not computed and logged as 0); late frames start frozen, so switch "
                                           "it on late.",
                                           minimum=0),
        "frame_critic_weight": "Weight of the frames export's own (frozen) frame discriminators judging every "
                               "rendered frame, steering the latents to frames they find real; 0 = off. Needs "
                               "a frames export that carries its discriminators.",
        "rollout_length": FlagSpec("Long-rollout training, 0 = off: each step rolls out R ~ U{clip_length..this} "
                                   "latent steps and renders a random clip_length window of each, so late steps "
                                   "of long videos are trained too (against drift). Not with --jit_compile.",
                                   minimum=0),
        "ema_beta": "Decay of the exponential moving average of the generator's weights (the sequence generator's, "
                    "and the frames generator's when fine-tuned), used by samples, --eval_every and the "
                    "export; 0 disables it.",
        "num_sample_videos": FlagSpec("Videos in each sample summary.", minimum=1),
        **common_flags.adversarial_flags(),
        **common_flags.INIT_SEED_FLAG,
        **common_flags.optimizer_flags("sequence", "sequence_optimizer", "sequence generator"),
        **common_flags.optimizer_flags("frames_generator", "frames_generator_optimizer",
                                       "frames generator when fine-tuned"),
        **common_flags.optimizer_flags("discriminator", "discriminator_optimizer", "video discriminators"),
    }


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """Defines this trainer's flags (only when run as a program, so importing this module never
    defines flags twice)."""
    flags.DEFINE_string("data", "", "Bouncing-balls TFRecords (directory or glob). Empty: the embedded small "
                        "dataset under <model_dir>/data.", flag_values=flag_values)
    common_flags.define_config_flags(VideoGanConfig, config_flags(), flag_values)
    common_flags.define_run_flags(QUICK_START, flag_values)


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
    common_flags.check_adversarial_flags(values)
    return VideoGanConfig(**common_flags.config_kwargs(VideoGanConfig, values, config_flags()))


def _quality_probe(values, data: str, config: VideoGanConfig):
    settings = common_flags.probe_config(values, data)
    if settings is None:
        return None
    from tfvidgan.metrics.quality_probe import VideoQualityProbe
    probe = VideoQualityProbe(settings, config.sample_length)
    common_flags.check_best_metric(values, probe)
    return probe


def main(argv):
    cli.check_positional(argv)
    run = common_flags.prepare_run(FLAGS)
    data = ensure_dataset(FLAGS.data, FLAGS.model_dir)
    config = video_config(FLAGS, read_metadata(data))
    task = VideoGanTask(config, quality_probe=_quality_probe(FLAGS, data, config),
                        inputs=common_flags.input_config(FLAGS, data))
    result = run_training(task, strategy=run.strategy, config=run.loop)
    if not is_chief(run.strategy):
        return
    clips, _ = task.sample(config.num_sample_videos, config.sample_length, config.noise_seed)
    written = write_video_samples(clips.numpy(), os.path.join(FLAGS.model_dir, "samples"),
                                  prefix=f"video_{result.final_step}")
    logging.info("Done at step %d; samples: %s; export: %s", result.final_step, written, result.export_path)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
