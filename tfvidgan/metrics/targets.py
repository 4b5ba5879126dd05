"""The quality targets as data: the sample-quality targets of issue "Convincing videos", the one definition
that the benchmark (`benchmarks/quality.py`, on evaluate reports) and the in-training probe
(`--eval_every`, and so `--best_metric`) both check; and the CUP reconstructor targets that the results
table (`benchmarks/reconstruction.py`) checks (`CUP_TARGETS`, at the end).

Each target turns a measured value into a **ratio** that is <= 1 exactly when the target holds (NaN when
the value is undefined, which fails), so targets of different units compare: `worst_ratio` of a set of
checked targets is <= 1 exactly when all of them hold, and it falls as the worst one improves; it is the
natural single number to pick a checkpoint by ("worst_target_ratio" of `VideoQualityProbe`).

Frames targets (>= 1,000 samples): exactly-expected-count fraction >= 0.80, blob-area spread <= 1.5x the
real one, Fréchet distance <= 1.5x the real-vs-real floor at the same N.

Video targets (>= 500 clips of 30 frames): count changes per clip <= 2x real, free-flight second
difference <= 0.3 px, mean speed within +-15 % of real, binarised MSE within +-25 % of real; long videos:
the physics of the first and last windows within 20 % of each other (the worst column). The comparison
with the baseline rows (`baseline_comparison`) is a target of the reports only (a probe has no baselines).

**Baselines are compared by distribution, not by mean.** A row is "better than a baseline on a physics
column" when its per-clip values are closer to the real clips' per-clip values in Wasserstein-1 distance
(`distribution_distance`, the row's "vs_real_distribution") than the baseline's are. Comparing means
(|row − real|, the row's "vs_real") cannot be won against the "collapsed" row, which is ONE real clip: its
means differ from real by that clip's sampling noise only. Its distribution is a single point, as far
from the real clips as their own spread (W1(δ_c, P) = E|X − c| >= the mean absolute deviation), which a
generator with real-like variety beats; and W1 >= |difference of the per-clip means|, so the comparison
is no easier than the means' for any row (the free-flight and speed columns' row values average over
triples and steps rather than clips, so there the bound holds for the clips' means).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import stats as scipy_stats

AT_MOST, AT_LEAST, WITHIN = "at_most", "at_least", "within"

# The physics columns compared between first and last long-video windows (and between rows and "real"):
# the video report's `PHYSICS_COLUMNS`.
PHYSICS_COLUMNS = ("fraction_expected_count_frames", "mean_count_changes", "free_flight_second_difference",
                   "mean_speed", "fraction_steps_in_speed_band", "consecutive_binarized_mse")


@dataclasses.dataclass(frozen=True)
class Target:
    """One target: `kind` AT_MOST (value <= limit), AT_LEAST (value >= limit) or WITHIN (|value| <= limit,
    for signed relative errors); `rule` is its human-readable statement."""
    kind: str
    limit: float
    rule: str

    def ratio(self, value: float) -> float:
        """<= 1 exactly when the target holds; NaN for an undefined (NaN) value; AT_LEAST: limit / value
        (inf when value <= 0)."""
        value = float(value)
        if math.isnan(value):
            return math.nan
        if self.kind == AT_MOST:
            return value / self.limit
        if self.kind == WITHIN:
            return abs(value) / self.limit
        return self.limit / value if value > 0 else math.inf

    def check(self, value: float) -> dict:
        """`{"value", "ratio", "pass", "rule"}`; NaN never passes."""
        ratio = self.ratio(value)
        return {"value": float(value), "ratio": ratio, "pass": bool(ratio <= 1.0), "rule": self.rule}


FRAMES_TARGETS = {
    "fraction_expected_count": Target(AT_LEAST, 0.80, ">= 0.80"),
    "area_spread_ratio": Target(AT_MOST, 1.5, "<= 1.5 x real"),
    "frechet_ratio_to_floor": Target(AT_MOST, 1.5, "<= 1.5 x real-vs-real floor"),
}
VIDEO_TARGETS = {
    "count_changes_ratio": Target(AT_MOST, 2.0, "<= 2 x real"),
    "free_flight_second_difference": Target(AT_MOST, 0.3, "<= 0.3 px"),
    "speed_relative_error": Target(WITHIN, 0.15, "within +-15 % of real"),
    "binarized_mse_relative_error": Target(WITHIN, 0.25, "within +-25 % of real"),
    "long_video_drift": Target(AT_MOST, 0.2, "first vs last window within 20 %"),
}


def frames_values(row: dict, real: dict, floor: float) -> dict:
    """The frames targets' values from a row of frame statistics (`fraction_expected_count`,
    `blob_area_std`, `frechet_distance`), the real row's statistics and the real-vs-real Fréchet floor."""
    return {"fraction_expected_count": float(row["fraction_expected_count"]),
            "area_spread_ratio": float(row["blob_area_std"]) / float(real["blob_area_std"]),
            "frechet_ratio_to_floor": float(row["frechet_distance"]) / float(floor)}


def long_video_change(first: dict, last: dict) -> dict:
    """`{column: |last − first| / |first|}` over the `PHYSICS_COLUMNS` both windows report (the first
    window's value floored at 1e-9, so a column that is 0 at first and moves later is a large change)."""
    return {k: float(abs(last[k] - first[k]) / max(abs(first[k]), 1e-9))
            for k in PHYSICS_COLUMNS if k in first and k in last}


def worst_change(change: dict) -> float:
    """The largest defined relative change (NaN if none is defined)."""
    return max((v for v in change.values() if not math.isnan(v)), default=math.nan)


def video_values(row: dict, real: dict, long_change: dict | None = None) -> dict:
    """The video targets' values from a row of clip physics and the real row (`mean_count_changes`,
    `free_flight_second_difference`, `mean_speed`, `consecutive_binarized_mse`); `long_video_drift`
    (the worst column of `long_change`, from `long_video_change`) only when `long_change` is given."""
    values = {
        "count_changes_ratio": float(row["mean_count_changes"]) / max(float(real["mean_count_changes"]), 1e-9),
        "free_flight_second_difference": float(row["free_flight_second_difference"]),
        "speed_relative_error": float(row["mean_speed"]) / float(real["mean_speed"]) - 1.0,
        "binarized_mse_relative_error": (float(row["consecutive_binarized_mse"])
                                         / float(real["consecutive_binarized_mse"]) - 1.0),
    }
    if long_change is not None:
        values["long_video_drift"] = worst_change(long_change)
    return values


def check(targets: dict, values: dict) -> dict:
    """`{name: Target.check(values[name])}` for every target whose value is given."""
    return {name: targets[name].check(value) for name, value in values.items()}


def worst_ratio(checked: dict) -> float:
    """The largest ratio of `check`'s output (an undefined one counts as inf): <= 1 exactly when every
    checked target holds."""
    return max((math.inf if math.isnan(c["ratio"]) else c["ratio"] for c in checked.values()), default=math.nan)


def distribution_distance(values, reference) -> float:
    """Wasserstein-1 distance (the column's units) between the finite entries of `values` and of
    `reference` (1-D arrays of per-clip values, e.g. `clip_physics(..., per_clip=True)["per_clip"][column]`);
    NaN when either has no finite entry. It is >= |mean(values) − mean(reference)|, 0 for equal
    distributions, and E|X − c| for a `values` that is one constant c."""
    values, reference = (np.asarray(v, dtype=np.float64).ravel() for v in (values, reference))
    values, reference = values[np.isfinite(values)], reference[np.isfinite(reference)]
    if not values.size or not reference.size:
        return math.nan
    return float(scipy_stats.wasserstein_distance(values, reference))


DISTRIBUTION_KEY = "vs_real_distribution"  # a row's {column: distribution_distance to the real row}


def baseline_comparison(report: dict, row: str, baselines: tuple, key: str = DISTRIBUTION_KEY) -> dict:
    """Which physics columns of report row `row` are NOT closer to real than each baseline row's:
    `{baseline: [columns]}` from the rows' `key` entries (default the per-clip distributions'
    Wasserstein-1 distances to real, `DISTRIBUTION_KEY`; "vs_real" compares means); empty lists mean beaten.

    An undefined (NaN) distance fails: the row's own NaN never beats a baseline, and a baseline's NaN (the
    column cannot be measured on it, e.g. the free-flight second difference of a frozen video, which has no
    ball in flight) is beaten by any defined value of the row."""
    mine = report[row][key]

    def beats(value, other):
        return not math.isnan(value) and (math.isnan(other) or value < other)

    return {b: [k for k, v in mine.items() if not beats(float(v), float(report[b][key][k]))]
            for b in baselines if b in report}


def baseline_distance_ratios(report: dict, columns: dict, row: str, key: str = DISTRIBUTION_KEY) -> dict:
    """How far row `row` is from beating each baseline on each of its not-beaten columns: `{baseline: {column:
    distance(row) / distance(baseline)}}` for `columns` as returned by `baseline_comparison` (`{baseline:
    [columns]}`), distances from the rows' `key` entries. A ratio >= 1 is the factor by which the row's distance
    to real must shrink to beat that baseline; 1 for a tie (also both at 0), infinite where only the baseline's
    distance is 0 (it cannot be beaten), NaN where either distance is undefined (both JSON null). So a near miss
    (1.01) and a gap no tuning closes (30) read differently."""
    def ratio(mine: float, other: float) -> float:
        if math.isnan(mine) or math.isnan(other):
            return math.nan
        if other == 0:
            return 1.0 if mine == 0 else math.inf  # a tie at real; or a baseline at real, which nothing beats
        return mine / other

    return {b: {k: ratio(float(report[row][key][k]), float(report[b][key][k])) for k in cols}
            for b, cols in columns.items() if cols}


# CUP reconstructor (issue "CUP: a deep-unfolding reconstructor"), on one test set of the results table: an
# unfolded net at least 2 dB above the U-Net at a comparable time per sample, and a network at least 100x
# faster than GAP-TV per sample at batch 64 in the same run. "Comparable" is made a number here: at most
# 1.25x the U-Net's seconds per sample at the largest timed batch.
CUP_TARGETS = {
    "psnr_gain_over_unet_db": Target(AT_LEAST, 2.0, ">= U-Net + 2 dB (same test pairs)"),
    "time_ratio_to_unet": Target(AT_MOST, 1.25, "<= 1.25 x the U-Net's seconds per sample (comparable time)"),
    "speedup_vs_gap_tv": Target(AT_LEAST, 100.0, ">= 100 x GAP-TV's seconds per sample, same run"),
}


def cup_values(methods: dict, candidate: str, unet: str, batch: int) -> dict:
    """The unfolded-vs-U-Net targets' values for results-table rows `methods[candidate]` and
    `methods[unet]` (each with `psnr_db` and `seconds_per_sample_batch{batch}`): PSNR gain in dB and time
    ratio (candidate / U-Net) at batch `batch`."""
    row, ref = methods[candidate], methods[unet]
    key = f"seconds_per_sample_batch{batch}"
    return {"psnr_gain_over_unet_db": float(row["psnr_db"]) - float(ref["psnr_db"]),
            "time_ratio_to_unet": float(row[key]) / float(ref[key])}


def cup_speedup_value(methods: dict, candidate: str, batch: int) -> float:
    """GAP-TV's seconds per sample over `methods[candidate]`'s at batch `batch` (the speed-up target's
    value); NaN (fails) when the candidate's PSNR is not above GAP-TV's: a network faster than GAP-TV
    but worse than it does not count."""
    row, gap = methods[candidate], methods["gap_tv"]
    if not float(row["psnr_db"]) > float(gap["psnr_db"]):
        return math.nan
    key = f"seconds_per_sample_batch{batch}"
    return float(gap[key]) / float(row[key])
