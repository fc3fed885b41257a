"""Greedy NMS on the GPU: the bitmask algorithm of torchvision's nms_kernel.cu.

The boxes arrive sorted by score. Greedy NMS is sequential, but its
expensive part, the IoU of every pair, is not:

1. ``_mask_kernel``: one block of 64 threads per (row block, column block)
   of 64 boxes each. Thread t of row block R owns box i = 64 R + t and sets
   bit k of the 64-bit word ``mask[i, C]`` when it would suppress box
   j = 64 C + k: j after i, same label, IoU(i, j) > threshold. Blocks below
   the diagonal find no j > i and write zeros, so every word is set.
2. ``_keep_kernel``: ONE block of threads walks the boxes 64 at a time. For
   each block of 64, one thread settles its boxes in order from the
   ``removed`` word of the block and the block's diagonal words (a box is
   kept unless a kept box before it has set its bit; a kept box ORs its
   diagonal word in): 64 steps on registers. Then all threads OR the rows
   of the kept boxes into the ``removed`` words of the later blocks, in
   parallel over the words. Two barriers per 64 boxes, where torchvision's
   walk (after mmcv) has one per kept box; its first version even copied
   the whole mask to the host for this walk (N * N / 64 words: 18 MB for
   12000 boxes). Here nothing leaves the GPU.

Same results as the CPU kernel of :mod:`minirpn.ops.nms`, index for index:
the IoU is computed in the boxes' dtype with the same operations in the
same order, each product rounded on its own (:func:`~.launch.mul_rn`,
no fused multiply-add), and compared strictly with the same dtype-rounded
threshold; zero-area pairs give 0/0 = NaN, which never suppresses. Labels
make it batched NMS: boxes of different labels never suppress each other,
and the walk in global score order returns the kept boxes in that order,
which is the CPU ``batched_nms`` result.
"""
import numpy as np
from numba import types

from ..backend import get_array_module
from .launch import launch, mul_rn, numba_cuda

__all__ = ["keep_sorted", "MAX_BOXES"]

cuda = numba_cuda()
_WORD = 64                      # boxes per mask word: one bit each
_WALK_THREADS = 256             # threads of the walk (step 3 is parallel over words)
_SHARED_BYTES = 48 * 1024       # default dynamic shared memory per block
#: Most boxes one call takes: the walk's words must fit in shared memory.
MAX_BOXES = _WORD * (_SHARED_BYTES // 8 - _WORD - 1)


@cuda.jit
def _mask_kernel(x1, y1, x2, y2, labels, threshold, zero, mask):
    n = x1.shape[0]
    i = cuda.blockIdx.y * _WORD + cuda.threadIdx.x
    if i >= n:
        return
    start = cuda.blockIdx.x * _WORD
    end = start + _WORD if start + _WORD < n else n
    ix1, iy1, ix2, iy2 = x1[i], y1[i], x2[i], y2[i]
    iarea = mul_rn(ix2 - ix1, iy2 - iy1)
    bits = np.uint64(0)
    # (two-argument min/max do not compile for CUDA in numba 0.66-0.68,
    # numba issue 10753: hence the conditional expressions)
    for j in range(i + 1 if i + 1 > start else start, end):
        if labels[j] != labels[i]:
            continue
        w = (ix2 if ix2 < x2[j] else x2[j]) - (ix1 if ix1 > x1[j] else x1[j])
        h = (iy2 if iy2 < y2[j] else y2[j]) - (iy1 if iy1 > y1[j] else y1[j])
        inter = mul_rn(w if w > zero else zero, h if h > zero else zero)
        jarea = mul_rn(x2[j] - x1[j], y2[j] - y1[j])
        if inter / (iarea + jarea - inter) > threshold:
            bits |= np.uint64(1) << np.uint64(j - start)
    mask[i, cuda.blockIdx.x] = bits


@cuda.jit
def _keep_kernel(mask, keep):
    n, words = mask.shape
    t, step = cuda.threadIdx.x, cuda.blockDim.x
    shared = cuda.shared.array(0, dtype=types.uint64)  # words + 65 words
    removed, diagonal, kept = shared[:words], shared[words:words + _WORD], shared[words + _WORD:]
    for k in range(t, words, step):
        removed[k] = np.uint64(0)
    for block in range(words):
        first = block * _WORD
        size = _WORD if n - first > _WORD else n - first
        # 1. the block's own words: which of its boxes suppress which
        for b in range(t, size, step):
            diagonal[b] = mask[first + b, block]
        cuda.syncthreads()
        # 2. one thread settles the block's boxes, in score order
        if t == 0:
            gone, bits = removed[block], np.uint64(0)
            for b in range(size):
                if (gone >> np.uint64(b)) & np.uint64(1) == np.uint64(0):
                    keep[first + b] = True
                    bits |= np.uint64(1) << np.uint64(b)
                    gone |= diagonal[b]
            kept[0] = bits
        cuda.syncthreads()
        # 3. all threads: the kept boxes suppress boxes of later blocks
        bits = kept[0]
        for k in range(block + 1 + t, words, step):
            hit = np.uint64(0)
            for b in range(size):
                if (bits >> np.uint64(b)) & np.uint64(1):
                    hit |= mask[first + b, k]
            removed[k] |= hit
        # (the next block's first barrier also orders these writes before
        # step 2 reads them)


def keep_sorted(sorted_boxes, sorted_labels, threshold):
    """Run NMS over boxes already sorted by score, on their device.

    Shapes: N boxes, K kept.

    Parameters
    ----------
    sorted_boxes : (N, 4) float32 or float64, cupy (numpy under the simulator)
        Boxes (x1, y1, x2, y2), best score first; N <= :data:`MAX_BOXES`.
    sorted_labels : (N,) int64, same device
        Class of each box; all equal for plain NMS.
    threshold : scalar of the boxes' dtype
        A box is suppressed when its IoU with a kept box is strictly greater
        (the CPU's dtype-rounded threshold, see ``ops.nms._threshold_as``).

    Returns
    -------
    (K,) int64, same device
        Positions (into the sorted order) of the kept boxes, ascending.
    """
    xp = get_array_module(sorted_boxes)
    n = sorted_boxes.shape[0]
    if n == 0:
        return xp.zeros(0, dtype=xp.int64)
    if n > MAX_BOXES:
        raise ValueError(f"GPU NMS takes at most {MAX_BOXES} boxes per call, got {n}")
    words = -(-n // _WORD)
    cols = [xp.ascontiguousarray(sorted_boxes[:, k]) for k in range(4)]
    mask = xp.empty((n, words), dtype=xp.uint64)   # the kernel sets every word
    launch(_mask_kernel, (words, words), _WORD, *cols,
           xp.ascontiguousarray(sorted_labels), threshold,
           sorted_boxes.dtype.type(0), mask)
    keep = xp.zeros(n, dtype=xp.bool_)
    launch(_keep_kernel, 1, min(words, _WALK_THREADS), mask, keep,
           shared_bytes=8 * (words + _WORD + 1))
    return xp.flatnonzero(keep).astype(xp.int64)
