r"""Simulates CUP measurements of bouncing-balls scenes and writes (sensed, scene) pairs.

    python -m data_tools.make_cup_pairs --scenes='data/balls/*.tfrecord' --output_dir=data/cup \
        --num_frames=8 --clips_per_scene=2 --mask_seed=0 --photons=1000 --read_noise=0.01 --shards=4

Flags are the fields of `tfvidgan.data.cup_simulation.CupPairsConfig` (defaults included) plus
``--output_dir`` and ``--overwrite``; the work is done by
`tfvidgan.data.cup_simulation.generate_cup_pairs`. Prints a JSON summary; a bad flag exits with
code 1 and one line (`tfvidgan.cli`) naming it.
"""
from __future__ import annotations

import json
import time

from absl import flags

from tfvidgan import cli
from tfvidgan.data.cup_simulation import CupPairsConfig, generate_cup_pairs

_HELP = {
    "scenes": "Bouncing-balls dataset directory or shard glob (tfvidgan.data.readers.scenes_dataset).",
    "num_frames": "T: frames per clip, integrated into one sensed image (<= scene length).",
    "clips_per_scene": "Clips per scene, at evenly spaced distinct offsets.",
    "mask_seed": "Seed of the pseudo-random binary coding mask.",
    "mask_fill": "Probability that a mask pixel is open.",
    "photons": "Photons at full scale (sensed value 1.0) for Poisson shot noise; 0 = off.",
    "read_noise": "Gaussian read-noise sigma in sensed units; 0 = off.",
    "noise_seed": "Base seed of the noise; record i uses stateless seed [noise_seed, i].",
    "shards": "Number of output TFRecord shards.",
    "batch_size": "Clips simulated per TensorFlow call (speed only; the output does not depend on it).",
}
_DEFINE = {str: flags.DEFINE_string, int: flags.DEFINE_integer, float: flags.DEFINE_float}


def define_flags() -> None:
    """One flag per `CupPairsConfig` field, its default read from the dataclass (``--scenes`` is required)."""
    for name, help_text in _HELP.items():
        default = getattr(CupPairsConfig, name, None)
        kind = {"scenes": str}.get(name, type(default))
        _DEFINE[kind](name, default, help_text)
    flags.DEFINE_string("output_dir", None, "Directory to create for the CUP pairs dataset.")
    flags.DEFINE_bool("overwrite", False, "Replace an existing CUP pairs dataset in --output_dir.")
    flags.mark_flags_as_required(["scenes", "output_dir"])


def main(argv) -> int:
    values = flags.FLAGS
    cli.check_positional(argv)
    config = CupPairsConfig(**{name: values[name].value for name in _HELP})
    started = time.monotonic()
    metadata = generate_cup_pairs(config, values.output_dir, overwrite=values.overwrite)
    print(json.dumps({
        "output_dir": metadata.directory, "num_examples": metadata.num_examples, "num_scenes": metadata.num_scenes,
        "sensed_shape": list(metadata.sensed_shape), "scene_shape": list(metadata.scene_shape),
        "shards": len(metadata.shards), "seconds": round(time.monotonic() - started, 2),
    }))
    return 0


if __name__ == "__main__":
    define_flags()
    cli.run(main)
