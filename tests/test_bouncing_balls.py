"""Physics, rendering, determinism and the generator CLI of the bouncing-balls dataset."""
import glob
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from tfvidgan.data import bouncing_balls as bb
from tfvidgan.data.metadata import read_metadata
from tfvidgan.errors import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _kinetic(vel, masses):
    return 0.5 * (masses[..., None] * vel ** 2).sum((-1, -2))


def _momentum(vel, masses):
    return (masses[..., None] * vel).sum(-2)


def test_wall_bounce_reflects_normal_velocity_and_keeps_energy():
    # One ball, radius 3, at col 4.5 moving left at 2 px/frame: it touches the wall (col = 3) at
    # t = 0.75 and is back at col 3 + 2 * 0.25 = 3.5 at t = 1.
    pos = np.array([[[10.0, 4.5]]])
    vel = np.array([[[0.5, -2.0]]])
    radii = np.array([[3.0]])
    p, v = bb.simulate(pos, vel, radii, size=32, num_frames=2, substeps=1)
    np.testing.assert_allclose(p[0, 1, 0], [10.5, 3.5], atol=1e-12)
    np.testing.assert_allclose(v[0, 1, 0], [0.5, 2.0], atol=1e-12)
    masses = radii ** 2
    assert _kinetic(v[:, 1], masses) == pytest.approx(_kinetic(v[:, 0], masses), rel=1e-14)
    # Momentum along the wall is conserved; the normal component is reversed (the wall takes it).
    assert _momentum(v[:, 1], masses)[0, 0] == pytest.approx(_momentum(v[:, 0], masses)[0, 0], rel=1e-14)
    assert _momentum(v[:, 1], masses)[0, 1] == pytest.approx(-_momentum(v[:, 0], masses)[0, 1], rel=1e-14)


def test_head_on_collision_of_equal_balls_swaps_velocities_at_the_contact_time():
    # Gap 10 - 6 = 4 closes at 2 px/frame: contact at t = 2 (centres at 12 and 18), then they part.
    pos = np.array([[[16.0, 10.0], [16.0, 20.0]]])
    vel = np.array([[[0.0, 1.0], [0.0, -1.0]]])
    radii = np.array([[3.0, 3.0]])
    p, v = bb.simulate(pos, vel, radii, size=32, num_frames=5, substeps=1)
    np.testing.assert_allclose(p[0, :, 0, 1], [10, 11, 12, 11, 10], atol=1e-12)
    np.testing.assert_allclose(p[0, :, 1, 1], [20, 19, 18, 19, 20], atol=1e-12)
    np.testing.assert_allclose(v[0, 4], [[0.0, -1.0], [0.0, 1.0]], atol=1e-12)


def test_oblique_collision_of_unequal_balls_conserves_momentum_and_energy():
    # Radii 2 and 4 (masses 4 and 16, ∝ area), an off-centre hit in the middle of a 64 box; no wall
    # is reached within the 8 frames.
    pos = np.array([[[30.0, 20.0], [33.0, 32.0]]])
    vel = np.array([[[0.1, 1.5], [-0.2, -0.4]]])
    radii = np.array([[2.0, 4.0]])
    p, v = bb.simulate(pos, vel, radii, size=64, num_frames=8, substeps=1)
    masses = radii ** 2
    assert not np.allclose(v[0, -1], v[0, 0])  # they did collide
    assert np.all((p > 8) & (p < 56))  # far from the walls
    np.testing.assert_allclose(_momentum(v[:, -1], masses), _momentum(v[:, 0], masses), rtol=1e-12, atol=1e-12)
    assert _kinetic(v[:, -1], masses)[0] == pytest.approx(_kinetic(v[:, 0], masses)[0], rel=1e-12)
    gaps = np.linalg.norm(p[0, :, 0] - p[0, :, 1], axis=-1) - 6.0
    assert gaps.min() >= -1e-9


def test_fast_balls_do_not_tunnel_through_each_other():
    # Closing at 14 px/frame across a 12 px gap: a fixed step of one frame would pass them through.
    # Contact at t = 6/7 (centres 14 and 18), then 1/7 frame back: 13 and 19.
    pos = np.array([[[16.0, 8.0], [16.0, 24.0]]])
    vel = np.array([[[0.0, 7.0], [0.0, -7.0]]])
    p, v = bb.simulate(pos, vel, np.array([[2.0, 2.0]]), size=32, num_frames=2, substeps=1)
    np.testing.assert_allclose(p[0, 1, :, 1], [13.0, 19.0], atol=1e-12)
    np.testing.assert_allclose(v[0, 1, :, 1], [-7.0, 7.0], atol=1e-12)


@pytest.fixture(scope="module")
def crowded():
    """Many fast balls, so that wall and ball contacts happen often."""
    config = bb.BouncingBallsConfig(num_scenes=64, num_frames=60, num_balls=6, size=32, radius=3.0,
                                    max_speed=4.0, seed=3)
    return config, bb.generate_scenes(config, 0, 64)


def test_generated_scenes_conserve_energy_stay_inside_and_never_overlap(crowded):
    config, batch = crowded
    pos = batch.positions.astype(np.float64)
    vel = batch.velocities.astype(np.float64)
    masses = batch.radii.astype(np.float64) ** 2
    energy = 0.5 * (masses[:, None, :, None] * vel ** 2).sum((-1, -2))     # [S, T]
    np.testing.assert_allclose(energy, energy[:, :1].repeat(energy.shape[1], 1), rtol=1e-5)
    r = config.radius
    assert pos.min() >= r - 1e-4 and pos.max() <= config.size - r + 1e-4
    i, j = np.triu_indices(config.num_balls, 1)
    gaps = np.linalg.norm(pos[:, :, i] - pos[:, :, j], axis=-1) - 2 * r
    assert gaps.min() > -1e-4
    # The scenes really exercise the physics: plenty of wall and ball contacts happened.
    speeds = np.linalg.norm(vel, axis=-1)
    speed_changes = np.abs(np.diff(speeds, axis=1)) > 1e-3          # only ball-ball contacts change speeds
    direction_changes = np.any(np.abs(np.diff(vel, axis=1)) > 1e-3, axis=-1)
    assert speed_changes.sum() > 100
    assert direction_changes.sum() > speed_changes.sum()


def test_trajectories_do_not_depend_on_substeps(crowded):
    config, _ = crowded
    states = [bb.initial_state(config, i) for i in range(16)]
    pos0, vel0, radii = (np.stack(x) for x in zip(*states))
    p1, _ = bb.simulate(pos0, vel0, radii, size=32, num_frames=30, substeps=1)
    p7, _ = bb.simulate(pos0, vel0, radii, size=32, num_frames=30, substeps=7)
    np.testing.assert_allclose(p1, p7, atol=1e-6)


def test_initial_states_never_overlap_even_at_the_largest_radius():
    config = bb.BouncingBallsConfig(num_scenes=300, num_balls=5, size=30,
                                    radius=bb.max_radius(30, 5), seed=11)
    for index in range(300):
        pos, vel, radii = bb.initial_state(config, index)
        i, j = np.triu_indices(5, 1)
        assert np.all(np.linalg.norm(pos[i] - pos[j], axis=-1) > radii[i] + radii[j])
        assert np.all(pos >= radii[:, None]) and np.all(pos <= 30 - radii[:, None])
        speed = np.linalg.norm(vel, axis=-1)
        assert np.all((speed >= config.min_speed) & (speed <= config.max_speed))


def test_render_is_an_anti_aliased_disc_of_the_right_area():
    # A ball of radius 3 centred on pixel (16, 16).
    frame = bb.render(np.array([[[[16.5, 16.5]]]]), np.array([[3.0]]), size=32)[0, 0, :, :, 0]
    assert frame[16, 16] == 255
    assert frame[16, 19] == 128          # centre distance 3 = r: coverage 0.5
    assert frame[16, 20] == 0 and frame[12, 16] == 0  # distance ≥ r + 0.5
    assert frame.sum() / 255.0 == pytest.approx(math.pi * 9, rel=0.03)
    np.testing.assert_array_equal(frame, frame.T)
    edge = frame[(frame > 0) & (frame < 255)]
    assert edge.size >= 12               # a soft edge, not a hard one
    colour = bb.render(np.array([[[[16.5, 16.5], [5.5, 5.5]]]]), np.array([[3.0, 2.0]]), size=32, channels=3)
    np.testing.assert_array_equal(colour[0, 0, 16, 16], np.round(np.array(bb.PALETTE[0]) * 255))
    np.testing.assert_array_equal(colour[0, 0, 5, 5], np.round(np.array(bb.PALETTE[1]) * 255))


def test_a_scene_does_not_depend_on_how_scenes_are_batched():
    config = bb.BouncingBallsConfig(num_scenes=20, num_frames=10, size=64, seed=5)
    whole = bb.generate_scenes(config, 0, 10)
    part = bb.generate_scenes(config, 6, 9)
    np.testing.assert_array_equal(whole.frames[6:9], part.frames)
    np.testing.assert_array_equal(whole.positions[6:9], part.positions)


def _shard_bytes(directory):
    return b"".join(open(p, "rb").read() for p in sorted(glob.glob(os.path.join(directory, "scenes-*.tfrecord"))))


def test_same_seed_gives_identical_bytes_whatever_the_shards_and_workers(tmp_path):
    config = dict(num_scenes=300, num_frames=6, size=32, seed=7)
    a = bb.generate_dataset(bb.BouncingBallsConfig(shards=1, **config), str(tmp_path / "a"), workers=1,
                             show_progress=False)
    b = bb.generate_dataset(bb.BouncingBallsConfig(shards=3, **config), str(tmp_path / "b"), workers=2,
                             show_progress=False)
    assert [s.num_records for s in a.shards] == [300]
    assert [s.num_records for s in b.shards] == [100, 100, 100]
    assert _shard_bytes(tmp_path / "a") == _shard_bytes(tmp_path / "b")
    other = bb.generate_dataset(bb.BouncingBallsConfig(shards=1, **{**config, "seed": 8}), str(tmp_path / "c"),
                                 workers=1, show_progress=False)
    assert other.num_scenes == 300
    assert _shard_bytes(tmp_path / "c") != _shard_bytes(tmp_path / "a")


def test_existing_dataset_is_refused_replaced_with_overwrite_and_kept_on_failure(tmp_path, monkeypatch, capsys):
    out = str(tmp_path / "data")
    small = dict(num_scenes=40, num_frames=4, size=32, shards=2)
    bb.generate_dataset(bb.BouncingBallsConfig(seed=1, **small), out, workers=1, show_progress=True)
    assert "40/40 scenes" in capsys.readouterr().err
    first = _shard_bytes(out)
    with pytest.raises(ConfigError, match="--output_dir=.*already holds a dataset.*--overwrite"):
        bb.generate_dataset(bb.BouncingBallsConfig(seed=2, **small), out, workers=1, show_progress=False)
    assert _shard_bytes(out) == first

    calls = []

    def failing(config, start, stop):
        calls.append(start)
        if len(calls) == 2:
            raise RuntimeError("disk on fire")
        return original(config, start, stop)

    original = bb.render_scene_range
    monkeypatch.setattr(bb, "render_scene_range", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        bb.generate_dataset(bb.BouncingBallsConfig(seed=2, **small), out, overwrite=True, workers=1,
                             show_progress=False)
    monkeypatch.setattr(bb, "render_scene_range", original)
    assert _shard_bytes(out) == first and read_metadata(out).seed == 1
    assert sorted(os.listdir(tmp_path)) == ["data"]  # no temporary directory left behind

    bb.generate_dataset(bb.BouncingBallsConfig(seed=2, **small), out, overwrite=True, workers=1,
                         show_progress=False)
    assert read_metadata(out).seed == 2 and _shard_bytes(out) != first
    assert sorted(os.listdir(tmp_path)) == ["data"]


def test_cli_writes_a_dataset_and_prints_a_json_summary(tmp_path):
    out = tmp_path / "cli"
    env = {**os.environ, "PYTHONPATH": REPO}
    done = subprocess.run([sys.executable, "-m", "data_tools.make_bouncing_balls", f"--output_dir={out}",
                           "--num_scenes=12", "--num_frames=5", "--num_balls=2", "--size=30", "--radius=2.5",
                           "--channels=3", "--shards=2", "--seed=4", "--workers=1", "--noprogress"],
                          capture_output=True, text=True, env=env, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["num_scenes"] == 12 and summary["shape"] == [5, 30, 30, 3]
    meta = read_metadata(str(out))
    assert (meta.num_scenes, meta.num_frames, meta.size, meta.channels, meta.num_balls) == (12, 5, 30, 3, 2)
    assert meta.radius == 2.5 and meta.seed == 4
    assert [s.file for s in meta.shards] == ["scenes-00000-of-00002.tfrecord", "scenes-00001-of-00002.tfrecord"]
    assert summary["bytes"] == sum(os.path.getsize(out / s.file) for s in meta.shards)
