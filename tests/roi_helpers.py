"""Test helpers shared by tests/test_roi_pool.py and tests/test_roi_align.py:
random RoIs that hit every border case, and the numpy/CuPy mixing check."""
import numpy as np
import pytest

#: A small valid layer input: features (N=2, C=3, H=4, W=5) and one RoI.
F = np.zeros((2, 3, 4, 5), np.float32)
R = np.array([[0, 1, 1, 30, 30]], np.float32)


def random_rois(rng, n, n_images, extent, dtype, zero_size=False):
    """(n, 5) RoIs ``[batch, x1, y1, x2, y2]`` in pixels, mixed: normal,
    sub-pixel, tiny, off-map, bigger than the map, malformed (x2 < x1), and
    with ``zero_size`` one of zero size (x2 = x1, y2 = y1)."""
    xy = rng.uniform(-0.3 * extent, 1.3 * extent, (n, 4))
    lo, hi = np.minimum(xy[:, :2], xy[:, 2:]), np.maximum(xy[:, :2], xy[:, 2:])
    boxes = np.concatenate([lo, hi], 1)
    boxes[: n // 6, 2:] = boxes[: n // 6, :2] + rng.uniform(0, 3, (n // 6, 2))  # tiny
    covers = n // 6
    if zero_size:
        boxes[covers, 2:] = boxes[covers, :2]
        covers += 1
    boxes[covers: n // 4] = [-2 * extent, -extent, 3 * extent, 2.5 * extent]  # covers all
    boxes[n // 4: n // 3, 2:] = boxes[n // 4: n // 3, :2] - 7  # malformed
    batch = rng.integers(0, n_images, (n, 1))
    return np.concatenate([batch, boxes], 1).astype(dtype)


class FakeCupy(np.ndarray):
    """A numpy array that minirpn.backend takes for a CuPy one."""


FakeCupy.__module__ = "cupy._core.core"


def assert_numpy_and_cupy_do_not_mix(forward, backward):
    """A RoI layer refuses a mix of numpy and CuPy arrays up front, naming
    the host array: rois in the forward, the cache in the backward."""
    with pytest.raises(TypeError, match="rois must be a cupy array"):
        forward(F.view(FakeCupy), R)
    y, cache = forward(F, R)
    with pytest.raises(TypeError, match="the forward's cache must be a cupy array"):
        backward(y.view(FakeCupy), cache)
