"""A video GAN without per-step noise (`step_noise_dim=0`): it trains, its export's signatures take the empty
`[N, T, 0]` step noise, and a clip is a deterministic function of its clip noise."""
import numpy as np
import tensorflow as tf
from conftest import tiny_frames_export, tiny_video_config, train_tiny_video

from tfvidgan.export import VIDEO_GENERATOR, read_description


def test_a_run_without_step_noise_trains_exports_and_samples(tmp_path):
    task, result = train_tiny_video(tiny_video_config(tiny_frames_export(tmp_path), step_noise_dim=0, bidirectional=False),
                          tmp_path / "run", 2)
    assert result.final_step == 2 and all(np.all(np.isfinite(v)) for v in result.last_metrics.values())
    directory, description = read_description(str(tmp_path / "run" / "export"), VIDEO_GENERATOR)
    assert description["step_noise_dim"] == 0
    exported = tf.saved_model.load(directory)
    noise = tf.random.stateless_normal([2, 4], seed=[1, 2])
    short = exported.signatures["generate"](noise=noise, step_noise=tf.zeros([2, 5, 0]))
    long = exported.signatures["generate"](noise=noise, step_noise=tf.zeros([2, 9, 0]))
    assert short["videos"].shape == (2, 5, 32, 32, 1)
    np.testing.assert_allclose(long["latents"][:, :5], short["latents"], atol=1e-5)   # causal, no noise
    sampled = exported.signatures["sample"](num_samples=tf.constant(2), num_frames=tf.constant(5), seed=tf.constant(3))
    clips, _ = task.sample(2, 5, seed=3)
    np.testing.assert_allclose(sampled["videos"], clips, atol=1e-5)
