"""The quality targets as data (`tfvidgan.metrics.targets`): ratios <= 1 exactly when a target holds, NaN
failing, and the benchmark's checks of evaluate reports built on them."""
import math
import os

import numpy as np
import pytest

from benchmarks.quality import frames_targets, frames_targets_over_draws, video_targets
from tfvidgan.errors import ConfigError
from tfvidgan.metrics import targets
from tfvidgan.metrics.targets import AT_LEAST, AT_MOST, WITHIN, Target


@pytest.mark.parametrize("kind, limit, value, ratio", [
    (AT_MOST, 2.0, 1.0, 0.5), (AT_MOST, 2.0, 3.0, 1.5), (AT_MOST, 0.3, 0.3, 1.0),
    (WITHIN, 0.15, -0.12, 0.8), (WITHIN, 0.15, 0.3, 2.0),
    (AT_LEAST, 0.8, 0.9, 0.8 / 0.9), (AT_LEAST, 0.8, 0.4, 2.0), (AT_LEAST, 0.8, 0.0, math.inf)])
def test_ratio_is_at_most_one_exactly_when_the_target_holds(kind, limit, value, ratio):
    checked = Target(kind, limit, "rule").check(value)
    assert checked["ratio"] == pytest.approx(ratio)
    assert checked["pass"] == (ratio <= 1.0)
    assert checked["value"] == value and checked["rule"] == "rule"


def test_an_undefined_value_fails_and_makes_the_worst_ratio_infinite():
    checked = targets.check(targets.VIDEO_TARGETS, {"free_flight_second_difference": math.nan,
                                                    "count_changes_ratio": 0.5})
    assert math.isnan(checked["free_flight_second_difference"]["ratio"])
    assert not checked["free_flight_second_difference"]["pass"] and checked["count_changes_ratio"]["pass"]
    assert targets.worst_ratio(checked) == math.inf
    good = targets.check(targets.VIDEO_TARGETS, {"count_changes_ratio": 0.5, "speed_relative_error": -0.12})
    assert targets.worst_ratio(good) == pytest.approx(0.8)


REAL = {"mean_count_changes": 2.0, "free_flight_second_difference": 0.03, "mean_speed": 1.0,
        "consecutive_binarized_mse": 0.04, "fraction_expected_count_frames": 0.9, "fraction_steps_in_speed_band": 0.9}


def _row(**changes):
    """A report row; its per-clip distributions are point masses at its means, so the distribution
    distances equal the distances of the means."""
    row = {**REAL, **changes}
    distances = {k: abs(row[k] - REAL[k]) for k in targets.PHYSICS_COLUMNS}
    return {**row, "vs_real": distances, targets.DISTRIBUTION_KEY: dict(distances)}


def test_video_values_and_the_drift_of_the_worst_column():
    row = _row(mean_count_changes=3.0, free_flight_second_difference=0.25, mean_speed=0.9,
               consecutive_binarized_mse=0.05)
    first = {"mean_speed": 1.0, "mean_count_changes": 0.0, "fraction_steps_in_speed_band": 0.8}
    last = {"mean_speed": 1.3, "mean_count_changes": 0.0, "fraction_steps_in_speed_band": 0.4, "extra": 1.0}
    change = targets.long_video_change(first, last)
    assert change == pytest.approx({"mean_speed": 0.3, "mean_count_changes": 0.0, "fraction_steps_in_speed_band": 0.5})
    values = targets.video_values(row, REAL, change)
    assert values == pytest.approx({"count_changes_ratio": 1.5, "free_flight_second_difference": 0.25,
                                    "speed_relative_error": -0.1, "binarized_mse_relative_error": 0.25,
                                    "long_video_drift": 0.5})
    assert "long_video_drift" not in targets.video_values(row, REAL)
    assert targets.worst_change({"a": math.nan, "b": 0.1}) == 0.1 and math.isnan(targets.worst_change({}))


def test_the_benchmark_checks_a_report_and_names_the_baselines_not_beaten():
    report = {"real": _row(), "generated": _row(mean_count_changes=3.0, mean_speed=0.9),
              "static": _row(mean_speed=0.0, consecutive_binarized_mse=0.0, mean_count_changes=0.0),
              "collapsed": _row(mean_speed=0.0, fraction_expected_count_frames=1.0, mean_count_changes=2.0),
              "long_video": {"relative_change": {"mean_speed": 0.25, "mean_count_changes": math.nan}}}
    out = video_targets(report)
    assert [k for k, v in out.items() if v["pass"]] == ["count_changes_ratio", "free_flight_second_difference",
                                                        "speed_relative_error", "binarized_mse_relative_error"]
    assert out["long_video_drift"]["value"] == 0.25 and not out["long_video_drift"]["pass"]
    baselines = out["better_than_every_baseline_on_every_physics_column"]
    # A column where generated ties the baseline is not "better"; "collapsed" has the real count changes.
    assert not baselines["pass"] and "mean_count_changes" in baselines["value"]["collapsed"]
    assert "mean_speed" not in baselines["value"]["static"]
    # How far from beating it: W1(generated) / W1(baseline) per column not beaten: speed 0.1 / 0.1 (a tie);
    # collapsed has the real count changes (distance 0), which no row beats (infinite).
    ratios = baselines["distance_ratios"]
    assert set(ratios) == {b for b, cols in baselines["value"].items() if cols}
    assert set(ratios["collapsed"]) == set(baselines["value"]["collapsed"])
    assert ratios["collapsed"]["mean_count_changes"] == math.inf
    report["generated"][targets.DISTRIBUTION_KEY]["mean_count_changes"] = 1.5
    report["static"][targets.DISTRIBUTION_KEY]["mean_count_changes"] = 0.5
    assert video_targets(report)["better_than_every_baseline_on_every_physics_column"]["distance_ratios"][
        "static"]["mean_count_changes"] == pytest.approx(3.0)
    nan = math.nan
    report = {"generated": {targets.DISTRIBUTION_KEY: {"a": nan, "b": 0.0, "c": 0.2}},
              "static": {targets.DISTRIBUTION_KEY: {"a": nan, "b": 0.0, "c": 0.0}}}
    ratios = targets.baseline_distance_ratios(report, {"static": ["a", "b", "c"]}, "generated")["static"]
    assert math.isnan(ratios["a"]) and ratios["b"] == 1.0 and ratios["c"] == math.inf


def test_an_undefined_column_fails_the_row_and_is_beaten_on_a_baseline(tmp_path):
    """The frozen (static) row has no ball in flight: its free-flight distance is NaN, which any defined
    value beats; a row's own NaN beats nothing. Read back from a JSON report (NaN written as null), the
    same holds (the benchmark restores NaN at every depth)."""
    import json

    from benchmarks import quality
    nan = math.nan
    report = {"real": _row(), "generated": _row(free_flight_second_difference=0.2),
              "static": _row(free_flight_second_difference=nan),
              "collapsed": _row(free_flight_second_difference=nan)}
    report["collapsed"][targets.DISTRIBUTION_KEY] = dict(report["real"]["vs_real"], free_flight_second_difference=nan)
    beaten = targets.baseline_comparison(report, "generated", ("static", "collapsed"))
    assert "free_flight_second_difference" not in beaten["static"]
    undefined = dict(report, generated=_row(free_flight_second_difference=nan))
    assert "free_flight_second_difference" in targets.baseline_comparison(undefined, "generated", ("static",))["static"]
    path = tmp_path / "report.json"
    path.write_text(json.dumps(json.loads(json.dumps(report).replace("NaN", "null"))))
    restored = quality._none_to_nan(json.loads(path.read_text()))
    assert math.isnan(restored["static"][targets.DISTRIBUTION_KEY]["free_flight_second_difference"])
    assert targets.baseline_comparison(restored, "generated", ("static",)) == {"static": beaten["static"]}


def test_frames_targets_use_the_real_rows_distance_as_the_floor():
    report = {"real": {"fraction_expected_count": 0.91, "blob_area_std": 2.0, "frechet_distance": 0.5, "vs_real": {}},
              "generated": {"fraction_expected_count": 0.79, "blob_area_std": 2.8, "frechet_distance": 0.7,
                            "vs_real": {}}}
    out = frames_targets(report)
    assert out["fraction_expected_count"]["pass"] is False
    assert out["area_spread_ratio"]["value"] == pytest.approx(1.4) and out["area_spread_ratio"]["pass"]
    assert out["frechet_ratio_to_floor"]["value"] == pytest.approx(1.4) and out["frechet_ratio_to_floor"]["pass"]


def _frames_report(seed, frechet, floor, export="runs/x/export/6000", count=0.85):
    return {"real": {"fraction_expected_count": 0.91, "blob_area_std": 2.0, "frechet_distance": floor, "vs_real": {}},
            "generated": {"fraction_expected_count": count, "blob_area_std": 2.4, "frechet_distance": frechet,
                          "vs_real": {}},
            "settings": {"export_dir": export, "num_samples": 1000, "seed": seed}}


def test_frames_draws_are_checked_on_their_mean_with_its_standard_error():
    # Ratios 1.4, 1.6, 1.55: one draw passes alone, the mean (1.5167) does not.
    reports = {"a": _frames_report(0, 0.70, 0.5), "b": _frames_report(1, 0.96, 0.6), "c": _frames_report(2, 0.93, 0.6)}
    out = frames_targets_over_draws(reports)
    frechet = out["frechet_ratio_to_floor"]
    assert frechet["draws"] == pytest.approx([1.4, 1.6, 1.55])
    assert frechet["value"] == pytest.approx((1.4 + 1.6 + 1.55) / 3) and frechet["pass"] is False
    assert frechet["standard_error"] == pytest.approx(np.std([1.4, 1.6, 1.55], ddof=1) / np.sqrt(3))
    assert out["fraction_expected_count"]["pass"] and out["fraction_expected_count"]["standard_error"] == 0.0


@pytest.mark.parametrize("reports, words", [
    ({"a": _frames_report(0, 0.7, 0.5)}, "at least two"),
    ({"a": _frames_report(0, 0.7, 0.5), "b": _frames_report(1, 0.7, 0.5, export="runs/y/export/6000")},
     "export_dir differs"),
    ({"a": _frames_report(0, 0.7, 0.5), "b": _frames_report(0, 0.7, 0.5)}, "different draws"),
])
def test_frames_draws_must_be_distinct_draws_of_one_export(reports, words):
    with pytest.raises(ConfigError, match=words):
        frames_targets_over_draws(reports)


def test_frames_draws_from_the_command_line(tmp_path):
    import json
    import subprocess
    import sys

    paths = []
    for seed, frechet in ((0, 0.7), (1, 0.72)):
        paths.append(tmp_path / f"seed{seed}.json")
        paths[-1].write_text(json.dumps(_frames_report(seed, frechet, 0.5)))
    out = tmp_path / "out.json"
    subprocess.run([sys.executable, "-m", "benchmarks.quality", "frames", f"--report={paths[0]},{paths[1]}",
                    f"--output={out}"], check=True, capture_output=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    result = json.loads(out.read_text())
    assert result["draws"] == 2 and result["draws_passing_all"] == 2 and result["all_pass"]
    assert result["targets"]["frechet_ratio_to_floor"]["value"] == pytest.approx(1.42)
    assert "selection_bias" not in result
    # A draw of a best export on the seed that picked it is named in the output.
    flagged = {**_frames_report(0, 0.7, 0.5), "selection_bias": "selection bias: ... seed 0 ..."}
    paths[0].write_text(json.dumps(flagged))
    subprocess.run([sys.executable, "-m", "benchmarks.quality", "frames", f"--report={paths[0]},{paths[1]}",
                    f"--output={out}"], check=True, capture_output=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert json.loads(out.read_text())["selection_bias"] == {str(paths[0]): flagged["selection_bias"]}


def test_distribution_distance_bounds_the_means_and_is_the_spread_for_one_repeated_value():
    import numpy as np
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.gamma(2.0, 0.3, size=rng.integers(5, 50)), rng.normal(1.0, 0.5, size=rng.integers(5, 50))
        assert targets.distribution_distance(a, b) >= abs(a.mean() - b.mean()) - 1e-12
    a = rng.normal(size=100)
    assert targets.distribution_distance(a, a[::-1]) == pytest.approx(0.0, abs=1e-12)
    assert targets.distribution_distance(np.full(7, 0.3), a) == pytest.approx(np.mean(np.abs(a - 0.3)))
    # NaN entries (clips without a free triple) are left out; nothing defined is NaN.
    assert targets.distribution_distance([0.3, np.nan], a) == pytest.approx(np.mean(np.abs(a - 0.3)))
    assert math.isnan(targets.distribution_distance([np.nan, np.nan], a))


def test_the_collapsed_row_cannot_be_beaten_on_means_but_a_varied_row_beats_it_on_distributions():
    """Per-clip values of a column: the real clips, a fresh draw of the same distribution ("generated": a
    perfect generator), and one real clip's value repeated ("collapsed"; the clip nearest the real mean).
    On means the collapsed row wins; on distributions the varied row wins."""
    import numpy as np
    rng = np.random.default_rng(1)
    real, generated = rng.gamma(3.0, 0.1, size=500), rng.gamma(3.0, 0.1, size=500)
    collapsed = np.full(500, real[np.argmin(np.abs(real - real.mean()))])
    assert abs(collapsed.mean() - real.mean()) < abs(generated.mean() - real.mean())
    assert (targets.distribution_distance(generated, real)
            < 0.25 * targets.distribution_distance(collapsed, real))
    report = {row: {targets.DISTRIBUTION_KEY: {"mean_speed": targets.distribution_distance(v, real)},
                    "vs_real": {"mean_speed": abs(v.mean() - real.mean())}}
              for row, v in (("generated", generated), ("collapsed", collapsed))}
    assert targets.baseline_comparison(report, "generated", ("collapsed",)) == {"collapsed": []}
    assert targets.baseline_comparison(report, "generated", ("collapsed",), key="vs_real") == {
        "collapsed": ["mean_speed"]}


def test_a_report_without_distributions_fails_the_baseline_check_with_the_reason():
    report = {"real": _row(), "generated": _row(), "static": _row(), "collapsed": _row()}
    del report["collapsed"][targets.DISTRIBUTION_KEY]
    out = video_targets(report)["better_than_every_baseline_on_every_physics_column"]
    assert not out["pass"] and "re-run evaluate video" in out["value"] and "collapsed" in out["value"]


def test_a_collection_of_reports_is_checked_one_run_at_a_time(tmp_path):
    import json
    import subprocess
    import sys

    from benchmarks.quality import select_report
    report = {"real": _row(), "generated": _row(mean_count_changes=3.0, mean_speed=0.9)}
    collection = {"_command": "evaluate video ...", "run_a": report, "run_b": dict(report, generated=_row())}
    assert select_report(report, "r.json") is report
    assert select_report(collection, "c.json", "run_b") is collection["run_b"]
    with pytest.raises(ConfigError, match=r"c.json.*--run \(one of \['run_a', 'run_b'\]\)"):
        select_report(collection, "c.json")
    with pytest.raises(ConfigError, match="--run='run_c' is not a report in --report='c.json'"):
        select_report(collection, "c.json", "run_c")
    with pytest.raises(ConfigError, match="--run='_command'"):
        select_report(collection, "c.json", "_command")
    path, out = tmp_path / "collection.json", tmp_path / "out.json"
    path.write_text(json.dumps(collection))
    subprocess.run([sys.executable, "-m", "benchmarks.quality", "video", f"--report={path}", "--run=run_a",
                    f"--output={out}"], check=True, capture_output=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    result = json.loads(out.read_text())
    assert result["run"] == "run_a" and result["targets"] == json.loads(json.dumps(video_targets(report)))
