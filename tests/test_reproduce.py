"""`python -m tfvidgan.reproduce` on a tiny profile: every stage runs and writes its marker and the report; an
interrupted training stage resumes from its checkpoint; a second invocation skips every stage; a changed stage
reruns (a trainer resumes) and what depends on it follows only if its output changed; a missing input stage is
named at once.

The pipeline runs in this process (the trainers are subprocesses, about 15-25 s each with TensorFlow's import:
four trainer runs dominate the time); the profiles of the repository are parsed and planned, not run.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from absl import flags
from PIL import Image

from tfvidgan import reproduce
from tfvidgan.errors import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRAMES_STEPS = 60  # long enough to be interrupted after the first checkpoint (step 2)

TINY_FRAMES = """# tiny frames model
--latent_dim=8
--generator_filters=8
--num_discriminators=2
--discriminator_filters=4
--batch_size=8
--log_every=1
--sample_every=1000
--checkpoint_every=2
--num_sample_images=4
--model_dir=ignored_by_reproduce
"""
TINY_VIDEO = """--clip_length=4
--sample_length=6
--noise_dim=4
--step_noise_dim=2
--hidden_units=8
--num_layers=1
--num_discriminators=2
--discriminator_filters=2
--batch_size=4
--train_steps=2
--log_every=1
--sample_every=1000
--checkpoint_every=2
--num_sample_videos=2
"""
TINY_PROFILE = """--profile=tiny
--num_scenes=40
--num_frames=12
--data_shards=2
--swap_num_scenes=40
--frames_flagfile={dir}/frames_tiny.cfg
--frames_flag=--train_steps={steps}
--frames_1ball_flag=--train_steps=2
--video_flagfile={dir}/video_tiny.cfg
--eval_samples=8
--eval_num_frames=6
--eval_long_frames=12
--eval_encoder_samples=16
--eval_encoder_steps=2
--figure_grid_samples=4
--figure_videos=2
--figure_video_frames=8
--progress_seconds=0
"""


def _profile(tmp, steps=FRAMES_STEPS):
    (tmp / "frames_tiny.cfg").write_text(TINY_FRAMES)
    (tmp / "video_tiny.cfg").write_text(TINY_VIDEO)
    path = tmp / f"tiny_{steps}.cfg"
    path.write_text(TINY_PROFILE.format(dir=tmp, steps=steps))
    return str(path)


def _config(*args):
    """The `ReproduceConfig` the command line would build from these flags."""
    values = flags.FlagValues()
    reproduce.define_flags(values)
    values(["reproduce", *args])
    return reproduce.config_from_flags(values)


def _run(config):
    lines = []
    decisions = reproduce.run_pipeline(config, write=lines.append)
    return {d.stage: d.action for d in decisions}, "\n".join(lines)


def _marker(workdir, stage):
    with open(os.path.join(workdir, stage, "DONE.json")) as f:
        return json.load(f)


def _kill_trainer_after_first_checkpoint(stage_dir, done):
    """SIGKILLs the trainer (pid from its run lock) once its first checkpoint exists: a crash mid-training."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not done.is_set():
        if os.path.exists(os.path.join(stage_dir, "checkpoints", "checkpoint")):
            with open(os.path.join(stage_dir, ".run.lock")) as f:
                os.kill(json.load(f)["pid"], signal.SIGKILL)
            return
        time.sleep(0.01)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reproduce")
    workdir = str(tmp / "run")
    profile = _profile(tmp)
    config = _config(f"--flagfile={profile}", f"--workdir={workdir}")

    # 1. The frames trainer dies after its first checkpoint: no marker, the error names the stage.
    done = threading.Event()
    killer = threading.Thread(target=_kill_trainer_after_first_checkpoint,
                              args=(os.path.join(workdir, "frames"), done), daemon=True)
    killer.start()
    try:
        with pytest.raises(reproduce.StageFailedError, match="stage 'frames'") as failed:
            _run(config)
    finally:
        done.set()
        killer.join()
    interrupted = {"error": str(failed.value), "data_marker": _marker(workdir, "data"),
                   "frames_marker_exists": os.path.exists(os.path.join(workdir, "frames", "DONE.json"))}

    # 2. The same command: data skipped, frames resumed, everything else run.
    first_actions, first_log = _run(config)
    markers = {stage: _marker(workdir, stage) for stage in reproduce.STAGES}
    mtimes = {stage: os.path.getmtime(os.path.join(workdir, stage, "DONE.json")) for stage in reproduce.STAGES}

    # 3. Once more: everything skipped.
    second_actions, second_log = _run(config)
    return dict(tmp=tmp, workdir=workdir, config=config, interrupted=interrupted, first_actions=first_actions,
                first_log=first_log, markers=markers, mtimes=mtimes, second_actions=second_actions,
                second_log=second_log)


@pytest.mark.slow  # the tiny pipeline: four trainer processes, ~90 s (pytest -m slow tests/test_reproduce.py)
def test_an_interrupted_training_stage_resumes_from_its_checkpoint(pipeline):
    interrupted = pipeline["interrupted"]
    assert not interrupted["frames_marker_exists"]
    assert "train.log" in interrupted["error"]
    assert pipeline["first_actions"]["data"] == "skip"
    assert pipeline["first_actions"]["frames"] == "resume"
    frames = pipeline["markers"]["frames"]
    assert 2 <= frames["start_step"] < FRAMES_STEPS, frames  # from the checkpoint, not from 0
    assert frames["step"] == FRAMES_STEPS
    assert f"frames: resumed from its checkpoint at step {frames['start_step']}" in pipeline["first_log"]
    with open(os.path.join(pipeline["workdir"], "frames", "attempts.jsonl")) as f:
        attempts = [json.loads(line) for line in f]
    assert [a["outcome"].split(" ")[0] for a in attempts] == ["failed", "done"]
    assert frames["total_wall_seconds"] > frames["wall_seconds"]
    # The data stage finished before the crash and was not redone.
    assert pipeline["markers"]["data"]["id"] == interrupted["data_marker"]["id"]


@pytest.mark.slow  # the tiny pipeline: four trainer processes, ~90 s (pytest -m slow tests/test_reproduce.py)
def test_all_stages_write_markers_outputs_and_the_report(pipeline):
    workdir, markers = pipeline["workdir"], pipeline["markers"]
    assert set(pipeline["first_actions"].values()) <= {"run", "resume", "skip"}
    for stage in reproduce.STAGES:
        assert markers[stage]["wall_seconds"] >= 0 and markers[stage]["config"], stage
        assert set(markers[stage]["inputs"]) == set(reproduce.INPUTS[stage])
    assert markers["video"]["inputs"]["frames"] == markers["frames"]["id"]
    assert markers["frames_1ball"]["step"] == 2 and markers["video"]["step"] == 2
    for stage in ("frames", "frames_1ball", "video"):
        assert os.path.isdir(os.path.join(workdir, stage, "export", str(markers[stage]["step"])))
        assert os.path.isdir(os.path.join(workdir, stage, "summaries"))  # TensorBoard under the workdir
    video_args = markers["video"]["config"]["args"]
    assert "--frames_generator=<workdir>/frames/export" in video_args and "--data=<workdir>/data/bb3" in video_args
    assert "--data=<workdir>/data/bb1" in markers["frames_1ball"]["config"]["args"]

    evaluate = os.path.join(workdir, "evaluate")
    with open(os.path.join(evaluate, "video.json")) as f:
        video = json.load(f)
    with open(os.path.join(evaluate, "video_fg_swap.json")) as f:
        swap = json.load(f)
    assert {"static", "collapsed", "long_video"} <= set(video) and video["long_video"]["num_frames"] == 12
    assert swap["fg_swap"]["expected_balls"] == 1 and swap["settings"]["expected_balls"] == 1

    figures = os.path.join(workdir, "figures")
    for name in ("frames_grid.png", "frames_1ball_grid.png", "video_strips.png", "video_1ball_strips.png",
                 "fg_swap_strips.png", "isomap.png", "videos/video_000.gif", "videos_1ball/video_001.gif"):
        assert os.path.getsize(os.path.join(figures, name)) > 0, name
    # The GIF plays the whole clip: Pillow merges identical consecutive frames (a 2-step model may emit
    # them) into one frame with the summed delay, so the total delay, not the frame count, is the length.
    frames_per_video = np.load(os.path.join(figures, "latents.npy")).shape[1]
    with Image.open(os.path.join(figures, "videos", "video_000.gif")) as gif:
        total_ms = 0
        for index in range(gif.n_frames):
            gif.seek(index)
            total_ms += gif.info["duration"]
    assert total_ms == frames_per_video * max(1, round(100.0 / 8.0)) * 10, total_ms  # write_video_samples: 8 fps
    strips = np.asarray(Image.open(os.path.join(figures, "video_strips.png")))
    assert strips.shape[1] > strips.shape[0]  # 2 rows of 8 frames

    with open(os.path.join(workdir, "report", "results.json")) as f:
        results = json.load(f)
    stages = {s["stage"]: s for s in results["stages"]}
    assert list(stages) == list(reproduce.STAGES)
    assert all(s["done"] and s["wall_seconds"] is not None for s in stages.values())
    assert stages["frames"]["step"] == FRAMES_STEPS
    assert set(results["video"]["rows"]) == {"real", "generated", "latent_interpolation", "independent_latents",
                                             "static", "collapsed"}
    assert set(results["frames"]["rows"]) >= {"real", "generated", "untrained_generator", "collapsed"}
    assert results["fg_swap"]["fg_swap"]["expected_balls"] == 1
    with open(os.path.join(workdir, "report", "results.md")) as f:
        markdown = f.read()
    assert any(n.startswith("events.out.tfevents") for n in os.listdir(os.path.join(workdir, "report", "summaries")))
    for text in ("| frames | 60 ", "| frames_1ball | 2 ", "static (first real frame repeated)", "Machine: ",
                 "collapsed (one real clip repeated)", "Long videos", "FG swap", "](../figures/isomap.png)"):
        assert text in markdown, text


@pytest.mark.slow  # the tiny pipeline: four trainer processes, ~90 s (pytest -m slow tests/test_reproduce.py)
def test_a_second_invocation_skips_every_stage(pipeline):
    assert pipeline["second_actions"] == {stage: "skip" for stage in reproduce.STAGES}
    for stage in reproduce.STAGES:
        assert f"{stage}: skipped" in pipeline["second_log"]
        path = os.path.join(pipeline["workdir"], stage, "DONE.json")
        assert os.path.getmtime(path) == pipeline["mtimes"][stage]
        assert _marker(pipeline["workdir"], stage)["id"] == pipeline["markers"][stage]["id"]


@pytest.mark.slow  # the tiny pipeline: four trainer processes, ~90 s (pytest -m slow tests/test_reproduce.py)
def test_a_changed_stage_reruns_and_its_dependants_follow_only_if_its_output_changed(pipeline):
    workdir = pipeline["workdir"]
    profile = _profile(pipeline["tmp"], steps=FRAMES_STEPS + 20)
    actions, log = _run(_config(f"--flagfile={profile}", f"--workdir={workdir}", "--dry_run"))
    assert actions == {"data": "skip", "frames": "resume", "frames_1ball": "skip", "video": "pending",
                       "evaluate": "pending", "figures": "pending", "report": "pending"}
    assert f"--train_steps {FRAMES_STEPS} → {FRAMES_STEPS + 20}" in log
    assert "dry run: nothing done" in log
    assert _marker(workdir, "frames")["id"] == pipeline["markers"]["frames"]["id"]

    # A change that does not change the export (logging): video reruns (nothing left to train), and the
    # stages that use its export stay valid.
    quiet = ["--video_flag=--log_every=5", f"--flagfile={_profile(pipeline['tmp'])}", f"--workdir={workdir}"]
    actions, log = _run(_config(*quiet, "--stages=video"))
    assert actions == {"video": "resume"}, log
    video = _marker(workdir, "video")
    assert video["step"] == 2 and video["id"] == pipeline["markers"]["video"]["id"]
    actions, _ = _run(_config(*quiet, "--dry_run"))
    assert actions == {stage: "skip" for stage in reproduce.STAGES}

    # The data stage lost its marker after writing its datasets: it reuses them, and nothing else reruns.
    os.remove(os.path.join(workdir, "data", "DONE.json"))
    actions, log = _run(_config(*quiet))
    assert actions == {"data": "run", **{stage: "skip" for stage in reproduce.STAGES[1:]}}
    assert "already there, same generator config" in log
    assert _marker(workdir, "data")["id"] == pipeline["markers"]["data"]["id"]


def test_a_missing_input_stage_is_named_at_once(tmp_path):
    profile = _profile(tmp_path)
    workdir = str(tmp_path / "fresh")
    with pytest.raises(ConfigError, match=r"stage 'video' needs input stage 'data'.*fresh/data/DONE\.json"):
        _run(_config(f"--flagfile={profile}", f"--workdir={workdir}", "--stages=video,evaluate"))
    # On the command line: one line, exit code 1, before any work (no stage directory made).
    proc = subprocess.run([sys.executable, "-m", "tfvidgan.reproduce", f"--flagfile={profile}",
                           f"--workdir={workdir}", "--stages=frames"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"tfvidgan.errors.ConfigError: stage 'frames' needs input stage 'data', which has not completed: no "
        f"{workdir}/data/DONE.json. Add data to --stages (or run --stages=data first)"]
    assert not os.path.exists(os.path.join(workdir, "frames"))


def test_the_repository_profiles_parse_and_plan(tmp_path):
    small = _config(f"--flagfile={REPO}/configs/paper_bb3_small.cfg", f"--workdir={tmp_path / 'small'}",
                    "--dry_run")
    paper = _config(f"--flagfile={REPO}/configs/paper_bb3.cfg", f"--workdir={tmp_path / 'paper'}", "--dry_run")
    for config in (small, paper):
        actions, _ = _run(config)
        assert actions == {stage: "run" for stage in reproduce.STAGES}
    frames = reproduce.trainer_args(paper, "frames")
    video = reproduce.trainer_args(paper, "video")
    assert paper.num_scenes == 50_000 and paper.num_frames == 40 and paper.eval_num_frames == 30
    assert "--num_discriminators=48" in frames and "--num_discriminators=16" in video
    assert "--clip_length=30" in video and "--sample_length=30" in video
    assert small.num_scenes == 5000 and small.eval_samples == 500


def test_bad_profile_values_name_the_flag(tmp_path):
    profile = _profile(tmp_path)
    with pytest.raises(ConfigError, match="--frames_flag='--model_dir=x'.*set by tfvidgan.reproduce"):
        _config(f"--flagfile={profile}", f"--workdir={tmp_path}", "--frames_flag=--model_dir=x")
    with pytest.raises(ConfigError, match="--num_scenes=40: the evaluation needs"):
        _config(f"--flagfile={profile}", f"--workdir={tmp_path}", "--eval_samples=20")
    with pytest.raises(ConfigError, match="--stages=frames,nope: unknown stage"):
        _config(f"--flagfile={profile}", f"--workdir={tmp_path}", "--stages=frames,nope")


def test_a_stage_file_not_yet_written_reads_as_none_and_a_corrupt_one_says_how_to_redo_the_stage(tmp_path):
    assert reproduce.read_stage_file(str(tmp_path / "done.json")) is None
    (tmp_path / "done.json").write_text('{"id": ')  # a marker cut short
    with pytest.raises(ConfigError, match=r"done.json: not a readable JSON file .*; delete it to redo that stage$"):
        reproduce.read_stage_file(str(tmp_path / "done.json"))
