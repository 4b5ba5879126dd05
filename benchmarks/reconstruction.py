r"""The CUP results table: back-projection, GAP-TV and trained reconstructors on held-out pairs.

    python benchmarks/reconstruction.py --val=data/cup_val \
        --test=noisy=data/cup_test,noisy_camera1=data/cup_test_mask1 \
        --exports=unet=runs/cup_unet/export,unfolded=runs/cup_unfolded/export \
        --output=docs/cup_results.json --markdown=docs/cup_results.md

For every test set (``name=directory`` of CUP pairs, `data_tools.make_cup_pairs`; the first
``--num_samples`` pairs, unshuffled) and every method, it reports PSNR and SSIM (dB / [0, 1], means over
samples and frames, `tfvidgan.metrics.reconstruction_report.method_scores`), parameters, and seconds per
sample at each ``--batch_sizes`` (first call per batch shape excluded; the fastest of
``--timing_repeats`` passes; host → TF → numpy included; all methods one after the other in one process,
so times compare with each other, not across machines).

* ``back_projection``: ``clip(Aᵀ (y ⊘ A Aᵀ 1), 0, 1)`` with the test set's own operator.
* ``gap_tv``: `gap_tv_reconstruct` with the test set's operator (XLA); its TV weight is picked from
  ``--tv_weights`` by mean PSNR on the first ``--val_samples`` pairs of ``--val`` (a validation split of
  other scenes; never the test pairs).
* each export (``name=base dir``): an unfolded reconstructor (it has a ``with_mask`` signature) is given
  the test set's mask; a U-Net can only use the mask it was trained with (`serving_default`). So a test
  set from another camera (mask seed 1) shows how each copes with a mask it was not trained on.

Every test set also gets ``targets`` (`tfvidgan.metrics.targets.CUP_TARGETS`, at the largest timed
batch): each unfolded export (one given the test mask) against the U-Net (the export that is not; or
``--unet=NAME``): PSNR gain >= 2 dB and time <= 1.25x the U-Net's, both for ``pass``; and every export's
speed-up over GAP-TV (>= 100x, counted only when its PSNR is above GAP-TV's). Nets trained with several
seeds compare pair by pair, ``--unet=unfolded_s0=unet_s0,unfolded_s1=unet_s1,...`` (each unfolded export
with the U-Net of its own training seed); the targets then also hold ``over_pairs``: the gain's and time
ratio's mean, standard deviation and worst value over the pairs, the targets checked on the means, and
how many pairs pass. ``--report=FILE`` re-checks the targets of a report written earlier, without running
anything:

    python benchmarks/reconstruction.py --report=docs/cup_results_s64_1200_same_run.json

Writes JSON (``--output``) and a Markdown table (``--markdown``).
"""
from __future__ import annotations

import dataclasses
import os
import statistics
import time

from absl import flags

from tfvidgan import cli
from tfvidgan.errors import ConfigError
from tfvidgan.json_report import emit, machine, read_json
from tfvidgan.metrics import targets

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the command line's flags (only when run as a program, so importing the checks defines none)."""
    flags.DEFINE_string("val", None, "CUP pairs used to tune GAP-TV's TV weight (validation split, not the test).")
    flags.DEFINE_string("test", None, "Comma-separated name=directory CUP pairs test sets.")
    flags.DEFINE_string("exports", "", "Comma-separated name=export_dir reconstructors.")
    flags.DEFINE_integer("num_samples", 100, "Test pairs per test set (the first ones).")
    flags.DEFINE_integer("val_samples", 32, "Validation pairs for the TV weight search.")
    flags.DEFINE_string("tv_weights", "0.1,0.3,1,3,8,20,50", "TV weights tried on --val (the report warns when the "
                        "best is at either end of the grid).")
    flags.DEFINE_integer("gap_tv_iterations", 100, "GAP-TV iterations.")
    flags.DEFINE_string("batch_sizes", "1,64", "Batch sizes timed (quality comes from the largest).")
    flags.DEFINE_integer("timing_samples_batch1", 32, "Samples timed at batch size 1 (the first ones).")
    flags.DEFINE_integer("timing_repeats", 3, "Timed passes per method and batch size, in interleaved rounds (one "
                         "pass of every method per round); the fastest counts (other jobs on a shared machine only add time).", lower_bound=1)
    flags.DEFINE_string("make_data", "", "First simulate the results-table datasets into this directory (skipping "
                        "those that exist): cup_train, cup_val, cup_test, cup_test_mask1, cup_test_clean, "
                        "cup_test_mask1_clean (see make_results_data).")
    flags.DEFINE_integer("make_data_frames", 8, "T of the --make_data datasets (the table uses 8 and 16).")
    flags.DEFINE_integer("make_data_size", 32, "Frame side of the --make_data datasets (the table uses 32 and 64).")
    flags.DEFINE_string("unet", "", "The export the unfolded ones are compared with (default: the one export that is "
                        "not given the test mask), or comma-separated unfolded=unet pairs (one per training seed: "
                        "each unfolded export against its own U-Net, summarised over the pairs).")
    flags.DEFINE_string("report", "", "Only re-check the targets of this earlier JSON report (no data is read).")
    flags.DEFINE_string("output", "", "Write the JSON report here.")
    flags.DEFINE_string("markdown", "", "Write the Markdown table here.")


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig:
    """Parsed flags (see the flag help)."""
    val: str
    tests: tuple
    exports: tuple
    num_samples: int
    val_samples: int
    tv_weights: tuple
    gap_tv_iterations: int
    batch_sizes: tuple
    timing_samples_batch1: int
    timing_repeats: int


def _pairs_list(value: str, flag: str) -> tuple:
    out = []
    for item in filter(None, (v.strip() for v in value.split(","))):
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--{flag}: {item!r} is not name=path")
        out.append((name, path))
    return tuple(out)


def config_from_flags(values) -> BenchmarkConfig:
    if not values.val or not values.test:
        raise ConfigError("--val and --test are required")
    try:
        tv_weights = tuple(float(v) for v in values.tv_weights.split(","))
        batch_sizes = tuple(sorted(int(v) for v in values.batch_sizes.split(",")))
    except ValueError as e:
        raise ConfigError(f"--tv_weights / --batch_sizes must be comma-separated numbers ({e})") from e
    return BenchmarkConfig(val=values.val, tests=_pairs_list(values.test, "test"),
                           exports=_pairs_list(values.exports, "exports"), num_samples=values.num_samples,
                           val_samples=values.val_samples, tv_weights=tv_weights,
                           gap_tv_iterations=values.gap_tv_iterations, batch_sizes=batch_sizes,
                           timing_samples_batch1=values.timing_samples_batch1,
                           timing_repeats=values.timing_repeats)


def make_results_data(root: str, num_frames: int = 8, size: int = 32) -> None:
    """The datasets of the README's results table, under ``root`` (existing ones are kept).

    Bouncing-balls scenes (``num_frames`` frames of ``size``×``size``, 3 balls; the embedded default's
    generator, ball radius and speeds scaled with ``size``): 1,500 training (seed 0), 100 test (seed 1),
    100 validation (seed 2). CUP pairs (T = ``num_frames``, one clip per scene): ``cup_train`` (mask
    seed 0, 2000 photons + 0.01 read noise, noise seed 0), ``cup_val`` (mask 0, noise seed 2),
    ``cup_test`` / ``cup_test_mask1`` (mask 0 / 1, noise seed 1) and the noiseless ``cup_test_clean`` /
    ``cup_test_mask1_clean``. The table's settings: T = 8 and 16 at 32×32, T = 8 at 64×64.
    """
    from tfvidgan.data.cup_simulation import CupPairsConfig, generate_cup_pairs
    from tfvidgan.data.default_dataset import ensure_dataset

    balls = {split: ensure_dataset("", os.path.join(root, f"balls_{split}"), num_scenes=n, num_frames=num_frames,
                                   size=size, seed=seed)
             for split, n, seed in (("train", 1500, 0), ("test", 100, 1), ("val", 100, 2))}
    for name, split, mask_seed, noise_seed, photons, read_noise in (
            ("cup_train", "train", 0, 0, 2000.0, 0.01), ("cup_val", "val", 0, 2, 2000.0, 0.01),
            ("cup_test", "test", 0, 1, 2000.0, 0.01), ("cup_test_mask1", "test", 1, 1, 2000.0, 0.01),
            ("cup_test_clean", "test", 0, 1, 0.0, 0.0), ("cup_test_mask1_clean", "test", 1, 1, 0.0, 0.0)):
        out = os.path.join(root, name)
        if not os.path.exists(os.path.join(out, "metadata.json")):
            generate_cup_pairs(CupPairsConfig(scenes=balls[split], num_frames=num_frames, mask_seed=mask_seed,
                                              photons=photons, read_noise=read_noise, noise_seed=noise_seed,
                                              shards=2), out)


def run(config: BenchmarkConfig) -> dict:
    import tensorflow as tf

    from tfvidgan.cup.gap_tv import gap_tv_reconstruct
    from tfvidgan.metrics.reconstruction_report import (
        load_reconstructor_signature,
        method_scores,
        read_pairs,
        timed_reconstruction,
        timed_reconstructions,
    )

    def gap_tv_fn(operator, weight):
        return lambda batch: gap_tv_reconstruct(batch, operator, iterations=config.gap_tv_iterations,
                                                tv_weight=weight, jit_compile=True).numpy()

    # 1. GAP-TV's TV weight, tuned on the validation split.
    val_sensed, val_scenes, val_meta = read_pairs(config.val, config.val_samples)
    tuning = {}
    val_operator = val_meta.operator()  # one operator: the compiled loop is traced once, not once per weight
    for weight in config.tv_weights:
        out, _ = timed_reconstruction(gap_tv_fn(val_operator, weight), val_sensed, 64)
        tuning[str(weight)] = method_scores(out, val_scenes)["psnr_db"]
    tv_weight = float(max(tuning, key=tuning.get))

    report = {"gap_tv_tuning": {"val": config.val, "val_samples": len(val_sensed), "psnr_db_by_tv_weight": tuning,
                                "chosen_tv_weight": tv_weight,
                                "chosen_at_grid_edge": tv_weight in (min(config.tv_weights), max(config.tv_weights))},
              "tests": {}}
    largest = max(config.batch_sizes)
    for test_name, test_dir in config.tests:
        sensed, scenes, metadata = read_pairs(test_dir, config.num_samples)
        operator = metadata.operator()
        bp = tf.function(lambda b: tf.clip_by_value(operator.normalized_back_projection(b), 0.0, 1.0),
                         reduce_retracing=True)
        methods = [("back_projection", lambda b: bp(tf.constant(b, tf.float32)).numpy(), {"parameters": 0}),
                   ("gap_tv", gap_tv_fn(operator, tv_weight),
                    {"parameters": 0, "tv_weight": tv_weight, "iterations": config.gap_tv_iterations})]
        for name, export_dir in config.exports:
            fn, version_dir, mask_matches = load_reconstructor_signature(export_dir, metadata, test_dir)
            methods.append((name, fn, {"parameters": fn.parameters, "export": version_dir,
                                       "given_test_mask": fn.uses_data_mask,
                                       "trained_mask_matches_test": mask_matches}))
        rows = {name: dict(info) for name, _, info in methods}
        for batch in config.batch_sizes:  # all methods timed in interleaved rounds: their ratios share the load
            inputs = sensed if batch == largest else sensed[:config.timing_samples_batch1]
            timed = timed_reconstructions({name: fn for name, fn, _ in methods}, inputs, batch, config.timing_repeats)
            for name, (out, seconds) in timed.items():
                rows[name][f"seconds_per_sample_batch{batch}"] = seconds
                if batch == largest:
                    rows[name].update({k: v for k, v in method_scores(out, scenes).items()
                                       if not k.endswith("per_frame")})
        gap = rows["gap_tv"][f"seconds_per_sample_batch{largest}"]
        for name, _ in config.exports:
            rows[name][f"speedup_vs_gap_tv_batch{largest}"] = gap / rows[name][f"seconds_per_sample_batch{largest}"]
        report["tests"][test_name] = {
            "data": test_dir, "num_samples": len(sensed), "num_frames": metadata.num_frames,
            "height": metadata.height, "width": metadata.width, "mask_seed": metadata.mask_seed,
            "photons": metadata.photons, "read_noise": metadata.read_noise, "methods": rows}
    report["settings"] = dataclasses.asdict(config)
    report["machine"] = {**machine(), "devices": [d.device_type for d in tf.config.list_logical_devices()],
                         "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
    return report


def unet_choice(value: str):
    """``--unet``: "" (the one export not given the test mask), an export's name, or ``cand=unet,...``
    pairs (returned as a dict in the given order)."""
    return dict(_pairs_list(value, "unet")) if "=" in value else value


def cup_targets(test: dict, batch: int, unet: str | dict = "") -> dict:
    """The CUP targets on one test set of a report (``report["tests"][name]``), at batch `batch`.

    `unet` is an export's name (every unfolded export against it; "" = the one export not given the test
    mask) or a dict `{unfolded export: U-Net export}` of pairs (e.g. one per training seed; only the
    listed unfolded exports are compared).

    Returns ``{"unet": name or pairs, "unet_trained_on_test_mask": bool, "batch": batch, "unfolded": {export:
    {"psnr_gain_over_unet_db", "time_ratio_to_unet": checks, "unet": name, "pass"}}, "speedup_vs_gap_tv":
    {export: check}, "unfolded_2db_at_comparable_time": bool, "network_100x_gap_tv": bool}`` (checks as
    `Target.check`); with pairs also ``"over_pairs"`` (`pairs_summary`). Exports are the rows with an
    ``export``; unfolded ones are those given the test mask. On a test set of another camera
    (``unet_trained_on_test_mask`` false) the U-Net sees a mask it was not trained on, so the gain there
    is the mask's, not the architecture's. Raises `ConfigError` naming ``--unet`` when the U-Net
    is not one export, or a pair names a row that is not an export of the right kind."""
    methods = test["methods"]
    exports = [k for k, v in methods.items() if "export" in v]
    unfolded_exports = [k for k in exports if methods[k].get("given_test_mask")]
    if isinstance(unet, dict):
        for name, reference in unet.items():
            if name not in unfolded_exports or reference not in exports or reference in unfolded_exports:
                raise ConfigError(f"--unet: the pair {name}={reference} must name an unfolded export (given the "
                                  f"test mask: {unfolded_exports}) and a U-Net export (the others: "
                                  f"{[k for k in exports if k not in unfolded_exports]})")
        pairs, nets = dict(unet), list(dict.fromkeys(unet.values()))
    else:
        nets = [unet] if unet else [k for k in exports if k not in unfolded_exports]
        if len(nets) != 1 or nets[0] not in exports:
            raise ConfigError(f"--unet: need exactly one U-Net export to compare with; the exports are {exports} "
                              f"(not given the test mask: {nets}); or give unfolded=unet pairs")
        pairs = dict.fromkeys(unfolded_exports, nets[0])
    unfolded = {}
    for name, reference in pairs.items():
        checks = targets.check(targets.CUP_TARGETS, targets.cup_values(methods, name, reference, batch))
        unfolded[name] = {**checks, "unet": reference, "pass": all(c["pass"] for c in checks.values())}
    speedup = {k: targets.CUP_TARGETS["speedup_vs_gap_tv"].check(targets.cup_speedup_value(methods, k, batch))
               for k in exports}
    out = {"unet": pairs if isinstance(unet, dict) else nets[0],
           "unet_trained_on_test_mask": all(bool(methods[k].get("trained_mask_matches_test")) for k in nets),
           "batch": batch, "unfolded": unfolded, "speedup_vs_gap_tv": speedup,
           "unfolded_2db_at_comparable_time": any(v["pass"] for v in unfolded.values()),
           "network_100x_gap_tv": any(v["pass"] for v in speedup.values())}
    if isinstance(unet, dict):
        out["over_pairs"] = pairs_summary(unfolded)
    return out


def pairs_summary(unfolded: dict) -> dict:
    """Over the compared pairs of `cup_targets` (`unfolded`: {export: checks}): for each target value its
    ``mean``, ``std`` (population) and ``worst`` (lowest gain, highest time ratio); ``checks_on_means``
    (both targets checked on the means, `Target.check`) and ``mean_pass``; ``pairs_passing`` / ``pairs``."""
    summary = {}
    for key, worst in (("psnr_gain_over_unet_db", min), ("time_ratio_to_unet", max)):
        values = [v[key]["value"] for v in unfolded.values()]
        summary[key] = {"mean": statistics.fmean(values), "std": statistics.pstdev(values), "worst": worst(values)}
    means = {k: s["mean"] for k, s in summary.items()}
    checks = targets.check(targets.CUP_TARGETS, means)
    return {**summary, "checks_on_means": checks, "mean_pass": all(c["pass"] for c in checks.values()),
            "pairs_passing": sum(v["pass"] for v in unfolded.values()), "pairs": len(unfolded)}


def add_targets(report: dict, unet: str | dict = "") -> dict:
    """Adds `cup_targets` (at the largest timed batch) to every test set of `report`; returns it."""
    batch = max(report["settings"]["batch_sizes"])
    for test in report["tests"].values():
        test["targets"] = cup_targets(test, batch, unet)
    return report


def markdown(report: dict) -> str:
    """The README table: one row per (test set, method)."""
    batches = report["settings"]["batch_sizes"]
    head = ("| test set | method | PSNR (dB) | SSIM | parameters | "
            + " | ".join(f"s / sample, batch {b}" for b in batches) + " |")
    lines = [head, "|" + " --- |" * 2 + " ---: |" * (3 + len(batches))]
    for test_name, test in report["tests"].items():
        for name, row in test["methods"].items():
            times = " | ".join(f"{row[f'seconds_per_sample_batch{b}']:.2g}" for b in batches)
            lines.append(f"| {test_name} | {name} | {row['psnr_db']:.2f} | {row['ssim']:.3f} | "
                         f"{row['parameters']:,} | {times} |")
    return "\n".join(lines) + "\n"


def main(argv):
    del argv
    if FLAGS.report:
        report = add_targets(read_json(FLAGS.report, "report"), unet_choice(FLAGS.unet))
        emit({"report": FLAGS.report, **{name: test["targets"] for name, test in report["tests"].items()}},
             FLAGS.output or None)
        return
    if FLAGS.make_data:
        make_results_data(FLAGS.make_data, FLAGS.make_data_frames, FLAGS.make_data_size)
    report = add_targets(run(config_from_flags(FLAGS)), unet_choice(FLAGS.unet))
    if FLAGS.markdown:
        with open(FLAGS.markdown, "w") as f:
            f.write(markdown(report))
    emit(report, FLAGS.output or None)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
