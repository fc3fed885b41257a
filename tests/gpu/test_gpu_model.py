"""The whole detector on the GPU against the CPU: a training step and detect.

The proposals of the training step are handed to both models from the CPU
run (their ``proposals`` stage is replaced): the RPN's scores decide them
through a sort and NMS, where a last-bit difference between cuBLAS and the
CPU's BLAS may swap two near-equal float32 scores and pick another set of
RoIs. With the proposals fixed, every other stage (anchor labels, RoI
sampling and dropout from the same seed) is the same on both devices, and
the losses and gradients must agree within 1e-4 (float32) / 1e-10 (float64)
relative; the VGG16 float32 gradients, 16 layers deep, are held to the
CPU's own float32 error against a float64 step instead (see _check_step).
Detection is compared in float64, where such swaps do not happen.
"""
import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

import minirpn
from gpu_helpers import TOLERANCE, relative_error
from minirpn import Config, FasterRCNN, backend
from minirpn.backend import to_numpy
from scenes import make_scene, toy_scenes
from test_faster_rcnn import tiny_batch, tiny_config

pytestmark = pytest.mark.gpu
CROPS = ["roi_pool", "roi_align", "crop_pool"]


def _pair(config):
    """The same initial weights on both devices."""
    return FasterRCNN(config), FasterRCNN(config).to("cupy")


def _cpu_proposals(model, images, targets):
    """The CPU model's training proposals: (P_i, 4) numpy boxes in network pixels."""
    trace = []
    stage = model.proposals

    def spy(*args, **kwargs):
        trace.append([to_numpy(p.boxes) for p in stage(*args, **kwargs)])
        return stage(*args, **kwargs)
    model.proposals = spy
    model.forward_train(images, targets, rng=np.random.default_rng(0))
    del model.proposals
    return trace[-1]


def _step(model, images, targets, proposals):
    """Losses and gradients of one training step (seeded sampling) whose
    proposals stage returns ``proposals`` (network pixels)."""
    fixed = [SimpleNamespace(boxes=model.xp.asarray(p.astype(model.config.dtype)))
             for p in proposals]
    model.proposals = lambda rpn, batch, training: fixed
    model.zero_grad()
    losses = model.forward_train(images, targets, rng=np.random.default_rng(9))
    del model.proposals
    model.backward()
    return losses, model.gradients()


def _cast(value, dtype):
    """Float arrays, lists of them and dataclasses holding them, in ``dtype``."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return value.astype(dtype)
    if isinstance(value, list):
        return [_cast(v, dtype) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{
            f.name: _cast(getattr(value, f.name), dtype)
            for f in dataclasses.fields(value) if f.init})
    return value


def _in_float32_each(stage):
    """A per-image stage of the model (``anchor_labels``, ``proposal_targets``)
    run on float32 copies of its float64 arguments, each of its results cast
    back to float64."""
    def run(*args, **kwargs):
        results = stage(*(_cast(a, np.float32) for a in args),
                        **{k: _cast(v, np.float32) for k, v in kwargs.items()})
        return [_cast(r, np.float64) for r in results]
    return run


def _float64_twin(model):
    """The same network in float64 on the CPU, from the same weights, that
    takes the float32 model's discrete decisions: anchor labels and RoI
    samples are made in float32 (an IoU at a threshold, or a tie for the
    best anchor, may fall the other way in float64 and change the sample;
    that is not rounding of the gradient)."""
    config = dataclasses.replace(model.config, dtype="float64")
    twin = FasterRCNN(config)
    twin.load_parameters({k: to_numpy(v).astype(np.float64)
                          for k, v in model.parameters().items()})
    twin.anchor_labels = _in_float32_each(model.anchor_labels)
    twin.proposal_targets = _in_float32_each(model.proposal_targets)
    return twin


def _check_step(config, images, targets, deep=False):
    """GPU step against CPU step. Losses agree within the dtype's
    tolerance. Gradients too, except with ``deep``: a float32 gradient that
    went back through 16 layers carries rounding of its own on ANY device,
    so there the reference is the CPU's float64 step, and the GPU's float32
    gradient may be at most 4x as far from it as the CPU's float32 gradient
    is (plus 1e-6 relative, for gradients the CPU gets almost exact)."""
    cpu, gpu = _pair(config)
    proposals = _cpu_proposals(cpu, images, targets)
    tolerance = TOLERANCE[np.dtype(config.dtype)]
    want, cpu_grads = _step(cpu, images, targets, proposals)
    got, grads = _step(gpu, images, targets, proposals)
    for name, value in want.items():
        assert abs(got[name] - value) <= tolerance * max(abs(value), 1e-12), name
    exact = None
    if deep:
        _, exact = _step(_float64_twin(cpu), images, targets,
                         [p.astype(np.float64) for p in proposals])
    for name, g in cpu_grads.items():
        assert backend.is_cupy_array(grads[name])
        if exact is None:
            assert relative_error(grads[name], g) <= tolerance, name
        else:
            cpu_error = relative_error(g, exact[name])
            gpu_error = relative_error(grads[name], exact[name])
            assert gpu_error <= 4 * cpu_error + 1e-6, (name, gpu_error, cpu_error)


@pytest.mark.parametrize("crop_method", CROPS)
def test_training_step_float64_tiny(crop_method):
    _check_step(tiny_config(crop_method=crop_method), *tiny_batch())


@pytest.mark.parametrize("crop_method", CROPS)
def test_training_step_float32_toy(crop_method):
    images, targets = toy_scenes()
    _check_step(Config.toy(3, crop_method=crop_method), images[:2], targets[:2])


def test_training_step_float32_paper_vgg16():
    rng = np.random.default_rng(0)
    boxes = [[100, 60, 400, 420], [520, 300, 900, 560]]
    image = make_scene(rng, 600, 1000, boxes, [1, 2])
    target = {"boxes": np.asarray(boxes, np.float32), "labels": np.array([1, 2])}
    _check_step(Config.paper(3), [image], [target], deep=True)


def test_detect_float64_is_the_cpu_detect():
    cpu, gpu = _pair(tiny_config(crop_method="roi_align"))
    images, _ = tiny_batch()
    want = cpu.detect(images, score_threshold=0.0)
    got = gpu.detect(images, score_threshold=0.0)
    for g, w in zip(got, want):
        assert isinstance(g["boxes"], np.ndarray)  # detections come back to the host
        np.testing.assert_array_equal(g["labels"], w["labels"])
        assert relative_error(g["boxes"], w["boxes"]) <= 1e-10
        assert relative_error(g["scores"], w["scores"]) <= 1e-10


def test_detect_float32_toy_runs_and_is_sorted():
    cpu, gpu = _pair(Config.toy(3))
    images, _ = toy_scenes()
    for det in gpu.detect(images, score_threshold=0.0):
        assert det["boxes"].dtype == np.float32 and det["boxes"].shape[1] == 4
        assert np.all(np.diff(det["scores"]) <= 0)


def test_same_seed_same_losses_on_the_gpu():
    _, gpu = _pair(Config.toy(3))
    images, targets = toy_scenes()
    a = gpu.forward_train(images, targets, rng=np.random.default_rng(4))
    b = gpu.forward_train(images, targets, rng=np.random.default_rng(4))
    assert a == b


def test_a_failed_device_check_in_a_step_raises_its_own_error(cp):
    # value checks of CuPy arrays in a step are read once at its end
    # (checks.deferred_device_checks): a NaN output still stops the step
    _, gpu = _pair(tiny_config())
    gpu.parameters()["rpn.cls.bias"][...] = cp.nan
    with pytest.raises(FloatingPointError, match="loss rpn_cls is not finite"):
        gpu.forward_train(*tiny_batch(), rng=np.random.default_rng(0))


def test_set_backend_builds_the_model_on_the_gpu(cp):
    minirpn.set_backend("cupy")
    model = FasterRCNN(tiny_config())
    assert all(isinstance(p, cp.ndarray) for p in model.parameters().values())
    assert isinstance(model.base_anchors, cp.ndarray)
    images, targets = tiny_batch()
    losses = model.forward_train(images, targets)
    model.backward()
    assert np.isfinite(losses["total"])
    minirpn.set_backend("numpy")
    host = FasterRCNN(tiny_config())
    host.load_parameters({k: to_numpy(v) for k, v in model.parameters().items()})
    model.to("numpy")  # and back: parameters, anchors and caches
    for name, value in host.parameters().items():
        np.testing.assert_array_equal(model.parameters()[name], value)
    assert not backend.is_cupy_array(model.base_anchors)
    model.forward_train(images, targets)
