r"""Generates a bouncing-balls dataset: sharded TFRecords + ``metadata.json``.

    python -m data_tools.make_bouncing_balls --output_dir=data/bb32 --num_scenes=50000 \
        --num_frames=40 --num_balls=3 --size=32 --shards=8 --seed=0 [--radius=3.2] [--channels=1] \
        [--workers=N] [--overwrite]

Flags are the fields of `tfvidgan.data.bouncing_balls.BouncingBallsConfig` (defaults included) plus
``--output_dir``, ``--workers``, ``--overwrite`` and ``--progress``; the work is done by
`tfvidgan.data.bouncing_balls.generate_dataset`. A progress bar goes to stderr and a JSON summary
to stdout; a bad flag exits with code 1 and one line (`tfvidgan.cli`) naming it.
"""
from __future__ import annotations

import json
import time

from absl import flags

# Light import (numpy only): spawned generator workers re-import this module.
from tfvidgan import cli
from tfvidgan.data.bouncing_balls import BouncingBallsConfig, generate_dataset

_HELP = {
    "num_scenes": "Scenes to generate.",
    "num_frames": "Frames per scene (T).",
    "num_balls": "Balls per scene (N).",
    "size": "Frame side in pixels: 30, 32 or 64.",
    "radius": "Ball radius in pixels; default size/10.",
    "channels": "1 = grayscale (white balls), 3 = RGB (one colour per ball).",
    "shards": "Number of TFRecord shards.",
    "seed": "Seed; scene i uses numpy default_rng([seed, i]).",
    "min_speed": "Slowest initial ball speed, pixels/frame; default size/64.",
    "max_speed": "Fastest initial ball speed, pixels/frame; default 3*size/64.",
    "substeps": "Physics slices per frame; default: enough that no ball moves more than r/4 per slice.",
}
_FLOATS = ("radius", "min_speed", "max_speed")


def define_flags() -> None:
    """One flag per `BouncingBallsConfig` field, its default read from the dataclass."""
    for name, help_text in _HELP.items():
        define = flags.DEFINE_float if name in _FLOATS else flags.DEFINE_integer
        define(name, getattr(BouncingBallsConfig, name), help_text)
    flags.DEFINE_string("output_dir", None, "Directory for the shards and metadata.json (created if needed).")
    flags.DEFINE_integer("workers", None, "Processes; default one per CPU (at most one per 2000 scenes).")
    flags.DEFINE_bool("overwrite", False, "Replace a dataset already in --output_dir.")
    flags.DEFINE_bool("progress", True, "Show a progress bar on stderr.")
    flags.mark_flag_as_required("output_dir")


def main(argv) -> int:
    values = flags.FLAGS
    cli.check_positional(argv)
    config = BouncingBallsConfig(**{name: values[name].value for name in _HELP})
    started = time.monotonic()
    metadata = generate_dataset(config, values.output_dir, overwrite=values.overwrite, workers=values.workers,
                                show_progress=values.progress)
    seconds = time.monotonic() - started
    print(json.dumps({"output_dir": metadata.directory, "num_scenes": metadata.num_scenes,
                      "shape": list(metadata.shape), "shards": metadata.num_shards, "seconds": round(seconds, 2),
                      "scenes_per_second": round(metadata.num_scenes / seconds, 1),
                      "bytes": sum(s.num_bytes for s in metadata.shards)}))
    return 0


if __name__ == "__main__":
    define_flags()
    cli.run(main)
