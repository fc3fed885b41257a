"""Where RoI pooling, RoI Align and crop pooling read the feature map.

All three cut one RoI into P x P bins (Fast R-CNN, Girshick 2015, section
2.1) but place them differently:

- ``"roi_pool"`` (Fast R-CNN; ``torchvision.ops.roi_pool``): the corners are
  rounded to cells and every bin is widened outwards to whole cells, so bins
  are whole cells, 3 or 4 wide, and neighbours may share a row or column;
- ``"roi_align"`` (Mask R-CNN, He et al. 2017, section 3;
  ``torchvision.ops.roi_align``): bins are exactly RoI / P, each read at a
  regular grid of bilinear sample points, averaged;
- ``"crop_pool"`` (an affine grid as in Spatial Transformer Networks,
  Jaderberg et al. 2015, then a 2 x 2 max-pool): a 2P x 2P grid of bilinear
  samples over the RoI, so each bin holds 2 x 2 points, maximised.

Coordinates are in feature cells with cell (i, j) covering [j, j + 1] x
[i, i + 1]: an image pixel x lies at ``x * spatial_scale``. The RoI-pool bins
come from the layer's own cache (the bin edges it pooled over), and the
sample points from the layers' documented formulas (the tests check both
against the layers' outputs).
"""
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..checks import check_image_size, check_positive_int, check_positive_number
from ..nn.crop_pool import affine_grid, affine_theta
from ..nn.functional import roi_pool_forward

__all__ = ["roi_bin_geometry", "plot_roi_bins", "ROI_METHODS"]

ROI_METHODS = ("roi_pool", "roi_align", "crop_pool")

_BIN_COLORS = ("tab:blue", "tab:orange")


def _roi(roi):
    roi = np.asarray(roi, dtype=np.float64).reshape(-1)
    if roi.shape != (4,) or not np.isfinite(roi).all() \
            or roi[2] < roi[0] or roi[3] < roi[1]:
        raise ValueError(f"roi must be 4 finite numbers (x1, y1, x2, y2) with "
                         f"x2 >= x1 and y2 >= y1, in image pixels; got {roi.tolist()}")
    return roi


def roi_bin_geometry(roi, feature_size, spatial_scale, output_size=7,
                     method="roi_pool", sampling_ratio=2):
    """The bins (and sample points) one crop method uses for one RoI.

    Shape symbols: P bins per side, S sample points per side.

    Parameters
    ----------
    roi : (4,) float
        (x1, y1, x2, y2) in image pixels.
    feature_size : (int, int)
        (H, W) of the feature map, in cells.
    spatial_scale : float
        Cells per image pixel (1 / stride).
    output_size : int
        P.
    method : {"roi_pool", "roi_align", "crop_pool"}
    sampling_ratio : int
        RoI Align's sample points per bin side (> 0).

    Returns
    -------
    dict
        ``roi`` (4,) float64, the RoI in cells; ``x_bins``, ``y_bins`` (P, 2)
        float64, each bin's [start, end) in cells; ``x_samples``,
        ``y_samples`` (S,) float64, sample coordinates in cells (empty for
        "roi_pool", S = P * sampling_ratio for "roi_align", 2P for
        "crop_pool"); ``method``.
    """
    roi = _roi(roi)
    h, w = (check_positive_int(int(v), "feature_size")
            for v in check_image_size(feature_size, "feature_size"))
    p = check_positive_int(output_size, "output_size")
    scale = check_positive_number(spatial_scale, "spatial_scale")
    if method not in ROI_METHODS:
        raise ValueError(f"method must be one of {ROI_METHODS}, got {method!r}")
    cells = roi * scale
    empty = np.zeros(0)
    if method == "roi_pool":
        # the bin edges the layer itself pooled over (its cache)
        _, cache = roi_pool_forward(np.zeros((1, 1, h, w)), np.r_[0.0, roi][None],
                                    (p, p), scale)
        x_bins = np.stack([cache["w0"][0], cache["w1"][0]], axis=1).astype(np.float64)
        y_bins = np.stack([cache["h0"][0], cache["h1"][0]], axis=1).astype(np.float64)
        return dict(roi=cells, x_bins=x_bins, y_bins=y_bins, x_samples=empty,
                    y_samples=empty, method=method)
    edges_x = cells[0] + (cells[2] - cells[0]) * np.arange(p + 1) / p
    edges_y = cells[1] + (cells[3] - cells[1]) * np.arange(p + 1) / p
    if method == "roi_align":
        g = check_positive_int(sampling_ratio, "sampling_ratio")
        # sample i of bin k at start + (k + (i + 0.5) / g) * bin (aligned=True)
        offsets = (np.arange(p)[:, None] + (np.arange(g)[None, :] + 0.5) / g).reshape(-1)
        xs = cells[0] + offsets * (cells[2] - cells[0]) / p
        ys = cells[1] + offsets * (cells[3] - cells[1]) / p
    else:
        theta = affine_theta(np.r_[0.0, roi][None], scale, h, w)
        ys_grid, xs_grid = affine_grid(theta, 2 * p, 2 * p, h, w)
        # affine_grid gives pixel indices (centre of cell j at j): + 0.5 for cells
        xs, ys = xs_grid[0, 0, :] + 0.5, ys_grid[0, :, 0] + 0.5
    pairs = lambda e: np.stack([e[:-1], e[1:]], axis=1)
    return dict(roi=cells, x_bins=pairs(edges_x), y_bins=pairs(edges_y),
                x_samples=np.asarray(xs, np.float64), y_samples=np.asarray(ys, np.float64),
                method=method)


_TITLES = {"roi_pool": "RoI pooling: bins of whole cells",
           "roi_align": "RoI Align: exact bins, bilinear samples averaged",
           "crop_pool": "crop pooling: affine grid, 2 x 2 samples maxed per bin"}


def plot_roi_bins(geometry, feature_size, ax=None, title=None, show_cells=None):
    """The bins of one RoI drawn over the feature cells.

    Parameters
    ----------
    geometry : dict
        From :func:`roi_bin_geometry`, or any dict with its keys ``roi``,
        ``x_bins``, ``y_bins`` and optionally ``x_samples``, ``y_samples``
        (to draw a quantisation rule of your own).
    feature_size : (int, int)
        (H, W) of the feature map; its cells are drawn as a grid.
    ax : Axes, optional
    title : str, optional
    show_cells : (int, int), optional
        (rows, cols) of cells to show from the top-left corner; the whole map
        when omitted.

    Returns
    -------
    Figure
        The RoI in gold, the bins as alternating blue/orange rectangles (each
        inset by 6% of the smallest bin, so overlapping bins stay apart), the
        sample points as black dots.
    """
    h, w = (int(v) for v in check_image_size(feature_size, "feature_size"))
    for key in ("roi", "x_bins", "y_bins"):
        if key not in geometry:
            raise TypeError(f"geometry must have a {key!r} entry (see roi_bin_geometry), "
                            f"got keys {sorted(geometry)}")
    rows, cols = (h, w) if show_cells is None else show_cells
    if ax is None:
        fig = Figure(figsize=(5.5, 5.5 * rows / cols + 0.4), layout="constrained")
        ax = fig.add_subplot()
    fig = ax.figure
    for j in range(cols + 1):
        ax.axvline(j, color="0.85", linewidth=0.6, zorder=0)
    for i in range(rows + 1):
        ax.axhline(i, color="0.85", linewidth=0.6, zorder=0)
    x1, y1, x2, y2 = geometry["roi"]
    ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, facecolor="gold", alpha=0.35,
                           edgecolor="goldenrod", linewidth=2, zorder=1))
    x_bins, y_bins = np.asarray(geometry["x_bins"]), np.asarray(geometry["y_bins"])
    # each bin inset a little, so that RoI pooling's overlapping bins stay apart
    inset = 0.06 * min(np.diff(x_bins).min(), np.diff(y_bins).min())
    for a, (t, b) in enumerate(y_bins):
        for c, (l, r) in enumerate(x_bins):
            color = _BIN_COLORS[(a + c) % 2]
            ax.add_patch(Rectangle((l + inset, t + inset), r - l - 2 * inset, b - t - 2 * inset,
                                   facecolor=color, alpha=0.18, zorder=2))
            ax.add_patch(Rectangle((l + inset, t + inset), r - l - 2 * inset, b - t - 2 * inset,
                                   fill=False, edgecolor=color, linewidth=1.2, zorder=2))
    xs = np.asarray(geometry.get("x_samples", ()))
    ys = np.asarray(geometry.get("y_samples", ()))
    if xs.size and ys.size:
        gx, gy = np.meshgrid(xs, ys)
        ax.plot(gx.ravel(), gy.ravel(), "k.", markersize=2.5, zorder=3)
    ax.set_xlim(0, cols), ax.set_ylim(rows, 0), ax.set_aspect("equal")
    ax.set_xlabel("feature-map column (cells)"), ax.set_ylabel("row")
    ax.set_title(title or _TITLES.get(geometry.get("method"), "bins"), fontsize=9)
    return fig
