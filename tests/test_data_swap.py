"""Crash-safe dataset swaps (`tfvidgan.data.swap`) in both dataset writers."""
import glob
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tfvidgan.data import bouncing_balls as bb
from tfvidgan.data import swap
from tfvidgan.data.cup_pairs import read_cup_metadata
from tfvidgan.data.cup_simulation import CupPairsConfig, generate_cup_pairs
from tfvidgan.data.metadata import read_metadata
from tfvidgan.errors import ConfigError, DatasetError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = dict(num_scenes=12, num_frames=3, size=32, shards=2)


class Crash(BaseException):
    """Stands for SIGKILL: nothing in the library catches it, so the disk is left as a kill leaves it."""


def _crash_at(monkeypatch, k):
    calls = []
    real = swap._move

    def move(source, target):
        calls.append(source)
        if len(calls) == k + 1:
            raise Crash(f"killed before move {k}")
        real(source, target)

    monkeypatch.setattr(swap, "_move", move)
    return calls


def _shard_bytes(directory):
    return [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(directory, "scenes-*.tfrecord")))]


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.fixture(scope="module")
def new_reference(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("reference") / "data")
    bb.generate_dataset(bb.BouncingBallsConfig(seed=2, **SMALL), directory, workers=1, show_progress=False)
    return _shard_bytes(directory)


@pytest.mark.parametrize("k", range(6))  # 3 old files out, 3 new files in
def test_a_crash_at_any_point_of_the_swap_is_finished_by_the_next_run(tmp_path, monkeypatch, new_reference, k):
    out = str(tmp_path / "data")
    bb.generate_dataset(bb.BouncingBallsConfig(seed=1, **SMALL), out, workers=1, show_progress=False)
    (tmp_path / "data" / "notes.txt").write_text("mine")
    calls = _crash_at(monkeypatch, k)
    with pytest.raises(Crash):
        bb.generate_dataset(bb.BouncingBallsConfig(seed=2, **SMALL), out, overwrite=True, workers=1,
                            show_progress=False)
    assert len(calls) == k + 1
    monkeypatch.undo()
    assert os.path.exists(swap.journal_path(out))
    if k > 0:  # the old metadata moves out first: readers see the pending swap named
        with pytest.raises(DatasetError, match="dataset swap was interrupted.*run the generator again"):
            read_metadata(out)
    assert swap.recover(out) is True
    assert read_metadata(out).seed == 2 and _shard_bytes(out) == new_reference
    assert sorted(os.listdir(tmp_path)) == ["data"]  # journal, backup and scratch are gone
    assert sorted(os.listdir(out)) == ["metadata.json", "notes.txt", "scenes-00000-of-00002.tfrecord",
                                       "scenes-00001-of-00002.tfrecord"]
    assert (tmp_path / "data" / "notes.txt").read_text() == "mine"


def test_the_next_generate_call_recovers_and_then_applies_its_own_rules(tmp_path, monkeypatch, new_reference):
    out = str(tmp_path / "data")
    bb.generate_dataset(bb.BouncingBallsConfig(seed=1, **SMALL), out, workers=1, show_progress=False)
    _crash_at(monkeypatch, 2)
    with pytest.raises(Crash):
        bb.generate_dataset(bb.BouncingBallsConfig(seed=2, **SMALL), out, overwrite=True, workers=1,
                            show_progress=False)
    monkeypatch.undo()
    # The interrupted swap is finished first; then the directory holds a dataset, so no --overwrite: refused.
    with pytest.raises(ConfigError, match="already holds a dataset"):
        bb.generate_dataset(bb.BouncingBallsConfig(seed=3, **SMALL), out, workers=1, show_progress=False)
    assert read_metadata(out).seed == 2 and _shard_bytes(out) == new_reference
    assert sorted(os.listdir(tmp_path)) == ["data"]


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_scratch_of_dead_processes_is_removed_and_live_ones_are_kept(tmp_path):
    dead, alive = _dead_pid(), os.getppid()
    for name in (f".data.tmp-{dead}-0badf00d", f".data.old-{dead}-12345678", f".data.tmp-{alive}-abcdef01",
                 ".data.tmp-not-ours", ".other.tmp-1-00000000"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "scenes-00000-of-00001.tfrecord").write_bytes(b"x" * 1000)
    bb.generate_dataset(bb.BouncingBallsConfig(seed=1, **SMALL), str(tmp_path / "data"), workers=1,
                        show_progress=False)
    assert sorted(os.listdir(tmp_path)) == sorted(["data", f".data.tmp-{alive}-abcdef01", ".data.tmp-not-ours",
                                                   ".other.tmp-1-00000000"])


def test_a_swap_journal_of_a_running_process_is_not_touched(tmp_path):
    out = str(tmp_path / "data")
    with open(swap.journal_path(out), "w") as f:
        json.dump({"pid": os.getppid(), "output_dir": out, "new_dir": "", "backup_dir": "", "old_files": [],
                   "new_files": []}, f)
    with pytest.raises(ConfigError, match=f"process {os.getppid()} is replacing the dataset in it right now"):
        bb.generate_dataset(bb.BouncingBallsConfig(seed=1, **SMALL), out, workers=1, show_progress=False)


def _scenes(num, seed=0):
    rng = np.random.default_rng(seed)
    return [{"frames": (rng.integers(0, 256, (5, 6, 5, 1)) / 127.5 - 1.0).astype(np.float32)} for _ in range(num)]


def test_output_directories_get_normal_permissions(tmp_path):
    expected = 0o777 & ~_umask()  # what mkdir gives (0755 with the usual umask 022); mkdtemp gave 0700
    bb.generate_dataset(bb.BouncingBallsConfig(seed=1, **SMALL), str(tmp_path / "balls"), workers=1,
                        show_progress=False)
    generate_cup_pairs(CupPairsConfig(scenes="s", num_frames=3, shards=1), str(tmp_path / "cup"), scenes=_scenes(2))
    for name in ("balls", "cup"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == expected, name


@pytest.mark.parametrize("k", [0, 2, 4])  # cup: 3 old files out (metadata, mask, shard), 3 new files in
def test_cup_pairs_swap_interrupted_is_finished(tmp_path, monkeypatch, k):
    out = str(tmp_path / "cup")
    config = CupPairsConfig(scenes="s", num_frames=3, shards=1)
    generate_cup_pairs(config, out, scenes=_scenes(2))
    _crash_at(monkeypatch, k)
    with pytest.raises(Crash):
        generate_cup_pairs(config, out, overwrite=True, scenes=_scenes(3, seed=1))
    monkeypatch.undo()
    assert swap.recover(out)
    assert read_cup_metadata(out).num_examples == 3
    assert sorted(os.listdir(tmp_path)) == ["cup"]


def test_cup_pairs_killed_by_sigkill_during_the_swap_keeps_a_dataset(tmp_path):
    out = str(tmp_path / "cup")
    config = CupPairsConfig(scenes="s", num_frames=3, shards=2)
    generate_cup_pairs(config, out, scenes=_scenes(2))
    script = textwrap.dedent(f"""
        import os, signal
        import numpy as np
        from tfvidgan.data import swap
        from tfvidgan.data.cup_simulation import CupPairsConfig, generate_cup_pairs
        calls = []
        real = swap._move
        def move(source, target):
            calls.append(source)
            if len(calls) == 3:  # old metadata, mask and a shard are out; nothing new is in
                os.kill(os.getpid(), signal.SIGKILL)
            real(source, target)
        swap._move = move
        rng = np.random.default_rng(1)
        scenes = [{{"frames": (rng.integers(0, 256, (5, 6, 5, 1)) / 127.5 - 1.0).astype(np.float32)}}
                  for _ in range(5)]
        generate_cup_pairs(CupPairsConfig(scenes="s", num_frames=3, shards=2), {out!r}, overwrite=True,
                           scenes=scenes)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert not os.path.exists(os.path.join(out, "metadata.json"))  # what a kill leaves: a half-done swap
    with pytest.raises(DatasetError, match="metadata.json: CUP pairs metadata not found"):
        read_cup_metadata(out)
    generate_cup_pairs(config, str(tmp_path / "other"), scenes=_scenes(1))  # an unrelated run changes nothing
    with pytest.raises(ConfigError, match="--overwrite"):  # the next run into it finishes the swap first
        generate_cup_pairs(config, out, scenes=_scenes(2))
    assert read_cup_metadata(out).num_examples == 5
    assert sorted(os.listdir(tmp_path)) == ["cup", "other"]
