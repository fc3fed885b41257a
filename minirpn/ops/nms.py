"""Greedy non-maximum suppression, numba-compiled.

Semantics are those of ``torchvision.ops.nms`` (greedy NMS, as
py-faster-rcnn's lib/nms/py_cpu_nms.py; Ren et al. 2015, section 3.3, run it
on the proposals at IoU 0.7), written out in plain loops as
:func:`minirpn.ops.reference.nms_reference` (read that one first; ``nms``
and ``batched_nms`` are tested to keep the same indices, float32 and
float64):

1. sort boxes by score, descending;
2. walk the sorted list; a box not yet suppressed is kept;
3. a kept box suppresses every later box whose IoU with it is strictly
   greater than the threshold (IoU == threshold survives).

Ties in score: torchvision sorts with a possibly unstable sort, so the order
of equal scores is unspecified there. Here the sort is *stable*: equal
scores keep their original index order, so the earlier box wins. Results
are therefore reproducible, and equal torchvision's whenever scores are
distinct.

IoU is computed in the boxes' dtype; like torchvision, a float32 IoU is
compared with the threshold as a double. The kernel keeps that comparison
in float32 (twice the SIMD width) by comparing with the largest float32
not above the threshold, which gives the same answer (``_threshold_as``).

CuPy arrays run the same algorithm on the GPU (torchvision's bitmask NMS,
:mod:`minirpn.cuda.nms_kernel`) with the same IoU arithmetic and threshold,
so the kept indices are identical; nothing is copied to the host.
"""
import numpy

from ..backend import get_array_module
from ..checks import check_array, check_float_array, check_probability
from ..checks import deferrable, first_bad_row
from ..jit import njit
from .boxes import check_boxes

__all__ = ["nms", "batched_nms"]


@njit(error_model="numpy")
def _nms_kernel(x1, y1, x2, y2, starts, threshold, zero):
    """Greedy NMS over segments [starts[s], starts[s+1]) of score-sorted
    boxes given as four contiguous (N,) columns, which it overwrites.
    Boxes in different segments never suppress each other. Returns the
    kept positions (into the sorted order), ascending. ``threshold`` and
    ``zero`` share the boxes' dtype so float32 stays float32."""
    n = x1.shape[0]
    area = (x2 - x1) * (y2 - y1)
    position = numpy.arange(n)          # sorted position of each slot
    suppressed = numpy.zeros(n, numpy.uint8)
    keep = numpy.empty(n, numpy.int64)
    k = 0
    for s in range(starts.shape[0] - 1):
        i, end = starts[s], starts[s + 1]
        hits = 0
        while i < end:
            # 1. the best box not yet suppressed is kept
            if suppressed[i]:
                i += 1
                continue
            keep[k] = position[i]
            k += 1
            ix1, iy1, ix2, iy2, iarea = x1[i], y1[i], x2[i], y2[i], area[i]
            i += 1
            # 2. it suppresses the later boxes it overlaps by IoU > t.
            # Views indexed from 0 let LLVM drop the negative-index check
            # and vectorise (x1[j], j in range(i, end) does neither).
            # Branch-free: two zero-area boxes give 0/0 = NaN, NaN > t is
            # False: they act as IoU 0 and never suppress each other.
            lx1, ly1, lx2, ly2 = x1[i:end], y1[i:end], x2[i:end], y2[i:end]
            larea, lsup = area[i:end], suppressed[i:end]
            for j in range(lx1.shape[0]):
                w = max(min(ix2, lx2[j]) - max(ix1, lx1[j]), zero)
                h = max(min(iy2, ly2[j]) - max(iy1, ly1[j]), zero)
                inter = w * h
                hit = inter / (iarea + larea[j] - inter) > threshold
                lsup[j] |= hit
                hits += hit
            # 3. once a quarter of the rest may be suppressed, squeeze the
            # suppressed boxes out (order kept), so later kept boxes do
            # not test them again (RPN output, most boxes suppressed by the
            # first few kept: benchmarks/README.md).
            if 4 * hits > end - i:
                end = _compact(x1, y1, x2, y2, area, position, suppressed,
                               i, end)
                hits = 0
    return keep[:k]


@njit()
def _compact(x1, y1, x2, y2, area, position, suppressed, start, end):
    """Move the unsuppressed slots of [start, end) to its front, in order;
    return the new end."""
    w = start
    for r in range(start, end):
        if not suppressed[r]:
            x1[w], y1[w], x2[w], y2[w] = x1[r], y1[r], x2[r], y2[r]
            area[w], position[w] = area[r], position[r]
            suppressed[w] = 0
            w += 1
    return w


def _threshold_as(dtype, threshold):
    """The largest value t' of ``dtype`` with t' <= threshold.

    For a float32 IoU v, ``v > t'`` equals torchvision's ``v > threshold``
    evaluated in double precision, yet the comparison stays in float32.
    """
    t = dtype.type(threshold)
    if float(t) > threshold:
        t = numpy.nextafter(t, dtype.type(-numpy.inf))
    return t


@deferrable
def _check_scores(scores, n):
    check_float_array(scores, "scores", shape=(n,))
    row = first_bad_row(~get_array_module(scores).isfinite(scores))
    if row is not None:
        raise ValueError(f"scores row {row} is not finite: {scores[row]}")


def _run(boxes, order, starts, iou_threshold):
    """Gather boxes in ``order`` into columns and run the kernel."""
    sorted_boxes = boxes[order]
    cols = [numpy.ascontiguousarray(sorted_boxes[:, k]) for k in range(4)]
    t = _threshold_as(boxes.dtype, iou_threshold)
    return _nms_kernel(*cols, starts, t, boxes.dtype.type(0))


def _run_gpu(boxes, order, sorted_labels, iou_threshold):
    """The GPU kernel on boxes in ``order``; kept positions, ascending."""
    from ..cuda import nms_kernel  # imports numba.cuda: only on a GPU path
    return nms_kernel.keep_sorted(boxes[order], sorted_labels,
                                  _threshold_as(boxes.dtype, iou_threshold))


def _same_module(xp, **arrays):
    """A GPU call must not mix in host arrays: name the one that is."""
    for name, a in arrays.items():
        if get_array_module(a) is not xp:
            raise TypeError(f"{name} must be a {xp.__name__} array (all inputs on "
                            f"one device), got {type(a).__module__}.{type(a).__name__}")


def nms(boxes, scores, iou_threshold):
    """Greedy non-maximum suppression.

    Shapes: N boxes, K kept.

    Parameters
    ----------
    boxes : ndarray, (N, 4) float32 or float64
        Boxes (x1, y1, x2, y2); N may be 0. Zero-area boxes have IoU 0
        with everything, so they never suppress nor get suppressed.
    scores : ndarray, (N,) float32 or float64
        Finite scores, higher is better.
    iou_threshold : float
        In [0, 1]; a box is dropped when its IoU with a kept box is
        strictly greater.

    Returns
    -------
    ndarray, (K,) int64
        Indices into ``boxes`` of the kept boxes, highest score first (equal
        scores: lower index first): those of
        :func:`minirpn.ops.reference.nms_reference`.
    """
    check_boxes(boxes, "boxes")
    _check_scores(scores, boxes.shape[0])
    t = check_probability(iou_threshold, "iou_threshold")
    xp = get_array_module(boxes, scores)
    if xp is not numpy:
        _same_module(xp, boxes=boxes, scores=scores)
        order = xp.argsort(-scores, kind="stable")
        return order[_run_gpu(boxes, order, xp.zeros(len(order), xp.int64), t)]
    order = numpy.argsort(-scores, kind="stable")
    starts = numpy.array([0, boxes.shape[0]], dtype=numpy.int64)
    return order[_run(boxes, order, starts, t)]


def batched_nms(boxes, scores, labels, iou_threshold):
    """Non-maximum suppression within each class independently.

    Boxes with different labels never suppress each other. Equivalent to
    running :func:`nms` per class and merging the results by score; done in
    one kernel call over class segments instead of torchvision's trick of
    offsetting each class's coordinates, which would lose float32
    precision on large offsets.

    Shapes: N boxes, K kept.

    Parameters
    ----------
    boxes : ndarray, (N, 4) float32 or float64
        Boxes (x1, y1, x2, y2); N may be 0.
    scores : ndarray, (N,) float32 or float64
        Finite scores.
    labels : ndarray, (N,) integer
        Class of each box.
    iou_threshold : float
        In [0, 1], as in :func:`nms`.

    Returns
    -------
    ndarray, (K,) int64
        Indices of kept boxes, highest score first (equal scores: lower
        index first), like torchvision's ``batched_nms``.
    """
    check_boxes(boxes, "boxes")
    n = boxes.shape[0]
    _check_scores(scores, n)
    check_array(labels, "labels", shape=(n,))
    if labels.dtype.kind not in "iu":
        raise TypeError(
            f"labels must be an integer array, got dtype {labels.dtype}")
    t = check_probability(iou_threshold, "iou_threshold")
    xp = get_array_module(boxes, scores, labels)
    if xp is not numpy:
        _same_module(xp, boxes=boxes, scores=scores, labels=labels)
        # one walk in global score order; labels only gate suppression
        order = xp.argsort(-scores, kind="stable")
        keep = _run_gpu(boxes, order, labels[order].astype(xp.int64), t)
        return order[keep]
    # 1. global rank by score (stable); 2. group by label keeping that
    # rank inside each group; 3. NMS per group; 4. kept boxes back in
    # global rank order.
    order = numpy.argsort(-scores, kind="stable")
    group = numpy.argsort(labels[order], kind="stable")
    grouped = order[group]
    sorted_labels = labels[grouped]
    cuts = numpy.flatnonzero(sorted_labels[1:] != sorted_labels[:-1]) + 1
    starts = numpy.concatenate(([0], cuts, [n])).astype(numpy.int64)
    kept = _run(boxes, grouped, starts, t)
    return order[numpy.sort(group[kept])]
