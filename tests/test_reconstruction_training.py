"""The CUP reconstructor trained by the shared loop: it learns, and its TF Serving export works."""
import subprocess

import numpy as np
import pytest
import tensorflow as tf
from conftest import mirrored_strategy

from tfvidgan.cup.operator import CupOperator, make_mask
from tfvidgan.errors import ConfigError
from tfvidgan.training import loop
from tfvidgan.training.adversarial import AdversarialConfig
from tfvidgan.training.optimizers import OptimizerConfig
from tfvidgan.training.reconstruction_task import ReconstructionConfig, ReconstructionTask

T, H, W = 4, 16, 16
STRATEGY = mirrored_strategy(("/cpu:0",))


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


def _train(model_dir, steps, adversarial_weight=0.0, export=True):
    mask, sensed, scenes = _pairs(64, seed=0)
    config = ReconstructionConfig(num_frames=T, height=H, width=W, mask=mask, base_filters=16, depth=2, optimizer=OptimizerConfig(name="adam", learning_rate=3e-3, beta_1=0.9),
                                  adversarial_weight=adversarial_weight, discriminator_filters=4,
                                  adversarial=AdversarialConfig())
    task = ReconstructionTask(config, preview=(sensed[:2], scenes[:2]))

    def dataset_fn(context, start_step):
        return (tf.data.Dataset.from_tensor_slices((sensed, scenes)).shuffle(64, seed=start_step)
                .repeat().batch(16, drop_remainder=True))
    result = loop.run_training(task, dataset_fn, STRATEGY, loop.LoopConfig(
        model_dir=str(model_dir), train_steps=steps, log_every=10, sample_every=steps if export else 10 * steps,
        checkpoint_every=steps, export=export))
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


def test_adversarial_term_changes_the_update_and_logs_discriminator_losses(tmp_path):
    import keras
    keras.utils.set_random_seed(5)
    plain, _ = _train(tmp_path / "plain", 2, export=False)
    keras.utils.set_random_seed(5)
    adv, result = _train(tmp_path / "adv", 2, adversarial_weight=0.5, export=False)
    assert np.isfinite(result.last_metrics["d_loss"]) and result.last_metrics["d_loss"] > 0
    assert np.isfinite(result.last_metrics["mse"])
    differs = [not np.allclose(a.numpy(), b.numpy())
               for a, b in zip(plain.reconstructor.trainable_variables, adv.reconstructor.trainable_variables)]
    assert any(differs)


# -- the unfolded architecture: mask as an input, random masks, export signatures and warm-up ---------------

def _unfolded_config(**kw):
    mask, _, _ = _pairs(1, seed=0)
    return ReconstructionConfig(num_frames=T, height=H, width=W, mask=mask, architecture="unfolded",
                                unfolded_stages=2, unfolded_filters=8, **kw)


def test_config_errors_name_the_flag():
    mask, _, _ = _pairs(1, seed=0)
    base = dict(num_frames=T, height=H, width=W, mask=mask)
    with pytest.raises(ConfigError, match=r"--architecture='resnet' is not one of unet, unfolded"):
        ReconstructionConfig(**base, architecture="resnet")
    with pytest.raises(ConfigError, match=r"mask shape \(16, 15\) does not match"):
        ReconstructionConfig(**{**base, "mask": mask[:, :15]}, architecture="unfolded")
    bad = mask.copy()
    bad[3, 3] = np.nan
    with pytest.raises(ConfigError, match="mask.*NaN or infinite"):
        ReconstructionConfig(**{**base, "mask": bad}, architecture="unfolded")
    with pytest.raises(ConfigError, match="--random_masks needs --architecture=unfolded"):
        ReconstructionConfig(**base, random_masks=True)
    with pytest.raises(ConfigError, match="--unfolded_conv='4d'"):
        ReconstructionConfig(**base, architecture="unfolded", unfolded_conv="4d")
    with pytest.raises(ConfigError, match="--unfolded_stages must be >= 1"):
        ReconstructionConfig(**base, architecture="unfolded", unfolded_stages=0)
    with pytest.raises(ConfigError, match="--unfolded_memory needs --unfolded_conv=frames2d or frames_unet.*'3d'"):
        ReconstructionConfig(**base, architecture="unfolded", unfolded_conv="3d", unfolded_memory=True)


def test_unknown_architecture_fails_at_the_entry_point_before_any_data(tmp_path):
    import sys
    done = subprocess.run([sys.executable, "-m", "tfvidgan.train_reconstructor", "--architecture=resnet",
                           f"--model_dir={tmp_path / 'run'}"], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "--architecture='resnet' is not one of unet, unfolded" in done.stderr
    assert not (tmp_path / "run" / "data").exists()


def test_random_masks_resense_each_example_with_a_fresh_seeded_mask():
    from tfvidgan.cup.operator import forward_with_masks
    _, sensed, scenes = _pairs(8, seed=4)
    task = ReconstructionTask(_unfolded_config(random_masks=True, mask_fill=0.5))
    a = task.model_inputs(tf.constant(sensed), tf.constant(scenes), tf.constant(7, tf.int64))
    again = task.model_inputs(tf.constant(sensed), tf.constant(scenes), tf.constant(7, tf.int64))
    other = task.model_inputs(tf.constant(sensed), tf.constant(scenes), tf.constant(8, tf.int64))
    masks = a["mask"].numpy()
    assert masks.shape == (8, H, W) and set(np.unique(masks)) == {0.0, 1.0}
    assert len({m.tobytes() for m in masks}) == 8                      # one mask per example
    np.testing.assert_array_equal(again["mask"].numpy(), masks)        # seeded by (seed, step)
    assert not np.array_equal(other["mask"].numpy(), masks)            # fresh every step
    # No noise configured: the sensed input is exactly the scene through the example's own mask.
    np.testing.assert_allclose(a["sensed_image"].numpy(), forward_with_masks(scenes, masks).numpy(), atol=1e-5)
    noisy = ReconstructionTask(_unfolded_config(random_masks=True, photons=100.0, read_noise=0.05))
    b = noisy.model_inputs(tf.constant(sensed), tf.constant(scenes), tf.constant(7, tf.int64))
    residual = b["sensed_image"].numpy() - forward_with_masks(scenes, b["mask"]).numpy()
    assert 0.04 < residual.std() < 0.5                                 # the dataset's noise model is applied
    fixed = ReconstructionTask(_unfolded_config()).model_inputs(tf.constant(sensed), tf.constant(scenes), 0)
    np.testing.assert_array_equal(fixed["sensed_image"].numpy(), sensed)
    np.testing.assert_array_equal(fixed["mask"].numpy(), np.broadcast_to(_pairs(1, 0)[0], (8, H, W)))


@pytest.fixture(scope="module")
def unfolded_export(tmp_path_factory):
    import keras

    from tfvidgan.export import export_version
    keras.utils.set_random_seed(3)
    task = ReconstructionTask(_unfolded_config())
    task.build()
    for w in task.reconstructor.trainable_weights:  # non-trivial denoisers (the last convs start at zero)
        w.assign(tf.random.stateless_normal(w.shape, seed=[9, len(w.path)], stddev=0.05))
    path = export_version(str(tmp_path_factory.mktemp("unfolded") / "export"), task.export)
    return task, path


def test_unfolded_export_default_and_with_mask_signatures(unfolded_export):
    task, path = unfolded_export
    loaded = tf.saved_model.load(path)
    assert set(loaded.signatures) == {"serving_default", "with_mask"}
    assert set(loaded.signatures["with_mask"].structured_input_signature[1]) == {"sensed_image", "mask"}
    _, sensed, _ = _pairs(3, seed=5)
    default = loaded.signatures["serving_default"](sensed_image=tf.constant(sensed))["scene"].numpy()
    np.testing.assert_allclose(default, task.predict(sensed).numpy(), atol=1e-5)
    training_mask = np.broadcast_to(task.config.mask, (3, H, W)).astype(np.float32)
    same = loaded.signatures["with_mask"](sensed_image=tf.constant(sensed), mask=tf.constant(training_mask))
    np.testing.assert_allclose(same["scene"].numpy(), default, atol=1e-6)
    camera1 = make_mask(H, W, seed=1)
    other = loaded.signatures["with_mask"](sensed_image=tf.constant(sensed),
                                           mask=tf.constant(np.broadcast_to(camera1, (3, H, W)).copy()))
    np.testing.assert_allclose(other["scene"].numpy(), task.predict(sensed, camera1).numpy(), atol=1e-5)
    assert np.abs(other["scene"].numpy() - default).max() > 0.05
    masks = [v for v in loaded.variables if v.name.split("/")[-1].startswith("mask")]
    assert len(masks) == 1 and np.array_equal(masks[0].numpy(), task.config.mask)


def test_unfolded_export_rejects_bad_masks_and_sensed_images_by_name(unfolded_export):
    _, path = unfolded_export
    with_mask = tf.saved_model.load(path).signatures["with_mask"]
    _, sensed, _ = _pairs(2, seed=6)
    good = np.broadcast_to(make_mask(H, W, seed=0), (2, H, W)).astype(np.float32)
    with pytest.raises(tf.errors.InvalidArgumentError, match=rf"mask must have shape \[batch, {H}, {W}\]"):
        with_mask(sensed_image=tf.constant(sensed), mask=tf.zeros([2, H, W + 1]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="mask must have the same batch size as sensed_image"):
        with_mask(sensed_image=tf.constant(sensed), mask=tf.constant(good[:1]))
    bad = good.copy()
    bad[1, 2, 2] = np.inf
    with pytest.raises(tf.errors.InvalidArgumentError, match="mask must be finite"):
        with_mask(sensed_image=tf.constant(sensed), mask=tf.constant(bad))
    with pytest.raises(tf.errors.InvalidArgumentError, match=rf"sensed_image must have shape \[batch, {H + T - 1}, {W}, 1\]"):
        with_mask(sensed_image=tf.zeros([2, H, W, 1]), mask=tf.constant(good))


@pytest.mark.parametrize("which", ["unet", "unfolded"])
def test_warmup_file_is_prediction_logs_that_the_export_answers(which, trained, unfolded_export):
    from tensorflow_serving.apis import prediction_log_pb2
    path = trained[1].export_path if which == "unet" else unfolded_export[1]
    warmup = f"{path}/assets.extra/tf_serving_warmup_requests"
    loaded = tf.saved_model.load(path)
    seen = []
    for record in tf.data.TFRecordDataset(warmup):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        assert log.WhichOneof("log_type") == "predict_log"
        request = log.predict_log.request
        inputs = {name: tf.constant(tf.make_ndarray(proto)) for name, proto in request.inputs.items()}
        scene = loaded.signatures[request.model_spec.signature_name](**inputs)["scene"].numpy()
        batch = inputs["sensed_image"].shape[0]
        assert scene.shape == (batch, T, H, W, 1) and np.all(np.isfinite(scene))
        seen.append((request.model_spec.signature_name, batch))
    signatures = ["serving_default"] + (["with_mask"] if which == "unfolded" else [])
    assert sorted(seen) == sorted((s, b) for s in signatures for b in (1, 8, 32, 64))
