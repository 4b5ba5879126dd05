"""`--init_seed`: a task's initial weights are a function of its config, and seeding them touches nothing else."""
import random

import numpy as np
import pytest
from conftest import tiny_frames_config, tiny_frames_export, tiny_video_config, train_tiny_video

from tfvidgan.training.frames_task import FramesGanTask
from tfvidgan.training.init_seed import seeded_initializers
from tfvidgan.training.reconstruction_task import ReconstructionConfig, ReconstructionTask
from tfvidgan.training.video_task import VideoGanTask


def _weights(task):
    """{path: value} of every variable of the task's models (a video task's loaded frames generator too)."""
    task.build()
    return {v.path: v.numpy() for model in task.checkpoint_objects().values() if hasattr(model, "weights")
            for v in model.weights}


def _created_kernels(task) -> list:
    """Paths of the trainable kernels of the models the task CREATES (drawn by random initializers; not the
    video task's loaded frames generator, nor the fixed projections that follow `projection_seed`)."""
    models = {FramesGanTask: ("generator", "discriminators"), VideoGanTask: ("sequence_generator", "discriminators"),
              ReconstructionTask: ("reconstructor", "discriminator")}[type(task)]
    return [v.path for name in models for v in getattr(task, name).trainable_weights if v.path.endswith("kernel")]


def _same(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_seeding_restores_pythons_random_state():
    random.seed(7)
    expected = [random.random() for _ in range(3)]
    random.seed(7)
    with seeded_initializers(123):
        random.random()
    assert [random.random() for _ in range(3)] == expected


@pytest.fixture(scope="module")
def frames_export(tmp_path_factory):
    return tiny_frames_export(tmp_path_factory.mktemp("init_seed"))


@pytest.mark.parametrize("kind", ["frames", "video", "reconstruction"])
def test_the_same_seed_builds_the_same_weights_and_another_seed_others(kind, frames_export):
    def make(seed):
        if kind == "frames":
            return FramesGanTask(tiny_frames_config(init_seed=seed))
        if kind == "video":
            return VideoGanTask(tiny_video_config(frames_export, init_seed=seed))
        return ReconstructionTask(ReconstructionConfig(num_frames=4, height=8, width=8, base_filters=4, depth=1,
                                                       mask=np.ones((8, 8), np.float32), init_seed=seed,
                                                       adversarial_weight=0.1))

    task = make(0)
    first = _weights(task)
    random.random()  # whatever the process drew before does not matter
    assert _same(_weights(make(0)), first)
    other = _weights(make(1))
    assert other.keys() == first.keys()
    kernels = _created_kernels(task)
    assert len(kernels) >= 3 and all(not np.array_equal(first[k], other[k]) for k in kernels), kernels


def test_two_runs_of_the_same_flags_train_the_same_weights(frames_export, tmp_path):
    config = tiny_video_config(frames_export, init_seed=3)
    runs = [train_tiny_video(config, tmp_path / name, 3)[0] for name in ("a", "b")]
    a, b = ({v.path: v.numpy() for v in task.sequence_generator.weights + task.discriminators.weights}
            for task in runs)
    assert a.keys() == b.keys()
    np.testing.assert_allclose(np.concatenate([a[k].ravel() for k in a]),
                               np.concatenate([b[k].ravel() for k in a]), rtol=0, atol=1e-5)
