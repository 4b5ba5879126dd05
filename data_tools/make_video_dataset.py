r"""Turns your own videos (files and folders of numbered images) into a training dataset.

    python -m data_tools.make_video_dataset --input=clips/ --output_dir=data/own_64 --size=64 \
        --num_frames=40 --fps=10 --channels=3 --shards=8 [--stride=40] [--on_error=skip|fail] \
        [--image_fps=10] [--workers=N] [--overwrite]

Flags are the fields of `tfvidgan.data.video_ingest.VideoDatasetConfig` (defaults read from it) plus
``--output_dir``, ``--workers``, ``--overwrite`` and ``--progress``; the work is done by
`tfvidgan.data.video_ingest.make_video_dataset` (frame-rate resampling, centre crop then resize, scene
cutting: see its module doc). Reading video files needs PyAV: ``pip install -e ".[video]"``. A progress
bar goes to stderr and a JSON summary (scenes, files skipped per problem kind, each problem naming its
file, speed) to stdout; a bad flag or, with ``--on_error=fail``, a bad file exits with code 1 and one
line (`tfvidgan.cli`) naming it.
"""
from __future__ import annotations

import json

from absl import flags

# Light import (numpy, Pillow): spawned worker processes re-import this module.
from tfvidgan import cli
from tfvidgan.data.video_ingest import ON_ERROR, VideoDatasetConfig, make_video_dataset

_HELP = {
    "input": "Videos: a directory (walked recursively: video files and folders of numbered images), a glob "
             "or one file.",
    "size": "Output frame side in pixels (frames are centre-cropped to a square, then resized); the trainers "
            "take 30, 32 or 64.",
    "num_frames": "Frames per scene (T).",
    "fps": "Output frame rate; every video is resampled to it (sample and hold).",
    "channels": "1 = grayscale, 3 = RGB.",
    "shards": "Number of TFRecord shards (at most one per scene).",
    "stride": "Frames between the starts of consecutive scenes of a video; default --num_frames (no overlap).",
    "on_error": "What to do with a bad file (unreadable, corrupt, too short, ...): skip it (counted in the "
                "summary) or fail naming it.",
    "image_fps": "Frame rate of folders of images; default --fps (one image = one frame).",
}


def define_flags() -> None:
    """One flag per `VideoDatasetConfig` field, its default read from the dataclass."""
    defaults = {f: getattr(VideoDatasetConfig, f) for f in _HELP}
    flags.DEFINE_string("input", defaults["input"] or None, _HELP["input"])
    for name in ("size", "num_frames", "channels", "shards", "stride"):
        flags.DEFINE_integer(name, defaults[name], _HELP[name])
    for name in ("fps", "image_fps"):
        flags.DEFINE_float(name, defaults[name], _HELP[name])
    flags.DEFINE_enum("on_error", defaults["on_error"], list(ON_ERROR), _HELP["on_error"])
    flags.DEFINE_string("output_dir", None, "Directory for the shards and metadata.json (created if needed).")
    flags.DEFINE_integer("workers", None, "Processes decoding files; default one per CPU (at most one per file).")
    flags.DEFINE_bool("overwrite", False, "Replace a dataset already in --output_dir.")
    flags.DEFINE_bool("progress", True, "Show a progress bar on stderr.")
    flags.mark_flag_as_required("input")
    flags.mark_flag_as_required("output_dir")


def main(argv) -> int:
    values = flags.FLAGS
    cli.check_positional(argv)
    config = VideoDatasetConfig(**{name: values[name].value for name in _HELP})
    result = make_video_dataset(config, values.output_dir, overwrite=values.overwrite, workers=values.workers,
                                show_progress=values.progress)
    print(json.dumps(result.summary))
    return 0


if __name__ == "__main__":
    define_flags()
    cli.run(main)
