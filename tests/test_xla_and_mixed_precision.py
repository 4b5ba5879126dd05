"""--jit_compile and --mixed_precision give the float32 results (numerically) for all three trainers."""
import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import mirrored_strategy

from tfvidgan.cup.operator import CupOperator, make_mask
from tfvidgan.errors import ConfigError
from tfvidgan.training import loop
from tfvidgan.training.frames_task import FramesGanConfig, FramesGanTask
from tfvidgan.training.reconstruction_task import ReconstructionConfig, ReconstructionTask

ONE = mirrored_strategy(("/cpu:0",))
FRAMES = FramesGanConfig(image_size=32, latent_dim=6, generator_filters=8, num_discriminators=2,
                         discriminator_filters=4, num_sample_images=4)
# Batch norm under XLA computes its batch statistics with a different (fused) kernel; the jit comparison
# uses the normalization-free variant so that both runs do the same arithmetic.
FRAMES_NO_NORM = dataclasses.replace(FRAMES, generator_normalization="none", discriminator_normalization="none")


def _frames_fn(context, start_step):
    frames = np.random.default_rng(0).uniform(-1, 1, (8, 32, 32, 1)).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices(frames).repeat().batch(4, drop_remainder=True)


def _cup_fn(context, start_step):
    scenes = (np.random.default_rng(0).uniform(0, 1, (8, 4, 16, 16, 1)) > 0.7).astype(np.float32)
    sensed = CupOperator(make_mask(16, 16, 0), 4).forward(scenes).numpy()
    return tf.data.Dataset.from_tensor_slices((sensed, scenes)).repeat().batch(4, drop_remainder=True)


def _run(tmp_path, name, task, dataset_fn, steps=3, **options):
    keras.utils.set_random_seed(7)
    result = loop.run_training(task, dataset_fn, ONE, loop.LoopConfig(
        model_dir=str(tmp_path / name), train_steps=steps, export=False, log_every=1, **options))
    return result.last_metrics


def _recon_task():
    return ReconstructionTask(ReconstructionConfig(num_frames=4, height=16, width=16, mask=make_mask(16, 16, 0),
                                                   base_filters=4, depth=2))


@pytest.mark.parametrize("make_task,dataset_fn,key", [
    (lambda: FramesGanTask(FRAMES_NO_NORM), _frames_fn, "d_loss"),
    # ~19 s of XLA compilation on 2 cores; the frames case checks the same loop path in the default suite.
    pytest.param(_recon_task, _cup_fn, "mse", marks=pytest.mark.slow),
])
def test_jit_compile_matches_default(tmp_path, make_task, dataset_fn, key):
    plain_task, jit_task = make_task(), make_task()
    plain = _run(tmp_path, "plain", plain_task, dataset_fn)
    jit = _run(tmp_path, "jit", jit_task, dataset_fn, jit_compile=True)
    np.testing.assert_allclose(jit[key], plain[key], rtol=1e-3)
    # Same initial weights (same seed): the XLA run's weight updates point the same way as the default
    # run's. (Not equal to float precision: RMSprop's first steps normalise every gradient entry to about
    # ±lr·√10, so tiny numeric differences of near-zero entries become differences of a full step.)
    keras.utils.set_random_seed(7)
    initial_task = make_task()
    with ONE.scope():
        initial_task.build()
    model = lambda t: t.generator if hasattr(t, "generator") else t.reconstructor  # noqa: E731
    init = np.concatenate([v.numpy().ravel() for v in model(initial_task).trainable_variables])
    a = np.concatenate([v.numpy().ravel() for v in model(plain_task).trainable_variables])
    b = np.concatenate([v.numpy().ravel() for v in model(jit_task).trainable_variables])
    update_a, update_b = a - init, b - init
    assert np.abs(update_a).mean() > 0
    cosine = update_a @ update_b / (np.linalg.norm(update_a) * np.linalg.norm(update_b))
    assert cosine > 0.9, cosine


def test_mixed_precision_matches_float32_and_uses_bfloat16(tmp_path):
    full_task, mixed_task = FramesGanTask(FRAMES), FramesGanTask(FRAMES)
    full = _run(tmp_path, "fp32", full_task, _frames_fn)
    mixed = _run(tmp_path, "mixed", mixed_task, _frames_fn, mixed_precision=True)
    assert {layer.compute_dtype for layer in mixed_task.generator.layers} >= {"bfloat16"}
    assert all(v.dtype == "float32" for v in mixed_task.generator.trainable_variables)
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
    for key in ("d_loss", "g_loss"):
        np.testing.assert_allclose(mixed[key], full[key], rtol=3e-2)
    z = tf.random.normal([4, FRAMES.latent_dim])
    np.testing.assert_allclose(tf.cast(mixed_task.generator(z, training=False), tf.float32).numpy(),
                               full_task.generator(z, training=False).numpy(), atol=0.1)


def test_jit_compile_refuses_several_replicas(tmp_path):
    two = mirrored_strategy(("/cpu:0", "/cpu:1"))
    with pytest.raises(ConfigError, match="--jit_compile supports one replica"):
        loop.run_training(FramesGanTask(FRAMES), _frames_fn, two, loop.LoopConfig(
            model_dir=str(tmp_path), train_steps=1, jit_compile=True))


def test_mixed_precision_warns_only_where_bfloat16_is_emulated():
    from tfvidgan.training.loop import mixed_precision_warning

    warning = mixed_precision_warning(["CPU"], [])
    assert warning and "--mixed_precision" in warning and "SLOWER" in warning
    assert mixed_precision_warning(["CPU"], ["avx512_bf16"]) is None
    assert mixed_precision_warning(["CPU"], ["amx_bf16", "amx_tile"]) is None
    assert mixed_precision_warning(["CPU", "GPU"], []) is None
    assert mixed_precision_warning(["CPU"], ["amx_tile"])  # tiles without bfloat16 arithmetic do not count
