"""Tests of minirpn.visualize.roi_bins: the bins drawn are the bins the layers use."""
import matplotlib

matplotlib.use("Agg")

import numpy as np   # noqa: E402
import pytest        # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from minirpn import visualize as V   # noqa: E402
from minirpn.nn.crop_pool import crop_pool_forward   # noqa: E402
from minirpn.nn.functional import roi_align_forward, roi_pool_forward   # noqa: E402

ROI = np.array([0.0, 0.0, 665.0, 665.0])     # the 665-pixel box at stride 32
SIZE = (25, 25)


def centres():
    """(1, 1, H, W) features whose value is each cell's centre column, in cells."""
    return np.tile(np.arange(SIZE[1]) + 0.5, (SIZE[0], 1))[None, None]


def test_roi_pool_bins_are_the_layers_bins():
    g = V.roi_bin_geometry(ROI, SIZE, 1 / 32, 7, "roi_pool")
    # 665 / 32 = 20.78 rounds to 21: cells 0..21, 22 cells in 7 bins of 22/7
    expected = [(int(np.floor(k * 22 / 7)), int(np.ceil((k + 1) * 22 / 7))) for k in range(7)]
    np.testing.assert_array_equal(g["x_bins"], expected)
    np.testing.assert_array_equal(g["y_bins"], expected)
    assert g["x_samples"].size == 0
    # the max of a bin over the centre columns is its last cell's centre
    y, _ = roi_pool_forward(centres(), np.r_[0.0, ROI][None], 7, 1 / 32)
    np.testing.assert_allclose(y[0, 0, 0], g["x_bins"][:, 1] - 0.5)


def test_roi_align_bins_are_exact_and_samples_average_to_their_centres():
    g = V.roi_bin_geometry(ROI, SIZE, 1 / 32, 7, "roi_align", sampling_ratio=2)
    np.testing.assert_allclose(g["x_bins"][:, 1] - g["x_bins"][:, 0], 665 / 32 / 7)
    assert g["x_samples"].shape == (14,)
    y, _ = roi_align_forward(centres(), np.r_[0.0, ROI][None], 7, 1 / 32, 2, True)
    np.testing.assert_allclose(y[0, 0, 0], g["x_samples"].reshape(7, 2).mean(axis=1))
    np.testing.assert_allclose(y[0, 0, 0], g["x_bins"].mean(axis=1))


def test_crop_pool_samples_are_the_affine_grid_and_the_max_takes_the_right_one():
    g = V.roi_bin_geometry(ROI, SIZE, 1 / 32, 7, "crop_pool")
    assert g["x_samples"].shape == g["y_samples"].shape == (14,)
    y, _ = crop_pool_forward(centres(), np.r_[0.0, ROI][None], 7, 1 / 32)
    np.testing.assert_allclose(y[0, 0, 0], g["x_samples"].reshape(7, 2).max(axis=1))


def test_plot_roi_bins_draws_the_roi_and_every_bin():
    g = V.roi_bin_geometry([10.0, 20.0, 300.0, 200.0], (12, 16), 1 / 32, 3, "roi_align")
    fig = V.plot_roi_bins(g, (12, 16))
    ax = fig.axes[0]
    patches = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(patches) == 1 + 2 * 9              # the RoI, then each bin filled and outlined
    assert patches[0].get_width() == pytest.approx(290 / 32)
    bin_width = 290 / 32 / 3
    assert patches[1].get_x() == pytest.approx(10 / 32 + 0.06 * min(bin_width, 180 / 32 / 3))
    assert len(ax.lines[-1].get_xdata()) == 6 * 6   # 3 bins x 2 samples a side


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="method"):
        V.roi_bin_geometry(ROI, SIZE, 1 / 32, 7, "roi_warp")
    with pytest.raises(ValueError, match="roi"):
        V.roi_bin_geometry([5, 0, 1, 4], SIZE, 1 / 32)
    with pytest.raises(TypeError, match="x_bins"):
        V.plot_roi_bins({"roi": ROI}, SIZE)
