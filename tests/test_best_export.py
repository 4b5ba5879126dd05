"""`--best_metric`: the loop exports the best evaluated step, keeps only that export, records it in
best.json, continues the record on resume and refuses a record kept by another metric."""
import json
import math

import numpy as np
import pytest
import tensorflow as tf
from conftest import random_frames_dataset, tiny_frames_config

from tfvidgan.errors import ConfigError
from tfvidgan.export import existing_versions, load_frames_generator, read_selection, selection_bias
from tfvidgan.metrics.quality_probe import ProbeConfig
from tfvidgan.training import loop
from tfvidgan.training.best_export import BestExporter
from tfvidgan.training.frames_task import FramesGanTask

CONFIG = tiny_frames_config(ema_beta=0.0)
_dataset_fn = random_frames_dataset


class _ScriptedTask(FramesGanTask):
    """Evaluations report `score` from a script by step, and the model's mean pixel on fixed latents (so a
    test can tell which step's weights an export holds)."""

    def __init__(self, script):
        super().__init__(CONFIG)
        self.script = script

    def evaluate(self, step):
        frames = self.generator(self.sample_latents(), training=False).numpy()
        return {"score": self.script[step], "mean_pixel": float(frames.mean())}


def _train(model_dir, steps, script, **kwargs):
    task = _ScriptedTask(script)
    kwargs = {"eval_every": 2, "best_metric": "score", "export": False, **kwargs}
    loop.run_training(task, _dataset_fn, tf.distribute.get_strategy(), loop.LoopConfig(
        model_dir=str(model_dir), train_steps=steps, log_every=2, sample_every=100, checkpoint_every=2, **kwargs))
    return task


def _strict(text):
    """json.loads that refuses NaN/Infinity tokens, as `jq` and other strict JSON readers do."""
    def refuse(token):
        raise ValueError(f"not JSON: {token}")
    return json.loads(text, parse_constant=refuse)


def _mean_pixel(export_dir, task):
    model, _ = load_frames_generator(str(export_dir))
    return float(np.asarray(model(task.sample_latents(), training=False)).mean())


def test_the_best_step_is_exported_recorded_and_continued_on_resume(tmp_path):
    task = _train(tmp_path, 7, {2: 0.5, 4: 0.3, 6: 0.4, 7: math.nan})
    record = _strict((tmp_path / "best.json").read_text())
    assert (record["step"], record["value"], record["metric"], record["mode"]) == (4, 0.3, "score", "min")
    assert existing_versions(str(tmp_path / "best_export")) == [4]       # steps 2 was replaced; 6 and 7 lost
    assert record["export"] == str(tmp_path / "best_export" / "4")
    evaluations = [_strict(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [e["score"] for e in evaluations] == [0.5, 0.3, 0.4, None]   # step 7's NaN is written as null
    at_4 = next(e for e in evaluations if e["step"] == 4)
    assert record["metrics"] == {"score": 0.3, "mean_pixel": at_4["mean_pixel"]}
    # The export holds step 4's weights (not the final step's): its samples give step 4's evaluation.
    assert _mean_pixel(tmp_path / "best_export", task) == pytest.approx(at_4["mean_pixel"], abs=1e-6)
    final = float(np.asarray(task.generator(task.sample_latents(), training=False)).mean())
    assert final != pytest.approx(at_4["mean_pixel"], abs=1e-6)

    _train(tmp_path, 11, {8: 0.35, 10: 0.2, 11: 0.25})                # resumed: 0.35 does not beat 0.3
    record = json.loads((tmp_path / "best.json").read_text())
    assert (record["step"], record["value"]) == (10, 0.2)
    assert existing_versions(str(tmp_path / "best_export")) == [10]


class _Probe:
    """Stands for a quality probe: the loop reads only its config's `sample_settings()`."""

    def __init__(self, seed):
        self.config = ProbeConfig(data="unused", num_samples=300, seed=seed)


def test_a_best_export_carries_the_probe_sample_it_was_picked_on(tmp_path):
    task = _ScriptedTask({2: 0.5, 4: 0.3})
    task.quality_probe = _Probe(seed=4)
    loop.run_training(task, _dataset_fn, tf.distribute.get_strategy(), loop.LoopConfig(
        model_dir=str(tmp_path), train_steps=4, log_every=2, sample_every=100, checkpoint_every=2, eval_every=2,
        best_metric="score"))
    record = json.loads((tmp_path / "best.json").read_text())
    selection = read_selection(str(tmp_path / "best_export"))
    assert selection == {k: record[k] for k in ("metric", "mode", "value", "step", "probe")}
    assert (selection["step"], selection["probe"]["seed"], selection["probe"]["num_samples"]) == (4, 4, 300)
    assert "seed 4" in selection_bias(selection, 4)
    assert selection_bias(selection, 5) is None
    assert read_selection(str(tmp_path / "export")) is None           # the final export was not picked


def _fake_export(directory):
    tf.io.gfile.makedirs(directory)
    with open(f"{directory}/model.txt", "w") as f:
        f.write("a model")


def test_max_mode_keeps_the_highest_value_and_nan_never_wins(tmp_path):
    best = BestExporter(str(tmp_path), "score", "max", _fake_export)
    kept = [best.update(step, {"score": value}) for step, value in [(1, math.nan), (2, 1.0), (3, 3.0), (4, 2.0),
                                                                   (5, math.nan)]]
    assert kept == [None, str(tmp_path / "best_export" / "2"), str(tmp_path / "best_export" / "3"), None, None]
    assert existing_versions(str(tmp_path / "best_export")) == [3]
    assert BestExporter(str(tmp_path), "score", "max", _fake_export).record["step"] == 3   # read back


def test_a_record_kept_by_another_metric_is_refused_not_overwritten(tmp_path):
    BestExporter(str(tmp_path), "score", "min", _fake_export).update(2, {"score": 0.5})
    before = (tmp_path / "best.json").read_text()
    for metric, mode in [("mean_pixel", "min"), ("score", "max")]:
        with pytest.raises(ConfigError, match=f"--best_metric={metric} --best_metric_mode={mode}, but .*best.json "
                                              f"keeps the best step by --best_metric=score --best_metric_mode=min"):
            BestExporter(str(tmp_path), metric, mode, _fake_export)
    assert (tmp_path / "best.json").read_text() == before and existing_versions(str(tmp_path / "best_export")) == [2]


def test_bad_settings_are_named(tmp_path):
    with pytest.raises(ConfigError, match="--best_metric=score .* needs --eval_every > 0"):
        loop.LoopConfig(model_dir=str(tmp_path), train_steps=1, best_metric="score")
    with pytest.raises(ConfigError, match="--best_metric_mode must be one of min, max"):
        BestExporter(str(tmp_path), "score", "lowest", _fake_export)
    with pytest.raises(ConfigError, match="'nope' is not a value of this run's evaluation; it reports mean_pixel, score"):
        BestExporter(str(tmp_path), "nope", "min", _fake_export).update(2, {"score": 0.5, "mean_pixel": 0.0})
    (tmp_path / "best.json").write_text("{not json")
    with pytest.raises(ConfigError, match="best.json: not a best-export record"):
        BestExporter(str(tmp_path), "score", "min", _fake_export)


def test_the_trainers_check_the_metric_name_against_their_probe_before_training(tmp_path):
    from types import SimpleNamespace

    from tfvidgan.common_flags import check_best_metric
    from tfvidgan.metrics.quality_probe import ProbeConfig, VideoQualityProbe

    probe = VideoQualityProbe(ProbeConfig(data=str(tmp_path), long_frames=60), num_frames=30)
    check_best_metric(SimpleNamespace(best_metric="worst_target_ratio"), probe)
    check_best_metric(SimpleNamespace(best_metric=""), probe)
    with pytest.raises(ConfigError, match="--best_metric='fid' is not an evaluation value of this trainer; "
                                          "--eval_every reports fraction_expected_count_frames, .*long_video_drift"):
        check_best_metric(SimpleNamespace(best_metric="fid"), probe)
