"""`tfvidgan.export` owns every export kind: descriptions written and read back, wrong kinds named."""
import os

import pytest

from tfvidgan.errors import ConfigError, ExportKindError
from tfvidgan.export import (
    DESCRIPTION_FILE,
    FRAMES_GENERATOR,
    VIDEO_GENERATOR,
    load_frames_generator,
    read_description,
    write_description,
)


def _fake_export(base, description=None, version=1):
    """A version directory with an (empty) saved_model.pb and, optionally, a description."""
    directory = os.path.join(base, str(version))
    os.makedirs(directory)
    open(os.path.join(directory, "saved_model.pb"), "wb").close()
    if description is not None:
        write_description(directory, description)
    return directory


def test_description_round_trip_reads_the_newest_version(tmp_path):
    _fake_export(str(tmp_path), {"kind": VIDEO_GENERATOR, "latent_dim": 3}, version=1)
    newest = _fake_export(str(tmp_path), {"kind": VIDEO_GENERATOR, "latent_dim": 5}, version=2)
    directory, description = read_description(str(tmp_path), VIDEO_GENERATOR)
    assert directory == newest
    assert description == {"kind": VIDEO_GENERATOR, "latent_dim": 5}
    assert os.path.isfile(os.path.join(newest, DESCRIPTION_FILE))


def test_wrong_kind_is_a_named_error(tmp_path):
    _fake_export(str(tmp_path), {"kind": FRAMES_GENERATOR, "latent_dim": 3})
    with pytest.raises(ExportKindError, match=r"--export_dir=.*describes a 'frames_generator', not a video_generator"):
        read_description(str(tmp_path), VIDEO_GENERATOR, "export_dir")
    # The loader of frames generators names the flag it is given, and the error is a ConfigError.
    video = tmp_path / "video"
    _fake_export(str(video), {"kind": VIDEO_GENERATOR})
    with pytest.raises(ConfigError, match=r"--export_dir=.*video.*not a frames_generator"):
        load_frames_generator(str(video), flag="export_dir")


def test_missing_export_or_description_names_the_flag_and_path(tmp_path):
    with pytest.raises(ExportKindError, match=r"--frames_generator=.*empty.*is not a frames-generator export"):
        read_description(str(tmp_path / "empty"), FRAMES_GENERATOR, "frames_generator")
    _fake_export(str(tmp_path / "bare"))
    with pytest.raises(ExportKindError, match=r"--frames_generator=.*bare.*missing assets.extra/tfvidgan.json"):
        read_description(str(tmp_path / "bare"), FRAMES_GENERATOR, "frames_generator")


def test_write_description_refuses_an_unknown_kind(tmp_path):
    with pytest.raises(ConfigError, match=r"kind 'mystery' is not one of \('frames_generator', 'video_generator'\)"):
        write_description(str(tmp_path), {"kind": "mystery"})


def test_a_loaded_signature_is_differentiable_after_the_loader_returns(tmp_path):
    """`load_signature` keeps the SavedModel alive: the signature's variables are weak references, and a
    gradient through it (inverting a generator) needs them after the loaded object would have been freed."""
    import gc

    import tensorflow as tf

    from tfvidgan.export import load_signature

    class Scale(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable([2.0, -3.0])

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])
        def __call__(self, z):
            return {"frames": z * self.w}

    module = Scale()
    tf.saved_model.save(module, str(tmp_path / "1"), signatures={"generate": module.__call__})
    signature = load_signature(str(tmp_path), "generate", inputs={"z"})
    gc.collect()
    z = tf.Variable([[1.0, 1.0]])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(signature(z=z)["frames"])
    assert tape.gradient(loss, z).numpy().tolist() == [[2.0, -3.0]]
