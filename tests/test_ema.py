"""Generator EMA: update arithmetic (with the warm-up ramp), the same average on 1 and 2 replicas,
checkpointing and resume, the export's EMA/raw models, and `eval_every` writing metrics."""
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import mirrored_strategy, random_frames_dataset, tiny_frames_config

from tfvidgan.errors import ConfigError
from tfvidgan.export import load_frames_generator
from tfvidgan.training import loop
from tfvidgan.training.ema import WeightAverage, ema_decay
from tfvidgan.training.frames_task import FramesGanTask


def _model():
    keras.utils.set_random_seed(3)
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.BatchNormalization()])


def test_decay_ramp_follows_the_formula():
    for t, beta in [(0, 0.999), (5, 0.999), (10_000, 0.999), (3, 0.5)]:
        assert float(ema_decay(beta, t)) == pytest.approx(min(beta, (1 + t) / (10 + t)), rel=1e-6)


@pytest.mark.parametrize("devices", [None, ["/cpu:0", "/cpu:1"]])
def test_update_is_the_ema_formula_on_one_and_two_replicas(devices):
    strategy = mirrored_strategy(tuple(devices)) if devices else tf.distribute.get_strategy()
    with strategy.scope():
        model = _model()
        average = WeightAverage(model, beta=0.9)
    expected = [w.copy() for w in model.get_weights()]
    for step in (0, 50, 51):
        for v in model.weights:             # move the model, then average (all weights: BN stats too)
            v.assign(v + 1.0 + step)
        strategy.run(tf.function(lambda s: average.update(s)), args=(tf.constant(step, tf.int64),))
        d = min(0.9, (1 + step) / (10 + step))
        expected = [d * e + (1 - d) * w for e, w in zip(expected, model.get_weights())]
        for got, want in zip(average.shadow.get_weights(), expected):
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_bad_beta_is_named():
    with pytest.raises(ConfigError, match="--ema_beta"):
        WeightAverage(_model(), beta=1.0)


CONFIG = tiny_frames_config(ema_beta=0.9)
_dataset_fn = random_frames_dataset


class _EvalTask(FramesGanTask):
    def evaluate(self, step):
        frames = self.sampling_generator(self.sample_latents(), training=False).numpy()
        return {"mean_pixel": float(frames.mean()), "step_seen": float(step)}


def _train(model_dir, steps, **kwargs):
    task = _EvalTask(CONFIG)
    result = loop.run_training(task, _dataset_fn, tf.distribute.get_strategy(), loop.LoopConfig(
        model_dir=str(model_dir), train_steps=steps, log_every=2, sample_every=2, checkpoint_every=2, **kwargs))
    return task, result


def test_ema_is_checkpointed_resumed_and_exported_with_the_raw_weights(tmp_path):
    task, _ = _train(tmp_path, 2, export=False)
    raw = [w.copy() for w in task.generator.get_weights()]
    ema = [w.copy() for w in task.ema.shadow.get_weights()]
    assert any(not np.allclose(a, b) for a, b in zip(raw, ema))      # the average lags the raw weights
    resumed, result = _train(tmp_path, 2)                               # nothing to train: restore + export
    assert result.start_step == 2
    for got, want in zip(resumed.ema.shadow.get_weights(), ema):
        np.testing.assert_array_equal(got, want)
    z = resumed.sample_latents()
    ema_model, description = load_frames_generator(str(tmp_path / "export"))
    raw_model, raw_description = load_frames_generator(str(tmp_path / "export"), weights="raw")
    assert (description["weights"], raw_description["weights"]) == ("ema", "raw")
    np.testing.assert_allclose(ema_model(z, training=False), resumed.ema.shadow(z, training=False), atol=1e-6)
    np.testing.assert_allclose(raw_model(z, training=False), resumed.generator(z, training=False), atol=1e-6)


def test_ema_off_exports_the_raw_generator(tmp_path):
    task = FramesGanTask(tiny_frames_config(ema_beta=0.0))
    loop.run_training(task, _dataset_fn, tf.distribute.get_strategy(), loop.LoopConfig(
        model_dir=str(tmp_path), train_steps=1, log_every=1, sample_every=1, checkpoint_every=1))
    assert task.ema is None and task.sampling_generator is task.generator
    _, description = load_frames_generator(str(tmp_path / "export"), weights="raw")
    assert description["weights"] == "raw"


def test_eval_every_appends_metrics_lines_and_scalars(tmp_path):
    _train(tmp_path, 5, eval_every=2, export=False)
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [2, 4, 5]                     # every 2 steps and at the end
    assert [r["step_seen"] for r in lines] == [2.0, 4.0, 5.0]
    assert all(np.isfinite(r["mean_pixel"]) and r["eval_seconds"] >= 0 for r in lines)
    tags = set()
    for f in tf.io.gfile.glob(str(tmp_path / "summaries" / "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(f):
            tags |= {v.tag for v in event.summary.value}
    assert {"eval/mean_pixel", "eval/seconds"} <= tags
