r"""Evaluation reports, printed as JSON (and written to --output).

    python -m tfvidgan.evaluate frames --export_dir=runs/frames/export --data=data/bb3_32
    python -m tfvidgan.evaluate video --export_dir=runs/video/export --data=data/bb3_32 --plot=isomap.png
    python -m tfvidgan.evaluate reconstruction --export_dir=runs/cup/export --data=data/cup_test \
        --picture=cup.png
"""
from __future__ import annotations

from typing import Callable

from absl import flags

from tfvidgan import cli
from tfvidgan.errors import ConfigError
from tfvidgan.json_report import emit

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines this tool's flags (only when run as a program, so importing this module never defines flags,
    and `tfvidgan.evaluate` and `tfvidgan.sample` can be imported together)."""
    flags.DEFINE_string("export_dir", None, "The export to evaluate (base directory or one version).")
    flags.DEFINE_string("data", None, "Real data: bouncing-balls TFRecords (frames, video) or held-out CUP pairs.")
    flags.DEFINE_integer("num_samples", 1000, "Generated (and real) samples per row.")
    flags.DEFINE_integer("seed", 0, "Seed of the sampling and of the real-data picks.")
    flags.DEFINE_string("output", "", "Also write the JSON report to this file.")
    flags.DEFINE_integer("encoder_samples", 1000, "Real samples the Fréchet encoder is trained on.")
    flags.DEFINE_integer("encoder_steps", 300, "Training steps of the Fréchet encoder (cached after the first run).")
    flags.DEFINE_string("encoder_cache", "eval_cache", "Directory where trained Fréchet encoders are cached.")
    from tfvidgan.rejection import RejectionConfig

    flags.DEFINE_float("rejection_acceptance", RejectionConfig.acceptance,
                       "frames, video: also sample with discriminator rejection sampling keeping this fraction "
                       "of candidates (row generated_rejection; frames: needs an export with discriminators; "
                       "video: clips judged by the discriminators of the frames export the model was trained "
                       "on); 0 = off.")
    flags.DEFINE_integer("num_frames", 16, "video: frames per evaluated clip.")
    flags.DEFINE_string("frames_generator", "", "video: render the trajectories with this frames export instead.")
    flags.DEFINE_integer("long_frames", 0, "video: also sample clips this long (e.g. 120) and compare the physics of "
                         "their first and last --num_frames frames (drift); 0 = off.")
    flags.DEFINE_integer("swap_expected_balls", 1, "video, with --frames_generator: balls the swapped FG draws "
                         "(the FG-swap section counts frames with exactly this many).")
    flags.DEFINE_string("plot", None, "video: where to write the Isomap plot of latent trajectories; unset = beside "
                        "--output (REPORT.json -> REPORT.isomap.png), or isomap.png in the working directory without "
                        "--output; '' = no plot.")
    flags.DEFINE_integer("gap_tv_iterations", 100, "reconstruction: GAP-TV iterations of the baseline.")
    flags.DEFINE_float("gap_tv_weight", 0.3, "reconstruction: TV weight of the GAP-TV baseline.")
    flags.DEFINE_string("picture", None, "reconstruction: where to write the original / sensed / reconstructed "
                        "strips; unset = beside --output (REPORT.json -> REPORT.reconstruction.png), or "
                        "reconstruction.png in the working directory without --output; '' = no picture.")


def picture_path(value: str | None, output: str, default: str) -> str:
    """Where a mode writes its picture: `value` if given (`""` = none); unset (None), beside the JSON report
    `output` (`runs/eval.json` + `isomap.png` -> `runs/eval.isomap.png`), so one evaluation's files stay
    together and a second one does not overwrite the first's; without `output`, `default` (the mode config's
    default file name, in the working directory)."""
    if value is not None:
        return value
    if not output:
        return default
    stem = output[:-len(".json")] if output.endswith(".json") else output
    return f"{stem}.{default}"


# -- modes, registered by name (as StyleGAN3 registers its metrics) ---------------------------------------
# A mode is a function `mode(values) -> report dict`, `values` being the parsed flags (`FLAGS`, or any object
# with the same attributes); its name is the command's first argument.

_MODES: dict[str, Callable] = {}


def register_mode(fn: Callable) -> Callable:
    """Decorator: makes `python -m tfvidgan.evaluate <fn.__name__>` run `fn(values) -> report dict`."""
    if fn.__name__ in _MODES:
        raise ConfigError(f"evaluate mode {fn.__name__!r} is already registered")
    _MODES[fn.__name__] = fn
    return fn


def list_modes() -> list[str]:
    """Names of the registered modes, in registration order."""
    return list(_MODES)


def run_mode(mode: str, values) -> dict:
    """The report of `mode` for the parsed flag `values`; a ConfigError listing the known modes if unknown."""
    if mode not in _MODES:
        raise ConfigError(f"unknown evaluate mode {mode!r}; known: {list_modes()}")
    return _MODES[mode](values)


@register_mode
def frames(values) -> dict:
    """Frames export vs real frames (`tfvidgan.metrics.frames_report`)."""
    from tfvidgan.metrics.frames_report import FramesEvalConfig, evaluate_frames
    return evaluate_frames(FramesEvalConfig(
        export_dir=values.export_dir, data=values.data, num_samples=values.num_samples,
        encoder_samples=values.encoder_samples, encoder_steps=values.encoder_steps,
        encoder_cache=values.encoder_cache, seed=values.seed, rejection_acceptance=values.rejection_acceptance))


@register_mode
def video(values) -> dict:
    """Video export vs real clips (`tfvidgan.metrics.video_report`)."""
    from tfvidgan.metrics.video_report import VideoEvalConfig, evaluate_video
    return evaluate_video(VideoEvalConfig(
        export_dir=values.export_dir, data=values.data, num_samples=values.num_samples,
        num_frames=values.num_frames, frames_generator=values.frames_generator,
        plot=picture_path(values.plot, values.output, VideoEvalConfig.plot),
        encoder_samples=values.encoder_samples, encoder_steps=values.encoder_steps,
        encoder_cache=values.encoder_cache, seed=values.seed, long_frames=values.long_frames,
        swap_expected_balls=values.swap_expected_balls, rejection_acceptance=values.rejection_acceptance))


@register_mode
def reconstruction(values) -> dict:
    """Reconstructor export vs GAP-TV and back-projection on held-out CUP pairs (`metrics.reconstruction_report`)."""
    from tfvidgan.metrics.reconstruction_report import ReconstructionEvalConfig, evaluate_reconstruction
    return evaluate_reconstruction(ReconstructionEvalConfig(
        export_dir=values.export_dir, data=values.data, num_samples=values.num_samples,
        gap_tv_iterations=values.gap_tv_iterations, tv_weight=values.gap_tv_weight,
        picture=picture_path(values.picture, values.output, ReconstructionEvalConfig.picture)))


def main(argv):
    if len(argv) != 2 or argv[1] not in _MODES:
        raise ConfigError(f"usage: python -m tfvidgan.evaluate {{{'|'.join(list_modes())}}} --export_dir=... "
                          f"--data=... (got {argv[1:]})")
    for name in ("export_dir", "data"):
        if not FLAGS[name].value:
            raise ConfigError(f"--{name} is required")
    if FLAGS.num_samples < 2:
        raise ConfigError(f"--num_samples must be >= 2, got {FLAGS.num_samples}")
    emit(run_mode(argv[1], FLAGS), FLAGS.output)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
