"""`--refine_discriminators_of`: keep training an export's discriminators against its frozen generator
(DRS's KeepTraining(D)); the new export carries the same generator with the refined discriminators."""
import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf
from conftest import random_frames_dataset, tiny_frames_config

from tfvidgan.errors import ConfigError
from tfvidgan.export import load_frame_discriminators, load_frames_generator, read_description
from tfvidgan.training import loop
from tfvidgan.training.adversarial import AdversarialConfig
from tfvidgan.training.frames_task import DiscriminatorRefinementTask, FramesGanTask, make_frames_task
from tfvidgan.training.optimizers import OptimizerConfig

CONFIG = tiny_frames_config(ema_beta=0.9, adversarial=AdversarialConfig(joint_batch=True, r1_weight=0.5))


def _run(task, model_dir, steps):
    loop.run_training(task, random_frames_dataset, tf.distribute.get_strategy(), loop.LoopConfig(
        model_dir=str(model_dir), train_steps=steps, log_every=1, sample_every=100, checkpoint_every=2))


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A frames export (EMA weights, its raw weights and its discriminators) after 2 GAN steps."""
    directory = tmp_path_factory.mktemp("gan")
    _run(FramesGanTask(CONFIG), directory, 2)
    return str(directory / "export")


def _outputs(export_dir, z, weights="default"):
    model, _ = load_frames_generator(export_dir, weights=weights)
    return np.asarray(model(z, training=False))


def test_only_the_discriminators_train_and_the_export_carries_them(source, tmp_path):
    config = dataclasses.replace(CONFIG, refine_discriminators_of=source,
                                 adversarial=AdversarialConfig(joint_batch=True),     # R1 dropped
                                 discriminator_optimizer=OptimizerConfig(name="adam", learning_rate=1e-3))
    task = make_frames_task(config)
    assert isinstance(task, DiscriminatorRefinementTask)
    _run(task, tmp_path, 3)
    refined = str(tmp_path / "export")
    z = tf.random.stateless_normal([5, CONFIG.latent_dim], seed=[1, 2])
    # The sampled (EMA) generator and the raw one are the source's, bit for bit.
    np.testing.assert_array_equal(_outputs(refined, z), _outputs(source, z))
    np.testing.assert_array_equal(_outputs(refined, z, "raw"), _outputs(source, z, "raw"))
    assert not np.array_equal(_outputs(source, z), _outputs(source, z, "raw"))
    _, description = read_description(refined, "frames_generator")
    assert description["weights"] == "ema" and description["discriminators"] == CONFIG.num_discriminators
    # The discriminators moved: every weight of the source ... and the refined ones score differently.
    before, after = load_frame_discriminators(source), load_frame_discriminators(refined)
    frames = _outputs(source, z)
    assert not np.allclose(np.asarray(before(frames, training=False)), np.asarray(after(frames, training=False)))
    changed = [not np.array_equal(np.asarray(a), np.asarray(b))
               for a, b in zip(before.trainable_weights, after.trainable_weights)]
    assert all(changed), changed
    # Resuming continues the same run (checkpointed discriminators and optimizer), to step 5.
    task = make_frames_task(config)
    _run(task, tmp_path, 5)
    assert sorted(int(v) for v in tf.io.gfile.listdir(str(tmp_path / "export"))) == [3, 5]


def test_a_source_of_another_model_is_named(source, tmp_path):
    for field, value, flag in (("latent_dim", 7, "--latent_dim=7 but the export has 6"),
                               ("num_discriminators", 5, "--num_discriminators=5 but the export has 3")):
        task = make_frames_task(dataclasses.replace(CONFIG, refine_discriminators_of=source, **{field: value}))
        with pytest.raises(ConfigError, match=f"--refine_discriminators_of=.*{flag}"):
            task.build()
    task = make_frames_task(dataclasses.replace(CONFIG, refine_discriminators_of=str(tmp_path / "nothing")))
    with pytest.raises(ConfigError, match="--refine_discriminators_of"):
        task.build()


def test_the_evaluation_flags_must_match_the_mode(tmp_path):
    from tfvidgan.train_frames import _quality_probe

    def values(acceptance):
        return SimpleNamespace(eval_every=10, eval_samples=8, encoder_cache=str(tmp_path), eval_long_frames=0,
                               eval_rejection_acceptance=acceptance, best_metric="")
    with pytest.raises(ConfigError, match="--eval_rejection_acceptance=0.1 needs --refine_discriminators_of"):
        _quality_probe(values(0.1), str(tmp_path), CONFIG)
    refining = dataclasses.replace(CONFIG, refine_discriminators_of="somewhere")
    with pytest.raises(ConfigError, match="--refine_discriminators_of run .* needs an acceptance in"):
        _quality_probe(values(0.0), str(tmp_path), refining)
    assert _quality_probe(values(0.1), str(tmp_path), refining).config.rejection_acceptance == 0.1
    with pytest.raises(ConfigError, match="--eval_rejection_acceptance must be in"):
        _quality_probe(values(1.5), str(tmp_path), refining)
