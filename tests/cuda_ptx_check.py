"""Compile every kernel of minirpn.cuda to PTX, without a GPU.

NVVM (the CUDA toolkit's compiler library, found through CUDA_HOME) does the
compiling; no driver or device is touched, except that numba asks the
current device for its compute capability before compiling a device
function, which is answered here with sm_80. Prints one JSON object:
"kernel dtype" -> counts of fused multiply-adds and atomics in its PTX.
Run by tests/test_cuda_sim.py.
"""
import json
import re

import numba.cuda.dispatcher
from numba import cuda
from numba.core import types as t

numba.cuda.dispatcher.get_current_device = \
    lambda: type("Device", (), {"compute_capability": (8, 0)})()

from minirpn.cuda import (box_kernels, max_pool_kernel, nms_kernel,  # noqa: E402
                          roi_align_kernel, roi_pool_kernel, sgd_kernel, winograd_kernel)


def a(dtype, ndim):
    return t.Array(dtype, ndim, "C")


def signatures(f):
    i32, i64 = t.int32, t.int64
    return {
        "nms_mask": (nms_kernel._mask_kernel,
                     (a(f, 1),) * 4 + (a(i64, 1), f, f, a(t.uint64, 2))),
        "nms_keep": (nms_kernel._keep_kernel, (a(t.uint64, 2), a(t.boolean, 1))),
        "max_pool_forward": (max_pool_kernel._max_forward_kernel,
                             (a(f, 4),) + (i64,) * 4 + (a(f, 4), a(t.int8, 4))),
        "max_pool_backward": (max_pool_kernel._max_backward_kernel,
                              (a(f, 4), a(t.int8, 4)) + (i64,) * 4 + (f, a(f, 4))),
        "roi_pool_forward": (roi_pool_kernel._forward_kernel,
                             (a(f, 4), a(f, 2), f, f, a(f, 4), a(i32, 4), a(i32, 1))),
        "roi_pool_backward": (roi_pool_kernel._backward_kernel,
                              (a(f, 4), a(i32, 4), a(f, 2), a(f, 4))),
        "roi_align_forward": (roi_align_kernel._forward_kernel,
                              (a(f, 4), a(f, 2), f, f, i64, t.boolean, f, a(f, 4),
                               a(i32, 1))),
        "roi_align_backward": (roi_align_kernel._backward_kernel,
                               (a(f, 4), a(f, 2), f, f, i64, t.boolean, f, a(f, 4))),
        "box_iou": (box_kernels._iou_kernel, (a(f, 2), a(f, 2), f, a(f, 2))),
        "rows_pass": (box_kernels._rows_pass_kernel, (a(f, 2), i64, a(t.boolean, 1))),
        "encode_boxes": (box_kernels._encode_kernel, (a(f, 2), a(f, 2)) + (f,) * 5
                         + (a(f, 2),)),
        "decode_boxes": (box_kernels._decode_kernel, (a(f, 2), a(f, 2)) + (f,) * 6
                         + (a(f, 2),)),
        "sgd": (sgd_kernel._sgd_kernel, (a(f, 1),) * 3 + (f,) * 3 + (t.boolean,)),
        # Winograd's transforms need not round like the CPU's: fused
        # multiply-adds are allowed there (tests/test_cuda_sim.py)
        "winograd_filter": (winograd_kernel._filter_kernel, (a(f, 4), f, a(f, 3))),
        "winograd_input": (winograd_kernel._input_kernel, (a(f, 4), f, a(f, 4))),
        "winograd_output": (winograd_kernel._output_kernel, (a(f, 4), a(f, 1), a(f, 4))),
        "winograd_output_adjoint": (winograd_kernel._output_adjoint_kernel,
                                    (a(f, 4), f, a(f, 4))),
        "winograd_input_adjoint": (winograd_kernel._input_adjoint_kernel, (a(f, 4),)),
        "winograd_gather": (winograd_kernel._gather_kernel, (a(f, 4), f, a(f, 4))),
        "winograd_filter_adjoint": (winograd_kernel._filter_adjoint_kernel,
                                    (a(f, 3), f, a(f, 4))),
    }


def main():
    report = {}
    for f in (t.float32, t.float64):
        for name, (kernel, sig) in signatures(f).items():
            ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=(8, 0))
            report[f"{name} {f}"] = {"fma": len(re.findall(r"\bfma\.", ptx)),
                                     "atomics": len(re.findall(r"\batom\.", ptx))}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
