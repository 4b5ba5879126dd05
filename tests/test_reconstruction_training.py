"""The CUP reconstructor trained by the shared loop: it learns, and its TF Serving export works."""
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from tfvidgan.cup.operator import CupOperator, make_mask
from tfvidgan.training import loop
from tfvidgan.training.adversarial import AdversarialConfig
from tfvidgan.training.optimizers import OptimizerConfig
from tfvidgan.training.reconstruction_task import ReconstructionConfig, ReconstructionTask

T, H, W = 4, 16, 16
STRATEGY = tf.distribute.MirroredStrategy(["/cpu:0"])


def _pairs(n, seed):
    """Scenes of one bright square moving right one pixel per frame, and their CUP measurements."""
    rng = np.random.default_rng(seed)
    scenes = np.zeros((n, T, H, W, 1), np.float32)
    for i in range(n):
        r, c = rng.integers(2, H - 6), rng.integers(2, W - 8)
        for t in range(T):
            scenes[i, t, r:r + 3, c + t:c + t + 3] = 1.0
    mask = make_mask(H, W, seed=0)
    sensed = CupOperator(mask, T).forward(scenes).numpy()
    return mask, sensed, scenes


def _train(model_dir, steps, adversarial_weight=0.0):
    mask, sensed, scenes = _pairs(64, seed=0)
    config = ReconstructionConfig(num_frames=T, height=H, width=W, mask=mask, base_filters=16, depth=2, optimizer=OptimizerConfig(name="adam", learning_rate=3e-3, beta_1=0.9),
                                  adversarial_weight=adversarial_weight, critic_filters=4,
                                  adversarial=AdversarialConfig())
    task = ReconstructionTask(config, preview=(sensed[:2], scenes[:2]))

    def dataset_fn(context, start_step):
        return (tf.data.Dataset.from_tensor_slices((sensed, scenes)).shuffle(64, seed=start_step)
                .repeat().batch(16, drop_remainder=True))
    result = loop.run_training(task, dataset_fn, STRATEGY, loop.LoopConfig(
        model_dir=str(model_dir), train_steps=steps, log_every=10, sample_every=steps,
        checkpoint_every=steps))
    return task, result


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("recon"), 200)


def test_reconstructor_learns_far_better_than_a_constant(trained):
    task, result = trained
    mask, sensed, scenes = _pairs(32, seed=1)  # held out
    prediction = task.reconstructor(sensed, training=False).numpy()
    mse = float(np.mean((prediction - scenes) ** 2))
    constant = float(np.mean((scenes.mean() - scenes) ** 2))
    assert mse < 0.2 * constant, (mse, constant)
    assert 0.0 <= prediction.min() and prediction.max() <= 1.0


def test_serving_export_has_named_io_and_works_with_saved_model_cli(trained, tmp_path):
    task, result = trained
    show = subprocess.run(["saved_model_cli", "show", "--dir", result.export_path, "--all"],
                          capture_output=True, text=True, timeout=300)
    assert show.returncode == 0, show.stderr[-2000:]
    assert "signature_def['serving_default']" in show.stdout
    assert "inputs['sensed_image'] tensor_info:" in show.stdout
    assert f"shape: (-1, {H + T - 1}, {W}, 1)" in show.stdout
    assert "outputs['scene'] tensor_info:" in show.stdout
    _, sensed, _ = _pairs(2, seed=3)
    np.save(tmp_path / "x.npy", sensed)
    run = subprocess.run(["saved_model_cli", "run", "--dir", result.export_path, "--tag_set", "serve",
                          "--signature_def", "serving_default", "--inputs", f"sensed_image={tmp_path / 'x.npy'}",
                          "--outdir", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    served = np.load(tmp_path / "out" / "scene.npy")
    np.testing.assert_allclose(served, task.reconstructor(sensed, training=False).numpy(), atol=1e-5)
    loaded = tf.saved_model.load(result.export_path)
    with pytest.raises(tf.errors.InvalidArgumentError, match=rf"sensed_image must have shape \[batch, {H + T - 1}, {W}, 1\]"):
        loaded.signatures["serving_default"](sensed_image=tf.zeros([1, H, W, 1]))


def test_adversarial_term_changes_the_update_and_logs_critic_losses(tmp_path):
    import keras
    keras.utils.set_random_seed(5)
    plain, _ = _train(tmp_path / "plain", 2)
    keras.utils.set_random_seed(5)
    adv, result = _train(tmp_path / "adv", 2, adversarial_weight=0.5)
    assert np.isfinite(result.last_metrics["critic_loss"]) and result.last_metrics["critic_loss"] > 0
    assert np.isfinite(result.last_metrics["mse"])
    differs = [not np.allclose(a.numpy(), b.numpy())
               for a, b in zip(plain.reconstructor.trainable_variables, adv.reconstructor.trainable_variables)]
    assert any(differs)
