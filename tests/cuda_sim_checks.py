"""The GPU kernels under numba's CUDA simulator, held to the CPU kernels.

Run by tests/test_cuda_sim.py in a subprocess with NUMBA_ENABLE_CUDASIM=1
(the simulator must be on before numba.cuda is first imported). Each check
returns None when it passes, else a message; the script prints the results
as one JSON object. The simulator runs every GPU thread as a Python thread,
so the inputs are tiny, but they cover what the kernels must get right:
two or more 64-box words, ties, IoU exactly at the threshold, labels,
empty and degenerate RoIs, RoIs off the map, both dtypes and both RoI Align
sampling modes.
"""
import json
import sys

import numpy as np

from minirpn.cuda import (box_kernels, max_pool_kernel, nms_kernel, roi_align_kernel,
                          roi_pool_kernel, sgd_kernel, winograd_kernel)
from minirpn.nn.optim import _sgd_kernel
from minirpn.nn.reference import conv2d_backward_reference, conv2d_forward_reference
from minirpn.nn.pooling import _unpool_offsets, max_pool2d_forward
from minirpn.nn.roi_align import roi_align_backward, roi_align_forward
from minirpn.nn.roi_pool import roi_pool_backward, roi_pool_forward
from minirpn.ops import batched_nms, box_iou, decode_boxes, encode_boxes, nms
from minirpn.ops.box_coder import BBOX_XFORM_CLIP
from minirpn.ops.nms import _threshold_as


def _differs(name, got, want, exact=True):
    same = np.array_equal(got, want) if exact else np.allclose(got, want, rtol=1e-6, atol=1e-12)
    return None if same else f"{name}: got {got!r}, want {want!r}"


def _clustered_boxes(rng, n, dtype):
    """Boxes around a few centres, so that many pairs overlap a lot."""
    centres = rng.uniform(20, 80, (4, 2))[rng.integers(0, 4, n)]
    half = rng.uniform(5, 15, (n, 2))
    boxes = np.concatenate([centres - half, centres + half], 1).astype(dtype)
    # IoU exactly 0.5 (survives: strictly greater suppresses) and a hair above
    boxes[:4] = [[0, 0, 10, 10], [0, 0, 10, 5], [0, 0, 10, 10.0001], [30, 30, 30, 40]]
    return boxes


def _gpu_nms(boxes, scores, labels, threshold):
    order = np.argsort(-scores, kind="stable")
    keep = nms_kernel.keep_sorted(boxes[order], labels[order].astype(np.int64),
                                  _threshold_as(boxes.dtype, threshold))
    return order[keep]


def check_nms(dtype, n):
    rng = np.random.default_rng(n)
    boxes = _clustered_boxes(rng, n, dtype)
    scores = rng.random(n).astype(dtype)
    scores[::5] = scores[0]  # ties: the lower index wins on both paths
    scores[:4] = [0.9, 0.8, 0.7, 0.6]
    zeros = np.zeros(n, np.int64)
    for t in (0.5, 0.3):
        problem = _differs(f"nms t={t}", _gpu_nms(boxes, scores, zeros, t), nms(boxes, scores, t))
        if problem:
            return problem
    labels = rng.integers(0, 3, n)
    return _differs("batched_nms", _gpu_nms(boxes, scores, labels, 0.4),
                    batched_nms(boxes, scores, labels, 0.4))


def check_nms_sizes():
    for n in (0, 1):
        boxes = np.array([[0, 0, 4, 4]] * n, np.float32).reshape(n, 4)
        scores = np.ones(n, np.float32)
        problem = _differs(f"nms of {n}", _gpu_nms(boxes, scores, np.zeros(n), 0.5),
                           nms(boxes, scores, 0.5))
        if problem:
            return problem
    return None


def _roi_inputs(dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 6, 7)).astype(dtype)
    x[:, 0] = 0.5  # channel 0 is flat: every bin ties, the first maximum must win
    xy = rng.uniform(-20, 60, (6, 2))
    rois = np.concatenate([rng.integers(0, 2, (6, 1)), xy, xy + rng.uniform(4, 50, (6, 2))], 1)
    rois[0, 1:] = [8, 8, 8, 8]            # a point: degenerate
    rois[1, 1:] = [-90, -90, -60, -70]    # entirely off the map: empty bins
    rois[2, 1:] = [0, 0, 56, 48]          # the whole map
    return x, rois.astype(dtype), rng.standard_normal((6, 3, 2, 3)).astype(dtype)


def check_roi_pool(dtype):
    x, rois, dy = _roi_inputs(dtype)
    y, cache = roi_pool_forward(x, rois, (2, 3), 1 / 8)
    y_gpu, argmax = np.full_like(y, np.nan), np.empty(y.shape, np.int32)
    bad = np.zeros(1, np.int32)
    roi_pool_kernel.forward(x, rois, x.dtype.type(1 / 8), y_gpu, argmax, bad)
    dx_gpu = np.zeros_like(x)
    roi_pool_kernel.backward(dy, argmax, rois, dx_gpu)
    # forward: bit for bit; backward: atomics may add shared maxima in another order
    return (_differs("y", y_gpu, y) or _differs("argmax", argmax, cache["argmax"])
            or _differs("bad", bad, [0])
            or _differs("dx", dx_gpu, roi_pool_backward(dy, cache), exact=False))


def check_roi_pool_extreme_edges(dtype):
    # halves (round away from zero), huge and tiny coordinates, scales that
    # are not powers of two: the kernel's own bin edges are the CPU's
    x = np.arange(2 * 2 * 9 * 11, dtype=dtype).reshape(2, 2, 9, 11)
    rois = np.array([[0, -12, -4, 20, 12], [1, 4, 12, 52, 28], [1, -1e30, -3e20, 3e25, 1e30],
                     [0, 43.9, 36, 44.1, 36.5], [1, 2.5, -2.5, 6.5, 7.5],
                     [0, 1e-30, -1e-30, 0.49, 87]], dtype)
    for scale, size in ((1 / 8, (3, 2)), (0.3, (2, 5)), (1 / 3, 1)):
        y, cache = roi_pool_forward(x, rois, size, scale)
        y_gpu, argmax = np.full_like(y, np.nan), np.empty(y.shape, np.int32)
        bad = np.zeros(1, np.int32)
        roi_pool_kernel.forward(x, rois, x.dtype.type(scale), y_gpu, argmax, bad)
        problem = (_differs(f"y scale {scale}", y_gpu, y)
                   or _differs(f"argmax scale {scale}", argmax, cache["argmax"])
                   or _differs("bad", bad, [0]))
        if problem:
            return problem
    return None


def check_roi_pool_refuses_bad_rows(dtype):
    x, rois, _ = _roi_inputs(dtype)
    for k, value in ((0, 2), (0, 0.5), (0, -1), (3, np.nan), (2, np.inf)):
        bad_rois = rois.copy()
        bad_rois[4, k] = value
        y, argmax = np.full((6, 3, 2, 3), np.nan, dtype), np.full((6, 3, 2, 3), 7, np.int32)
        bad = np.zeros(1, np.int32)
        roi_pool_kernel.forward(x, bad_rois, x.dtype.type(1 / 8), y, argmax, bad)
        if bad[0] != 1 or (y[4] != 0).any() or (argmax[4] != -1).any():
            return f"row 4 with rois[4, {k}] = {value}: bad {bad}, y {y[4]}, argmax {argmax[4]}"
    return None


def check_roi_align(dtype, sampling_ratio, aligned):
    x, rois, dy = _roi_inputs(dtype)
    args = ((2, 3), 1 / 8, sampling_ratio, aligned)
    y, cache = roi_align_forward(x, rois, *args)
    params = (1 / 8, sampling_ratio, aligned, 1 << 16)
    y_gpu, bad = np.full_like(y, np.nan), np.zeros(1, np.int32)
    roi_align_kernel.forward(x, rois, *params, y_gpu, bad)
    dx_gpu = np.zeros_like(x)
    roi_align_kernel.backward(dy, rois, *params, dx_gpu)
    # forward: bit for bit; backward: atomics may add in another order
    return (_differs("y", y_gpu, y) or _differs("bad", bad, [0])
            or _differs("dx", dx_gpu, roi_align_backward(dy, cache), exact=False))


def check_roi_align_refuses_bad_rows(dtype):
    x, rois, dy = _roi_inputs(dtype)
    for k, value, limit in ((0, 2, 1 << 16), (0, 0.5, 1 << 16), (3, np.nan, 1 << 16),
                            (1, -np.inf, 1 << 16), (3, 100, 2)):  # the last: grid over 2
        bad_rois = rois.copy()
        bad_rois[4, 1:] = [0, 0, 4, 4]
        bad_rois[4, k] = value
        y, bad = np.full((6, 3, 2, 3), np.nan, dtype), np.zeros(1, np.int32)
        roi_align_kernel.forward(x, bad_rois, 1 / 8, 0, True, limit, y, bad)
        dx = np.zeros_like(x)
        roi_align_kernel.backward(dy * (np.arange(6) == 4)[:, None, None, None], bad_rois,
                                  1 / 8, 0, True, limit, dx)
        if bad[0] != 1 or (y[4] != 0).any() or dx.any():
            return f"row 4 with rois[4, {k}] = {value}: bad {bad}, y {y[4]}, dx {dx.any()}"
    return None


def check_max_pool(dtype, kernel, stride):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 2, 7, 9)).astype(dtype)
    x[0, 0] = 0.5                          # a flat map: every window ties
    x[0, 1, :2, :2] = np.round(x[0, 1, :2, :2])  # small ties
    x[1, 0, 3, 4] = np.nan                 # a NaN wins its windows
    x[1, 1, 0, 1] = np.inf
    y, (arg, shape, k, s) = max_pool2d_forward(x, kernel, stride)
    y_gpu, arg_gpu = np.full_like(y, -1), np.full(arg.shape, -2, arg.dtype)
    max_pool_kernel.forward(x, k, s, y_gpu, arg_gpu)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx_gpu = np.full_like(x, np.nan)  # the gather must write every element
    max_pool_kernel.backward(dy, arg, k, s, dx_gpu)
    same_y = np.array_equal(y_gpu, y, equal_nan=True)  # NaN where the window holds one
    return ((None if same_y else f"y: got {y_gpu!r}, want {y!r}")
            or _differs("arg", arg_gpu, arg)
            # the gather adds overlapping windows in the offset loop's order
            # (the xp reference); NumPy's one-pass kernel adds in another
            or _differs("dx", dx_gpu, _unpool_offsets(dy, arg, shape, k, s)))


def check_box_iou(dtype):
    rng = np.random.default_rng(3)
    a, b = _clustered_boxes(rng, 9, dtype), _clustered_boxes(rng, 7, dtype)
    a[5] = b[6] = [4, 4, 4, 4]  # two zero-area boxes: IoU 0, not NaN
    a[6] = [4, 4, 4, 9]
    return (_differs("iou", box_kernels.box_iou(a, b), box_iou(a, b))
            or _differs("iou of none", box_kernels.box_iou(a[:0], b), box_iou(a[:0], b)))


def check_rows_pass(dtype):
    good = np.array([[0, 0, 4, 4], [1, 1, 2, 3], [-5, 2, 7, 3]], dtype)
    boxes_, positive, finite = box_kernels.BOXES, box_kernels.POSITIVE, box_kernels.FINITE
    for row, test, want in (([0, 0, 4, 4], boxes_, True), ([0, 0, 0, 4], boxes_, True),
                            ([0, 0, 0, 4], positive, False), ([0, 3, 2, 2], positive, False),
                            ([np.nan, 0, 4, 4], boxes_, False), ([0, 0, np.inf, 4], boxes_,
                                                                 False),
                            ([0, 0, 4, np.nan], positive, True),  # NaN fails no <= test
                            ([5, 0, 4, 4], boxes_, False), ([0, 5, 4, 4], boxes_, False),
                            ([5, 0, 4, 4], finite, True), ([0, 0, -np.inf, 4], finite, False),
                            ([0, np.nan, 4, 4], finite, False)):
        boxes = np.concatenate([good[1:] + 0.5, np.array([row], dtype), good])
        ok = box_kernels.rows_pass(boxes, test)
        if ok.shape != () or bool(ok) != want:
            return f"row {row} test {test}: got {ok}, want {want}"
    return None if box_kernels.rows_pass(good[:0]) else "no rows must pass"


def _near(name, got, want):
    """Equal up to float32 rounding of the boxes' scale (cx - w/2 cancels)."""
    scale = np.abs(want).max()
    same = got.dtype == want.dtype and np.allclose(got, want, rtol=1e-6, atol=1e-6 * scale)
    return None if same else f"{name}: got {got!r}, want {want!r}"


def check_box_coding(dtype):
    # the simulator's float32 exp and log are float64's: equal to rounding
    differs = _differs if dtype == np.float64 else lambda *a, **k: _near(*a)
    rng = np.random.default_rng(4)
    reference, target = _clustered_boxes(rng, 40, dtype)[4:], _clustered_boxes(rng, 40, dtype)[4:]
    deltas = rng.standard_normal((36, 4)).astype(dtype)
    deltas[0, 2:] = [9, 30]  # past BBOX_XFORM_CLIP
    for weights in ((1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)):
        problem = (differs(f"encode {weights}",
                           box_kernels.encode_boxes(reference, target, weights),
                           encode_boxes(reference, target, weights))
                   or differs(f"decode {weights}",
                              box_kernels.decode_boxes(reference, deltas, weights,
                                                       BBOX_XFORM_CLIP),
                              decode_boxes(reference, deltas, weights)))
        if problem:
            return problem
    return None


def check_sgd(dtype):
    rng = np.random.default_rng(5)
    p, g, v = (rng.standard_normal(300).astype(dtype) for _ in range(3))
    scalars = [dtype(s) for s in (0.01, 0.9, 5e-4)]
    for decay in (True, False):
        p_gpu, v_gpu, p_cpu, v_cpu = p.copy(), v.copy(), p.copy(), v.copy()
        for _ in range(3):
            sgd_kernel.sgd_step(p_gpu, g, v_gpu, *scalars, decay)
            _sgd_kernel(p_cpu, g, v_cpu, *scalars, decay)
        problem = _differs(f"p decay={decay}", p_gpu, p_cpu) or _differs("v", v_gpu, v_cpu)
        if problem:
            return problem
    return None


def check_gpu_paths_stay_on_the_device():
    """conv2d (C >= 16: "winograd") and SGD.step on the CuPy stand-in, their
    kernels run by the simulator: the GPU paths are taken, nothing crosses
    to the host, and the results are the CPU's."""
    import fakecupy
    from minirpn.nn import functional as F
    from minirpn.nn.optim import SGD
    uninstall = fakecupy.install()
    try:
        cp = sys.modules["cupy"]
        rng = np.random.default_rng(6)
        x, w, b = (rng.standard_normal(s) for s in ((2, 16, 5, 7), (3, 16, 3, 3), (3,)))
        dy = rng.standard_normal((2, 3, 5, 7))
        fakecupy.TRANSFERS.clear()
        y, cache = F.conv2d_forward(cp.asarray(x), cp.asarray(w), cp.asarray(b), padding=1)
        grads = F.conv2d_backward(cp.asarray(dy), cache)
        params = {"w": cp.array(w)}  # a copy: the stand-in's asarray shares memory
        optimizer = SGD(params, {"w": grads[1]}, lr=0.1)
        optimizer.step()
        moved = dict(fakecupy.TRANSFERS)
        y_cpu, cache_cpu = F.conv2d_forward(x, w, b, padding=1)
        dx, dw, db = F.conv2d_backward(dy, cache_cpu)
        w_cpu = {"w": w.copy()}
        SGD(w_cpu, {"w": dw}, lr=0.1).step()
        if cache.path != "winograd" or cache.x is not None or moved != {"to_device": 5}:  # x, w, b, dy and the parameter
            return f"path {cache.path}, x cached {cache.x is not None}, transfers {moved}"
        for name, got, want in (("y", y, y_cpu), ("dx", grads[0], dx), ("dw", grads[1], dw),
                                ("db", grads[2], db), ("sgd", params["w"], w_cpu["w"])):
            if not np.allclose(got.get(), want, rtol=1e-12, atol=1e-12):
                return f"{name} differs from the CPU's"
    finally:
        uninstall()
    return None


def check_winograd_chunks():
    """S chunks of L tiles hold all T tiles, none over CHUNK_TILES, fewer
    than S of them padding (the chunks as even as can be)."""
    for tiles in (1, 5, 4096):
        winograd_kernel.CHUNK_TILES = tiles
        for T in (1, 2, 3, 4095, 4096, 4097, 150000, 150001):
            S, L = winograd_kernel._chunks(T)
            if not (S * L >= T and L <= tiles and S * L - T < S):
                return f"T={T}, CHUNK_TILES={tiles}: S={S}, L={L}"
    winograd_kernel.CHUNK_TILES = 4096
    return None


def check_winograd(dtype, N, C, F, H, W, chunk_tiles=4096):
    winograd_kernel.CHUNK_TILES = chunk_tiles  # several chunks, the last one short
    rng = np.random.default_rng(H * W)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((F, C, 3, 3)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    dy = rng.standard_normal((N, F, H, W)).astype(dtype)
    y, cache = conv2d_forward_reference(x, w, b, 1, 1)
    dx, dw, db = conv2d_backward_reference(dy, cache)
    y_gpu, U, V = winograd_kernel.forward(x, w, b)
    dx_gpu, dw_gpu, db_gpu = winograd_kernel.backward(dy, U, V, x.shape)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for name, got, want in (("y", y_gpu, y), ("dx", dx_gpu, dx), ("dw", dw_gpu, dw),
                            ("db", db_gpu, db)):
        if got.shape != want.shape or not np.allclose(got, want, rtol=rtol, atol=rtol * 10):
            return f"{name}: got {got!r}, want {want!r}"
    no_dx = winograd_kernel.backward(dy, U, V, x.shape, need_dx=False)
    return None if no_dx[0] is None and np.array_equal(no_dx[1], dw_gpu) else "need_dx=False"


CHECKS = {
    "max_pool_float32_2x2": lambda: check_max_pool(np.float32, 2, 2),
    "max_pool_float64_3x3_stride2": lambda: check_max_pool(np.float64, 3, 2),
    "max_pool_float32_3x2_stride1": lambda: check_max_pool(np.float32, (3, 2), 1),
    "nms_float32": lambda: check_nms(np.float32, 70),
    "nms_float64_three_words": lambda: check_nms(np.float64, 130),
    "nms_zero_and_one_box": check_nms_sizes,
    "roi_pool_float32": lambda: check_roi_pool(np.float32),
    "roi_pool_float64": lambda: check_roi_pool(np.float64),
    "roi_pool_extreme_edges_float32": lambda: check_roi_pool_extreme_edges(np.float32),
    "roi_pool_extreme_edges_float64": lambda: check_roi_pool_extreme_edges(np.float64),
    "roi_pool_refuses_bad_rows": lambda: check_roi_pool_refuses_bad_rows(np.float32),
    "roi_align_float32_fixed_aligned": lambda: check_roi_align(np.float32, 2, True),
    "roi_align_float64_adaptive_unaligned": lambda: check_roi_align(np.float64, 0, False),
    "roi_align_float32_adaptive_aligned": lambda: check_roi_align(np.float32, -1, True),
    "roi_align_float64_fixed_unaligned": lambda: check_roi_align(np.float64, 3, False),
    "roi_align_refuses_bad_rows": lambda: check_roi_align_refuses_bad_rows(np.float32),
    "box_iou_float32": lambda: check_box_iou(np.float32),
    "box_iou_float64": lambda: check_box_iou(np.float64),
    "rows_pass_float32": lambda: check_rows_pass(np.float32),
    "rows_pass_float64": lambda: check_rows_pass(np.float64),
    "box_coding_float32": lambda: check_box_coding(np.float32),
    "box_coding_float64": lambda: check_box_coding(np.float64),
    "sgd_float32": lambda: check_sgd(np.float32),
    "sgd_float64": lambda: check_sgd(np.float64),
    "gpu_paths_stay_on_the_device": check_gpu_paths_stay_on_the_device,
    "winograd_chunks": check_winograd_chunks,
    # odd and even sides (the last tile overhangs), a 1x1 map, two images
    "winograd_float32_odd": lambda: check_winograd(np.float32, 1, 3, 2, 5, 7),
    # 21 tiles in 5 chunks of 5, 18 in 5 of 4: the last chunk holds zeros past the tiles
    "winograd_float32_chunks_of_5": lambda: check_winograd(np.float32, 1, 3, 2, 5, 13, 5),
    "winograd_float64_even_two_images": lambda: check_winograd(np.float64, 2, 2, 3, 4, 6),
    "winograd_float64_two_images_chunks_of_4": lambda: check_winograd(np.float64, 2, 2, 3,
                                                                      5, 5, 4),
    "winograd_float32_one_pixel": lambda: check_winograd(np.float32, 1, 2, 2, 1, 1),
    "winograd_float64_thin": lambda: check_winograd(np.float64, 1, 2, 2, 3, 1),
}


def main(names):
    results = {}
    for name in names or CHECKS:
        try:
            results[name] = CHECKS[name]()
        except Exception as exc:  # report it, keep checking the others
            results[name] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(results))


if __name__ == "__main__":
    np.seterr(invalid="ignore")  # 0/0 IoU of two zero-area boxes, as on the CPU
    main(sys.argv[1:])
