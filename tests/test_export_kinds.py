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
