"""`map_batches`: the same result as one call, in slices of at most `batch` rows."""

import numpy as np
import pytest

from tfvidgan.batching import map_batches


def test_map_batches_equals_one_call_and_respects_the_batch_size():
    x = np.arange(23 * 2, dtype=np.float32).reshape(23, 2)
    sizes = []

    def fn(b):
        sizes.append(len(b))
        return b * 2 + 1

    np.testing.assert_array_equal(map_batches(fn, x, 5), x * 2 + 1)
    assert sizes == [5, 5, 5, 5, 3]


def test_map_batches_rejects_a_bad_batch_and_empty_input():
    with pytest.raises(ValueError, match="batch must be >= 1"):
        map_batches(lambda b: b, np.zeros((3, 1)), 0)
    with pytest.raises(ValueError, match="at least one row"):
        map_batches(lambda b: b, np.zeros((0, 1)), 4)
