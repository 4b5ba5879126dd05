"""`python -m tfvidgan.evaluate reconstruction`: how well and how fast does a CUP reconstructor work?

On the first `num_samples` pairs of a held-out CUP pairs dataset (`tfvidgan.data.cup_pairs`, read in
its deterministic unshuffled order) three methods reconstruct the scene from the sensed image:

* ``network``: the export's TF Serving signature
  (`serving_default(sensed_image [B, H+T−1, W, 1]) → {"scene": [B, T, H, W, 1] in [0, 1]}`);
* ``gap_tv``: the classical iterative baseline `tfvidgan.cup.gap_tv.gap_tv_reconstruct` on the
  dataset's own operator (mask and T);
* ``back_projection``: the normalised back-projection ``Aᵀ (y ⊘ A Aᵀ 1)`` clipped to [0, 1], a trivial floor.

Each row reports PSNR (dB) and SSIM per frame index (lists of length T, averaged over samples) and
their means over samples and frames (`tfvidgan.metrics.image_quality`; for frames smaller than
11×11 the SSIM window shrinks, see there), and seconds per sample. Timing: every method first runs
once on every distinct batch shape (tracing / XLA compilation excluded), then the whole set is
reconstructed in batches of `batch_size` in one timed pass (host → TF → numpy included). The
three methods run one after the other in the same process, so their times are comparable with each
other, not across machines or loads. A frame reconstructed exactly has PSNR +inf (written as
``null`` in JSON), which then makes the means +inf too; real noisy data does not hit this.

The picture shows, for the first `picture_examples` samples, four rows each: the original frames,
the sensed image (once, scaled to [0, 1] by its own maximum), the network's and GAP-TV's
reconstructions, with a text label (and the sample's mean PSNR) left of every row.
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Callable

import numpy as np
import tensorflow as tf
from absl import logging
from PIL import Image, ImageDraw, ImageFont

from tfvidgan.cup.gap_tv import gap_tv_reconstruct
from tfvidgan.data.cup_pairs import CupMetadata, cup_pairs_dataset, read_cup_metadata
from tfvidgan.errors import ConfigError, DatasetError, check_whole_number
from tfvidgan.export import WITH_MASK_SIGNATURE, load_reconstructor
from tfvidgan.metrics.image_quality import psnr_per_frame, ssim_per_frame, ssim_window
from tfvidgan.metrics.plotting import image_grid
from tfvidgan.models.reconstructor import SCENE_OUTPUT_NAME, SENSED_INPUT_NAME
from tfvidgan.models.unfolded import MASK_INPUT_NAME

__all__ = ["ReconstructionEvalConfig", "evaluate_reconstruction", "load_reconstructor_signature",
           "read_pairs", "method_scores", "timed_reconstruction", "timed_reconstructions",
           "save_reconstruction_picture", "picture_size", "METHODS"]

METHODS = ("network", "gap_tv", "back_projection")

# Picture layout (pixels): see `picture_size`.
LABEL_WIDTH = 120
MARGIN = 4
ROW_GAP = 3
BLOCK_GAP = 12
STRIP_PAD = 1


@dataclasses.dataclass(frozen=True)
class ReconstructionEvalConfig:
    """Settings of the reconstruction report (field names are the CLI flag names where one exists).

    Attributes:
      export_dir: reconstructor export (`train_reconstructor`'s `<model_dir>/export`, or one version).
      data: held-out CUP pairs (directory or shard glob, `data_tools.make_cup_pairs`).
      num_samples: pairs evaluated (the first ones, unshuffled); the data must hold at least this many.
      gap_tv_iterations: GAP-TV iterations of the baseline.
      picture: output PNG path ("" = no picture).
      batch_size: samples per call for every method (timing and inference).
      tv_weight: GAP-TV TV weight (intensity units, the library default).
      gap_tv_xla: compile GAP-TV with XLA (faster per sample on CPU once compiled).
      picture_examples: samples shown in the picture.
      picture_scale: integer nearest-neighbour enlargement of the picture's images.
    """
    export_dir: str
    data: str
    num_samples: int = 100
    gap_tv_iterations: int = 100
    picture: str = "reconstruction.png"
    batch_size: int = 32
    tv_weight: float = 0.3
    gap_tv_xla: bool = True
    picture_examples: int = 3
    picture_scale: int = 3

    def __post_init__(self):
        for name in ("export_dir", "data"):
            if not getattr(self, name):
                raise ConfigError(f"--{name} is required")
        for name, minimum in (("num_samples", 1), ("gap_tv_iterations", 1), ("batch_size", 1),
                              ("picture_examples", 1), ("picture_scale", 1)):
            check_whole_number(name, getattr(self, name), minimum)
        if not self.tv_weight >= 0:
            raise ConfigError(f"tv_weight must be >= 0, got {self.tv_weight!r}")


# -- inputs -------------------------------------------------------------------------------------


def data_directory(data: str, flag: str = "--data") -> str:
    """The dataset directory of CUP pairs `data` (a directory, or a glob of its shards; `flag` names it in
    the error)."""
    if os.path.isdir(data):
        return data
    files = sorted(tf.io.gfile.glob(data))
    if not files:
        raise DatasetError(f"{flag}={data!r}: no CUP pairs shards match this pattern")
    return os.path.dirname(files[0])


def read_pairs(data: str, num_samples: int) -> tuple[np.ndarray, np.ndarray, CupMetadata]:
    """The first `num_samples` pairs of `data` in the reader's deterministic unshuffled order.

    Returns:
      `(sensed [N, H+T−1, W, 1] float32, scenes [N, T, H, W, 1] float32 in [0, 1], metadata)`.

    Raises:
      DatasetError: unreadable data. ConfigError: fewer than `num_samples` pairs (naming --num_samples).
    """
    metadata = read_cup_metadata(data_directory(data))
    sensed, scenes = [], []
    count = 0
    for s, x in cup_pairs_dataset(data, min(num_samples, 256), shuffle=False, repeat=False):
        sensed.append(s.numpy())
        scenes.append(x.numpy())
        count += len(s)
        if count >= num_samples:
            break
    if count < num_samples:
        raise ConfigError(f"--num_samples={num_samples} exceeds the {count} pairs of --data={data!r}; "
                          f"lower --num_samples")
    return np.concatenate(sensed)[:num_samples], np.concatenate(scenes)[:num_samples], metadata


def load_reconstructor_signature(export_dir: str, metadata: CupMetadata, data: str = "",
                                 use_data_mask: bool = True) -> tuple[Callable, str, bool]:
    """Loads the export's `serving_default` and checks it against the data.

    Returns:
      `(reconstruct, version_dir, mask_matches)` where `reconstruct(sensed [B, H+T−1, W, 1] float32)
      → [B, T, H, W, 1] float32 numpy`, and `mask_matches` says whether the export's (default) coding
      mask equals the data's (`None` if the export holds no recognisable mask variable). An export with
      a ``with_mask`` signature (the unfolded reconstructor) is called through it with the DATA's mask
      when `use_data_mask` (so it serves another camera); `reconstruct.uses_data_mask` says which, and
      `reconstruct.parameters` is the export's trainable parameter count.

    Raises:
      ConfigError: no `serving_default`, or its input/output shapes differ from the data's (naming
        --export_dir and --data and both shapes).
    """
    loaded, path = load_reconstructor(export_dir, "export_dir")
    signature = loaded.signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    outputs = signature.structured_outputs
    sensed_shape = tuple(inputs[SENSED_INPUT_NAME].shape[1:])
    scene_shape = tuple(outputs[SCENE_OUTPUT_NAME].shape[1:])
    if sensed_shape != metadata.sensed_shape or scene_shape != metadata.scene_shape:
        raise ConfigError(
            f"--export_dir={export_dir!r} reconstructs sensed images {list(sensed_shape)} into scenes "
            f"{list(scene_shape)} (T, H, W, C), but --data={data or metadata.directory!r} has sensed images "
            f"{list(metadata.sensed_shape)} and scenes {list(metadata.scene_shape)}; evaluate on pairs of the "
            f"size (and T) the model was trained for")
    masks = [v for v in loaded.variables if v.name.split("/")[-1].startswith("mask")
             and tuple(v.shape) == (metadata.height, metadata.width)]
    mask_matches = bool(np.array_equal(masks[0].numpy(), metadata.mask)) if masks else None
    with_mask = loaded.signatures.get(WITH_MASK_SIGNATURE) if use_data_mask else None
    data_mask = tf.constant(np.asarray(metadata.mask, np.float32))

    def reconstruct(sensed):
        sensed = tf.constant(sensed, tf.float32)
        if with_mask is not None:  # the unfolded net: give it the data's own mask (any camera)
            masks = tf.tile(data_mask[None], [tf.shape(sensed)[0], 1, 1])
            return with_mask(**{SENSED_INPUT_NAME: sensed, MASK_INPUT_NAME: masks})[SCENE_OUTPUT_NAME].numpy()
        return signature(**{SENSED_INPUT_NAME: sensed})[SCENE_OUTPUT_NAME].numpy()

    reconstruct.loaded = loaded  # keeps the SavedModel's variables alive as long as the function
    reconstruct.uses_data_mask = with_mask is not None
    reconstruct.parameters = int(sum(np.prod(v.shape) for v in loaded.trainable_variables))
    return reconstruct, path, mask_matches


# -- measurements -------------------------------------------------------------------------------


def timed_reconstruction(method: Callable[[np.ndarray], np.ndarray], sensed: np.ndarray,
                         batch_size: int, repeats: int = 1) -> tuple[np.ndarray, float]:
    """Runs `method` over `sensed` in batches: warm-up on every distinct batch shape, then `repeats` timed
    passes, of which the fastest counts (as `timeit` advises: on a shared machine, other jobs only ever add
    time, so the minimum is the least disturbed estimate). One method of `timed_reconstructions`.

    Args:
      method: `sensed [b, H+T−1, W, 1] float32 → scenes [b, T, H, W, 1]` (numpy or tensor).
      sensed: `[N, H+T−1, W, 1]` float32.
      batch_size: samples per call.
      repeats: timed passes (>= 1).

    Returns:
      `(scenes [N, T, H, W, 1] float32 of the last pass, seconds per sample of the fastest pass)`.
    """
    return timed_reconstructions({"method": method}, sensed, batch_size, repeats)["method"]


def timed_reconstructions(methods: dict[str, Callable[[np.ndarray], np.ndarray]], sensed: np.ndarray,
                          batch_size: int, repeats: int = 1) -> dict[str, tuple[np.ndarray, float]]:
    """`timed_reconstruction` for several methods whose times are compared, INTERLEAVED: every method is
    warmed up, then each of the `repeats` rounds times one pass of every method in turn, so a burst of
    load from other jobs falls on neighbouring passes of different methods rather than on all the passes
    of one (their time ratios are what a benchmark reports). The fastest pass of each method counts.

    Args:
      methods: {name: method} (see `timed_reconstruction`), timed in this order within a round.
      sensed, batch_size, repeats: as `timed_reconstruction`.

    Returns:
      `{name: (scenes [N, T, H, W, 1] float32 of its last pass, seconds per sample of its fastest pass)}`.
    """
    check_whole_number("repeats", repeats, 1)
    batches = [sensed[i:i + batch_size] for i in range(0, len(sensed), batch_size)]
    for method in methods.values():
        warmed = set()
        for batch in batches:
            if len(batch) not in warmed:
                np.asarray(method(batch))
                warmed.add(len(batch))
    fastest = dict.fromkeys(methods, float("inf"))
    outputs = {}
    for _ in range(repeats):
        for name, method in methods.items():
            start = time.perf_counter()
            outputs[name] = [np.asarray(method(batch)) for batch in batches]
            fastest[name] = min(fastest[name], time.perf_counter() - start)
    return {name: (np.concatenate(outputs[name]).astype(np.float32), fastest[name] / len(sensed))
            for name in methods}


def method_scores(reconstructed: np.ndarray, scenes: np.ndarray) -> dict:
    """PSNR/SSIM of reconstructions `[N, T, H, W, 1]` against `scenes` (both in [0, 1]).

    Returns:
      `{"psnr_db", "psnr_db_per_frame" (list of T), "ssim", "ssim_per_frame" (list of T)}`: per-frame
      values averaged over the N samples; the means average over samples and frames.
    """
    psnr = psnr_per_frame(reconstructed, scenes).numpy().astype(np.float64)   # [N, T]
    ssim = ssim_per_frame(reconstructed, scenes).numpy().astype(np.float64)
    return {"psnr_db": float(psnr.mean()), "psnr_db_per_frame": psnr.mean(axis=0).tolist(),
            "ssim": float(ssim.mean()), "ssim_per_frame": ssim.mean(axis=0).tolist()}


# -- picture ------------------------------------------------------------------------------------


def picture_size(num_examples: int, num_frames: int, height: int, width: int, scale: int) -> tuple[int, int]:
    """`(width, height)` in pixels of `save_reconstruction_picture`'s PNG.

    Each example is a block of four rows (original, sensed, network, GAP-TV) separated by `ROW_GAP`;
    frame strips are `T·W + (T−1)·STRIP_PAD` wide and `H` high, the sensed row `H+T−1` high, all
    enlarged `scale` times; blocks are separated by `BLOCK_GAP`; a `LABEL_WIDTH` text column on the
    left and a `MARGIN` all around.
    """
    strip_width = scale * (num_frames * width + (num_frames - 1) * STRIP_PAD)
    block_height = scale * (4 * height + num_frames - 1) + 3 * ROW_GAP
    return (2 * MARGIN + LABEL_WIDTH + strip_width,
            2 * MARGIN + num_examples * block_height + (num_examples - 1) * BLOCK_GAP)


def save_reconstruction_picture(path: str, scenes: np.ndarray, sensed: np.ndarray, network: np.ndarray,
                                gap_tv: np.ndarray, scale: int = 3) -> None:
    """Writes the original / sensed / network / GAP-TV PNG (layout and size: `picture_size`).

    Args:
      path: output PNG (parent directories are created).
      scenes, network, gap_tv: `[n, T, H, W, 1]` float in [0, 1] (the n examples to show).
      sensed: `[n, H+T−1, W, 1]` float (sensed units); each is shown divided by its own maximum.
      scale: integer nearest-neighbour enlargement of the images (labels are not scaled).
    """
    n, num_frames, height, width, _ = scenes.shape
    size = picture_size(n, num_frames, height, width, scale)
    canvas = Image.new("L", size, 255)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()

    def paste(image_u8: np.ndarray, x: int, y: int) -> int:
        img = Image.fromarray(image_u8[..., 0], mode="L")
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
        canvas.paste(img, (x, y))
        return img.height

    def strip(clip01: np.ndarray) -> np.ndarray:
        return image_grid(np.clip(clip01, 0.0, 1.0) * 2.0 - 1.0, rows=1, pad=STRIP_PAD)

    x_image = MARGIN + LABEL_WIDTH
    y = MARGIN
    for i in range(n):
        peak = float(np.max(sensed[i]))
        sensed01 = sensed[i] / peak if peak > 0 else np.zeros_like(sensed[i])
        psnr = {name: float(np.mean(psnr_per_frame(recon[i:i + 1], scenes[i:i + 1]).numpy()))
                for name, recon in (("network", network), ("gap_tv", gap_tv))}
        rows = [
            (f"#{i} original", strip(scenes[i])),
            (f"sensed (/{peak:.2f})", image_grid((np.clip(sensed01, 0.0, 1.0) * 2.0 - 1.0)[None], rows=1)),
            (f"network {psnr['network']:.1f} dB", strip(network[i])),
            (f"GAP-TV {psnr['gap_tv']:.1f} dB", strip(gap_tv[i])),
        ]
        for r, (label, image) in enumerate(rows):
            draw.text((MARGIN, y + 2), label, fill=0, font=font)
            y += paste(image, x_image, y) + (ROW_GAP if r < 3 else 0)
        y += BLOCK_GAP
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    canvas.save(path, format="PNG")


# -- the report ---------------------------------------------------------------------------------


def evaluate_reconstruction(config: ReconstructionEvalConfig) -> dict:
    """Returns `{"network": row, "gap_tv": row, "back_projection": row, "speedup_vs_gap_tv", "settings"}`.

    Each row: `psnr_db`, `psnr_db_per_frame` (list of T), `ssim`, `ssim_per_frame`, `seconds_per_sample`
    (see the module docstring); gap_tv also `iterations`, `tv_weight`, `xla`. `speedup_vs_gap_tv` is
    GAP-TV's seconds per sample divided by the network's. Also writes `config.picture`.

    Raises:
      ConfigError: bad settings, too few pairs, or an export whose shapes differ from the data's.
      DatasetError: unreadable data.
    """
    sensed, scenes, metadata = read_pairs(config.data, config.num_samples)
    network, version_dir, mask_matches = load_reconstructor_signature(config.export_dir, metadata, config.data)
    if mask_matches is False and not network.uses_data_mask:
        logging.warning("The coding mask of --export_dir=%s differs from the mask of --data=%s: the network was "
                        "trained for another camera; its numbers will be poor.", config.export_dir, config.data)
    operator = metadata.operator()

    def gap_tv(batch):
        return gap_tv_reconstruct(batch, operator, iterations=config.gap_tv_iterations, tv_weight=config.tv_weight,
                                  jit_compile=config.gap_tv_xla).numpy()

    back_projection_fn = tf.function(
        lambda batch: tf.clip_by_value(operator.normalized_back_projection(batch), 0.0, 1.0), reduce_retracing=True)

    def back_projection(batch):
        return back_projection_fn(tf.constant(batch, tf.float32)).numpy()

    timed = timed_reconstructions({"network": network, "gap_tv": gap_tv, "back_projection": back_projection},
                                  sensed, config.batch_size)
    outputs = {name: out for name, (out, _) in timed.items()}
    report = {name: {**method_scores(out, scenes), "seconds_per_sample": seconds}
              for name, (out, seconds) in timed.items()}
    report["gap_tv"].update(iterations=config.gap_tv_iterations, tv_weight=config.tv_weight, xla=config.gap_tv_xla)
    net_seconds = report["network"]["seconds_per_sample"]
    report["speedup_vs_gap_tv"] = (report["gap_tv"]["seconds_per_sample"] / net_seconds if net_seconds > 0
                                   else float("inf"))
    if config.picture:
        k = min(config.picture_examples, len(scenes))
        save_reconstruction_picture(config.picture, scenes[:k], sensed[:k], outputs["network"][:k],
                                    outputs["gap_tv"][:k], scale=config.picture_scale)
    report["settings"] = {
        **dataclasses.asdict(config),
        "export_version_dir": version_dir,
        "export_mask_matches_data": mask_matches,
        "network_given_data_mask": network.uses_data_mask,
        "network_parameters": network.parameters,
        "num_frames": metadata.num_frames, "height": metadata.height, "width": metadata.width,
        "ssim_window": list(ssim_window(metadata.height, metadata.width)),
        "photons": metadata.photons, "read_noise": metadata.read_noise, "noise_seed": metadata.noise_seed,
        "mask_seed": metadata.mask_seed, "mask_fill": metadata.mask_fill,
        "data_pairs": metadata.num_examples,
    }
    return report
