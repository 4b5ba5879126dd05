"""In-training evaluation of the CUP reconstructor (`--eval_every`, `ReconstructionQualityProbe`): PSNR/SSIM
on held-out pairs with the data's own mask, the same numbers as `evaluate reconstruction`, and
`--best_metric=psnr_db --best_metric_mode=max` keeping the best step."""
import json
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf

from tfvidgan.cup.operator import CupOperator
from tfvidgan.cup.synthetic import moving_discs
from tfvidgan.data.cup_simulation import CupPairsConfig, generate_cup_pairs
from tfvidgan.errors import ConfigError
from tfvidgan.metrics.image_quality import psnr_per_frame
from tfvidgan.metrics.quality_probe import ProbeConfig, ReconstructionQualityProbe
from tfvidgan.metrics.reconstruction_report import read_pairs
from tfvidgan.training import loop
from tfvidgan.training.optimizers import OptimizerConfig
from tfvidgan.training.reconstruction_task import ReconstructionConfig, ReconstructionTask

T, H, W = 4, 16, 16


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    root = tmp_path_factory.mktemp("recon_eval")
    scenes = moving_discs(24, 6, H, W, seed=3)
    config = CupPairsConfig(scenes="synthetic moving discs", num_frames=T, mask_seed=0, photons=2000.0,
                            read_noise=0.01, noise_seed=1, shards=2, batch_size=8)
    metadata = generate_cup_pairs(config, str(root / "pairs"), scenes=[{"frames": 2.0 * s - 1.0} for s in scenes])
    return str(root / "pairs"), metadata


def test_the_probe_scores_held_out_pairs_with_the_datas_mask(pairs):
    data, metadata = pairs
    probe = ReconstructionQualityProbe(ProbeConfig(data=data, num_samples=10), (T, H, W, 1))
    sensed, scenes, _ = read_pairs(data, 10)
    seen_masks = []

    def noisy_truth(s, mask):  # a near-perfect reconstructor (it knows the scenes by their sensed images)
        seen_masks.append(mask)
        index = [int(np.argmin(np.abs(sensed - x).sum(axis=(1, 2, 3)))) for x in s]
        return np.clip(scenes[index] + 0.01, 0, 1)

    def back_projection(s, mask):
        return np.clip(CupOperator(mask, T).adjoint(s).numpy(), 0, 1)

    good, bad = probe(noisy_truth), probe(back_projection)
    assert set(good) == set(probe.names()) == {"psnr_db", "ssim", "mse"}
    assert good["psnr_db"] == pytest.approx(float(psnr_per_frame(np.clip(scenes + 0.01, 0, 1), scenes).numpy().mean()),
                                            rel=1e-5)
    assert good["psnr_db"] > bad["psnr_db"] + 10 and good["ssim"] > bad["ssim"] and good["mse"] < bad["mse"]
    np.testing.assert_array_equal(seen_masks[0], metadata.mask)


def test_bad_evaluation_data_is_named_before_training(pairs):
    data, _ = pairs
    with pytest.raises(ConfigError, match=r"--eval_samples=30 exceeds the 24 pairs of --eval_data="):
        ReconstructionQualityProbe(ProbeConfig(data=data, num_samples=30), (T, H, W, 1))
    with pytest.raises(ConfigError, match=r"--eval_data=.* has scenes \[4, 16, 16, 1\] .* reconstructs \[8, 16, 16, 1\]"):
        ReconstructionQualityProbe(ProbeConfig(data=data, num_samples=10), (8, H, W, 1))
    from tfvidgan import train_reconstructor
    values = SimpleNamespace(eval_every=10, eval_data="", data=data, model_dir="unused")
    with pytest.raises(ConfigError, match="--eval_every measures PSNR/SSIM on held-out pairs: give --eval_data"):
        train_reconstructor._quality_probe(values, None)


def test_eval_every_writes_psnr_and_best_metric_keeps_the_best_step(pairs, tmp_path):
    data, metadata = pairs
    sensed, scenes, _ = read_pairs(data, 24)
    config = ReconstructionConfig(num_frames=T, height=H, width=W, mask=metadata.mask, base_filters=8, depth=1,
                                  optimizer=OptimizerConfig(name="adam", learning_rate=3e-3, beta_1=0.9))
    probe = ReconstructionQualityProbe(ProbeConfig(data=data, num_samples=8), (T, H, W, 1))
    task = ReconstructionTask(config, preview=(sensed[:2], scenes[:2]), quality_probe=probe)

    def dataset_fn(context, start_step):
        return tf.data.Dataset.from_tensor_slices((sensed, scenes)).repeat().batch(8, drop_remainder=True)
    loop.run_training(task, dataset_fn, tf.distribute.get_strategy(), loop.LoopConfig(
        model_dir=str(tmp_path), train_steps=30, log_every=10, sample_every=100, checkpoint_every=10, eval_every=10,
        best_metric="psnr_db", best_metric_mode="max", export=False))
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [10, 20, 30]
    best = max(lines, key=lambda r: r["psnr_db"])
    record = json.loads((tmp_path / "best.json").read_text())
    assert (record["step"], record["value"]) == (best["step"], best["psnr_db"])
    assert (tmp_path / "best_export" / str(best["step"]) / "saved_model.pb").exists()
    assert lines[-1]["psnr_db"] > lines[0]["psnr_db"]        # it learns (3e-3 Adam, 30 steps)
