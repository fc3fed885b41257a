"""The CuPy code paths, run on the CPU through a stand-in for CuPy.

``fakecupy`` poses as CuPy (strict about host arrays, counting transfers to
the host). The GPU kernels are the one thing it cannot run fast: their
launches are answered by the CPU numba kernels (``_CPU_KERNELS``), and the
kernels themselves are held to those CPU kernels in tests/test_cuda_sim.py.
What this file checks is everything around them: every op dispatches to
its GPU path, no array is dragged to the host in a training step, a seed
gives the CPU's numbers exactly, and the errors without a GPU.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import fakecupy
import minirpn
from minirpn import FasterRCNN, backend
from minirpn.nn import roi_align as cpu_align
from minirpn.nn import roi_pool as cpu_pool
from minirpn.ops import box_iou, decode_boxes, encode_boxes

from test_faster_rcnn import tiny_batch, tiny_config


# ---- the kernels' launches, answered on the CPU --------------------------------
def _nms_mask(x1, y1, x2, y2, labels, threshold, zero, mask):
    n, words = mask.shape
    w = np.maximum(np.minimum(x2[:, None], x2) - np.maximum(x1[:, None], x1), zero)
    h = np.maximum(np.minimum(y2[:, None], y2) - np.maximum(y1[:, None], y1), zero)
    area = (x2 - x1) * (y2 - y1)
    with np.errstate(invalid="ignore"):
        iou = w * h / (area[:, None] + area - w * h)
    hit = (iou > threshold) & np.triu(np.ones((n, n), bool), 1) & (labels[:, None] == labels)
    bits = np.zeros((n, 64 * words), bool)
    bits[:, :n] = hit
    mask[...] = np.packbits(bits, axis=1, bitorder="little").view("<u8")


def _nms_keep(mask, keep):
    removed = np.zeros(mask.shape[1], np.uint64)
    for i in range(mask.shape[0]):
        if not (int(removed[i // 64]) >> (i % 64)) & 1:
            keep[i] = True
            removed |= mask[i]


def _pool_forward(x, rois, scale, lowest, y, argmax, bad):
    try:
        cpu_pool.check_roi_values(rois, x.shape[0])
    except ValueError:
        bad[0] = 1  # the kernel's flag; the layer then raises the CPU's error
        return
    pooled_h, pooled_w = y.shape[2:]
    h0, h1 = cpu_pool._bin_edges(np, rois[:, 2], rois[:, 4], scale, pooled_h, x.shape[2])
    w0, w1 = cpu_pool._bin_edges(np, rois[:, 1], rois[:, 3], scale, pooled_w, x.shape[3])
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    cpu_pool._pool_forward_kernel(x_nhwc, rois[:, 0].astype(np.int64), h0, h1, w0, w1,
                                  y, argmax)


def _pool_backward(dy, argmax, rois, dx):
    flat = np.zeros((dx.shape[0], dx.shape[1], dx.shape[2] * dx.shape[3]), dx.dtype)
    cpu_pool._pool_backward_kernel(dy, argmax, rois[:, 0].astype(np.int64), flat)
    dx += flat.reshape(dx.shape)


def _max_pool_forward(x, kh, kw, sh, sw, y, arg):
    from minirpn.nn.pooling import max_pool2d_forward
    y[...], (arg[...], *_) = max_pool2d_forward(x, (kh, kw), (sh, sw))


def _max_pool_backward(dy, arg, kh, kw, sh, sw, zero, dx):
    from minirpn.nn.pooling import max_pool2d_backward
    dx[...] = max_pool2d_backward(dy, (arg, dx.shape, (kh, kw), (sh, sw)))


def _tables(x, rois, scale, ratio, aligned, max_grid, pooled):
    """The CPU's geometry and tap tables, or None where the kernel would
    refuse a row (its flag)."""
    try:
        cpu_align.check_roi_values(rois, x.shape[0])
        g = cpu_align._tables(rois, pooled, scale, ratio, aligned, *x.shape[2:])
    except ValueError:
        return None
    return g, rois[:, 0].astype(np.int64)


def _align_forward(x, rois, scale, offset, ratio, aligned, max_grid, y, bad):
    tabs = _tables(x, rois, scale, ratio, aligned, max_grid, y.shape[2:])
    if tabs is None:
        bad[0] = 1
        return
    (g, batch), x_nhwc = tabs, np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    cpu_align._align_forward_kernel(x_nhwc, batch, g["grid_h"], g["grid_w"], g["count"],
                                    g["y"], g["x"], y)


def _align_backward(dy, rois, scale, offset, ratio, aligned, max_grid, dx):
    g, batch = _tables(dx, rois, scale, ratio, aligned, max_grid, dy.shape[2:])
    dx_nhwc = np.zeros(dx.shape[:1] + dx.shape[2:] + dx.shape[1:2], dx.dtype)
    cpu_align._align_backward_kernel(np.ascontiguousarray(dy), batch, g["grid_h"],
                                     g["grid_w"], g["y"], g["x"], 16, dx_nhwc)
    dx += dx_nhwc.transpose(0, 3, 1, 2)


def _iou(a, b, zero, out):
    out[...] = box_iou(a, b)


def _rows_pass(boxes, test, ok):
    from minirpn.cuda.box_kernels import FINITE, POSITIVE
    finite = np.isfinite(boxes).all(axis=1)
    if test == POSITIVE:
        bad = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
    elif test == FINITE:
        bad = ~finite
    else:
        bad = ~(finite & (boxes[:, 2:] >= boxes[:, :2]).all(axis=1))
    ok[0] &= not bad.any()


def _encode(reference, target, wx, wy, ww, wh, half, out):
    out[...] = encode_boxes(reference, target, (wx, wy, ww, wh))


def _decode(reference, deltas, wx, wy, ww, wh, clip, half, out):
    out[...] = decode_boxes(reference, deltas, (wx, wy, ww, wh))


@pytest.fixture
def gpu(monkeypatch):
    """Fake CuPy installed, kernel launches answered by the CPU kernels;
    yields the launch log (kernel names)."""
    uninstall = fakecupy.install()
    from minirpn.cuda import (box_kernels, max_pool_kernel, nms_kernel, roi_align_kernel,
                              roi_pool_kernel)
    answers = {nms_kernel._mask_kernel: _nms_mask, nms_kernel._keep_kernel: _nms_keep,
               box_kernels._iou_kernel: _iou, box_kernels._rows_pass_kernel: _rows_pass,
               box_kernels._encode_kernel: _encode, box_kernels._decode_kernel: _decode,
               max_pool_kernel._max_forward_kernel: _max_pool_forward,
               max_pool_kernel._max_backward_kernel: _max_pool_backward,
               roi_pool_kernel._forward_kernel: _pool_forward,
               roi_pool_kernel._backward_kernel: _pool_backward,
               roi_align_kernel._forward_kernel: _align_forward,
               roi_align_kernel._backward_kernel: _align_backward}
    log = []

    def launch(kernel, blocks, threads, *args, shared_bytes=0):
        log.append(kernel.py_func.__name__)
        answers[kernel](*(fakecupy.unwrap(a) for a in args))
    for module in (nms_kernel, roi_pool_kernel, roi_align_kernel, max_pool_kernel, box_kernels):
        monkeypatch.setattr(module, "launch", launch)
    fakecupy.TRANSFERS.clear()
    yield log
    uninstall()


#: host waits (0-d reads) of one training step of the tiny model on 2 images
SCALARS_PER_STEP = {"roi_pool": 1, "roi_align": 1, "crop_pool": 3}
#: host waits for a data-dependent size in that step, 4 per image: the
#: proposals above the minimum size, those NMS keeps, and the sampled RoIs'
#: positive and negative candidates (the anchors are labelled on the host:
#: FasterRCNN.anchor_labels)
SIZES_PER_STEP = 8
#: CuPy calls (arrays made, views included) of that step: host work on a GPU,
#: where each costs tens of microseconds; 2% over the counts when
#: written (817, 816, 996)
CALLS_PER_STEP = {"roi_pool": 833, "roi_align": 832, "crop_pool": 1016}


def _host(tree):
    if isinstance(tree, dict):
        return {k: _host(v) for k, v in tree.items()}
    return fakecupy.unwrap(tree)


def _models(crop_method, dtype="float64"):
    config = tiny_config(crop_method=crop_method, dtype=dtype)
    return FasterRCNN(config), FasterRCNN(config).to("cupy")


@pytest.mark.parametrize("crop_method", ["roi_pool", "roi_align", "crop_pool"])
def test_training_step_on_the_gpu_path_equals_the_cpu_and_stays_on_the_device(
        gpu, crop_method):
    cpu, dev = _models(crop_method)
    assert backend.is_cupy_array(dev.parameters()["backbone.0.weight"])
    images, targets = tiny_batch()
    want = cpu.forward_train(images, targets, rng=np.random.default_rng(5))
    cpu.backward()
    fakecupy.TRANSFERS.clear()
    fakecupy.MADE.clear()
    got = dev.forward_train(images, targets, rng=np.random.default_rng(5))
    dev.backward()
    assert fakecupy.MADE["arrays"] <= CALLS_PER_STEP[crop_method], fakecupy.MADE
    # one array crossed to the host, the stacked losses for the progress
    # bar; one scalar, the read of all the value checks
    # (checks.deferred_device_checks), those of the RoI layers included
    # (their kernels never read with a refused row; crop_pool reads its
    # batch indices' range at once, two more, as its sparse products must
    # not get an index out of range); the sizes of sampled and kept sets.
    # A new host wait in the step fails here.
    assert fakecupy.TRANSFERS["arrays"] == 1
    assert fakecupy.TRANSFERS["scalars"] <= SCALARS_PER_STEP[crop_method], \
        dict(fakecupy.TRANSFERS)
    assert fakecupy.TRANSFERS["sizes"] <= SIZES_PER_STEP, dict(fakecupy.TRANSFERS)
    # uploads (each a host-side copy, and a wait where the memory is pageable):
    # images, pixel mean/std, GT boxes, anchor labels and targets, the
    # sampled indices, the dropout masks
    assert fakecupy.TRANSFERS["to_device"] <= 18, dict(fakecupy.TRANSFERS)
    assert got == want  # same seed, same sampling: the very same numbers
    grads = _host(dev.gradients())
    # NumPy's conv sums dw band by band (conv_bands), the xp path in one
    # product: the same sums in another order, equal to rounding.
    for name, g in cpu.gradients().items():
        np.testing.assert_allclose(grads[name], g, rtol=1e-10, atol=1e-16,
                                   err_msg=name)
    assert "_mask_kernel" in gpu and "_keep_kernel" in gpu  # NMS ran on the "GPU"
    assert "_max_forward_kernel" in gpu and "_max_backward_kernel" in gpu  # max-pool too
    if crop_method != "crop_pool":  # crop_pool is xp and cuSPARSE: no kernel of ours
        assert gpu.count("_forward_kernel") >= 1 and gpu.count("_backward_kernel") == 1


def test_detect_on_the_gpu_path_equals_the_cpu(gpu):
    cpu, dev = _models("roi_align", dtype="float32")
    images, _ = tiny_batch()
    want = cpu.detect(images, score_threshold=0.0)
    fakecupy.TRANSFERS.clear()
    got = dev.detect(images, score_threshold=0.0)
    # detections cross once: boxes, scores and labels of each image
    assert fakecupy.TRANSFERS["arrays"] == 3 * len(images)
    assert fakecupy.TRANSFERS["scalars"] <= 1, dict(fakecupy.TRANSFERS)  # no new host waits
    # per image: proposals (min size, NMS), detections (score threshold,
    # min size, per-class NMS)
    assert fakecupy.TRANSFERS["sizes"] <= 5 * len(images), dict(fakecupy.TRANSFERS)
    for g, w in zip(got, want):
        assert isinstance(g["boxes"], np.ndarray)
        for key in ("boxes", "scores", "labels"):
            np.testing.assert_array_equal(g[key], w[key])


@pytest.mark.parametrize("layer", ["roi_pool", "roi_align"])
@pytest.mark.parametrize("deferred", [False, True])
def test_a_roi_the_cpu_refuses_raises_the_cpus_error_on_the_gpu_path(gpu, layer, deferred):
    from minirpn.checks import deferred_device_checks
    from minirpn.nn import functional as F
    cupy = sys.modules["cupy"]
    forward = getattr(F, f"{layer}_forward")
    x = cupy.asarray(np.ones((1, 2, 5, 5), np.float32))
    good = np.array([[0, 0, 0, 40, 40], [0, 8, 8, 60, 70]], np.float32)
    cases = [(1, 0, 1.0, r"rois\[:, 0\] must be an integral batch index in \[0, 1\); row 1"),
             (0, 3, np.nan, "rois must be finite; row 0")]
    if layer == "roi_align":
        cases.append((1, 3, 1e9, "rois row 1 needs an adaptive sampling grid"))
    kw = {"sampling_ratio": 0} if layer == "roi_align" else {}
    for row, col, value, message in cases:
        rois = good.copy()
        rois[row, col] = value
        with pytest.raises(ValueError, match=message):
            if deferred:
                with deferred_device_checks():  # raised on leaving
                    forward(x, cupy.asarray(rois), 3, 1 / 16, **kw)
            else:
                forward(x, cupy.asarray(rois), 3, 1 / 16, **kw)
    y, cache = forward(x, cupy.asarray(good), 3, 1 / 16, **kw)  # the flag stays clear
    assert float(y.sum()) > 0


def test_ops_dispatch_to_the_gpu_kernels_with_cpu_results(gpu):
    from minirpn.ops import batched_nms, box_iou, nms
    cupy = sys.modules["cupy"]
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 40, (90, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, 30, (90, 2))], 1).astype(np.float32)
    scores = rng.random(90).astype(np.float32)
    scores[::4] = 0.5  # ties: the lower index first, on both paths
    labels = rng.integers(0, 3, 90)
    on = [cupy.asarray(a) for a in (boxes, scores, labels)]
    np.testing.assert_array_equal(nms(*on[:2], 0.5).get(), nms(boxes, scores, 0.5))
    np.testing.assert_array_equal(batched_nms(*on, 0.4).get(),
                                  batched_nms(boxes, scores, labels, 0.4))
    np.testing.assert_array_equal(box_iou(on[0], on[0][:7]).get(), box_iou(boxes, boxes[:7]))
    assert gpu.count("_mask_kernel") == 2
    with pytest.raises(TypeError, match="scores must be a cupy array"):
        nms(on[0], scores, 0.5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_crop_pool_on_the_gpu_path_is_the_cpu_bit_for_bit_on_ties(gpu, dtype):
    # A flat channel makes every 2x2 window of the sampled grid a tie up to
    # the last bit of the bilinear sums, so the max-pool's arg-max (and so
    # the gradient) follows the order in which each sample's taps are added.
    # The GPU path must add them as SciPy does: with cuSPARSE (its order
    # modelled by fakecupy's sparse) 6% of the float64 gradient moved.
    from minirpn.nn.crop_pool import crop_pool_backward, crop_pool_forward
    cupy = sys.modules["cupy"]
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 8, 19, 23)).astype(dtype)
    x[:, 0] = 0.25
    xy = rng.uniform(-40, 330, (40, 2))
    rois = np.concatenate([rng.integers(0, 2, (40, 1)), xy,
                           xy + rng.uniform(0, 200, (40, 2))], 1).astype(dtype)
    y, cache = crop_pool_forward(x, rois, (7, 7), 1 / 16)
    fakecupy.TRANSFERS.clear()
    y_gpu, cache_gpu = crop_pool_forward(cupy.asarray(x), cupy.asarray(rois), (7, 7), 1 / 16)
    np.testing.assert_array_equal(fakecupy.unwrap(y_gpu), y)
    np.testing.assert_array_equal(fakecupy.unwrap(cache_gpu[2][0]), cache[2][0])  # arg-max
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx_gpu = crop_pool_backward(cupy.asarray(dy), cache_gpu)
    assert dx_gpu.dtype == dtype
    np.testing.assert_array_equal(fakecupy.unwrap(dx_gpu), crop_pool_backward(dy, cache))
    assert fakecupy.TRANSFERS["arrays"] == 0


def test_anchor_and_roi_sampling_draw_the_cpu_samples_from_the_same_seed(gpu):
    from minirpn.anchor_targets import label_anchors
    from minirpn.anchors import base_anchors, grid_anchors
    from minirpn.proposal_targets import sample_proposals
    cupy = sys.modules["cupy"]
    anchors = grid_anchors(12, 12, 8, base_anchors(8, (2, 4)))
    gt = np.array([[10, 10, 50, 60], [40, 30, 90, 90]], np.float32)
    kwargs = dict(batch_size=32, rng=None)
    want = label_anchors(anchors, gt, (96, 96), **{**kwargs, "rng": np.random.default_rng(3)})
    fakecupy.TRANSFERS.clear()
    got = label_anchors(cupy.asarray(anchors), cupy.asarray(gt), (96, 96),
                        **{**kwargs, "rng": np.random.default_rng(3)})
    assert fakecupy.TRANSFERS["arrays"] == 0
    for name in ("labels", "reason", "matched_gt", "bbox_targets"):
        np.testing.assert_array_equal(fakecupy.unwrap(getattr(got, name)), getattr(want, name))
    boxes = anchors[::5]
    want = sample_proposals(boxes, gt, np.array([1, 2]), 2, batch_size=16,
                            rng=np.random.default_rng(4))
    got = sample_proposals(cupy.asarray(boxes), cupy.asarray(gt), np.array([1, 2]), 2,
                           batch_size=16, rng=np.random.default_rng(4))
    assert fakecupy.TRANSFERS["arrays"] == 0
    np.testing.assert_array_equal(fakecupy.unwrap(got.source), want.source)
    np.testing.assert_array_equal(fakecupy.unwrap(got.bbox_targets), want.bbox_targets)


def test_fake_cupy_is_strict_about_host_arrays(gpu):
    # the stand-in must catch what real CuPy refuses, or the tests above prove little
    cupy = sys.modules["cupy"]
    x = cupy.asarray(np.arange(4.0))
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(x)
    with pytest.raises(TypeError, match="numpy array given to cupy"):
        cupy.concatenate([x, np.arange(2.0)])
    with pytest.raises(Exception):
        cpu_pool._pool_backward_kernel(x, x, x, x)  # numba cannot take it either


def test_asking_for_the_gpu_without_cupy_names_what_is_missing():
    try:
        import cupy  # noqa: F401
        pytest.skip("cupy is installed here")
    except ImportError:
        pass
    for ask in (lambda: minirpn.set_backend("cupy"),
                lambda: FasterRCNN(tiny_config()).to("cupy")):
        with pytest.raises(RuntimeError,
                           match=r"CuPy is not installed: pip install minirpn\[gpu\]"):
            ask()
    assert backend.get_backend() == "numpy"


def test_cupy_without_a_device_is_a_clear_error(monkeypatch):
    uninstall = fakecupy.install()
    try:
        monkeypatch.setattr(sys.modules["cupy"].cuda, "is_available", lambda: False)
        with pytest.raises(RuntimeError, match="CuPy is installed but no CUDA device"):
            minirpn.set_backend("cupy")
        with pytest.raises(RuntimeError, match="CuPy is installed but no CUDA device"):
            FasterRCNN(tiny_config()).to("cupy")
    finally:
        uninstall()
    assert backend.get_backend() == "numpy"


def test_the_environment_variable_asks_for_the_gpu_with_the_same_clear_error():
    try:
        import cupy  # noqa: F401
        pytest.skip("cupy is installed here")
    except ImportError:
        pass
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", "import minirpn"], capture_output=True,
                          text=True, env={**os.environ, "MINIRPN_BACKEND": "cupy",
                                          "PYTHONPATH": root})
    assert done.returncode != 0
    assert "CuPy is not installed: pip install minirpn[gpu]" in done.stderr
