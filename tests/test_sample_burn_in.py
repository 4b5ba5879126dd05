"""`--sample_burn_in_steps`: a burn-in for sampling only, on the trained weights, changeable on a resume."""
import json
import os

import numpy as np
import tensorflow as tf
from conftest import tiny_frames_export, tiny_video_config, train_tiny_video

from tfvidgan.export import DESCRIPTION_FILE, existing_versions
from tfvidgan.models.sequence_generator import sample_sequence_noise


def test_a_finished_run_resumed_with_a_sampling_burn_in_is_exported_again(tmp_path):
    frames = tiny_frames_export(tmp_path)
    model_dir = tmp_path / "run"
    config = tiny_video_config(frames, bidirectional=False)
    first, result = train_tiny_video(config, model_dir, steps=1)
    trained = [v.numpy() for v in first.sequence_generator.weights]
    assert existing_versions(str(model_dir / "export")) == [1]

    w = 3
    task, again = train_tiny_video(tiny_video_config(frames, bidirectional=False, sample_burn_in_steps=w), model_dir,
                                   steps=1)
    assert again.final_step == 1 and again.start_step == 1  # no training step ran
    assert again.export_path == str(model_dir / "export" / "2")
    for before, variable in zip(trained, task.sequence_generator.weights):
        np.testing.assert_array_equal(before, variable.numpy())
    assert [id(v) for v in task.sampling_sequence_generator.weights] == [id(v) for v in task.sequence_generator.weights]
    with open(os.path.join(again.export_path, DESCRIPTION_FILE)) as f:
        description = json.load(f)
    assert description["sample_burn_in_steps"] == w and description["burn_in_steps"] == 0
    # The new version emits the trained model's steps w..w+T-1 on step noise led by w zero steps.
    x = sample_sequence_noise(2, 5, 7, config.noise_dim, config.step_noise_dim)
    served = tf.saved_model.load(again.export_path).signatures["generate"](**x)["latents"].numpy()
    padded = {"noise": x["noise"], "step_noise": tf.pad(x["step_noise"], [[0, 0], [w, 0], [0, 0]])}
    np.testing.assert_allclose(served, task.sequence_generator(padded).numpy()[:, w:], atol=1e-5)
    old = tf.saved_model.load(str(model_dir / "export" / "1")).signatures["generate"](**x)["latents"].numpy()
    np.testing.assert_allclose(old, task.sequence_generator(x).numpy(), atol=1e-5)
    assert np.abs(served - old).max() > 1e-3

    assert description["step"] == 1  # the step its weights are from, not its version number
    # Started again with the same settings: that version is current, nothing is written. Trained on to step 2,
    # version 2 (the re-export of step 1) is not mistaken for step 2's export.
    _, same = train_tiny_video(tiny_video_config(frames, bidirectional=False, sample_burn_in_steps=w), model_dir,
                               steps=1)
    assert same.export_path == again.export_path and existing_versions(str(model_dir / "export")) == [1, 2]
    _, on = train_tiny_video(tiny_video_config(frames, bidirectional=False, sample_burn_in_steps=w), model_dir,
                             steps=2)
    assert on.final_step == 2 and on.export_path == str(model_dir / "export" / "3")
    with open(os.path.join(on.export_path, DESCRIPTION_FILE)) as f:
        assert json.load(f)["step"] == 2


def test_with_ema_the_sampler_runs_the_averaged_weights(tmp_path):
    from tfvidgan.training.video_task import VideoGanTask
    task = VideoGanTask(tiny_video_config(tiny_frames_export(tmp_path), ema_beta=0.9, sample_burn_in_steps=2))
    task.build()
    shadow = task.sequence_ema.shadow
    assert [id(v) for v in task.sampling_sequence_generator.weights] == [id(v) for v in shadow.weights]
    assert not {id(v) for v in shadow.weights} & {id(v) for v in task.sequence_generator.weights}
