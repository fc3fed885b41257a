"""Value checks of CuPy arrays deferred to one host wait per step
(checks.deferred_device_checks), on the CuPy stand-in."""
import sys

import numpy as np
import pytest

import fakecupy
from minirpn.checks import deferred_device_checks
from minirpn.ops import box_iou, check_boxes

from test_cupy_dispatch import gpu  # noqa: F401  (fixture: kernels answered on the CPU)


@pytest.fixture
def cupy(gpu):  # noqa: F811  (the fake CuPy, box kernels answered on the CPU)
    fakecupy.TRANSFERS.clear()
    return sys.modules["cupy"]


BAD = np.array([[0, 0, 4, 4], [5, 5, 3, 9]], np.float32)  # row 1: x2 < x1


def test_outside_a_step_a_check_waits_and_raises_at_once(cupy):
    with pytest.raises(ValueError, match=r"boxes row 1 has x2 < x1: \[5, 5, 3, 9\]"):
        check_boxes(cupy.asarray(BAD), "boxes")


def test_inside_a_step_checks_queue_and_the_first_failure_raises_on_leaving(cupy):
    good = cupy.asarray(BAD[:1])
    with pytest.raises(ValueError, match=r"^b row 1 has x2 < x1: \[5, 5, 3, 9\]$"):
        with deferred_device_checks():
            for _ in range(5):
                check_boxes(good, "a")
                box_iou(good, good)
            check_boxes(cupy.asarray(BAD), "b")     # does not raise here
            check_boxes(cupy.asarray(BAD[::-1]), "c")
            assert fakecupy.TRANSFERS["scalars"] == 0  # no host wait so far


def test_all_valid_costs_one_host_wait(cupy):
    good = cupy.asarray(BAD[:1])
    with deferred_device_checks():
        with deferred_device_checks():  # nested: the outer one reads
            check_boxes(good, "a")
        box_iou(good, good)
        assert fakecupy.TRANSFERS["scalars"] == 0
    assert fakecupy.TRANSFERS["scalars"] == 1


def test_numpy_arrays_are_checked_at_once_inside_a_step():
    with deferred_device_checks():
        with pytest.raises(ValueError, match="row 1 has x2 < x1"):
            check_boxes(BAD, "boxes")


def test_an_error_inside_reports_a_failed_check_first(cupy):
    # the failed check is the likelier cause (the CPU would have raised it)
    with pytest.raises(ValueError, match="b row 1 has x2 < x1") as info:
        with deferred_device_checks():
            check_boxes(cupy.asarray(BAD), "b")
            raise KeyError("later")
    assert isinstance(info.value.__cause__, KeyError)
    with pytest.raises(KeyError):  # no failed check: the error itself
        with deferred_device_checks():
            check_boxes(cupy.asarray(BAD[:1]), "b")
            raise KeyError("first")
    with deferred_device_checks():  # nothing left over from before
        pass


def test_a_nan_network_output_still_stops_the_step(gpu):
    from minirpn import FasterRCNN
    from test_faster_rcnn import tiny_batch, tiny_config
    model = FasterRCNN(tiny_config()).to("cupy")
    model.parameters()["rpn.cls.bias"][...] = np.nan
    with pytest.raises(FloatingPointError, match="loss rpn_cls is not finite"):
        model.forward_train(*tiny_batch(), rng=np.random.default_rng(0))
