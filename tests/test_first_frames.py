"""benchmarks.first_frames: the from-start and after-burn-in windows are the right frames."""
import numpy as np
import pytest

from benchmarks.first_frames import window_rows


def _frame(centres, size=32, half=2):
    frame = -np.ones((size, size, 1), np.float32)
    for r, c in centres:
        frame[r - half:r + half + 1, c - half:c + half + 1] = 1.0
    return frame


def test_a_messy_start_shows_in_the_first_window_only():
    # 4 clips of 12 frames with 2 still balls; frames 0-1 of every clip carry a third blob (a speck).
    clean, messy = _frame([(8, 8), (22, 22)]), _frame([(8, 8), (22, 22), (4, 27)])
    videos = np.stack([np.stack([messy, messy] + [clean] * 10)] * 4)
    rows = window_rows(videos, burn_in=2, num_frames=10, expected_balls=2)
    assert rows["from_start"]["fraction_expected_count_first_frame"] == 0.0
    assert rows["from_start"]["fraction_expected_count_frames"] == pytest.approx(8 / 10)
    assert rows["from_start"]["mean_count_changes"] == 1.0
    assert rows["after_burn_in"]["fraction_expected_count_first_frame"] == 1.0
    assert rows["after_burn_in"]["fraction_expected_count_frames"] == 1.0
    assert rows["after_burn_in"]["mean_count_changes"] == 0.0
    with pytest.raises(ValueError, match="fewer than burn_in \\+ num_frames = 13"):
        window_rows(videos, burn_in=3, num_frames=10, expected_balls=2)
