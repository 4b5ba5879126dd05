"""`python -m tfvidgan.evaluate <mode>`: modes registered by name; unknown names list the known ones."""
import types

import pytest

from tfvidgan import evaluate
from tfvidgan.errors import ConfigError


def test_builtin_modes_are_registered_in_order():
    assert evaluate.list_modes()[:3] == ["frames", "video", "reconstruction"]


def test_unknown_mode_is_a_config_error_listing_the_known_modes():
    with pytest.raises(ConfigError, match=r"unknown evaluate mode 'fid'; known: \['frames', 'video', 'reconstruction'"):
        evaluate.run_mode("fid", types.SimpleNamespace())
    with pytest.raises(ConfigError, match=r"usage: python -m tfvidgan.evaluate \{frames\|video\|reconstruction"):
        evaluate.main(["evaluate", "fid"])


def test_a_registered_mode_runs_with_the_flag_values():
    @evaluate.register_mode
    def echo_samples(values):
        return {"num_samples": values.num_samples}

    try:
        assert "echo_samples" in evaluate.list_modes()
        assert evaluate.run_mode("echo_samples", types.SimpleNamespace(num_samples=7)) == {"num_samples": 7}
        with pytest.raises(ConfigError, match="already registered"):
            evaluate.register_mode(echo_samples)
    finally:
        evaluate._MODES.pop("echo_samples")


def test_pictures_go_beside_the_report_unless_given():
    from tfvidgan.metrics.video_report import VideoEvalConfig

    default = VideoEvalConfig.plot
    assert default == "isomap.png"
    assert evaluate.picture_path(None, "runs/a/eval_seed1.json", default) == "runs/a/eval_seed1.isomap.png"
    assert evaluate.picture_path(None, "report", default) == "report.isomap.png"
    assert evaluate.picture_path(None, "", default) == "isomap.png"
    assert evaluate.picture_path("elsewhere.png", "runs/a/eval.json", default) == "elsewhere.png"
    assert evaluate.picture_path("", "runs/a/eval.json", default) == ""


def test_evaluate_and_sample_define_no_flags_at_import():
    """Both tools have --export_dir, --num_samples, --seed, ...: defined only by their `define_flags()`, called
    under `__main__`, so the two modules import together."""
    from absl import flags

    from tfvidgan import sample
    assert callable(evaluate.define_flags) and callable(sample.define_flags)
    assert "export_dir" not in flags.FLAGS and "num_samples" not in flags.FLAGS
