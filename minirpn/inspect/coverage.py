"""How well a config's anchors cover a dataset's GT boxes, from annotations only.

The RPN learns a box only through anchors labelled positive for it (Ren et
al. 2015, section 3.1.2): an anchor with IoU >= ``rpn_positive_iou``, or,
failing that, the box's best anchor (py-faster-rcnn's
``anchor_target_layer.py``, "fg label: for each gt, anchor with highest
overlap"). So the question "do my anchors fit my objects?" is answered by
each GT box's best IoU with the anchors of its image, and that needs no
pixels: only the image sizes the annotations declare.

Each box is scaled as :mod:`minirpn.preprocess` scales it (shorter side to
``target_size``, longer side at most ``max_size``, per-axis factors of the
rounded size), in ``config.dtype``. The image's anchors are those of its
feature map, ``ceil(h' / stride) x ceil(w' / stride)`` cells, minus the
ones the border rule ignores.

The best IoU is found without building the (anchors x boxes) matrix. The
intersection of a box with an anchor of fixed shape is ``iw(dx) * ih(dy)``,
each factor non-increasing in the distance between centres along its axis,
and IoU = inter / (area_a + area_g - inter) grows with the intersection.
So for each anchor shape the best grid cell is, along each axis
independently, the inside cell nearest the box's centre: one of two
candidates, clipped to the cells whose anchors pass the border rule. The
cost is O(boxes x shapes), and the anchor coordinates are computed with the
same float operations as :func:`minirpn.anchors.grid_anchors`.
"""
import dataclasses

import numpy as np

from ..anchors import base_anchors
from ..backend import to_numpy
from ..preprocess import compute_scale

__all__ = ["Annotations", "Coverage", "network_sizes", "prepare_boxes", "shape_ious",
           "anchor_coverage"]


@dataclasses.dataclass
class Annotations:
    """A dataset's GT boxes and declared image sizes, without pixels.

    Shapes: N images, K_i boxes in image i.

    Attributes
    ----------
    sizes : (N, 2) int64
        Each image's (H, W) as its annotation declares it.
    boxes : list of N (K_i, 4) float32
        GT boxes (x1, y1, x2, y2) in original pixels.
    image_ids : list of N
        The dataset's image ids (COCO ids, VOC file stems, indices).
    source : str
        What they were read from, for messages.
    """
    sizes: object
    boxes: list
    image_ids: list
    source: str = "annotations"


def network_sizes(sizes, config):
    """The network's (h', w') of images of (H, W) ``sizes``, (N, 2) int64.

    As :func:`minirpn.preprocess.resize_image`: ``max(1, round(H * scale))``
    with :func:`~minirpn.preprocess.compute_scale`'s scale.
    """
    out = np.empty((len(sizes), 2), dtype=np.int64)
    cache = {}
    for n, (H, W) in enumerate(np.asarray(sizes).tolist()):
        if (H, W) not in cache:
            s = compute_scale(H, W, config.target_size, config.max_size)
            cache[H, W] = (max(1, round(H * s)), max(1, round(W * s)))
        out[n] = cache[H, W]
    return out


def _check(annotations):
    sizes = np.asarray(annotations.sizes)
    if sizes.ndim != 2 or sizes.shape[1] != 2 or len(sizes) != len(annotations.boxes):
        raise ValueError(f"{annotations.source}: sizes must be (N, 2) with one (H, W) per "
                         f"boxes entry, got shape {sizes.shape} for {len(annotations.boxes)} "
                         f"images")
    counts = np.array([len(np.asarray(b).reshape(-1, 4)) for b in annotations.boxes])
    if counts.sum() == 0:
        raise ValueError(f"{annotations.source}: the dataset has {len(sizes)} images but no "
                         f"GT boxes: there is nothing whose anchor coverage could be measured")
    image = np.repeat(np.arange(len(counts)), counts)
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    b = np.concatenate([np.asarray(x, dtype=np.float64).reshape(-1, 4)
                        for x in annotations.boxes])
    H, W = sizes[image, 0], sizes[image, 1]
    bad = ~np.isfinite(b).all(axis=1) | (b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1])
    out = (b[:, 0] < 0) | (b[:, 1] < 0) | (b[:, 2] > W) | (b[:, 3] > H)
    for rows, what in ((bad, "is not finite or has zero width or height"),
                       (out, "lies outside its {}x{} image (W x H)")):
        if rows.any():
            k = int(np.flatnonzero(rows)[0])
            i = int(image[k])
            raise ValueError(f"{annotations.source}: image {i} (id "
                             f"{annotations.image_ids[i]!r}) box {int(within[k])} "
                             f"{b[k].tolist()} {what.format(W[k], H[k])}")


def _axis_tables(base, stride, cells, lo_col, hi_col, dtype):
    """Anchor edges along one axis: (A, cells) lows and highs, as grid_anchors adds them."""
    shift = np.arange(cells, dtype=dtype) * dtype.type(stride)
    return shift[None, :] + base[:, lo_col, None], shift[None, :] + base[:, hi_col, None]


def _best_along_axis(lo_edges, hi_edges, g_lo, g_hi, limit, cells, first_ok, stride):
    """Per box and shape: the inside cell nearest the box centre and its overlap.

    Shapes: A shapes, K boxes, C cells. ``lo_edges``/``hi_edges`` (A, C) in
    the config's dtype; ``g_lo``/``g_hi``/``limit`` (K,) in that dtype;
    ``cells`` (K,) int; ``first_ok`` (A,) int. Returns the cell (K, A) int64
    (-1 where no anchor of that shape passes the border rule) and the
    overlap along this axis (K, A), 0 there.
    """
    A, K = lo_edges.shape[0], g_lo.shape[0]
    dtype = lo_edges.dtype
    rows = np.arange(A)[None, :]
    # Last cell whose far edge stays within the image (+ allowed_border).
    last = np.stack([np.searchsorted(hi_edges[a], limit, side="right") - 1
                     for a in range(A)], axis=1)                     # (K, A)
    last = np.minimum(last, (cells - 1)[:, None])
    first = np.broadcast_to(first_ok[None, :], (K, A))
    # Base anchors are centred at stride / 2 (minirpn.anchors): cell j's
    # anchors are centred at (j + 0.5) * stride.
    t = (g_lo.astype(np.float64) + g_hi) / (2.0 * stride) - 0.5
    best_cell = np.full((K, A), -1, dtype=np.int64)
    best_ov = np.full((K, A), -1.0, dtype=dtype)
    for cand in (np.floor(t), np.ceil(t)):
        j = np.clip(cand.astype(np.int64)[:, None], first, np.maximum(last, first))
        j = np.minimum(j, lo_edges.shape[1] - 1)    # shapes with no inside cell: masked below
        ov = np.maximum(np.minimum(hi_edges[rows, j], g_hi[:, None])
                        - np.maximum(lo_edges[rows, j], g_lo[:, None]), dtype.type(0))
        better = ov > best_ov
        best_cell[better], best_ov[better] = j[better], ov[better]
    empty = first > last
    best_cell[empty], best_ov[empty] = -1, 0
    return best_cell, best_ov


def _centred_iou(base, gw, gh):
    """(K,) best IoU of each (gw, gh) box with an anchor shape centred on it (no grid)."""
    aw, ah = base[:, 2] - base[:, 0], base[:, 3] - base[:, 1]            # (A,)
    inter = np.minimum(aw[None], gw[:, None]) * np.minimum(ah[None], gh[:, None])
    return (inter / (aw * ah + (gw * gh)[:, None] - inter)).max(axis=1)


#: Why a box's best anchor is below the negative threshold (see Coverage.cause).
CAUSES = ("too small", "too large", "aspect ratio", "stride or border", "no anchor inside")


@dataclasses.dataclass
class Coverage:
    """Best IoU of every GT box with its image's anchors (see the module docstring).

    Shapes: N images, K GT boxes in all, A anchors per cell.

    Attributes
    ----------
    config : Config
        Whose anchors, preprocessing and thresholds were used.
    annotations : Annotations
    image_index : (K,) int64
        The image of each box.
    network_size : (N, 2) int64
        Each image's (h', w') after the model's resize.
    gt_boxes : (K, 4) float64, original pixels
    network_boxes : (K, 4) config.dtype, network pixels
    best_iou : (K,) float64
        Max IoU over the image's anchors that pass the border rule.
    best_anchor : (K,) int64
        Its anchor's row in the image's (Hf, Wf, A) anchor array (as
        ``model.anchors`` and ``trace["anchors"]`` order them); -1 where no
        anchor overlaps the box at all.
    best_anchor_box : (K, 4) float64, network pixels; NaN rows where -1
    centred_iou : (K,) float64
        Best IoU with an anchor shape centred on the box: what the shapes
        alone allow, before the stride grid and the border rule.
    cause : (K,) int8
        For boxes whose best IoU is below ``rpn_negative_iou``, an index
        into :data:`CAUSES`: no shape reaches the threshold even centred
        because the box is smaller than every anchor (0), larger (1) or of
        an aspect ratio between its sizes (2); or a centred shape would,
        but the grid or the border rule leaves no such anchor (3); or no
        anchor that passes the border rule overlaps the box at all (4: not
        even rule 4 makes one positive). -1 for the other boxes.
    """
    config: object
    annotations: Annotations
    image_index: object
    network_size: object
    gt_boxes: object
    network_boxes: object
    best_iou: object
    best_anchor: object
    best_anchor_box: object
    centred_iou: object
    cause: object

    @property
    def num_gt(self):
        """K, the number of GT boxes."""
        return int(self.best_iou.shape[0])


def _network_boxes(annotations, net, dtype):
    counts = [len(np.asarray(b).reshape(-1, 4)) for b in annotations.boxes]
    image_index = np.repeat(np.arange(len(counts)), counts)
    gt = np.concatenate([np.asarray(b, dtype=np.float64).reshape(-1, 4)
                         for b in annotations.boxes])
    sizes = np.asarray(annotations.sizes, dtype=np.float64)[image_index]   # (K, 2) H, W
    f = net[image_index] / sizes                                           # (K, 2) sy, sx
    # As PreprocessedBatch.network_boxes: boxes and factors both in the dtype.
    factors = np.stack([f[:, 1], f[:, 0], f[:, 1], f[:, 0]], axis=1).astype(dtype)
    return image_index, gt, gt.astype(dtype) * factors


def prepare_boxes(annotations, config):
    """The boxes in network pixels and their images' feature sizes (checked input).

    Returns
    -------
    dict
        ``image_index`` (K,), ``gt`` (K, 4) float64 original pixels,
        ``boxes`` (K, 4) config.dtype network pixels, ``net`` (N, 2) (h', w'),
        ``hf``, ``wf`` (K,) the feature map of each box's image.
    """
    dtype, stride = np.dtype(config.dtype), config.stride
    net = network_sizes(annotations.sizes, config)                         # (N, 2)
    image_index, gt, boxes = _network_boxes(annotations, net, dtype)
    cells = -(-net // stride)                                              # (N, 2) Hf, Wf
    return dict(image_index=image_index, gt=gt, boxes=boxes, net=net,
                hf=cells[image_index, 0], wf=cells[image_index, 1])


def shape_ious(prepared, config, scales, ratios):
    """Per box and anchor shape: the best IoU over the grid, and where it is.

    Shapes: K boxes, A = len(ratios) * len(scales) shapes (ratios outer).

    Parameters
    ----------
    prepared : dict
        :func:`prepare_boxes`' result.
    config : Config
        Supplies the stride, rpn_allowed_border and the dtype.
    scales, ratios : sequence of float

    Returns
    -------
    iou : (K, A) config.dtype
        0 where no anchor of the shape passes the border rule.
    cx, cy : (K, A) int64
        The cell column and row of that anchor (-1 where none).
    anchor : (K, A, 4) config.dtype
        That anchor, network pixels.
    """
    boxes, hf, wf, net = (prepared[k] for k in ("boxes", "hf", "wf", "net"))
    dtype, stride = boxes.dtype, config.stride
    base = to_numpy(base_anchors(stride, scales, ratios, dtype=dtype))
    A = base.shape[0]
    b = config.rpn_allowed_border
    # The border rule compares float anchors with the Python floats -b and
    # W + b, which numpy casts to the anchors' dtype.
    x1s, x2s = _axis_tables(base, stride, int(wf.max()), 0, 2, dtype)
    y1s, y2s = _axis_tables(base, stride, int(hf.max()), 1, 3, dtype)
    lo = dtype.type(-b)
    first_x = np.array([np.searchsorted(x1s[a], lo, side="left") for a in range(A)])
    first_y = np.array([np.searchsorted(y1s[a], lo, side="left") for a in range(A)])
    limit = (net[prepared["image_index"]].astype(np.float64) + b).astype(dtype)  # h'+b, w'+b
    cx, ovx = _best_along_axis(x1s, x2s, boxes[:, 0], boxes[:, 2], limit[:, 1], wf,
                               first_x, stride)
    cy, ovy = _best_along_axis(y1s, y2s, boxes[:, 1], boxes[:, 3], limit[:, 0], hf,
                               first_y, stride)
    valid = (cx >= 0) & (cy >= 0)
    rows = np.arange(A)[None, :]
    cxs, cys = np.maximum(cx, 0), np.maximum(cy, 0)
    anchor = np.stack([x1s[rows, cxs], y1s[rows, cys], x2s[rows, cxs], y2s[rows, cys]],
                      axis=-1)                                             # (K, A, 4)
    # The formula of minirpn.ops.box_iou, in the same dtype.
    inter = ovx * ovy
    area_a = (anchor[..., 2] - anchor[..., 0]) * (anchor[..., 3] - anchor[..., 1])
    area_g = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[:, None]
    iou = np.where(valid, inter / (area_a + area_g - inter), dtype.type(0))
    return iou, cx, cy, anchor


def anchor_coverage(annotations, config):
    """Best IoU of each GT box with the anchors of its image, and why it is low.

    Shapes: N images, K boxes.

    Parameters
    ----------
    annotations : Annotations
        Declared (H, W) image sizes and (K_i, 4) boxes in original pixels,
        e.g. from :func:`minirpn.inspect.read_annotations`.
    config : Config
        Supplies target_size, max_size, the stride, anchor_scales,
        anchor_ratios, rpn_allowed_border, the thresholds and the dtype.

    Returns
    -------
    Coverage

    Raises
    ------
    ValueError
        No GT box at all, or a box that is not finite, flat, or outside its
        image (named by image index, id and box index).
    """
    _check(annotations)
    prepared = prepare_boxes(annotations, config)
    iou, cx, cy, anchor = shape_ious(prepared, config, config.anchor_scales,
                                     config.anchor_ratios)
    A = iou.shape[1]
    image_index, gt, boxes, net, wf = (prepared[k] for k in ("image_index", "gt", "boxes",
                                                             "net", "wf"))
    dtype = boxes.dtype
    base = to_numpy(base_anchors(config.stride, config.anchor_scales, config.anchor_ratios,
                                 dtype=dtype))
    a_best = iou.argmax(axis=1)
    k = np.arange(len(boxes))
    best = iou[k, a_best].astype(np.float64)
    hit = best > 0
    best_anchor = np.where(hit, (cy[k, a_best] * wf + cx[k, a_best]) * A + a_best, -1)
    best_box = np.where(hit[:, None], anchor[k, a_best].astype(np.float64), np.nan)
    gw = (boxes[:, 2] - boxes[:, 0]).astype(np.float64)
    gh = (boxes[:, 3] - boxes[:, 1]).astype(np.float64)
    centred = _centred_iou(base.astype(np.float64), gw, gh)
    return Coverage(config, annotations, image_index, net, gt, boxes, best, best_anchor,
                    best_box, centred, _causes(base, gw, gh, best, centred, config))


def _causes(base, gw, gh, best, centred, config):
    areas = (base[:, 2] - base[:, 0]).astype(np.float64) * (base[:, 3] - base[:, 1])
    area = gw * gh
    cause = np.full(best.shape, -1, dtype=np.int8)
    low = best < config.rpn_negative_iou
    shape_limited = centred < config.rpn_negative_iou
    cause[low & ~shape_limited] = 3
    cause[low & shape_limited] = 2
    cause[low & shape_limited & (area < areas.min())] = 0
    cause[low & shape_limited & (area > areas.max())] = 1
    cause[best == 0] = 4
    return cause
