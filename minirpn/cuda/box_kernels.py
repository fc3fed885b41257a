"""Box geometry on the GPU: the IoU of every pair, box coding
(:mod:`minirpn.ops.box_coder`), and the row checks of
:func:`minirpn.ops.check_boxes` and :func:`minirpn.ops.boxes.check_positive_area`.

Written with CuPy calls, the IoU of two box sets is some 35 small device
operations (slices, broadcast maxima and minima, products, a where), and a
box check 7; a training step runs the IoU twice and the checks about twenty
times. On a GPU each CuPy call costs host time (tens of microseconds) while
the device does next to nothing, so these stages ran at the host's pace.
Here each is one launch:

- ``_iou_kernel``: one thread per pair (i, j), with the CPU kernel's
  operations in its order (``minirpn.ops.boxes._box_iou_kernel``), each
  product rounded on its own (:func:`~.launch.mul_rn`): IoU to the bit;
- ``_encode_kernel``, ``_decode_kernel``: one thread per box, the xp
  code's operations in its order, in the boxes' dtype;
- ``_rows_pass_kernel``: one thread per row clears a one-element flag when
  its row fails the check of ``check_boxes`` (all four coordinates
  finite, x2 >= x1, y2 >= y1), the zero-area test of
  ``check_positive_area`` (a bad row has x2 <= x1 or y2 <= y1) or, for
  deltas, finiteness. The flag stays on the device:
  :func:`minirpn.checks.passes` reads it, or queues it in a training step,
  and only a failed flag runs the CPU's message code.
"""
import math

from ..backend import get_array_module
from .launch import THREADS, blocks_for, launch, mul_rn, numba_cuda

__all__ = ["box_iou", "rows_pass", "encode_boxes", "decode_boxes", "BOXES", "POSITIVE",
           "FINITE"]

cuda = numba_cuda()

#: The tests of :func:`rows_pass`
BOXES, POSITIVE, FINITE = 0, 1, 2


@cuda.jit
def _iou_kernel(a, b, zero, out):
    k = cuda.grid(1)
    m = b.shape[0]
    if k >= a.shape[0] * m:
        return
    i, j = k // m, k % m
    ax1, ay1, ax2, ay2 = a[i, 0], a[i, 1], a[i, 2], a[i, 3]
    bx1, by1, bx2, by2 = b[j, 0], b[j, 1], b[j, 2], b[j, 3]
    # (two-argument min/max do not compile for CUDA in numba 0.66-0.68,
    # numba issue 10753: hence the conditional expressions, as in nms_kernel)
    w = (ax2 if ax2 < bx2 else bx2) - (ax1 if ax1 > bx1 else bx1)
    h = (ay2 if ay2 < by2 else by2) - (ay1 if ay1 > by1 else by1)
    inter = mul_rn(w if w > zero else zero, h if h > zero else zero)
    union = mul_rn(ax2 - ax1, ay2 - ay1) + mul_rn(bx2 - bx1, by2 - by1) - inter
    # two zero-area boxes have union 0: IoU 0, never 0/0 = NaN
    out[i, j] = inter / union if union > zero else zero


@cuda.jit
def _rows_pass_kernel(boxes, test, ok):
    i = cuda.grid(1)
    if i >= boxes.shape[0]:
        return
    x1, y1, x2, y2 = boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3]
    # v - v is 0 for a finite v, NaN for inf and NaN
    finite = x1 - x1 == 0 and y1 - y1 == 0 and x2 - x2 == 0 and y2 - y2 == 0
    if test == POSITIVE:
        bad = x2 <= x1 or y2 <= y1
    elif test == FINITE:
        bad = not finite
    else:
        bad = not (finite and x2 >= x1 and y2 >= y1)
    if bad:
        ok[0] = False  # every failing thread writes the same value


@cuda.jit(device=True)
def _centre(boxes, i, half):
    """Width, height and centre of box i, as ``box_coder._centres``."""
    w, h = boxes[i, 2] - boxes[i, 0], boxes[i, 3] - boxes[i, 1]
    return w, h, boxes[i, 0] + mul_rn(half, w), boxes[i, 1] + mul_rn(half, h)


@cuda.jit
def _encode_kernel(reference, target, wx, wy, ww, wh, half, out):
    i = cuda.grid(1)
    if i >= out.shape[0]:
        return
    rw, rh, rx, ry = _centre(reference, i, half)
    tw, th, tx, ty = _centre(target, i, half)
    out[i, 0] = mul_rn(wx, tx - rx) / rw
    out[i, 1] = mul_rn(wy, ty - ry) / rh
    out[i, 2] = mul_rn(ww, math.log(tw / rw))
    out[i, 3] = mul_rn(wh, math.log(th / rh))


@cuda.jit
def _decode_kernel(reference, deltas, wx, wy, ww, wh, clip, half, out):
    i = cuda.grid(1)
    if i >= out.shape[0]:
        return
    rw, rh, rx, ry = _centre(reference, i, half)
    cx = mul_rn(deltas[i, 0] / wx, rw) + rx
    cy = mul_rn(deltas[i, 1] / wy, rh) + ry
    dw, dh = deltas[i, 2] / ww, deltas[i, 3] / wh
    w = mul_rn(math.exp(dw if dw < clip else clip), rw)
    h = mul_rn(math.exp(dh if dh < clip else clip), rh)
    out[i, 0] = cx - mul_rn(half, w)
    out[i, 1] = cy - mul_rn(half, h)
    out[i, 2] = cx + mul_rn(half, w)
    out[i, 3] = cy + mul_rn(half, h)


def box_iou(a, b):
    """(N, M) IoU of CuPy boxes a (N, 4) and b (M, 4) of one float dtype,
    already checked (:func:`minirpn.ops.box_iou` is the public function)."""
    out = get_array_module(a).empty((a.shape[0], b.shape[0]), a.dtype)
    if out.size:
        launch(_iou_kernel, blocks_for(out.size), THREADS, a, b, a.dtype.type(0), out)
    return out


def rows_pass(boxes, test=BOXES):
    """A 0-d bool device flag: True when every row of ``boxes`` (N, 4)
    passes ``test``: ``BOXES`` (``check_boxes``'s), ``POSITIVE`` (the
    zero-area test of ``check_positive_area``) or ``FINITE``."""
    ok = get_array_module(boxes).ones(1, bool)
    if boxes.shape[0]:
        launch(_rows_pass_kernel, blocks_for(boxes.shape[0]), THREADS, boxes, test, ok)
    return ok[0]


def _coded(kernel, reference, other, weights, *more):
    """Run the encode or decode kernel over the rows of (N, 4) boxes."""
    dtype = reference.dtype.type
    xp = get_array_module(reference)
    out = xp.empty(reference.shape, reference.dtype)
    if out.shape[0]:
        launch(kernel, blocks_for(out.shape[0]), THREADS, reference, other,
               *(dtype(w) for w in weights), *(dtype(v) for v in more), dtype(0.5), out)
    return out


def encode_boxes(reference, target, weights):
    """:func:`minirpn.ops.encode_boxes` of checked CuPy boxes (N, 4)."""
    return _coded(_encode_kernel, reference, target, weights)


def decode_boxes(reference, deltas, weights, clip):
    """:func:`minirpn.ops.decode_boxes` of checked CuPy boxes and deltas (N, 4)."""
    return _coded(_decode_kernel, reference, deltas, weights, clip)
