"""Bad input end to end: every case fails with a message naming the file or flag, and nothing is lost.

Command-line cases run the real entry points (`python -m tfvidgan.train_frames`, `python -m
tfvidgan.sample`) as subprocesses; `tfvidgan.cli` prints a user error as one line on stderr (the traceback only
with `--verbose`) and exits with code 1; flag-parsing errors are absl's one line.
They are started together (each spends ~5 s importing TensorFlow) after one short training run that
provides checkpoints and an export.

Served exports: the frames SavedModel is called here with latents of the wrong size; the CUP
reconstructor's TF Serving export rejecting a wrongly shaped `sensed_image` is already covered by
`tests/test_reconstruction_training.py::test_serving_export_has_named_io_and_works_with_saved_model_cli`.
Record-level corruption through the library API is covered by `tests/test_data_bad_input.py`.
"""
import hashlib
import os
import shutil
import subprocess
import sys

import pytest
import tensorflow as tf

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 300
LATENT = 8
TINY = ["--num_discriminators=2", "--discriminator_filters=4", "--generator_filters=8", f"--latent_dim={LATENT}",
        "--batch_size=8", "--num_sample_images=4", "--log_every=1", "--checkpoint_every=1"]
SHARD1 = "scenes-00001-of-00002.tfrecord"


def _env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": REPO}


def _module_cmd(module, *args):
    return [sys.executable, "-m", module, *args]


def _start_all(commands: dict) -> dict:
    """Starts {name: argv} concurrently; returns {name: Popen}."""
    return {name: subprocess.Popen(argv, cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True) for name, argv in commands.items()}


def _collect(procs: dict) -> dict:
    """Waits for {name: Popen}; returns {name: (exit code, stderr + stdout)}; kills leftovers on failure."""
    results = {}
    try:
        for name, proc in procs.items():
            out, _ = proc.communicate(timeout=TIMEOUT)
            results[name] = (proc.returncode, out)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results


def _run_all(commands: dict) -> dict:
    return _collect(_start_all(commands))


def _snapshot(directory):
    """{relative path: sha256} of every file under `directory`."""
    out = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from tfvidgan.data.bouncing_balls import BouncingBallsConfig, generate_dataset
    root = tmp_path_factory.mktemp("bad_e2e")
    data = str(root / "data")
    generate_dataset(BouncingBallsConfig(num_scenes=16, num_frames=8, size=32, shards=2, seed=5), data,
                     workers=1, show_progress=False)
    run_data = str(root / "run_data")  # the training run's own copy, corrupted later
    shutil.copytree(data, run_data)
    model_dir = str(root / "run")
    run_flags = [f"--data={run_data}", f"--model_dir={model_dir}", "--train_steps=2", *TINY]
    fresh = lambda name: f"--model_dir={root / name}"  # noqa: E731
    a_file = root / "a_file"
    a_file.write_text("not a directory")
    # The bad command lines that need no earlier run go alongside the training run.
    results = _run_all({
        "train": _module_cmd("tfvidgan.train_frames", *run_flags),
        "image_size": _module_cmd("tfvidgan.train_frames", f"--data={data}", fresh("run_64"), "--image_size=64",
                                  *TINY),
        "unknown_flag": _module_cmd("tfvidgan.train_frames", f"--data={data}", fresh("run_flag"),
                                    "--num_discrimnators=4"),
        "missing_flagfile": _module_cmd("tfvidgan.train_frames", "--flagfile=/nonexistent.cfg", fresh("run_ff")),
        "sample_missing": _module_cmd("tfvidgan.sample", "frames", f"--export_dir={root / 'no_such_export'}",
                                      f"--output={root / 'missing.png'}"),
        "sample_images_zero": _module_cmd("tfvidgan.train_frames", f"--data={data}", fresh("run_imgs"),
                                          "--num_sample_images=0"),
        "gman_nan": _module_cmd("tfvidgan.train_frames", f"--data={data}", fresh("run_gman"), "--gman_alpha=nan"),
        "model_dir_file": _module_cmd("tfvidgan.train_frames", f"--data={data}", f"--model_dir={a_file}"),
        "missing_data_verbose": _module_cmd("tfvidgan.train_frames", f"--data={root / 'no_such_data'}",
                                            fresh("run_nodata_v"), "--verbose"),
    })
    code, out = results.pop("train")
    assert code == 0, out[-3000:]
    return {"root": root, "data": data, "run_data": run_data, "model_dir": model_dir, "run_flags": run_flags,
            "results": results}


@pytest.fixture(scope="module")
def video_export(setup):
    """A video-generator export (untrained, tiny) over the run's frames generator, written in-process."""
    from tfvidgan.export import export_video_generator, load_frames_generator
    from tfvidgan.models.sequence_generator import build_sequence_generator
    frames_generator, description = load_frames_generator(os.path.join(setup["model_dir"], "export"))
    sequence_generator = build_sequence_generator(LATENT, noise_dim=4, step_noise_dim=2, hidden_units=8,
                                                  num_layers=1, bidirectional=False)
    directory = str(setup["root"] / "video_export")
    export_video_generator(sequence_generator, frames_generator,
                           {"kind": "video_generator", "latent_dim": LATENT, "noise_dim": 4, "step_noise_dim": 2,
                            "image_size": 32, "channels": 1}, os.path.join(directory, "1"))
    return directory


@pytest.fixture(scope="module")
def failures(setup, video_export):
    """Corrupts a shard of the run's data, then restarts the run and samples from the video export at once."""
    root, model_dir = setup["root"], setup["model_dir"]
    before = {"checkpoints": _snapshot(os.path.join(model_dir, "checkpoints")),
              "export": _snapshot(os.path.join(model_dir, "export"))}
    shard = os.path.join(setup["run_data"], SHARD1)
    with open(shard, "r+b") as f:  # one flipped byte inside the first record's payload: its CRC fails
        f.seek(12 + 200)
        byte = f.read(1)
        f.seek(12 + 200)
        f.write(bytes([byte[0] ^ 0xFF]))
    restart_flags = [f for f in setup["run_flags"] if not f.startswith("--train_steps")] + ["--train_steps=4"]
    results = {**setup["results"], **_run_all({
        "corrupt_restart": _module_cmd("tfvidgan.train_frames", *restart_flags),
        "sample_video": _module_cmd("tfvidgan.sample", "frames", f"--export_dir={video_export}",
                                    f"--output={root / 'video.png'}"),
    })}
    after = {"checkpoints": _snapshot(os.path.join(model_dir, "checkpoints")),
             "export": _snapshot(os.path.join(model_dir, "export"))}
    return {"results": results, "before": before, "after": after, "shard": shard}


def _last_line(out):
    return out.strip().splitlines()[-1]


def test_shard_corrupted_between_runs_names_the_shard_and_keeps_the_checkpoints(failures, setup):
    code, out = failures["results"]["corrupt_restart"]
    assert code != 0
    error = _last_line(out)
    assert error.startswith("tfvidgan.errors.DatasetError:"), out[-3000:]
    assert "Traceback" not in out  # one line, not a traceback
    assert failures["shard"] in error
    assert "--skip_bad_records" in error
    assert "Resumed from" in out  # it got as far as restoring, then refused to train on bad data
    assert "step 3/4" not in out
    assert failures["before"]["checkpoints"] and failures["after"] == failures["before"]
    assert tf.train.latest_checkpoint(os.path.join(setup["model_dir"], "checkpoints")).endswith("ckpt-2")


def test_invalid_numbers_are_rejected_at_flag_parsing_naming_the_flag(failures, setup):
    for name, flag in (("sample_images_zero", "--num_sample_images=0"), ("gman_nan", "--gman_alpha=nan")):
        code, out = failures["results"][name]
        assert code != 0
        assert f"FATAL Flags parsing error: flag {flag}:" in out, out[-3000:]
    assert not os.path.exists(setup["root"] / "run_imgs") and not os.path.exists(setup["root"] / "run_gman")


def test_model_dir_that_is_a_file_is_one_line_naming_the_flag(failures, setup):
    code, out = failures["results"]["model_dir_file"]
    assert code == 1 and "Traceback" not in out
    assert _last_line(out) == (f"tfvidgan.errors.ConfigError: --model_dir={str(setup['root'] / 'a_file')!r} is a "
                               f"file, not a directory: pick a directory for the run")


def test_missing_data_names_the_flag_and_the_path_and_verbose_adds_the_traceback(failures, setup):
    expected = f"tfvidgan.errors.ConfigError: --data={str(setup['root'] / 'no_such_data')!r} does not exist"
    code, out = failures["results"]["missing_data_verbose"]
    assert code == 1 and "Traceback (most recent call last)" in out  # without --verbose: see the test above
    assert _last_line(out) == expected
    assert not os.path.exists(setup["root"] / "run_nodata_v")


def test_image_size_not_matching_the_dataset_names_the_flag_before_training(failures, setup):
    code, out = failures["results"]["image_size"]
    assert code != 0
    error = _last_line(out)
    assert error.startswith("tfvidgan.errors.ConfigError: --image_size=64 does not match"), out[-3000:]
    assert "(32×32)" in error
    assert not os.path.exists(setup["root"] / "run_64")  # no run directory, so no checkpoints


def test_unknown_flag_is_named(failures, setup):
    code, out = failures["results"]["unknown_flag"]
    assert code != 0
    assert "FATAL Flags parsing error: Unknown command line flag 'num_discrimnators'" in out
    assert not os.path.exists(setup["root"] / "run_flag")


def test_missing_flagfile_is_named(failures, setup):
    code, out = failures["results"]["missing_flagfile"]
    assert code != 0
    assert "Unable to open flagfile" in out and "/nonexistent.cfg" in out
    assert not os.path.exists(setup["root"] / "run_ff")


def test_sample_from_a_missing_export_names_the_directory(failures, setup):
    code, out = failures["results"]["sample_missing"]
    assert code != 0
    missing = setup["root"] / "no_such_export"
    error = _last_line(out)
    assert error.startswith("tfvidgan.errors.TfvidganError: no SavedModel in"), out[-3000:]
    assert repr(str(missing)) in error
    assert not os.path.exists(setup["root"] / "missing.png")


def test_sample_frames_from_a_video_export_fails(failures, setup):
    code, out = failures["results"]["sample_video"]
    assert code != 0
    assert not os.path.exists(setup["root"] / "video.png")


def test_sample_frames_from_a_video_export_names_the_flag(failures):
    _, out = failures["results"]["sample_video"]
    assert "--export_dir" in _last_line(out)


def _frames_export(setup):
    loaded = tf.saved_model.load(os.path.join(setup["model_dir"], "export", "2"))
    return loaded.signatures["generate"]


def test_frames_export_rejects_latents_of_the_wrong_size(setup):
    generate = _frames_export(setup)
    ok = generate(z=tf.zeros([3, LATENT]))["frames"]
    assert ok.shape == (3, 32, 32, 1)
    for z in (tf.zeros([3, LATENT + 1]), tf.zeros([LATENT])):
        with pytest.raises(tf.errors.InvalidArgumentError):
            generate(z=z)


def test_frames_export_wrong_latent_size_error_names_z_and_its_size(setup):
    generate = _frames_export(setup)
    with pytest.raises(tf.errors.InvalidArgumentError, match=rf"\bz\b.*\b{LATENT}\b"):
        generate(z=tf.zeros([3, LATENT + 1]))


def test_corrupt_shard_is_skipped_when_asked_and_training_continues(failures, setup):
    """The documented way out: the same command with --skip_bad_records resumes and finishes."""
    restart = [f for f in setup["run_flags"] if not f.startswith("--train_steps")]
    code, out = _run_all({"skip": _module_cmd("tfvidgan.train_frames", *restart, "--train_steps=3",
                                              "--skip_bad_records")})["skip"]
    assert code == 0, out[-3000:]
    assert "Skipping 1 bad record(s)" in out and SHARD1 in out
    assert tf.train.latest_checkpoint(os.path.join(setup["model_dir"], "checkpoints")).endswith("ckpt-3")
    assert sorted(os.listdir(os.path.join(setup["model_dir"], "export"))) == ["2", "3"]
