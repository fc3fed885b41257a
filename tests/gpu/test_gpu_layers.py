"""Layer by layer and op by op: the CuPy path against the numpy path.

Each functional layer runs forward and backward on the same inputs on both
devices; outputs and gradients must agree within 1e-4 (float32) or 1e-10
(float64) relative (``gpu_helpers.TOLERANCE``). The geometry ops with
discrete outcomes must agree exactly: IoU to the bit, NMS index for index,
anchor labels label for label, RoI pool and RoI Align forward to the bit
(their backward passes use atomics: within the tolerance);
the anchors' regression targets to a few ulps.
"""
import numpy as np
import pytest

from gpu_helpers import TOLERANCE, relative_error
from minirpn.nn import functional as F
from minirpn.nn.crop_pool import crop_pool_backward, crop_pool_forward

pytestmark = pytest.mark.gpu
DTYPES = [np.float32, np.float64]


def both(cp, fn, *arrays, **kwargs):
    """fn on the numpy arrays and on their cupy copies: (cpu, gpu) results."""
    return fn(*arrays, **kwargs), fn(*(cp.asarray(a) for a in arrays), **kwargs)


def assert_close(got, want, dtype, what):
    assert relative_error(got, want) <= TOLERANCE[np.dtype(dtype)], what


def _layer_cases(rng, dtype):
    """(name, forward, backward, inputs, forward kwargs); backward(dy, cache)."""
    x = rng.standard_normal((2, 3, 9, 11)).astype(dtype)
    w3 = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    w1 = rng.standard_normal((4, 3, 1, 1)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    x16 = rng.standard_normal((2, 16, 9, 11)).astype(dtype)  # C >= 16: "winograd" on the GPU
    w16 = rng.standard_normal((4, 16, 3, 3)).astype(dtype)
    return [
        ("conv3x3", F.conv2d_forward, F.conv2d_backward, (x, w3, b), dict(padding=1)),
        ("conv3x3_winograd", F.conv2d_forward, F.conv2d_backward, (x16, w16, b),
         dict(padding=1)),
        ("conv3x3_stride2", F.conv2d_forward, F.conv2d_backward, (x, w3, b),
         dict(stride=2, padding=1)),
        ("conv1x1", F.conv2d_forward, F.conv2d_backward, (x, w1, b), {}),
        ("relu", F.relu_forward, F.relu_backward, (x,), {}),
        ("max_pool2x2", F.max_pool2d_forward, F.max_pool2d_backward, (x,), {}),
        ("max_pool3x3_s2", F.max_pool2d_forward, F.max_pool2d_backward, (x,),
         dict(kernel_size=3, stride=2)),
        ("linear", F.linear_forward, F.linear_backward,
         (x.reshape(2, -1), rng.standard_normal((297, 5)).astype(dtype),
          rng.standard_normal(5).astype(dtype)), {}),
    ]


@pytest.mark.parametrize("dtype", DTYPES)
def test_functional_layers_forward_and_backward(cp, dtype):
    rng = np.random.default_rng(0)
    for name, forward, backward, inputs, kwargs in _layer_cases(rng, dtype):
        (y, cache), (y_gpu, cache_gpu) = both(cp, forward, *inputs, **kwargs)
        assert_close(y_gpu, y, dtype, f"{name} forward")
        dy = rng.standard_normal(y.shape).astype(dtype)
        grads, grads_gpu = backward(dy, cache), backward(cp.asarray(dy), cache_gpu)
        grads = grads if isinstance(grads, tuple) else (grads,)
        grads_gpu = grads_gpu if isinstance(grads_gpu, tuple) else (grads_gpu,)
        for i, (g, g_gpu) in enumerate(zip(grads, grads_gpu)):
            assert_close(g_gpu, g, dtype, f"{name} gradient {i}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_and_losses(cp, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 5)).astype(dtype)
    y, mask = F.dropout_forward(x, 0.5, np.random.default_rng(7))
    y_gpu, mask_gpu = F.dropout_forward(cp.asarray(x), 0.5, np.random.default_rng(7))
    np.testing.assert_array_equal(mask_gpu.get(), mask)  # one seed, one mask
    assert_close(y_gpu, y, dtype, "dropout")
    labels = np.array([0, 4, -1, 2, 1, -1])
    (loss, cache), (loss_gpu, cache_gpu) = both(cp, F.softmax_cross_entropy_forward, x, labels)
    assert_close(loss_gpu, loss, dtype, "cross-entropy")
    assert_close(F.softmax_cross_entropy_backward(1.0, cache_gpu),
                 F.softmax_cross_entropy_backward(1.0, cache), dtype, "cross-entropy gradient")
    target, weights = rng.standard_normal(x.shape).astype(dtype), (x > 0).astype(dtype)
    (loss, cache), (loss_gpu, cache_gpu) = both(cp, F.smooth_l1_forward, x, target, weights,
                                                sigma=3.0, normalizer=4.0)
    assert_close(loss_gpu, loss, dtype, "smooth L1")
    assert_close(F.smooth_l1_backward(1.0, cache_gpu), F.smooth_l1_backward(1.0, cache), dtype,
                 "smooth L1 gradient")


def _roi_inputs(rng, dtype, n_rois=40):
    x = rng.standard_normal((2, 8, 19, 23)).astype(dtype)
    x[:, 0] = 0.25  # a flat channel: every bin ties
    xy = rng.uniform(-40, 330, (n_rois, 2))
    rois = np.concatenate([rng.integers(0, 2, (n_rois, 1)), xy,
                           xy + rng.uniform(0, 200, (n_rois, 2))], 1).astype(dtype)
    rois[0, 1:] = [50, 50, 50, 50]
    return x, rois


@pytest.mark.parametrize("dtype", DTYPES)
def test_roi_pool_is_identical(cp, dtype):
    rng = np.random.default_rng(2)
    x, rois = _roi_inputs(rng, dtype)
    (y, cache), (y_gpu, cache_gpu) = both(cp, F.roi_pool_forward, x, rois, output_size=(7, 7),
                                        spatial_scale=1 / 16)
    np.testing.assert_array_equal(y_gpu.get(), y)
    np.testing.assert_array_equal(cache_gpu["argmax"].get(), cache["argmax"])
    dy = rng.standard_normal(y.shape).astype(dtype)
    # atomics (as torchvision's kernel): shared maxima may add in another order
    assert_close(F.roi_pool_backward(cp.asarray(dy), cache_gpu),
                 F.roi_pool_backward(dy, cache), dtype, "roi_pool backward (atomics)")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sampling_ratio,aligned", [(2, True), (0, False), (-1, True)])
def test_roi_align(cp, dtype, sampling_ratio, aligned):
    rng = np.random.default_rng(3)
    x, rois = _roi_inputs(rng, dtype)
    kw = dict(output_size=(7, 7), spatial_scale=1 / 16, sampling_ratio=sampling_ratio,
              aligned=aligned)
    (y, cache), (y_gpu, cache_gpu) = both(cp, F.roi_align_forward, x, rois, **kw)
    np.testing.assert_array_equal(y_gpu.get(), y)  # same arithmetic, no FMA
    dy = rng.standard_normal(y.shape).astype(dtype)
    assert_close(F.roi_align_backward(cp.asarray(dy), cache_gpu),
                 F.roi_align_backward(dy, cache), dtype, "roi_align backward (atomics)")


@pytest.mark.parametrize("dtype", DTYPES)
def test_crop_pool(cp, dtype):
    rng = np.random.default_rng(4)
    x, rois = _roi_inputs(rng, dtype)
    (y, cache), (y_gpu, cache_gpu) = both(cp, crop_pool_forward, x, rois, output_size=(7, 7),
                                        spatial_scale=1 / 16)
    # the samples are added in SciPy's order without FMAs: the very same
    # numbers, so the 2x2 max-pool picks the same sample in every near-tie
    # (channel 0 is flat); cuSPARSE's order moved 6% of the gradient
    np.testing.assert_array_equal(y_gpu.get(), y)
    np.testing.assert_array_equal(cache_gpu[2][0].get(), cache[2][0])
    dy = rng.standard_normal(y.shape).astype(dtype)
    assert_close(crop_pool_backward(cp.asarray(dy), cache_gpu), crop_pool_backward(dy, cache),
                 dtype, "crop_pool backward (atomics)")


def _boxes(rng, n, dtype):
    centres = rng.uniform(0, 1000, (max(n // 20, 1), 2))[rng.integers(0, max(n // 20, 1), n)]
    half = rng.uniform(4, 120, (n, 2))
    return np.concatenate([centres - half, centres + half], 1).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_box_iou_is_identical(cp, dtype):
    from minirpn.ops import box_iou
    rng = np.random.default_rng(5)
    a, b = _boxes(rng, 3000, dtype), _boxes(rng, 17, dtype)
    b[0] = [5, 5, 5, 5]  # zero area: IoU 0, never NaN
    np.testing.assert_array_equal(box_iou(cp.asarray(a), cp.asarray(b)).get(), box_iou(a, b))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [0, 1, 63, 64, 65, 2000, 12000])
def test_nms_keeps_the_same_indices(cp, dtype, n):
    from minirpn.ops import batched_nms, nms
    rng = np.random.default_rng(n)
    boxes = _boxes(rng, n, dtype)
    scores = rng.random(n).astype(dtype)
    scores[::7] = 0.5  # ties: lower index first on both devices
    labels = rng.integers(1, 4, n)
    for t in (0.3, 0.7):
        np.testing.assert_array_equal(nms(cp.asarray(boxes), cp.asarray(scores), t).get(),
                                      nms(boxes, scores, t))
        np.testing.assert_array_equal(
            batched_nms(cp.asarray(boxes), cp.asarray(scores), cp.asarray(labels), t).get(),
            batched_nms(boxes, scores, labels, t))


@pytest.mark.parametrize("dtype", DTYPES)
def test_anchor_labels_and_roi_samples_are_identical_for_a_seed(cp, dtype):
    from minirpn.anchor_targets import label_anchors
    from minirpn.anchors import base_anchors, grid_anchors
    from minirpn.proposal_targets import sample_proposals
    anchors = grid_anchors(38, 63, 16, base_anchors(16, dtype=dtype))
    gt = np.array([[100, 120, 300, 400], [500, 60, 760, 300], [40, 400, 90, 560]], dtype)
    want = label_anchors(anchors, gt, (600, 1000), rng=np.random.default_rng(11))
    got = label_anchors(cp.asarray(anchors), cp.asarray(gt), (600, 1000),
                        rng=np.random.default_rng(11))
    for name in ("labels", "reason", "matched_gt", "max_iou"):
        np.testing.assert_array_equal(getattr(got, name).get(), getattr(want, name), name)
    # the regression targets are float arithmetic (logs, divisions) that the
    # GPU may do in another order or contract into FMAs: equal to a few ulps
    # of their scale, not to the bit (20 of 86184 differed by 3e-8 on an H200)
    scale = max(1.0, float(np.abs(want.bbox_targets).max()))
    np.testing.assert_allclose(got.bbox_targets.get(), want.bbox_targets, rtol=0,
                               atol=8 * np.finfo(dtype).eps * scale, err_msg="bbox_targets")
    proposals = _boxes(np.random.default_rng(6), 2000, dtype)
    want = sample_proposals(proposals, gt, np.array([1, 2, 3]), 3, rng=np.random.default_rng(12))
    got = sample_proposals(cp.asarray(proposals), cp.asarray(gt), np.array([1, 2, 3]), 3,
                           rng=np.random.default_rng(12))
    np.testing.assert_array_equal(got.source.get(), want.source)
    np.testing.assert_array_equal(got.labels.get(), want.labels)
    assert_close(got.bbox_targets, want.bbox_targets, dtype, "proposal targets")


@pytest.mark.parametrize("layer", ["roi_pool", "roi_align"])
def test_a_refused_roi_raises_the_cpus_error(cp, layer):
    # the kernels check each RoI row themselves and flag the bad ones
    from minirpn.checks import deferred_device_checks
    forward = getattr(F, f"{layer}_forward")
    x = cp.ones((1, 2, 5, 5), cp.float32)
    rois = np.array([[0, 0, 0, 40, 40], [1, 8, 8, 60, 70]], np.float32)
    with pytest.raises(ValueError, match=r"integral batch index in \[0, 1\); row 1"):
        forward(x, cp.asarray(rois), 3, 1 / 16)
    with pytest.raises(ValueError, match=r"integral batch index in \[0, 1\); row 1"):
        with deferred_device_checks():
            forward(x, cp.asarray(rois), 3, 1 / 16)
    y, _ = forward(x, cp.asarray(rois[:1]), 3, 1 / 16)
    assert float(y.sum()) == 2 * 3 * 3  # a clear flag: every bin of the ones is 1
