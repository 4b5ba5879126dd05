"""The CUP targets (`tfvidgan.metrics.targets.CUP_TARGETS`) as the results table checks them
(`benchmarks/reconstruction.py`): +2 dB over the U-Net at <= 1.25x its time, >= 100x GAP-TV only for a
network better than GAP-TV, and re-checking a written report from the command line."""
import json
import math
import os
import subprocess
import sys

import pytest

from benchmarks.reconstruction import add_targets, cup_targets
from tfvidgan.errors import ConfigError
from tfvidgan.metrics import targets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _row(psnr, seconds, export=True, given_mask=True, matches=True):
    row = {"psnr_db": psnr, "seconds_per_sample_batch1": 10 * seconds, "seconds_per_sample_batch64": seconds}
    if export:
        row.update(export=f"/runs/{psnr}", given_test_mask=given_mask, trained_mask_matches_test=matches)
    return row


def _test_set(**exports):
    methods = {"back_projection": _row(12.0, 1e-4, export=False), "gap_tv": _row(20.5, 0.1, export=False),
               "unet": _row(27.0, 0.008, given_mask=False)}
    methods.update(exports)
    return {"methods": methods}


def test_values_are_the_psnr_gain_and_the_time_ratio_at_the_given_batch():
    test = _test_set(unfolded=_row(29.5, 0.010))
    test["methods"]["unfolded"]["seconds_per_sample_batch1"] = 1.0  # as slow as GAP-TV at batch 1
    values = targets.cup_values(test["methods"], "unfolded", "unet", 64)
    assert values == pytest.approx({"psnr_gain_over_unet_db": 2.5, "time_ratio_to_unet": 1.25})
    assert targets.cup_speedup_value(test["methods"], "unfolded", 64) == pytest.approx(10.0)
    assert targets.cup_speedup_value(test["methods"], "unfolded", 1) == pytest.approx(1.0)


def test_an_unfolded_net_passes_only_with_both_the_gain_and_a_comparable_time():
    test = _test_set(good=_row(29.1, 0.0095), slow=_row(30.0, 0.0101), weak=_row(28.9, 0.006),
                     worse=_row(26.0, 0.004))
    out = cup_targets(test, 64)
    assert out["unet"] == "unet" and out["unet_trained_on_test_mask"] and out["batch"] == 64
    assert set(out["unfolded"]) == {"good", "slow", "weak", "worse"}  # the U-Net is not compared with itself
    assert out["unfolded"]["good"]["pass"]
    assert out["unfolded"]["slow"]["psnr_gain_over_unet_db"]["pass"]
    assert not out["unfolded"]["slow"]["time_ratio_to_unet"]["pass"] and not out["unfolded"]["slow"]["pass"]
    assert out["unfolded"]["weak"]["time_ratio_to_unet"]["pass"] and not out["unfolded"]["weak"]["pass"]
    assert out["unfolded"]["worse"]["psnr_gain_over_unet_db"]["ratio"] == math.inf  # a loss never passes
    assert out["unfolded_2db_at_comparable_time"]
    del test["methods"]["good"]
    assert not cup_targets(test, 64)["unfolded_2db_at_comparable_time"]


def test_speedup_counts_only_networks_better_than_gap_tv():
    test = _test_set(fast=_row(21.0, 0.00099), faster_but_worse=_row(20.4, 0.0001), slower=_row(28.0, 0.0011))
    speed = cup_targets(test, 64)["speedup_vs_gap_tv"]
    assert speed["fast"]["pass"] and speed["fast"]["value"] == pytest.approx(0.1 / 0.00099)
    assert math.isnan(speed["faster_but_worse"]["value"]) and not speed["faster_but_worse"]["pass"]
    assert not speed["slower"]["pass"] and speed["unet"]["value"] == pytest.approx(12.5)
    assert cup_targets(test, 64)["network_100x_gap_tv"]
    del test["methods"]["fast"]
    assert not cup_targets(test, 64)["network_100x_gap_tv"]


def test_the_unet_must_be_one_export_and_can_be_named():
    two = _test_set(unet_b=_row(26.0, 0.007, given_mask=False), unfolded=_row(29.5, 0.009))
    with pytest.raises(ConfigError, match="--unet"):
        cup_targets(two, 64)
    assert cup_targets(two, 64, unet="unet_b")["unfolded"]["unfolded"]["psnr_gain_over_unet_db"]["value"] == \
        pytest.approx(3.5)
    with pytest.raises(ConfigError, match="--unet"):
        cup_targets(two, 64, unet="gap_tv")  # not an export
    other_camera = _test_set(unfolded=_row(29.5, 0.009))
    other_camera["methods"]["unet"]["trained_mask_matches_test"] = False
    assert not cup_targets(other_camera, 64)["unet_trained_on_test_mask"]


def test_report_flag_rechecks_a_written_report_without_data(tmp_path):
    report = {"settings": {"batch_sizes": [1, 64]}, "tests": {"noisy": _test_set(unfolded=_row(29.5, 0.009))}}
    expected = add_targets(json.loads(json.dumps(report)))["tests"]["noisy"]["targets"]
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    out = tmp_path / "targets.json"
    subprocess.run([sys.executable, "benchmarks/reconstruction.py", f"--report={path}", f"--output={out}"],
                   cwd=ROOT, check=True, capture_output=True, timeout=300)
    written = json.loads(out.read_text())
    assert written["report"] == str(path)
    assert written["noisy"]["unfolded_2db_at_comparable_time"] == expected["unfolded_2db_at_comparable_time"] is True
    assert written["noisy"]["unfolded"]["unfolded"]["time_ratio_to_unet"]["value"] == pytest.approx(1.125)


def test_unet_pairs_compare_each_seed_with_its_own_unet_and_summarise():
    test = _test_set(unet_s1=_row(26.0, 0.010, given_mask=False),
                     unf_s0=_row(29.5, 0.009),   # +2.5 dB at 1.125x against unet
                     unf_s1=_row(27.9, 0.0125))  # +1.9 dB at 1.25x against unet_s1
    out = cup_targets(test, 64, unet={"unf_s0": "unet", "unf_s1": "unet_s1"})
    assert out["unet"] == {"unf_s0": "unet", "unf_s1": "unet_s1"}
    assert out["unfolded"]["unf_s0"]["unet"] == "unet" and out["unfolded"]["unf_s0"]["pass"]
    s1 = out["unfolded"]["unf_s1"]
    assert s1["unet"] == "unet_s1" and s1["psnr_gain_over_unet_db"]["value"] == pytest.approx(1.9)
    assert s1["time_ratio_to_unet"]["value"] == pytest.approx(1.25) and s1["time_ratio_to_unet"]["pass"]
    assert not s1["pass"]
    summary = out["over_pairs"]
    assert summary["psnr_gain_over_unet_db"]["mean"] == pytest.approx(2.2)
    assert summary["psnr_gain_over_unet_db"]["std"] == pytest.approx(0.3)
    assert summary["psnr_gain_over_unet_db"]["worst"] == pytest.approx(1.9)
    assert summary["time_ratio_to_unet"]["mean"] == pytest.approx(1.1875)
    assert summary["time_ratio_to_unet"]["worst"] == pytest.approx(1.25)
    assert summary["mean_pass"] and summary["pairs_passing"] == 1 and summary["pairs"] == 2
    # The mean is checked like one pair: a mean gain under 2 dB fails it.
    test["methods"]["unf_s0"]["psnr_db"] = 28.0
    assert not cup_targets(test, 64, unet={"unf_s0": "unet", "unf_s1": "unet_s1"})["over_pairs"]["mean_pass"]


def test_unet_pairs_must_name_an_unfolded_export_and_a_unet_export():
    test = _test_set(unf=_row(29.5, 0.009))
    for bad in ({"unf": "gap_tv"}, {"unet": "unet"}, {"unf": "unf"}, {"missing": "unet"}):
        with pytest.raises(ConfigError, match="--unet: the pair"):
            cup_targets(test, 64, unet=bad)
    assert "over_pairs" not in cup_targets(test, 64, unet="unet")


def test_report_flag_takes_unet_pairs(tmp_path):
    report = {"settings": {"batch_sizes": [1, 64]},
              "tests": {"noisy": _test_set(unet_s1=_row(26.5, 0.008, given_mask=False), unf=_row(29.5, 0.009),
                                           unf_s1=_row(28.0, 0.0085))}}
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    out = tmp_path / "targets.json"
    subprocess.run([sys.executable, "benchmarks/reconstruction.py", f"--report={path}", f"--output={out}",
                    "--unet=unf=unet,unf_s1=unet_s1"], cwd=ROOT, check=True, capture_output=True, timeout=300)
    noisy = json.loads(out.read_text())["noisy"]
    assert noisy["unfolded"]["unf_s1"]["psnr_gain_over_unet_db"]["value"] == pytest.approx(1.5)
    assert noisy["over_pairs"]["psnr_gain_over_unet_db"]["mean"] == pytest.approx(2.0)
