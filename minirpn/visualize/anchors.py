"""Pictures of the anchors (network pixels) and of their sampled labels (original pixels)."""
import numpy as np
from matplotlib import colormaps
from matplotlib.patches import Rectangle

from ..backend import to_numpy
from ..checks import check_image_size, check_positive_int
from .boxes import (GT, IGNORED, NEGATIVE, POSITIVE, _boxes, _display_copy, _field, _image,
                    _mapped, _new_axes, _show_image, _spread,
                    draw_boxes)


def cell_anchor_indices(row, col, feature_width, num_anchors):
    """Rows of the anchor array holding the A anchors of feature cell (row, col).

    Anchors are ordered (Hf, Wf, A) (:mod:`minirpn.anchors`), so cell (y, x)
    owns rows ``(y * Wf + x) * A + a`` for a = 0..A-1.

    Returns
    -------
    (A,) int64
    """
    row, col = int(row), int(col)
    wf, a = check_positive_int(feature_width, "feature_width"), check_positive_int(num_anchors,
                                                                                "num_anchors")
    if row < 0 or not 0 <= col < wf:
        raise ValueError(f"(row, col) must be a cell with row >= 0 and 0 <= col < "
                         f"{wf}, got ({row}, {col})")
    return (row * wf + col) * a + np.arange(a, dtype=np.int64)


def plot_anchors(image_size, anchors, indices=None, image=None, ax=None, max_anchors=200):
    """Anchors in the NETWORK's pixels, with the image border and their centres.

    Shapes: N anchors, M drawn.

    Parameters
    ----------
    image_size : (h', w'), the network's image size (``trace["preprocess"]["image_size"]``)
    anchors : (N, 4) float, network pixels (``trace["anchors"]["anchors"]``)
    indices : (M,) int, optional
        Anchors to draw, e.g. ``cell_anchor_indices(y, x, Wf, A)``; all when None.
    image : (H, W, 3) uint8, optional
        Stretched under the anchors to ``image_size`` (what the resize does).
    ax : Axes, optional
    max_anchors : int
        More than this many anchors is refused (ValueError): pass ``indices``.

    Returns
    -------
    Figure
    """
    h, w = check_image_size(image_size)
    anchors = _boxes(anchors, "anchors")
    indices = np.arange(len(anchors)) if indices is None else to_numpy(indices).reshape(-1)
    if len(indices) > max_anchors:
        raise ValueError(f"plot_anchors draws at most max_anchors={max_anchors} anchors, got "
                         f"{len(indices)}: pass indices=, e.g. cell_anchor_indices(...)")
    chosen = anchors[indices]
    fig, (ax,) = _new_axes(ax, (h, w))
    if image is not None:
        ax.imshow(_display_copy(_image(image)), extent=(0, w, h, 0), alpha=0.6)
    ax.plot([0, w, w, 0, 0], [0, 0, h, h, 0], color="black", linewidth=1)
    cmap = colormaps["tab20"]
    for j, (i, (x1, y1, x2, y2)) in enumerate(zip(indices, chosen)):
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=cmap(j % 20),
                               label=f"{i}: {x2 - x1:.0f} x {y2 - y1:.0f}, h/w "
                                     f"{(y2 - y1) / (x2 - x1):.2g}"))
    if len(chosen):
        ax.scatter((chosen[:, 0] + chosen[:, 2]) / 2, (chosen[:, 1] + chosen[:, 3]) / 2,
                   marker="+", color="black", zorder=3)
        if len(chosen) <= 16:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    lo, hi = chosen.min(axis=0, initial=0), chosen.max(axis=0, initial=0)   # border included
    ax.set_xlim(lo[0] - 4, max(hi[2], w) + 4)
    ax.set_ylim(max(hi[3], h) + 4, lo[1] - 4)
    ax.set_aspect("equal")
    ax.set_title(f"{len(chosen)} of {len(anchors)} anchors on the {h:.0f} x {w:.0f} network "
                 "image", fontsize=9)
    return fig


def plot_anchor_labels(image, anchor_labels, network_size=None, max_negatives=40,
                       max_ignored=40, ax=None):
    """Anchor labels after sampling: positives green, negatives red, ignored grey.

    Every positive is drawn; negatives and ignored anchors are thinned to at
    most ``max_negatives`` / ``max_ignored``, spread evenly over the anchor
    order (hence over the image). GT boxes are dashed white.

    Parameters
    ----------
    image : (H, W, 3) uint8, original pixels
    anchor_labels : AnchorLabels, or ``trace["anchor_labels"]``
        Its ``labels`` (A,) int8 in {-1, 0, 1}, ``anchors`` (A, 4) and
        ``gt_boxes`` (K, 4) in network pixels.
    network_size : (h', w'), optional
        Defaults to ``anchor_labels.image_size``.
    max_negatives, max_ignored : int >= 0
    ax : Axes, optional

    Returns
    -------
    Figure
    """
    image = _image(image)
    if not hasattr(anchor_labels, "explain"):
        anchor_labels = _field(anchor_labels, "result", "anchor_labels")
    size = anchor_labels.image_size if network_size is None else network_size
    anchors = _mapped(anchor_labels.anchors, size, image.shape[:2], "anchors")
    labels = to_numpy(anchor_labels.labels)
    pos, neg, ign = (np.flatnonzero(labels == v) for v in (1, 0, -1))
    fig, (ax,) = _new_axes(ax, image.shape)
    _show_image(ax, image)
    for idx, color, width in ((_spread(ign, max_ignored), IGNORED, 0.6),
                              (_spread(neg, max_negatives), NEGATIVE, 0.8), (pos, POSITIVE, 1.6)):
        draw_boxes(ax, None, anchors[idx], color=color, linewidth=width, captions=False)
    gt_boxes = _mapped(anchor_labels.gt_boxes, size, image.shape[:2], "gt_boxes")
    draw_boxes(ax, None, gt_boxes, color=GT, linestyle="--", captions=False)
    ax.set_title(f"{len(pos)} positive (green), {len(neg)} negative (red),\n{len(ign)} "
                 f"ignored (grey); {min(len(neg), max_negatives)} negative and "
                 f"{min(len(ign), max_ignored)} ignored shown", fontsize=9)
    return fig
