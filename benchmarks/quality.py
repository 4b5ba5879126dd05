r"""Sample-quality targets of issue "Convincing videos", checked on evaluation reports; prints JSON.

    # frames: evaluate an export (or reuse a report written by `python -m tfvidgan.evaluate frames`)
    python -m benchmarks.quality frames --export_dir=runs/frames_bb3_small/export --data=DATA
    python -m benchmarks.quality frames --report=docs/eval_frames_bb3_small.json
    # frames, several evaluation draws of one export (evaluate frames --seed=0,1,...): the mean is checked
    python -m benchmarks.quality frames --report=seed0.json,seed1.json,seed2.json --row=generated_rejection
    # video
    python -m benchmarks.quality video --export_dir=runs/video_bb3_small/export --data=DATA --num_frames=30 \
        --long_frames=120
    python -m benchmarks.quality video --report=docs/eval_video_bb3_small.json
    # one run of a collection of reports keyed by run name (docs/eval_video_options.json)
    python -m benchmarks.quality video --report=docs/eval_video_options.json --run=vC16_causal_budget_2489
    # the baseline check itself: a second set of real clips (a perfect generator) against the baselines
    python -m benchmarks.quality real --data=DATA --num_samples=500 --num_frames=30

The targets are defined once, in `tfvidgan.metrics.targets` (the in-training probe checks the same ones):
frames (>= 1,000 samples): exactly-expected-count fraction >= 0.80, blob-area spread <= 1.5x real,
Fréchet distance <= 1.5x the real-vs-real floor at the same N (the "real" row's distance to the disjoint
reference set); video (>= 500 clips of 30 frames): count changes per clip <= 2x real, free-flight second
difference <= 0.3 px, mean speed within +-15 % of real, binarised MSE within +-25 % of real, long videos
(if reported) first and last windows within 20 %; and, here only, better than the latent-interpolation,
independent-latents, static and collapsed rows on every physics column at once: closer to the real clips'
per-clip distribution (Wasserstein-1, the rows' "vs_real_distribution"; `tfvidgan.metrics.targets`
says why means cannot be used against the collapsed row).

`real` checks the baseline comparison itself: a second, disjoint set of real clips stands in for a
perfect generator and is compared with the static and collapsed rows (built from the first set, as
`evaluate video` builds them) by distribution (the check used above) and by mean (the old one). A sound
check passes it; the mean-based one can fail it.

Several frames reports of the SAME export (`evaluate frames --seed=S`: other latents, other real reference
and held-out frames, so another floor) can be given at once: each target is then checked on the mean of
its per-draw values, reported with every draw's value and the standard error of the mean (the Fréchet
ratio moves by about ±0.1 between draws at N = 1,000, as much as the margin it is judged by).

Every target is reported with its measured value and pass/fail; the exit code is 0 either way (these
are measurements, not tests).
"""
from __future__ import annotations

import numpy as np
from absl import flags

from tfvidgan import cli
from tfvidgan.errors import ConfigError
from tfvidgan.json_report import emit, read_json
from tfvidgan.metrics import targets

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the command line's flags (only when run as a program, so importing the checks defines none)."""
    flags.DEFINE_string("report", "", "An existing evaluate report (JSON) to check instead of evaluating; frames: "
                        "a comma-separated list of reports of one export at different --seed checks their mean.")
    flags.DEFINE_string("export_dir", "", "Export to evaluate (when --report is not given).")
    flags.DEFINE_string("data", "", "Real dataset (when --report is not given).")
    flags.DEFINE_integer("num_samples", 1000, "Samples per row (frames: >= 1000; video: >= 500).")
    flags.DEFINE_integer("num_frames", 30, "video: frames per clip.")
    flags.DEFINE_integer("long_frames", 120, "video: long-video length (0 = skip the drift check).")
    flags.DEFINE_string("encoder_cache", "eval_cache", "Cached Fréchet encoders.")
    flags.DEFINE_string("output", "", "Also write the JSON here.")
    flags.DEFINE_string("row", "generated", "The report row to check, e.g. generated_rejection (rejection sampling).")
    flags.DEFINE_string("run", "", "When --report is a collection of reports keyed by run name (e.g. "
                        "docs/eval_video_options.json), the run to check.")


BASELINES = ("latent_interpolation", "independent_latents", "static", "collapsed")


def _is_report(value) -> bool:
    """Whether `value` looks like one evaluate report (it has a "real" row)."""
    return isinstance(value, dict) and isinstance(value.get("real"), dict)


def select_report(document: dict, source: str, run: str = "") -> dict:
    """The evaluate report to check in the JSON `document` read from `source`: the document itself, or
    with `run` its entry `run` (a collection of reports keyed by run name).

    Raises:
      ConfigError: naming `source` and the flag: `run` given but not an entry that is a report, or no
        `run` for a document that is not a report itself (listing the runs it holds, if any).
    """
    runs = [k for k, v in document.items() if _is_report(v)]
    if run:
        if run not in runs:
            raise ConfigError(f"--run={run!r} is not a report in --report={source!r}; its reports are {runs}")
        return document[run]
    if _is_report(document):
        return document
    hint = f"; it is a collection of reports, pick one with --run (one of {runs})" if runs else ""
    raise ConfigError(f"--report={source!r} is not an evaluate report (no \"real\" row){hint}")


def _checked_row(report: dict, row: str) -> dict:
    if row not in report or not isinstance(report[row], dict) or "vs_real" not in report[row]:
        rows = [k for k, v in report.items() if isinstance(v, dict) and "vs_real" in v]
        raise ConfigError(f"--row={row!r} is not a measured row of the report; it has {rows}")
    return report[row]


def frames_targets(report: dict, row: str = "generated") -> dict:
    """Targets (`tfvidgan.metrics.targets.FRAMES_TARGETS`) for row `row` of a frames report
    (`tfvidgan.metrics.frames_report.evaluate_frames`); the floor is the "real" row's distance."""
    g, r = _checked_row(report, row), report["real"]
    return targets.check(targets.FRAMES_TARGETS, targets.frames_values(g, r, r["frechet_distance"]))


def frames_targets_over_draws(reports: dict, row: str = "generated") -> dict:
    """The frames targets checked on the MEAN over several evaluation draws of one export.

    Args:
      reports: {source name: frames report} (>= 2), all of the same `settings.export_dir` and
        `settings.num_samples`, with distinct `settings.seed`.
      row: the row checked in every report.

    Returns:
      `{target: {"value": mean, "ratio", "pass", "rule", "draws": [value per report], "standard_error"}}`
      (standard error = sample standard deviation / sqrt(number of draws)).

    Raises:
      ConfigError: fewer than 2 reports, or reports of different exports, sizes or the same seed (naming
        the files).
    """
    if len(reports) < 2:
        raise ConfigError("several --report files are checked together only when there are at least two")
    settings = {name: r.get("settings", {}) for name, r in reports.items()}
    for key in ("export_dir", "num_samples"):
        found = {name: s.get(key) for name, s in settings.items()}
        if len(set(map(str, found.values()))) != 1:
            raise ConfigError(f"--report files must be draws of one export with one size; settings.{key} "
                              f"differs: {found}")
    seeds = [s.get("seed") for s in settings.values()]
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--report files must be different draws (evaluate frames --seed=...); their seeds "
                          f"are {dict(zip(settings, seeds))}")
    draws = []
    for name, report in reports.items():
        try:
            g = _checked_row(report, row)
        except ConfigError as e:
            raise ConfigError(f"{name}: {e}") from e
        draws.append(targets.frames_values(g, report["real"], report["real"]["frechet_distance"]))
    out = {}
    for key in targets.FRAMES_TARGETS:
        values = np.array([d[key] for d in draws], np.float64)
        checked = targets.FRAMES_TARGETS[key].check(float(values.mean()))
        out[key] = {**checked, "draws": values.tolist(),
                    "standard_error": float(values.std(ddof=1) / np.sqrt(len(values)))}
    return out


def video_targets(report: dict, row: str = "generated") -> dict:
    """Targets (`tfvidgan.metrics.targets.VIDEO_TARGETS`, and the baseline comparison) for row `row` of a
    video report (`tfvidgan.metrics.video_report.evaluate_video`); the long-video drift is always the plain
    model's (the report samples long videos without rejection)."""
    g, r = _checked_row(report, row), report["real"]
    change = report["long_video"]["relative_change"] if "long_video" in report else None
    out = targets.check(targets.VIDEO_TARGETS, targets.video_values(g, r, change))
    name = "better_than_every_baseline_on_every_physics_column"
    rule = ("W1(generated, real) < W1(baseline, real) of the per-clip values on every physics column, for every "
            "baseline (the rows' vs_real_distribution)")
    missing = [b for b in (row,) + BASELINES if b in report and targets.DISTRIBUTION_KEY not in report[b]]
    if missing:
        out[name] = {"value": f"unavailable: rows {missing} have no {targets.DISTRIBUTION_KEY} (a report "
                              f"written before per-clip distributions; re-run evaluate video)",
                     "pass": False, "rule": rule}
        return out
    beaten = targets.baseline_comparison(report, row, BASELINES)
    out[name] = {"value": {k: v for k, v in beaten.items() if v} or "all", "pass": all(not v for v in beaten.values()),
                 "rule": rule,
                 "distance_ratios": targets.baseline_distance_ratios(report, beaten, row)}
    return out


def real_against_baselines(data: str, num_samples: int, num_frames: int, seed: int = 0) -> dict:
    """The baseline check on a perfect generator: real clips of scenes `[N, 2N)` ("real_again") against the
    real clips of scenes `[0, N)` ("real") and the static and collapsed rows made from those.

    Returns `{"by_distribution": {baseline: [columns not beaten]}, "by_mean": {...}, "rows": {row:
    {"vs_real", "vs_real_distribution"}}}` (plain floats; NaN where undefined)."""
    from tfvidgan.metrics.real_data import expected_balls, real_clips
    from tfvidgan.metrics.video_report import baseline_clips, clip_row, compare_with_real

    balls = expected_balls(data)
    first, _ = real_clips(data, num_samples, num_frames, seed)
    second, _ = real_clips(data, num_samples, num_frames, seed + 1, first_scene=num_samples)
    real = clip_row(first, balls, None, None, per_clip=True)
    real_per_clip = real.pop("per_clip")
    report = {"real": real}
    for name, clips in (("real_again", second), ("static", baseline_clips("static", first)),
                        ("collapsed", baseline_clips("collapsed", first))):
        row = clip_row(clips, balls, None, None, speed_band=real["speed_band"], per_clip=True)
        compare_with_real(row, real, real_per_clip)
        report[name] = {key: row[key] for key in ("vs_real", targets.DISTRIBUTION_KEY)}
    return {"by_distribution": targets.baseline_comparison(report, "real_again", ("static", "collapsed")),
            "by_mean": targets.baseline_comparison(report, "real_again", ("static", "collapsed"), key="vs_real"),
            "rows": {k: v for k, v in report.items() if k != "real"}}


def _none_to_nan(tree):
    """A report read back from JSON, with every None (how `json_report` writes NaN) turned back into NaN,
    at any depth (rows, and their `vs_real` entries)."""
    if isinstance(tree, dict):
        return {k: _none_to_nan(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_none_to_nan(v) for v in tree]
    return float("nan") if tree is None else tree


def _flagged(reports: dict) -> dict:
    """`{"selection_bias": {source: warning}}` for the reports that evaluated a best export on the seed it
    was picked on (`tfvidgan.export.selection_bias`), else `{}`: such a pass is optimistic."""
    flagged = {name: r["selection_bias"] for name, r in reports.items() if r.get("selection_bias")}
    return {"selection_bias": flagged} if flagged else {}


def read_report(path: str, run: str = "") -> dict:
    """The evaluate report in the JSON file `path` (`select_report`: with `run`, that entry of a
    collection), NaN restored where it was written as null."""
    return select_report(_none_to_nan(read_json(path, "report")), path, run)


def main(argv):
    if len(argv) != 2 or argv[1] not in ("frames", "video", "real"):
        raise ConfigError("usage: python -m benchmarks.quality {frames|video} (--report=... | --export_dir=... "
                          "--data=...) | real --data=...")
    mode = argv[1]
    if mode == "real":
        if not FLAGS.data:
            raise ConfigError("real: --data is required")
        out = real_against_baselines(FLAGS.data, FLAGS.num_samples, FLAGS.num_frames)
        emit({"mode": mode, "data": FLAGS.data, "samples": FLAGS.num_samples, "num_frames": FLAGS.num_frames,
              "distribution_check_passes": all(not v for v in out["by_distribution"].values()),
              "mean_check_passes": all(not v for v in out["by_mean"].values()), **out}, FLAGS.output)
        return
    sources = [p.strip() for p in FLAGS.report.split(",") if p.strip()]
    if FLAGS.run and not FLAGS.report:
        raise ConfigError("--run picks a report of a --report collection; give --report")
    if len(sources) > 1:
        if mode != "frames":
            raise ConfigError("several --report files are checked together for frames reports only")
        reports = {}
        for path in sources:
            reports[path] = read_report(path, FLAGS.run)
        checked = frames_targets_over_draws(reports, FLAGS.row)
        emit({"mode": mode, "source": sources, "row": FLAGS.row, "draws": len(sources),
              "samples": next(iter(reports.values())).get("settings", {}).get("num_samples"),
              "all_pass": all(t["pass"] for t in checked.values()),
              "draws_passing_all": sum(all(targets.FRAMES_TARGETS[k].check(t["draws"][i])["pass"]
                                           for k, t in checked.items()) for i in range(len(sources))),
              **_flagged(reports), "targets": checked}, FLAGS.output)
        return
    if FLAGS.report:
        report = read_report(FLAGS.report, FLAGS.run)
    elif mode == "frames":
        from tfvidgan.metrics.frames_report import FramesEvalConfig, evaluate_frames
        report = evaluate_frames(FramesEvalConfig(export_dir=FLAGS.export_dir, data=FLAGS.data,
                                                  num_samples=FLAGS.num_samples, encoder_cache=FLAGS.encoder_cache))
    else:
        from tfvidgan.metrics.video_report import VideoEvalConfig, evaluate_video
        report = evaluate_video(VideoEvalConfig(export_dir=FLAGS.export_dir, data=FLAGS.data,
                                                num_samples=FLAGS.num_samples, num_frames=FLAGS.num_frames,
                                                long_frames=FLAGS.long_frames, plot="",
                                                encoder_cache=FLAGS.encoder_cache))
    checked = frames_targets(report, FLAGS.row) if mode == "frames" else video_targets(report, FLAGS.row)
    emit({"mode": mode, "source": FLAGS.report or FLAGS.export_dir, **({"run": FLAGS.run} if FLAGS.run else {}),
          "row": FLAGS.row, **_flagged({FLAGS.report or FLAGS.export_dir: report}),
          "samples": report.get("settings", {}).get("num_samples"),
          "all_pass": all(t["pass"] for t in checked.values()), "targets": checked}, FLAGS.output)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
