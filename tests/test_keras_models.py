"""Keras-native GANs (tfvidgan.keras_models): fit() runs the task's own train_step, so it ends at the same
weights as the custom loop on the same data and seeds — on one device and on two replicas (two logical
CPU devices, tests/conftest.py) — plus compile() mapping, trackers, views, save/load, callbacks, errors.

Equivalence tolerance: max |w_fit − w_loop| ≤ 1e-5 over every weight (generator, discriminators, EMA
shadow) after 3 SGD steps (learning rate 0.5, normalization "none": per-replica batch norm is a different
computation by design). Measured values are printed (run with -s).
"""
import dataclasses
import json
import os
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import mirrored_strategy

from tfvidgan.errors import ConfigError
from tfvidgan.keras_models import DiscriminatorView, FramesGAN
from tfvidgan.training import loop
from tfvidgan.training.adversarial import AdversarialConfig
from tfvidgan.training.frames_task import FramesGanConfig, FramesGanTask

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOLERANCE = 1e-5
GLOBAL_BATCH = 8
STEPS = 3
FRAMES = FramesGanConfig(image_size=32, channels=1, latent_dim=6, generator_filters=8,
                         generator_normalization="none", num_discriminators=3, discriminator_filters=4,
                         discriminator_normalization="none", num_sample_images=4, ema_beta=0.9,
                         adversarial=AdversarialConfig(combiner="gman"))


def _strategy(devices):
    return mirrored_strategy(tuple(devices))


def _frames(n=GLOBAL_BATCH * STEPS, seed=0):
    rng = np.random.default_rng(seed)
    frames = rng.uniform(-1, 1, size=(n, 32, 32, 1)).astype(np.float32)
    frames[: n // 2] = np.clip(frames[: n // 2] * 0.1 - 0.9, -1, 1)  # halves differ: per-replica ≠ global
    return frames


def _weights(task):
    models = [task.generator, task.discriminators] + ([task.ema.shadow] if task.ema is not None else [])
    return [v.numpy() for m in models for v in m.weights]


def _max_difference(a, b):
    assert len(a) == len(b)
    return max(float(np.max(np.abs(x.astype(np.float64) - y))) for x, y in zip(a, b, strict=True))


class _LoopSgdTask(FramesGanTask):
    """The loop's task with SGD and given initial weights (those of the fit model)."""

    def __init__(self, config, initial):
        super().__init__(config)
        self.initial = initial

    def build(self):
        super().build()
        self.g_optimizer = keras.optimizers.SGD(learning_rate=0.5)
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer = keras.optimizers.SGD(learning_rate=0.5)
        self.d_optimizer.build(self.discriminators.trainable_variables)
        for v, value in zip(self.generator.weights + self.discriminators.weights, self.initial, strict=True):
            v.assign(value)
        self.ema.copy_from_model()


def _fit_frames(strategy, frames, config=FRAMES):
    keras.utils.set_random_seed(5)
    scope = strategy.scope() if strategy is not None else tf.distribute.get_strategy().scope()
    with scope:
        gan = FramesGAN(config)
        gan.compile(generator_optimizer=keras.optimizers.SGD(learning_rate=0.5),
                    discriminator_optimizer=keras.optimizers.SGD(learning_rate=0.5))
    initial = [v.numpy() for v in gan.generator.weights + gan.ensemble.weights]
    dataset = tf.data.Dataset.from_tensor_slices(frames).batch(GLOBAL_BATCH, drop_remainder=True)
    history = gan.fit(dataset, epochs=1, verbose=0)
    return gan, initial, history


def _loop_frames(strategy, frames, initial, model_dir, config=FRAMES):
    replicas = strategy.num_replicas_in_sync

    def dataset_fn(context, start_step):  # per-replica batches, replica r takes element r of each group
        return tf.data.Dataset.from_tensor_slices(frames).batch(GLOBAL_BATCH // replicas, drop_remainder=True)

    task = _LoopSgdTask(config, initial)
    result = loop.run_training(task, dataset_fn, strategy, loop.LoopConfig(
        model_dir=str(model_dir), train_steps=STEPS, export=False, log_every=STEPS))
    return task, result


# With the path-length regulariser: an untrained generator's path lengths are ~5e-5, so a large weight is what
# makes the term move the weights (measured: up to 0.014 against 0.0115 without it).
# With the straightness regulariser the untrained generator shows no centred ball (penalty 0): the case checks
# that fit runs the same generator update (one call on the latent triples) and reports the penalty.
@pytest.mark.parametrize("devices,path_length_weight,straightness_weight",
                         [((), 0.0, 0.0), (("/cpu:0", "/cpu:1"), 0.0, 0.0), (("/cpu:0", "/cpu:1"), 1e6, 0.0),
                          (("/cpu:0", "/cpu:1"), 0.0, 1.0)],
                         ids=["one_device", "two_replicas", "two_replicas_path_length", "two_replicas_straightness"])
def test_fit_ends_at_the_loops_weights(tmp_path, devices, path_length_weight, straightness_weight):
    frames = _frames()
    strategy = _strategy(devices) if devices else None
    config = dataclasses.replace(FRAMES, path_length_weight=path_length_weight,
                                 straightness_weight=straightness_weight)
    gan, initial, history = _fit_frames(strategy, frames, config)
    assert int(gan.step.numpy()) == STEPS
    assert int(gan.task.g_optimizer.iterations.numpy()) == STEPS
    loop_strategy = strategy or _strategy(("/cpu:0",))
    task, result = _loop_frames(loop_strategy, frames, initial, tmp_path / "loop", config)
    assert result.final_step == STEPS
    fit_weights, loop_weights = _weights(gan.task), _weights(task)
    moved = _max_difference(fit_weights[:len(initial)], initial)
    difference = _max_difference(fit_weights, loop_weights)
    print(f"\n[{'x'.join(devices) or 'one device'}] fit vs loop: max |Δw| = {difference:.3g} "
          f"(weights moved by up to {moved:.3g})")
    assert moved > 1e-3  # the steps really trained
    assert difference <= TOLERANCE
    # EMA ran inside the shared step: the shadow lags the generator.
    ema_lag = _max_difference([v.numpy() for v in gan.generator_ema.weights], [v.numpy() for v in gan.generator.weights])
    assert ema_lag > 1e-4
    # The trackers hold global means; the last step's loss is the loop's last metric (same step, same value).
    logs = history.history
    assert set(logs) >= {"d_loss", "g_loss", "d_loss_000", "g_loss_002", "g_weight_001"}
    weights = [logs[f"g_weight_{k:03d}"][0] for k in range(3)]
    assert abs(sum(weights) - 1.0) < 1e-5  # GMAN weights of the GLOBAL losses sum to 1 (not 1/replicas)
    assert np.isfinite(logs["d_loss"][0])
    if path_length_weight:  # the regulariser's running mean is the loop's, and fit reports its penalty
        assert float(gan.task.path_length.mean.numpy()) == pytest.approx(float(task.path_length.mean.numpy()),
                                                                           rel=1e-5)
        assert logs["path_length_penalty"][0] > 0 and logs["path_length_mean"][0] > 0
    assert ("straightness_penalty" in logs) == bool(straightness_weight)


class _WithWeights:
    """Wraps a task for the loop: after `build`, its models get the given weights (those of the fit model)."""

    def __init__(self, task, initial: dict):
        self.task, self.initial = task, initial

    def build(self):
        self.task.build()
        for attribute, values in self.initial.items():
            for v, value in zip(getattr(self.task, attribute).weights, values, strict=True):
                v.assign(value)

    def __getattr__(self, name):
        return getattr(self.task, name)


def _snapshot(task, attributes):
    return {a: [v.numpy() for v in getattr(task, a).weights] for a in attributes}


def _frames_export(tmp_path):
    """A tiny frames-generator export (untrained) for the video GAN."""
    from tfvidgan.export import export_version
    config = dataclasses.replace(FRAMES, ema_beta=0.0)
    task = FramesGanTask(config)
    task.build()
    export_version(str(tmp_path / "frames_export"), task.export)
    return str(tmp_path / "frames_export")


def test_video_fit_matches_the_loop_on_two_replicas(tmp_path):
    from tfvidgan.keras_models import VideoGAN
    from tfvidgan.training.video_task import VideoGanConfig, VideoGanTask
    config = VideoGanConfig(frames_generator=_frames_export(tmp_path), clip_length=4, sample_length=5,
                            noise_dim=4, step_noise_dim=2, hidden_units=8, num_layers=1, bidirectional=False, num_discriminators=2,
                            discriminator_filters=2, discriminator_normalization="none", smoothness_weight=0.5, motion_energy_weight=0.5,
                            motion_energy_match_weight=0.5, centroid_acceleration_match_weight=0.5,
                            stationarity_weight=0.5, stationarity_length=9, late_motion_match_weight=0.5,
                            late_motion_length=9, discriminator_input="clips_and_centroid_accelerations", num_sample_videos=1)
    clips = np.random.default_rng(3).uniform(-1, 1, size=(8, 4, 32, 32, 1)).astype(np.float32)
    strategy = _strategy(("/cpu:0", "/cpu:1"))
    with strategy.scope():
        gan = VideoGAN(config)
        gan.compile(loss="hinge")
    attributes = ("sequence_generator", "discriminators")
    initial = _snapshot(gan.task, attributes)
    history = gan.fit(tf.data.Dataset.from_tensor_slices(clips).batch(4, drop_remainder=True), verbose=0)
    assert set(history.history) >= {"d_loss", "g_loss", "g_regularizer", "motion_energy_log_ratio",
                                      "centroid_acceleration_log_ratio", "stationarity_penalty", "late_motion_log_ratio",
                                      "d_loss_001",
                                      "g_weight_000"}

    task = _WithWeights(VideoGanTask(dataclasses.replace(config, adversarial=AdversarialConfig(loss="hinge"))),
                        initial)
    loop.run_training(task, lambda context, start: tf.data.Dataset.from_tensor_slices(clips).batch(2, drop_remainder=True),
                      strategy, loop.LoopConfig(model_dir=str(tmp_path / "loop"), train_steps=2, export=False))
    fit_weights = [w for ws in _snapshot(gan.task, attributes).values() for w in ws]
    loop_weights = [w for ws in _snapshot(task.task, attributes).values() for w in ws]
    difference = _max_difference(fit_weights, loop_weights)
    moved = _max_difference(fit_weights, [w for ws in initial.values() for w in ws])
    print(f"\n[video, 2 replicas] fit vs loop: max |Δw| = {difference:.3g} (moved {moved:.3g})")
    assert moved > 1e-4 and difference <= TOLERANCE
    clips_out = gan.sample(2, 6, seed=1)
    assert clips_out.shape == (2, 6, 32, 32, 1) and np.all(np.abs(clips_out) <= 1.0)
    assert [d.index for d in gan.discriminators] == [0, 1]


def test_reconstruction_fit_matches_the_loop(tmp_path):
    from tfvidgan.cup.operator import CupOperator, make_mask
    from tfvidgan.keras_models import ReconstructionGAN
    from tfvidgan.training.reconstruction_task import ReconstructionConfig, ReconstructionTask
    t, h, w = 4, 16, 16
    mask = make_mask(h, w, seed=0)
    scenes = np.random.default_rng(4).uniform(0, 1, size=(8, t, h, w, 1)).astype(np.float32)
    sensed = CupOperator(mask, t).forward(scenes).numpy()
    config = ReconstructionConfig(num_frames=t, height=h, width=w, mask=mask, base_filters=4, depth=1,
                                  adversarial_weight=0.1, discriminator_filters=2)
    gan = ReconstructionGAN(config)
    gan.compile(combiner="hypervolume")
    attributes = ("reconstructor", "discriminator")
    initial = _snapshot(gan.task, attributes)
    history = gan.fit((sensed, scenes), batch_size=4, shuffle=False, verbose=0)
    assert sorted(history.history) == ["d_loss", "g_loss", "mse"]
    assert gan.discriminators == [gan.discriminator]

    task = _WithWeights(ReconstructionTask(dataclasses.replace(
        config, adversarial=AdversarialConfig(combiner="hypervolume"))), initial)
    loop.run_training(task, lambda context, start: tf.data.Dataset.from_tensor_slices((sensed, scenes)).batch(4, drop_remainder=True),
                      _strategy(("/cpu:0",)), loop.LoopConfig(model_dir=str(tmp_path / "loop"), train_steps=2,
                                                              export=False))
    difference = _max_difference([w for ws in _snapshot(gan.task, attributes).values() for w in ws],
                                 [w for ws in _snapshot(task.task, attributes).values() for w in ws])
    print(f"\n[reconstruction, one device] fit vs loop: max |Δw| = {difference:.3g}")
    assert difference <= TOLERANCE
    prediction = gan(sensed[:2])
    assert prediction.shape == (2, t, h, w, 1)


def test_compile_maps_onto_the_task_and_names_bad_arguments():
    from tfvidgan.training.optimizers import OptimizerConfig
    gan = FramesGAN(FRAMES)
    gan.compile(generator_optimizer=OptimizerConfig(name="adam", learning_rate=1e-3), discriminator_optimizer="sgd",
                loss="hinge", combiner="hypervolume", discriminator_steps=2)
    c = gan.task.config
    assert (c.adversarial.loss, c.adversarial.combiner, c.adversarial.discriminator_steps) == ("hinge", "hypervolume", 2)
    assert c.generator_optimizer.name == "adam" and isinstance(gan.task.g_optimizer, keras.optimizers.Adam)
    assert isinstance(gan.task.d_optimizer, keras.optimizers.SGD) and gan.discriminator_optimizer is gan.task.d_optimizer
    assert gan.task.g_optimizer.built
    for kwargs, match in [({"loss": "wasserstein"}, r"compile\(loss='wasserstein'\)"),
                          ({"combiner": "max"}, r"compile\(combiner='max'\)"),
                          ({"generator_optimizer": 3}, r"compile\(generator_optimizer=...\)"),
                          ({"discriminator_optimizer": "nonesuch"}, r"compile\(discriminator_optimizer='nonesuch'\)"),
                          ({"gman_alphas": 1.0}, r"unknown argument\(s\) \['gman_alphas'\]"),
                          ({"discriminator_steps": 0}, r"compile\(\): --discriminator_steps must be >= 1"),
                          ({"steps_per_execution": 0}, r"steps_per_execution")]:
        with pytest.raises(ConfigError, match=match):
            gan.compile(**kwargs)
    with pytest.raises(ConfigError, match="`config` must be a FramesGanConfig"):
        FramesGAN({"image_size": 32})
    with pytest.raises(ConfigError, match=r"call FramesGAN.compile\(\) before fit"):
        FramesGAN(FRAMES).fit(_frames(8), batch_size=8)
    with _strategy(("/cpu:0", "/cpu:1")).scope():
        mirrored = FramesGAN(FRAMES)
    with pytest.raises(ConfigError, match="inside the same strategy.scope"):
        mirrored.compile(generator_optimizer=keras.optimizers.SGD(0.1))  # created outside the scope
    with pytest.raises(ConfigError, match="jit_compile=True.*one replica"):
        mirrored.compile(jit_compile=True)


def test_fit_names_bad_batches():
    gan = FramesGAN(FRAMES)
    gan.compile()
    with pytest.raises(ConfigError, match=r"fit\(x=...\): frame batches must be \[batch, 32, 32, 1\]"):
        gan.fit(np.zeros((8, 16, 16, 1), np.float32), batch_size=4, verbose=0)
    with pytest.raises(ConfigError, match="static batch size.*drop_remainder=True"):
        gan.fit(tf.data.Dataset.from_tensor_slices(_frames(8)).batch(4), verbose=0)
    with pytest.raises(ConfigError, match="fewer than batch_size=16"):
        gan.fit(_frames(8), batch_size=16)
    with pytest.raises(ConfigError, match="a GAN has no targets"):
        gan.fit(_frames(8), np.zeros(8), batch_size=4)
    history = gan.fit(_frames(9), batch_size=4, verbose=0)  # numpy: 2 full batches, the remainder dropped
    assert int(gan.step.numpy()) == 2 and np.isfinite(history.history["g_loss"][0])


def test_discriminator_views_share_the_ensembles_weights():
    gan = FramesGAN(FRAMES)
    views = gan.discriminators
    assert len(views) == 3 and all(isinstance(v, DiscriminatorView) for v in views)
    x = _frames(4)
    full = gan.ensemble(x).numpy()
    standalone = views[1].to_model()
    np.testing.assert_allclose(views[1](x).numpy()[:, 0], full[:, 1], atol=1e-6)
    np.testing.assert_allclose(standalone(x).numpy()[:, 0], full[:, 1], atol=1e-5)
    for mine, copied in zip(views[1].get_weights(), standalone.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, copied)
    # A view is live: writing discriminator 1's weights changes column 1 only.
    views[1].set_weights([2.0 * w for w in views[1].get_weights()])
    after = gan.ensemble(x).numpy()
    np.testing.assert_array_equal(after[:, [0, 2]], full[:, [0, 2]])
    assert np.max(np.abs(after[:, 1] - full[:, 1])) > 1e-4
    np.testing.assert_array_equal(gan.discriminators[1](x).numpy()[:, 0], after[:, 1])
    with pytest.raises(ConfigError, match=r"index must be in \[0, 3\)"):
        DiscriminatorView(gan.ensemble, 3)


def test_save_and_load(tmp_path):
    gan = FramesGAN(FRAMES)
    gan.compile(combiner="gman")
    gan.fit(_frames(8), batch_size=4, verbose=0)
    path = str(tmp_path / "gan.keras")
    gan.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, FramesGAN) and loaded.task.config == gan.task.config
    assert int(loaded.step.numpy()) == 2 and int(loaded.task.g_optimizer.iterations.numpy()) == 2
    for a, b in zip(gan.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(gan.task.d_optimizer.variables, loaded.task.d_optimizer.variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(loaded.sample(3, seed=1), gan.sample(3, seed=1))
    # Weights only, into a model built from the same config.
    gan.save_weights(str(tmp_path / "gan.weights.h5"))
    other = FramesGAN(FRAMES)
    other.load_weights(str(tmp_path / "gan.weights.h5"))
    np.testing.assert_array_equal(other.sample(3, seed=1), gan.sample(3, seed=1))
    # The loaded model trains on (compile again: optimizers are kept, their state included).
    loaded.compile()
    loaded.fit(_frames(8), batch_size=4, verbose=0)
    assert int(loaded.step.numpy()) == 4


def test_fit_under_multi_worker_strategy_points_at_the_cli():
    code = textwrap.dedent("""
        import tensorflow as tf
        from tfvidgan.errors import ConfigError
        from tfvidgan.keras_models import FramesGAN
        from tfvidgan.training.frames_task import FramesGanConfig
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        with strategy.scope():
            gan = FramesGAN(FramesGanConfig(image_size=32, latent_dim=4, generator_filters=4, num_discriminators=2,
                                            discriminator_filters=2, ema_beta=0.0))
            gan.compile()
        try:
            gan.fit(tf.zeros([4, 32, 32, 1]), batch_size=2)
        except ConfigError as e:
            print("CONFIG_ERROR:", e)
    """)
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-2000:]
    line = next(l for l in out.stdout.splitlines() if l.startswith("CONFIG_ERROR:"))
    assert "MultiWorkerMirroredStrategy" in line and "keras#20585" in line
    assert "python -m tfvidgan.train_frames" in line and "run_training" in line


def _event_tags(directory):
    tags = {}
    for event_file in tf.io.gfile.glob(os.path.join(directory, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(event_file):
            for value in event.summary.value:
                tags.setdefault(value.tag, set()).add(event.step)
    return tags


def test_callbacks_call_the_tasks_actions(tmp_path):
    from tfvidgan.keras_callbacks import Evaluation, PeriodicExport, SampleSummaries
    probed = []

    def probe(generator):  # a stand-in quality probe: mean pixel of fixed-seed samples
        probed.append(generator)
        return {"mean_pixel": float(np.mean(generator(tf.zeros([2, FRAMES.latent_dim])).numpy()))}

    gan = FramesGAN(FRAMES, quality_probe=probe)
    gan.compile()
    evaluation = Evaluation(str(tmp_path), every_n_steps=2, best_metric="mean_pixel", best_metric_mode="max")
    gan.fit(_frames(16), batch_size=4, verbose=0, callbacks=[
        SampleSummaries(str(tmp_path), every_n_steps=2), PeriodicExport(str(tmp_path), every_n_steps=3), evaluation])
    assert int(gan.step.numpy()) == 4
    tags = _event_tags(str(tmp_path / "summaries"))
    assert tags["samples/frames"] == {2, 4} and tags["samples/frames_raw_weights"] == {2, 4}
    assert tags["eval/mean_pixel"] == {2, 4}
    # The task's own export, versioned by step: at step 3 and at the end (step 4).
    assert sorted(os.listdir(tmp_path / "export")) == ["3", "4"]
    loaded = tf.saved_model.load(str(tmp_path / "export" / "4"))
    exported = loaded.signatures["sample"](num_samples=tf.constant(3), seed=tf.constant(7))["frames"].numpy()
    np.testing.assert_allclose(exported, gan.sample(3, seed=7), atol=1e-5)  # the EMA generator, as in the loop
    assert all(g is gan.task.ema.shadow for g in probed)
    with open(tmp_path / "metrics.jsonl") as f:
        records = [json.loads(line) for line in f]
    assert [r["step"] for r in records] == [2, 4] and [s for s, _ in evaluation.results] == [2, 4]
    assert records[-1]["mean_pixel"] == pytest.approx(evaluation.results[-1][1]["mean_pixel"])
    best = max(records, key=lambda r: r["mean_pixel"])
    with open(tmp_path / "best.json") as f:
        assert json.load(f)["step"] == best["step"]
    assert os.listdir(tmp_path / "best_export") == [str(best["step"])]


def test_callbacks_reject_bad_arguments():
    from tfvidgan.keras_callbacks import Evaluation, SampleSummaries
    with pytest.raises(ConfigError, match="`every_n_steps` must be a positive int"):
        SampleSummaries("runs/x", every_n_steps=0)
    with pytest.raises(ConfigError, match="`model_dir` must be a non-empty path"):
        SampleSummaries("", every_n_steps=1)
    plain = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with pytest.raises(ConfigError, match="needs a tfvidgan.keras_models model"):
        Evaluation("runs/x", every_n_steps=1).set_model(plain)
    with pytest.raises(ConfigError, match="`best_metric_mode` must be one of min, max"):
        Evaluation("runs/x", every_n_steps=1, best_metric="psnr_db", best_metric_mode="higher")


def test_readme_use_it_from_python_script_runs(tmp_path):
    with open(os.path.join(REPO, "README.md")) as f:
        readme = f.read()
    section = readme[readme.index("## Use it from Python"):]
    script = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert 10 <= len(script.strip().splitlines()) <= 22  # a short script
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                         timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "(16, 32, 32, 1) (16, 1)"
    assert os.listdir(tmp_path / "runs" / "py" / "export") == ["8"]
    assert _event_tags(str(tmp_path / "runs" / "py" / "summaries"))["samples/frames"] == {4, 8}


def test_the_equivalence_check_catches_a_step_counter_off_by_one(tmp_path):
    """Mutant: fit hands the task step + 1 (other noise, other EMA ramp); the comparison must fail clearly."""
    frames = _frames()
    keras.utils.set_random_seed(5)
    gan = FramesGAN(FRAMES)
    gan.compile(generator_optimizer=keras.optimizers.SGD(learning_rate=0.5),
                discriminator_optimizer=keras.optimizers.SGD(learning_rate=0.5))
    initial = [v.numpy() for v in gan.generator.weights + gan.ensemble.weights]
    gan.task.train_step = lambda real, step: FramesGanTask.train_step(gan.task, real, step + 1)
    gan.fit(tf.data.Dataset.from_tensor_slices(frames).batch(GLOBAL_BATCH, drop_remainder=True), verbose=0)
    task, _ = _loop_frames(_strategy(("/cpu:0",)), frames, initial, tmp_path / "loop")
    assert _max_difference(_weights(gan.task), _weights(task)) > 100 * TOLERANCE
