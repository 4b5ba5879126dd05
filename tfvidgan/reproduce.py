r"""Reproduce the paper with one command: data → frames → 1-ball frames → video → evaluation → figures → report.

    python -m tfvidgan.reproduce --flagfile=configs/paper_bb3_small.cfg --workdir=runs/paper_small
    python -m tfvidgan.reproduce --flagfile=configs/paper_bb3.cfg --workdir=runs/paper
    python -m tfvidgan.reproduce --flagfile=... --workdir=... --stages=frames,video   # a subset
    python -m tfvidgan.reproduce --flagfile=... --workdir=... --dry_run               # the plan only

Stages, in order, each in its own directory under `--workdir` with a marker `<stage>/DONE.json` when complete
(`wall_seconds`, `total_wall_seconds` over all attempts, `step`, the stage's `config`, the `id`s of the input
markers it used, and its own `id`: a digest of its output — the datasets' metadata, the export's fingerprint,
the config and inputs of an in-process stage):

| stage | input stages | what | how |
| --- | --- | --- | --- |
| `data` | – | 3-ball dataset `data/bb3`, 1-ball dataset `data/bb1` (for the FG swap) | in process (`generate_dataset`) |
| `frames` | data | frames generator on `data/bb3` | `python -m tfvidgan.train_frames` |
| `frames_1ball` | data | frames generator on `data/bb1`, same flags (same latent size) | `python -m tfvidgan.train_frames` |
| `video` | data, frames | sequence generator over the frozen `frames` export | `python -m tfvidgan.train_video` |
| `evaluate` | data, frames, frames_1ball, video | frames reports (3-ball, 1-ball), video report with the long-video section and its Isomap, the FG swap's video report against real 1-ball clips | in process (`evaluate_frames`, `evaluate_video`) |
| `figures` | frames, frames_1ball, video | frames grids, video strips + GIFs, the same trajectories rendered by the 1-ball FG, Isomap of latent trajectories beside straight lines | in process (`sample`, `video_sampling`, `plotting`, `trajectories`) |
| `report` | all of the above | `report/results.md` and `results.json`: wall time and step of every stage, the evaluation tables | in process |

Trainers run as subprocesses with the flags of their flagfile (`--frames_flagfile`, `--video_flagfile`), then the
profile's per-stage flags (`--frames_flag=--train_steps=4000`, repeatable; `--frames_1ball_flag` adds to the
frames flags), then the paths this command owns (`--data`, `--model_dir`, `--frames_generator`,
`--encoder_cache`). Their full log is `<stage>/train.log`; the terminal shows one progress line per
`--progress_seconds` (step, steps/s, ETA) and the start and end of every stage; `<workdir>/reproduce.log`
keeps these lines. TensorBoard: `tensorboard --logdir <workdir>`.

Re-running (make-like):
* a stage with a marker whose config and inputs equal the current ones is skipped (one line says so);
  `--dry_run` prints these decisions ("pending": decided once its inputs have run) and stops;
* a stage without a marker runs; a training stage interrupted before (Ctrl-C, SIGTERM, a crash) resumes from
  its checkpoint — Ctrl-C and SIGTERM are forwarded to the trainer, which saves a checkpoint first;
* a stage whose own config changed reruns (a trainer resumes from its checkpoint: raising `--train_steps`
  continues training; architecture changes fail with the trainer's one line listing the flags);
* a stage whose input's output changed since (another `id`) reruns; a training stage then starts from scratch,
  its old directory moved aside to `<stage>.previous-<time>` (a video model resumed over another frames
  generator would silently keep its old export). An input that reran without changing its output (a trainer
  already at its `--train_steps`, a dataset rebuilt from the same config) leaves its dependants skipped;
* a selected stage whose input stage is neither selected nor complete fails at once (`ConfigError` naming the
  input stage and its directory), before any work.

Library code never reads flags: `main` builds a `ReproduceConfig` and calls `run_pipeline(config)`.
"""
from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import math
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from typing import Callable

from absl import flags

from tfvidgan.errors import ConfigError, TfvidganError
from tfvidgan.json_report import dumps, read_json, write_json

STAGES = ("data", "frames", "frames_1ball", "video", "evaluate", "figures", "report")
INPUTS = {
    "data": (),
    "frames": ("data",),
    "frames_1ball": ("data",),
    "video": ("data", "frames"),
    "evaluate": ("data", "frames", "frames_1ball", "video"),
    "figures": ("frames", "frames_1ball", "video"),
    "report": ("data", "frames", "frames_1ball", "video", "evaluate", "figures"),
}
TRAINING_STAGES = {"frames": "tfvidgan.train_frames", "frames_1ball": "tfvidgan.train_frames",
                   "video": "tfvidgan.train_video"}
MARKER = "DONE.json"
STARTED = "STARTED.json"  # a training stage's inputs and config when its current checkpoints were begun
TRAIN_LOG = "train.log"
ATTEMPTS = "attempts.jsonl"  # one line per attempt of a stage: start, end, seconds, outcome
OWNED_TRAINER_FLAGS = ("data", "model_dir", "frames_generator", "encoder_cache", "flagfile")
PREEMPTED_EXIT_CODE = 143
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class StageFailedError(RuntimeError):
    """A stage's trainer exited with an error (its one line is in the message); `exit_code` is passed on."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


@dataclasses.dataclass(frozen=True)
class ReproduceConfig:
    """Everything `run_pipeline` needs; field names equal the flags of `python -m tfvidgan.reproduce`."""
    workdir: str
    stages: tuple = STAGES
    profile: str = ""
    # data
    num_scenes: int = 5000
    num_frames: int = 40
    image_size: int = 32
    data_shards: int = 8
    data_seed: int = 0
    swap_num_scenes: int = 3000
    swap_data_seed: int = 1
    # training (trainer flags, as on their command lines)
    frames_flagfile: str = "configs/frames_bb3_small.cfg"
    frames_flags: tuple = ()
    frames_1ball_flags: tuple = ()
    video_flagfile: str = "configs/video_bb3_small.cfg"
    video_flags: tuple = ()
    # evaluation
    eval_samples: int = 500
    eval_num_frames: int = 30
    eval_long_frames: int = 120
    eval_encoder_samples: int = 1000
    eval_encoder_steps: int = 300
    eval_seed: int = 0
    # figures
    figure_grid_samples: int = 64
    figure_videos: int = 8
    figure_video_frames: int = 30
    figure_seed: int = 0
    # behaviour
    progress_seconds: float = 15.0
    dry_run: bool = False
    command: str = ""  # the command line, shown in the report (not part of any stage's config)

    def __post_init__(self):
        if not self.workdir:
            raise ConfigError("--workdir is required (the directory that holds every stage)")
        unknown = [s for s in self.stages if s not in STAGES]
        if unknown or not self.stages:
            raise ConfigError(f"--stages={','.join(self.stages)}: unknown stage(s) {unknown}; choose from "
                              f"{','.join(STAGES)}")
        for name in ("num_scenes", "num_frames", "data_shards", "swap_num_scenes", "eval_samples",
                     "eval_num_frames", "eval_encoder_samples", "eval_encoder_steps", "figure_grid_samples",
                     "figure_videos", "figure_video_frames"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if self.eval_samples < 2 or self.eval_num_frames < 2:
            raise ConfigError(f"--eval_samples and --eval_num_frames must be >= 2, got {self.eval_samples}, "
                              f"{self.eval_num_frames}")
        if self.eval_num_frames > self.num_frames:
            raise ConfigError(f"--eval_num_frames={self.eval_num_frames} exceeds the scenes' --num_frames="
                              f"{self.num_frames}")
        if self.eval_long_frames and self.eval_long_frames < 2 * self.eval_num_frames:
            raise ConfigError(f"--eval_long_frames={self.eval_long_frames} must be 0 (off) or >= 2 * "
                              f"--eval_num_frames ({2 * self.eval_num_frames})")
        needed = self.eval_encoder_samples + 2 * self.eval_samples
        for flag in ("num_scenes", "swap_num_scenes"):
            if getattr(self, flag) < needed:
                raise ConfigError(f"--{flag}={getattr(self, flag)}: the evaluation needs --eval_encoder_samples "
                                  f"+ 2 * --eval_samples = {needed} disjoint scenes; raise --{flag} or lower "
                                  f"--eval_samples / --eval_encoder_samples")
        if not self.progress_seconds >= 0:
            raise ConfigError(f"--progress_seconds must be >= 0, got {self.progress_seconds}")
        for flag in ("frames_flags", "frames_1ball_flags", "video_flags"):
            for value in getattr(self, flag):
                check_trainer_flag(flag[:-1], value)

    def stage_dir(self, stage: str) -> str:
        return os.path.join(self.workdir, stage)

    @property
    def bb3(self) -> str:
        return os.path.join(self.workdir, "data", "bb3")

    @property
    def bb1(self) -> str:
        return os.path.join(self.workdir, "data", "bb1")

    @property
    def encoder_cache(self) -> str:
        return os.path.join(self.workdir, "encoder_cache")

    def export(self, stage: str) -> str:
        return os.path.join(self.stage_dir(stage), "export")


def check_trainer_flag(flag: str, value: str) -> None:
    """A per-stage trainer flag must look like `--name=value` (or `--name`) and not be one this command sets."""
    match = re.fullmatch(r"--(no)?([A-Za-z_][A-Za-z0-9_]*)(=.*)?", value)
    if not match:
        raise ConfigError(f"--{flag}={value!r}: expected one trainer flag such as --{flag}=--train_steps=4000")
    if match.group(2) in OWNED_TRAINER_FLAGS:
        raise ConfigError(f"--{flag}={value!r}: --{match.group(2)} is set by tfvidgan.reproduce itself "
                          f"(paths under --workdir); remove it")


# ---------------------------------------------------------------------------------------------------------
# Flagfiles of the trainers


def resolve_flagfile(path: str, flag: str) -> str:
    """`path` as given (relative to the working directory), else relative to the repository root."""
    for candidate in (path, os.path.join(REPO_ROOT, path)):
        if os.path.isfile(candidate):
            return candidate
    raise ConfigError(f"--{flag}={path!r} does not exist (looked in {os.getcwd()!r} and {REPO_ROOT!r})")


def read_flagfile(path: str, flag: str, _depth: int = 0) -> list[str]:
    """The flags of an absl flagfile, in order: one per line, `#`/`//` comments and blank lines dropped, nested
    `--flagfile=` expanded; flags this command sets itself (`--data`, `--model_dir`, ...) are dropped."""
    if _depth > 10:
        raise ConfigError(f"--{flag}: flagfiles nest more than 10 deep (a cycle?) at {path!r}")
    args = []
    with open(resolve_flagfile(path, flag)) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or line.startswith("//"):
                continue
            if line.startswith("--flagfile="):
                args += read_flagfile(line.split("=", 1)[1], flag, _depth + 1)
                continue
            if not line.startswith("-"):
                raise ConfigError(f"--{flag}={path!r}: line {line!r} is not a flag")
            name = re.sub(r"^--?(no)?", "", line).split("=", 1)[0]
            if name in OWNED_TRAINER_FLAGS:
                continue
            args.append(line)
    return args


def trainer_args(config: ReproduceConfig, stage: str) -> list[str]:
    """The command-line flags of a training stage's trainer: flagfile, then the profile's flags, then the paths;
    one entry per flag, the last one given (absl's rule), so the list is the effective setting."""
    paths = [f"--model_dir={config.stage_dir(stage)}", f"--encoder_cache={config.encoder_cache}"]
    if stage == "video":
        return effective_flags(read_flagfile(config.video_flagfile, "video_flagfile") + list(config.video_flags)
                               + [f"--data={config.bb3}", f"--frames_generator={config.export('frames')}"] + paths)
    frames = read_flagfile(config.frames_flagfile, "frames_flagfile") + list(config.frames_flags)
    if stage == "frames":
        return effective_flags(frames + [f"--data={config.bb3}"] + paths)
    return effective_flags(frames + list(config.frames_1ball_flags) + [f"--data={config.bb1}"] + paths)


def effective_flags(args: list[str]) -> list[str]:
    """Keeps the last occurrence of every flag, in the order of those last occurrences; `--x` and `--nox`
    (booleans, written without `=`) are the same flag."""
    kept: dict[str, str] = {}
    for arg in args:
        name, has_value, _ = arg.lstrip("-").partition("=")
        same = [name]
        if not has_value:
            same += [name[2:]] if name.startswith("no") else []
            same += ["no" + name]
        for key in same:
            kept.pop(key, None)
        kept[name] = arg
    return list(kept.values())


def _trainer_flag_value(args: list[str], name: str) -> str | None:
    value = None
    for arg in args:
        if arg.startswith(f"--{name}="):
            value = arg.split("=", 1)[1]
    return value


# ---------------------------------------------------------------------------------------------------------
# Stage configs, markers, the plan


def _data_configs(config: ReproduceConfig):
    from tfvidgan.data.bouncing_balls import BouncingBallsConfig
    common = dict(num_frames=config.num_frames, size=config.image_size)
    return {"bb3": BouncingBallsConfig(num_scenes=config.num_scenes, num_balls=3, seed=config.data_seed,
                                       shards=min(config.data_shards, config.num_scenes), **common),
            "bb1": BouncingBallsConfig(num_scenes=config.swap_num_scenes, num_balls=1, seed=config.swap_data_seed,
                                       shards=min(config.data_shards, config.swap_num_scenes), **common)}


def stage_config(config: ReproduceConfig, stage: str) -> dict:
    """What defines a stage's work (compared with its marker's): paths relative to the workdir."""
    if stage == "data":
        return {name: c.to_dict() for name, c in _data_configs(config).items()}
    if stage in TRAINING_STAGES:
        prefix = config.workdir.rstrip("/") + "/"
        return {"module": TRAINING_STAGES[stage],
                "args": [a.replace(prefix, "<workdir>/") for a in trainer_args(config, stage)]}
    if stage == "evaluate":
        return {"num_samples": config.eval_samples, "num_frames": config.eval_num_frames,
                "long_frames": config.eval_long_frames, "encoder_samples": config.eval_encoder_samples,
                "encoder_steps": config.eval_encoder_steps, "seed": config.eval_seed}
    if stage == "figures":
        return {"grid_samples": config.figure_grid_samples, "videos": config.figure_videos,
                "video_frames": config.figure_video_frames, "seed": config.figure_seed}
    return {"profile": config.profile}


def _json_roundtrip(value):
    return json.loads(json.dumps(value))


def read_stage_file(path: str) -> dict | None:
    """A stage's marker, start record or evaluation report, or None when the stage has not written it yet
    (`json_report.read_json`; a bad file is a ConfigError saying to delete it)."""
    return read_json(path, missing_ok=True, hint="delete it to redo that stage")


def read_marker(config: ReproduceConfig, stage: str) -> dict | None:
    return read_stage_file(os.path.join(config.stage_dir(stage), MARKER))


def _differences(old, new, prefix="") -> list[str]:
    """Human-readable differences between two stage configs (trainer args are compared by flag)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            if key == "args" and isinstance(old.get(key), list) and isinstance(new.get(key), list):
                a, b = _flag_map(old[key]), _flag_map(new[key])
                out += [f"{k} {a.get(k, '(unset)')} → {b.get(k, '(unset)')}" for k in sorted(set(a) | set(b))
                        if a.get(k) != b.get(k)]
            elif old.get(key) != new.get(key):
                out += _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [f"{prefix.rstrip('.')} {old!r} → {new!r}"]


def _same_config(old, new) -> bool:
    """Equal stage configs; trainer flags are compared as settings (flag → value), not as ordered lists."""
    if isinstance(old, dict) and isinstance(new, dict) and isinstance(old.get("args"), list) \
            and isinstance(new.get("args"), list):
        return ({**old, "args": _flag_map(old["args"])} == {**new, "args": _flag_map(new["args"])})
    return old == new


def _flag_map(args: list[str]) -> dict:
    out = {}
    for arg in args:
        name, _, value = arg.partition("=")
        out[name] = value if _ else "true"
    return out


@dataclasses.dataclass
class Decision:
    stage: str
    action: str  # "skip", "run", "resume", "restart"
    reason: str


def decide(config: ReproduceConfig, stage: str, rerunning: set) -> Decision:
    """Whether `stage` is skipped or (re)run, and why.

    A marker's `id` is a digest of the stage's OUTPUT (the datasets' metadata, the export a trainer left, the
    config and inputs of the in-process stages), so an input stage that reran without changing its output
    (e.g. a trainer already at its --train_steps, a dataset regenerated from the same config) does not
    invalidate what depends on it. `rerunning`: input stages that run before this one in this invocation; with
    any of them the decision is "pending" (taken after they ran, from their new ids; used for the plan shown
    first)."""
    marker = read_marker(config, stage)
    current = _json_roundtrip(stage_config(config, stage))
    inputs = {name: (read_marker(config, name) or {}).get("id") for name in INPUTS[stage]}
    training = stage in TRAINING_STAGES
    started = read_stage_file(os.path.join(config.stage_dir(stage), STARTED)) if training else None
    if marker is None and started is None:
        if training and _has_checkpoint(config, stage):
            return Decision(stage, "resume", "no marker yet; the trainer resumes from its checkpoint")
        return Decision(stage, "run", "no marker yet")
    recorded = (marker or started).get("inputs") or {}
    changed = sorted(n for n in INPUTS[stage] if recorded.get(n) != inputs[n])
    pending = sorted(n for n in INPUTS[stage] if n in rerunning and n not in changed)
    if pending:
        return Decision(stage, "pending", f"decided after {', '.join(pending)} ran: skipped if their output is "
                                          f"unchanged, else redone")
    if changed:
        reason = f"the output of input stage(s) {', '.join(changed)} changed since"
        if training and os.path.isdir(config.stage_dir(stage)):
            return Decision(stage, "restart", reason + "; its directory is moved aside and it starts from step 0")
        return Decision(stage, "run", reason)
    if marker is not None and _same_config(marker.get("config"), current):
        return Decision(stage, "skip", f"done {marker.get('finished', '?')} in "
                                       f"{format_seconds(marker.get('wall_seconds'))}")
    if marker is not None:
        diff = _differences(marker.get("config"), current)
        reason = "config changed: " + "; ".join(diff[:8]) + (" …" if len(diff) > 8 else "")
    else:
        reason = "no marker yet"
    if training and _has_checkpoint(config, stage):
        return Decision(stage, "resume", reason + "; the trainer resumes from its checkpoint")
    return Decision(stage, "run", reason)


def output_id(config: ReproduceConfig, stage: str, current: dict, inputs: dict, result: dict) -> str:
    """Digest of what a completed stage produced (see `decide`)."""
    digest = hashlib.sha256()
    if stage == "data":
        for name in ("bb3", "bb1"):
            with open(os.path.join(getattr(config, name), "metadata.json"), "rb") as f:
                digest.update(f.read())
    elif stage in TRAINING_STAGES:
        version = os.path.join(config.export(stage), str(result["step"]))
        digest.update(f"{stage} step {result['step']}".encode())
        for name in ("fingerprint.pb", "saved_model.pb"):  # fingerprint.pb: hashes of the graph and variables
            path = os.path.join(version, name)
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    digest.update(f.read())
                break
        else:
            digest.update(str(os.path.getmtime(version)).encode())
    else:
        digest.update(json.dumps({"stage": stage, "config": current, "inputs": inputs}, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def _has_checkpoint(config: ReproduceConfig, stage: str) -> bool:
    return os.path.isfile(os.path.join(config.stage_dir(stage), "checkpoints", "checkpoint"))


def plan(config: ReproduceConfig) -> list[Decision]:
    """The decision for every selected stage, in pipeline order. Raises `ConfigError` at once, before any work,
    when a selected stage needs an input stage that is neither selected nor complete."""
    selected = [s for s in STAGES if s in config.stages]
    decisions, rerunning = [], set()
    for stage in selected:
        for name in INPUTS[stage]:
            if name not in selected and read_marker(config, name) is None:
                raise ConfigError(
                    f"stage {stage!r} needs input stage {name!r}, which has not completed: no "
                    f"{os.path.join(config.stage_dir(name), MARKER)}. Add {name} to --stages (or run "
                    f"--stages={name} first)")
        decision = decide(config, stage, rerunning)
        if decision.action != "skip":
            rerunning.add(stage)
        decisions.append(decision)
    return decisions


# ---------------------------------------------------------------------------------------------------------
# Output


def format_seconds(seconds) -> str:
    if seconds is None or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return "?"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, s = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {s:02d}s"
    hours, m = divmod(minutes, 60)
    return f"{hours}h {m:02d}m {s:02d}s"


class Console:
    """Prints `[reproduce] ...` lines to stdout and appends them to `<workdir>/reproduce.log`."""

    def __init__(self, workdir: str, write: Callable[[str], None] | None = None):
        self.path = os.path.join(workdir, "reproduce.log")
        self.write = write or (lambda line: (sys.stdout.write(line + "\n"), sys.stdout.flush()))

    def __call__(self, message: str) -> None:
        line = f"[reproduce] {message}"
        self.write(line)
        stamp = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        with open(self.path, "a") as f:
            f.write(f"{stamp} {line}\n")


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def _append_attempt(config: ReproduceConfig, stage: str, record: dict) -> None:
    os.makedirs(config.stage_dir(stage), exist_ok=True)
    with open(os.path.join(config.stage_dir(stage), ATTEMPTS), "a") as f:
        f.write(dumps(record, indent=None) + "\n")


def _total_attempt_seconds(config: ReproduceConfig, stage: str) -> float:
    """Wall seconds of every attempt recorded for the stage's current directory (interrupted ones included)."""
    total = 0.0
    try:
        with open(os.path.join(config.stage_dir(stage), ATTEMPTS)) as f:
            for line in f:
                try:
                    total += float(json.loads(line).get("seconds") or 0.0)
                except ValueError:
                    continue
    except FileNotFoundError:
        pass
    return total


# ---------------------------------------------------------------------------------------------------------
# Running a trainer as a subprocess, with progress lines

_STEP = re.compile(r"step (\d+)/(\d+)\s.*\(([\d.]+|nan|inf) steps/s\)")
_RESUMED = re.compile(r"Resumed from (\S+) at step (\d+)")
_DONE = re.compile(r"Done at step (\d+)")
_ERROR = re.compile(r"^(tfvidgan\.errors\.\w+:|[\w.]*TrainingPreempted:|[\w.]*Error:|FATAL )")


class _Forwarder:
    """While a trainer runs, SIGINT/SIGTERM to this process are forwarded to it as SIGTERM (it saves a
    checkpoint and exits 143). Outside, SIGTERM stops this process (KeyboardInterrupt-like)."""

    def __init__(self):
        self.child: subprocess.Popen | None = None
        self.signalled = False
        self._previous = {}

    def _handle(self, signum, frame):
        self.signalled = True
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signal.SIGTERM)
        else:
            raise KeyboardInterrupt(f"signal {signum}")

    def __enter__(self):
        import threading
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _die_with_parent():
    """In the child: SIGTERM when the reproduce process dies (Linux), so a killed driver leaves no orphan."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_trainer(config: ReproduceConfig, stage: str, say: Console, forwarder: _Forwarder) -> dict:
    """Runs the stage's trainer to its `--train_steps`; returns {"step", "start_step", "steps_per_second"}."""
    args = trainer_args(config, stage)
    command = [sys.executable, "-m", TRAINING_STAGES[stage], *args]
    log_path = os.path.join(config.stage_dir(stage), TRAIN_LOG)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    say(f"{stage}: python -m {TRAINING_STAGES[stage]} … (full command and log: {log_path})")
    start_step, step, total, rates, last_line, error_line = 0, None, None, [], "", ""
    first = None  # (time, step) of the first progress line: tracing and start-up excluded from the ETA
    last_print = -math.inf
    with open(log_path, "a") as log:
        log.write(f"\n===== {_now()} {shlex.join(command)}\n")
        log.flush()
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                                env=env, start_new_session=True, preexec_fn=_die_with_parent)
        forwarder.child = proc
        try:
            for line in proc.stdout:
                log.write(line)
                line = line.rstrip()
                if line:
                    last_line = line
                if m := _RESUMED.search(line):
                    start_step = int(m.group(2))
                    say(f"{stage}: resumed from its checkpoint at step {start_step}")
                elif m := _STEP.search(line):
                    step, total, rate = int(m.group(1)), int(m.group(2)), float(m.group(3))
                    now = time.monotonic()
                    if first is None:
                        first = (now, step)
                    else:
                        rates.append(rate)
                    if now - last_print >= config.progress_seconds or step >= total:
                        last_print = now
                        if step > first[1]:  # the first line's rate includes start-up and tracing
                            measured = (step - first[1]) / (now - first[0])
                            speed = f"{measured:.2f} steps/s  ETA {format_seconds((total - step) / measured)}"
                        else:
                            speed = "ETA from the next progress line"
                        say(f"{stage}: step {step}/{total} ({100 * step / max(total, 1):.0f}%)  {speed}")
                elif m := _DONE.search(line):
                    step = int(m.group(1))
                elif _ERROR.search(line):
                    error_line = line
                    say(f"{stage}: {line}")
            proc.wait()
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            forwarder.child = None
    if proc.returncode != 0:
        code = proc.returncode if proc.returncode > 0 else 128 - proc.returncode
        what = ("stopped"
                if code == PREEMPTED_EXIT_CODE else "failed")
        raise StageFailedError(f"stage {stage!r} {what} (exit code {code}): {error_line or last_line} "
                               f"[log: {log_path}]", code)
    versions = _export_versions(config.export(stage))
    if versions:
        step = versions[-1]
    if step is None:
        raise StageFailedError(f"stage {stage!r}: the trainer finished but left no export in "
                               f"{config.export(stage)} [log: {log_path}]")
    return {"step": step, "start_step": start_step,
            "steps_per_second": sum(rates) / len(rates) if rates else None,
            "train_steps": int(_trainer_flag_value(args, "train_steps") or step)}


def _export_versions(base: str) -> list[int]:
    try:
        return sorted(int(n) for n in os.listdir(base) if n.isdigit())
    except FileNotFoundError:
        return []


# ---------------------------------------------------------------------------------------------------------
# In-process stages


def run_data(config: ReproduceConfig, say: Console) -> dict:
    from tfvidgan.data.bouncing_balls import generate_dataset
    out = {}
    for name, data_config in _data_configs(config).items():
        directory = getattr(config, name)
        t0 = time.perf_counter()
        reused = _same_dataset(directory, data_config)
        if not reused:
            generate_dataset(data_config, directory, overwrite=True, show_progress=True)
        out[name] = {"directory": directory, "num_scenes": data_config.num_scenes,
                     "num_balls": data_config.num_balls, "seconds": time.perf_counter() - t0, "reused": reused}
        say(f"data: {name}: {data_config.num_scenes} scenes × {data_config.num_frames} frames, "
            f"{data_config.num_balls} ball(s) → {directory} "
            f"({'already there, same generator config' if reused else format_seconds(out[name]['seconds'])})")
    return {"outputs": out}


def _same_dataset(directory: str, data_config) -> bool:
    """A complete dataset made with exactly this generator config is already in `directory` (e.g. the stage
    was interrupted after writing it)."""
    from tfvidgan.data.metadata import read_metadata
    if not os.path.isfile(os.path.join(directory, "metadata.json")):
        return False
    try:
        metadata = read_metadata(directory)
    except TfvidganError:
        return False
    return _json_roundtrip((metadata.generator or {}).get("config")) == _json_roundtrip(data_config.to_dict())


def run_evaluate(config: ReproduceConfig, say: Console) -> dict:
    from tfvidgan.metrics.frames_report import FramesEvalConfig, evaluate_frames
    from tfvidgan.metrics.video_report import VideoEvalConfig, evaluate_video
    directory = config.stage_dir("evaluate")
    common = dict(num_samples=config.eval_samples, encoder_samples=config.eval_encoder_samples,
                  encoder_steps=config.eval_encoder_steps, encoder_cache=config.encoder_cache, seed=config.eval_seed)
    jobs = {
        "frames": lambda: evaluate_frames(FramesEvalConfig(export_dir=config.export("frames"), data=config.bb3,
                                                           **common)),
        "frames_1ball": lambda: evaluate_frames(FramesEvalConfig(export_dir=config.export("frames_1ball"),
                                                                 data=config.bb1, **common)),
        "video": lambda: evaluate_video(VideoEvalConfig(
            export_dir=config.export("video"), data=config.bb3, num_frames=config.eval_num_frames,
            plot=os.path.join(directory, "isomap.png"), long_frames=config.eval_long_frames, **common)),
        # The FG swap: the same trajectories rendered by the 1-ball FG, against real 1-ball clips.
        "video_fg_swap": lambda: evaluate_video(VideoEvalConfig(
            export_dir=config.export("video"), data=config.bb1, num_frames=config.eval_num_frames,
            frames_generator=config.export("frames_1ball"), plot="", swap_expected_balls=1, **common)),
    }
    outputs, seconds = {}, {}
    for name, job in jobs.items():
        t0 = time.perf_counter()
        report = job()
        seconds[name] = time.perf_counter() - t0
        path = os.path.join(directory, f"{name}.json")
        write_json(path, report)
        outputs[name] = path
        say(f"evaluate: {name} → {path} ({format_seconds(seconds[name])}): {_headline(name, report)}")
    return {"outputs": outputs, "seconds": seconds}


def _headline(name: str, report: dict) -> str:
    def fmt(v):
        return "?" if not isinstance(v, (int, float)) or not math.isfinite(v) else f"{v:.3g}"
    g, r = report.get("generated", {}), report.get("real", {})
    if name.startswith("frames"):
        return (f"exactly-{report.get('settings', {}).get('expected_balls', '?')}-balls generated "
                f"{fmt(g.get('fraction_expected_count'))} vs real {fmt(r.get('fraction_expected_count'))}, "
                f"Fréchet {fmt(g.get('frechet_distance'))} vs real {fmt(r.get('frechet_distance'))}")
    return (f"speed generated {fmt(g.get('mean_speed'))} vs real {fmt(r.get('mean_speed'))} px/frame, "
            f"Fréchet {fmt(g.get('frechet_distance'))} vs real {fmt(r.get('frechet_distance'))}")


def run_figures(config: ReproduceConfig, say: Console) -> dict:
    import numpy as np

    from tfvidgan.metrics.plotting import plot_trajectories_png, save_image_grid_png
    from tfvidgan.metrics.trajectories import joint_isomap_embedding, linear_interpolation
    from tfvidgan.metrics.video_report import ISOMAP_TRAJECTORIES
    from tfvidgan.sample import sample_frames
    from tfvidgan.video_sampling import load_renderer, sample_latents, write_video_samples

    directory = config.stage_dir("figures")
    os.makedirs(directory, exist_ok=True)
    outputs = {}
    for stage, name in (("frames", "frames_grid.png"), ("frames_1ball", "frames_1ball_grid.png")):
        outputs[name] = sample_frames(config.export(stage), config.figure_grid_samples, config.figure_seed,
                                      os.path.join(directory, name))

    # One set of latent trajectories: the first `figure_videos` are rendered by both FGs, and the first
    # ISOMAP_TRAJECTORIES are embedded with their straight lines (as `evaluate video` does).
    n, t = config.figure_videos, config.figure_video_frames
    count = max(n, min(ISOMAP_TRAJECTORIES, 4 * n))
    latents = sample_latents(config.export("video"), count, t, config.figure_seed)
    np.save(os.path.join(directory, "latents.npy"), latents)
    renders = {}
    for key, folder, frames_generator in (("video", "videos", ""),
                                          ("video_1ball", "videos_1ball", config.export("frames_1ball"))):
        render, _ = load_renderer(config.export("video"), frames_generator, latent_dim=latents.shape[-1])
        videos = render(latents[:n])
        renders[key] = videos
        written = write_video_samples(videos, os.path.join(directory, folder), prefix="video")
        outputs[folder] = [os.path.relpath(p, directory) for p in written]
        outputs[f"{key}_strips.png"] = os.path.join(directory, f"{key}_strips.png")
        save_image_grid_png(videos.reshape(-1, *videos.shape[2:]), outputs[f"{key}_strips.png"], rows=n, scale=2)
    # Rows alternate: video i by the 3-ball FG, then the same trajectory by the 1-ball FG.
    pairs = np.stack([renders["video"], renders["video_1ball"]], axis=1).reshape(-1, *renders["video"].shape[1:])
    outputs["fg_swap_strips.png"] = os.path.join(directory, "fg_swap_strips.png")
    save_image_grid_png(pairs.reshape(-1, *pairs.shape[2:]), outputs["fg_swap_strips.png"], rows=2 * n, scale=2)

    embedded = latents[:min(count, ISOMAP_TRAJECTORIES)].astype(np.float64)
    neighbors = min(10, 2 * embedded.shape[0] * t - 1)
    generated, straight = joint_isomap_embedding([embedded, linear_interpolation(embedded)], n_neighbors=neighbors)
    outputs["isomap.png"] = os.path.join(directory, "isomap.png")
    plot_trajectories_png(generated, outputs["isomap.png"], baseline=straight,
                          title=f"latent trajectories, {t} steps (joint Isomap, {neighbors} neighbours): generated "
                                f"(left) vs straight-line interpolation between the same ends (right)")
    say(f"figures: {len(outputs)} outputs in {directory}: frames grids, {n} videos × {t} frames (GIF + strips) "
        f"by the 3-ball and the 1-ball FG, Isomap of {embedded.shape[0]} trajectories")
    return {"outputs": outputs}


def run_report(config: ReproduceConfig, say: Console, started: float) -> dict:
    from tfvidgan import reproduce_report
    directory = config.stage_dir("report")
    markers = {stage: read_marker(config, stage) for stage in STAGES if stage != "report"}
    evaluations = {name: read_stage_file(os.path.join(config.stage_dir("evaluate"), f"{name}.json"))
                   for name in ("frames", "frames_1ball", "video", "video_fg_swap")}
    markers["report"] = {"wall_seconds": time.perf_counter() - started, "finished": _now()}
    results = reproduce_report.build_results(config, markers, evaluations)
    md_path, json_path = os.path.join(directory, "results.md"), os.path.join(directory, "results.json")
    os.makedirs(directory, exist_ok=True)
    markdown = reproduce_report.to_markdown(results, os.path.relpath(config.workdir, directory))
    with open(md_path, "w") as f:
        f.write(markdown)
    write_json(json_path, results)
    summaries = os.path.join(directory, "summaries")
    _write_tensorboard(summaries, markdown, results)
    say(f"report: {md_path} and {json_path} (also in TensorBoard: {summaries})")
    return {"outputs": {"markdown": md_path, "json": json_path, "summaries": summaries}}


def _write_tensorboard(directory: str, markdown: str, results: dict) -> None:
    """The results table as TensorBoard text, the figures as images, beside the trainers' summaries."""
    import numpy as np
    import tensorflow as tf
    from PIL import Image

    writer = tf.summary.create_file_writer(directory)
    with writer.as_default():
        tf.summary.text("reproduce/results", markdown, step=0)
        for name, path in sorted((results.get("figures") or {}).items()):
            if path.endswith(".png") and os.path.isfile(path):
                with Image.open(path) as image:
                    pixels = np.asarray(image.convert("RGB"))
                tf.summary.image(f"reproduce/{name[:-4]}", pixels[None], step=0)
    writer.close()


# ---------------------------------------------------------------------------------------------------------
# The pipeline


def run_pipeline(config: ReproduceConfig, write: Callable[[str], None] | None = None) -> list[Decision]:
    """Runs the selected stages in order (see the module docstring); returns the decisions taken."""
    from tfvidgan.training.run_lock import lock_run_dir
    with lock_run_dir(config.workdir, "--workdir"):
        say = Console(config.workdir, write)
        decisions = plan(config)  # raises at once for a missing input stage
        say(f"workdir {config.workdir}; profile {config.profile or '(unnamed)'}; stages "
            f"{', '.join(d.stage for d in decisions)}")
        for d in decisions:
            say(f"  {d.stage}: {'skip' if d.action == 'skip' else d.action} ({d.reason})")
        if config.dry_run:
            say("dry run: nothing done")
            return decisions
        taken = []
        with _Forwarder() as forwarder:
            for planned in decisions:
                decision = decide(config, planned.stage, set())  # with the markers written so far
                taken.append(decision)
                if decision.action == "skip":
                    say(f"{decision.stage}: skipped ({decision.reason}; marker "
                        f"{os.path.join(config.stage_dir(decision.stage), MARKER)})")
                    continue
                _run_stage(config, decision, say, forwarder)
        total = sum(float((read_marker(config, d.stage) or {}).get("wall_seconds") or 0) for d in taken
                    if d.action != "skip")
        say(f"done: {sum(d.action != 'skip' for d in taken)} stage(s) run in {format_seconds(total)}, "
            f"{sum(d.action == 'skip' for d in taken)} skipped")
        return taken


def _run_stage(config: ReproduceConfig, decision: Decision, say: Console, forwarder: _Forwarder) -> None:
    stage = decision.stage
    directory = config.stage_dir(stage)
    if decision.action == "restart":
        aside = f"{directory}.previous-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}"
        os.replace(directory, aside)
        say(f"{stage}: moved the old run aside to {aside}")
    marker_path = os.path.join(directory, MARKER)
    if os.path.exists(marker_path):
        os.remove(marker_path)  # the stage is redone: no stale marker if this attempt dies
    os.makedirs(directory, exist_ok=True)
    inputs = {name: read_marker(config, name)["id"] for name in INPUTS[stage]}
    current = _json_roundtrip(stage_config(config, stage))
    if stage in TRAINING_STAGES:
        started_path = os.path.join(directory, STARTED)
        if not _has_checkpoint(config, stage):  # a fresh start: record what its checkpoints will come from
            write_json(started_path, {"inputs": inputs, "config": current, "started": _now()})
    say(f"{stage}: start ({decision.action}: {decision.reason})")
    t0, started_at = time.perf_counter(), _now()
    outcome = "interrupted"
    try:
        if stage == "data":
            result = run_data(config, say)
        elif stage in TRAINING_STAGES:
            result = run_trainer(config, stage, say, forwarder)
        elif stage == "evaluate":
            result = run_evaluate(config, say)
        elif stage == "figures":
            result = run_figures(config, say)
        else:
            result = run_report(config, say, t0)
        outcome = "done"
    except StageFailedError as e:
        outcome = f"{'stopped' if e.exit_code == PREEMPTED_EXIT_CODE else 'failed'} (exit code {e.exit_code})"
        raise
    except TfvidganError as e:
        outcome = f"failed ({type(e).__name__})"
        raise
    finally:
        seconds = time.perf_counter() - t0
        _append_attempt(config, stage, {"started": started_at, "ended": _now(), "seconds": seconds,
                                        "outcome": outcome, "action": decision.action})
        if outcome != "done":
            say(f"{stage}: {outcome} after {format_seconds(seconds)}")
    marker = {"stage": stage, "id": output_id(config, stage, current, inputs, result), "finished": _now(), "wall_seconds": seconds,
              "total_wall_seconds": _total_attempt_seconds(config, stage), "config": current, "inputs": inputs,
              **result}
    write_json(marker_path, marker)
    step = f" at step {result['step']}" if "step" in result else ""
    say(f"{stage}: done{step} in {format_seconds(seconds)} (marker {marker_path})")


# ---------------------------------------------------------------------------------------------------------
# Command line


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines this command's flags on `flag_values` (tests pass their own `FlagValues`)."""
    d = ReproduceConfig.__dataclass_fields__

    def default(name):
        return d[name].default

    fv = dict(flag_values=flag_values)
    flags.DEFINE_string("workdir", None, "Directory of the whole run: one subdirectory per stage.", **fv)
    flags.DEFINE_list("stages", list(STAGES), f"Stages to run, any of {','.join(STAGES)} (run in this order).",
                      **fv)
    flags.DEFINE_string("profile", "", "Name of the profile (shown in the report).", **fv)
    flags.DEFINE_integer("num_scenes", default("num_scenes"), "data: 3-ball scenes.", **fv)
    flags.DEFINE_integer("num_frames", default("num_frames"), "data: frames per scene (both datasets).", **fv)
    flags.DEFINE_integer("image_size", default("image_size"), "data: frame size (30, 32 or 64).", **fv)
    flags.DEFINE_integer("data_shards", default("data_shards"), "data: TFRecord shards per dataset.", **fv)
    flags.DEFINE_integer("data_seed", default("data_seed"), "data: seed of the 3-ball scenes.", **fv)
    flags.DEFINE_integer("swap_num_scenes", default("swap_num_scenes"), "data: 1-ball scenes (for the FG swap).",
                         **fv)
    flags.DEFINE_integer("swap_data_seed", default("swap_data_seed"), "data: seed of the 1-ball scenes.", **fv)
    flags.DEFINE_string("frames_flagfile", default("frames_flagfile"), "Flagfile of `tfvidgan.train_frames` "
                        "for the frames and frames_1ball stages (--data/--model_dir in it are replaced).", **fv)
    flags.DEFINE_multi_string("frames_flag", [], "A flag added to the frames (and frames_1ball) trainer's, e.g. "
                              "--frames_flag=--train_steps=4000; repeatable.", **fv)
    flags.DEFINE_multi_string("frames_1ball_flag", [], "A flag added for the frames_1ball stage only (after "
                              "--frames_flag).", **fv)
    flags.DEFINE_string("video_flagfile", default("video_flagfile"), "Flagfile of `tfvidgan.train_video`.", **fv)
    flags.DEFINE_multi_string("video_flag", [], "A flag added to the video trainer's; repeatable.", **fv)
    flags.DEFINE_integer("eval_samples", default("eval_samples"), "evaluate: samples (and real ones) per row.",
                         **fv)
    flags.DEFINE_integer("eval_num_frames", default("eval_num_frames"), "evaluate: frames per evaluated clip.",
                         **fv)
    flags.DEFINE_integer("eval_long_frames", default("eval_long_frames"), "evaluate: long-video section length "
                         "(first vs last --eval_num_frames frames); 0 = off.", **fv)
    flags.DEFINE_integer("eval_encoder_samples", default("eval_encoder_samples"), "evaluate: real samples the "
                         "Fréchet encoders train on.", **fv)
    flags.DEFINE_integer("eval_encoder_steps", default("eval_encoder_steps"), "evaluate: encoder training steps.",
                         **fv)
    flags.DEFINE_integer("eval_seed", default("eval_seed"), "evaluate: seed of samples and real picks.", **fv)
    flags.DEFINE_integer("figure_grid_samples", default("figure_grid_samples"), "figures: frames per grid.", **fv)
    flags.DEFINE_integer("figure_videos", default("figure_videos"), "figures: videos (GIF + strip each).", **fv)
    flags.DEFINE_integer("figure_video_frames", default("figure_video_frames"), "figures: frames per video.", **fv)
    flags.DEFINE_integer("figure_seed", default("figure_seed"), "figures: sampling seed.", **fv)
    flags.DEFINE_float("progress_seconds", default("progress_seconds"), "At most one progress line per stage "
                       "every this many seconds.", **fv)
    flags.DEFINE_bool("dry_run", False, "Print what each stage would do (skip, run, resume, restart) and stop.",
                      **fv)


def config_from_flags(values: flags.FlagValues) -> ReproduceConfig:
    if not values.workdir:
        raise ConfigError("--workdir is required (the directory that holds every stage)")
    names = [f.name for f in dataclasses.fields(ReproduceConfig) if f.name != "command"]
    renamed = {"frames_flags": "frames_flag", "frames_1ball_flags": "frames_1ball_flag",
               "video_flags": "video_flag"}
    kwargs = {}
    for name in names:
        value = values[renamed.get(name, name)].value
        kwargs[name] = tuple(value or ()) if name in renamed or name == "stages" else value
    return ReproduceConfig(**kwargs)


def main(argv):
    if len(argv) > 1:
        raise ConfigError(f"unexpected positional arguments {argv[1:]} (flags are --name=value)")
    from tfvidgan import cli
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before the in-process stages import TensorFlow
    config = dataclasses.replace(config_from_flags(flags.FLAGS),
                                 command=shlex.join(["python", "-m", "tfvidgan.reproduce", *sys.argv[1:]]))
    # Trainer flagfiles must exist before anything runs.
    for stage in STAGES:
        if stage in TRAINING_STAGES:
            trainer_args(config, stage)
    try:
        run_pipeline(config)
    except StageFailedError as e:
        sys.stderr.write(cli.one_line(e) + "\n")
        sys.stderr.flush()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("tfvidgan.reproduce: interrupted; run the same command to continue\n")
        sys.exit(PREEMPTED_EXIT_CODE)


if __name__ == "__main__":
    from tfvidgan import cli as _cli
    from tfvidgan import reproduce as _reproduce  # the importable module: errors read tfvidgan.reproduce.<Error>
    _reproduce.define_flags()
    _cli.run(_reproduce.main)
