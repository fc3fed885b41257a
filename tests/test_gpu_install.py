"""What ``pip install ".[gpu]"`` must give the CuPy backend, checked without
a GPU: the numpy compatibility step before numba.cuda loads, and one clear
error naming the package for each missing piece."""
import configparser
import os
import subprocess
import sys

import pytest

from minirpn.cuda import launch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# numpy 2.5 as numba-cuda meets it: no row_stack, nor in __all__
_NUMPY_2_5 = ("import numpy; numpy.__dict__.pop('row_stack', None); "
              "numpy.__all__ = [n for n in numpy.__all__ if n != 'row_stack']; ")


def _python(code, **env):
    environment = {**os.environ, "PYTHONPATH": ROOT, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=environment, timeout=300)


def test_kernels_load_and_run_where_numpy_has_no_row_stack():
    # numba-cuda calls overload(np.row_stack) while it loads its array
    # typing; with the step in launch.numba_cuda() the backend's import path
    # works, and a kernel runs (simulator), where numpy lacks row_stack
    code = _NUMPY_2_5 + (
        "import importlib.util\n"
        "import numpy as np\n"
        "from minirpn.cuda.launch import numba_cuda\n"
        "from minirpn.cuda import nms_kernel\n"
        "numba_cuda()\n"
        "assert np.row_stack is np.vstack\n"
        "if importlib.util.find_spec('numba.cuda.np') is not None:  # numba-cuda's layout\n"
        "    import numba.cuda.np.arrayobj\n"
        "boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], np.float32)\n"
        "keep = nms_kernel.keep_sorted(boxes, np.zeros(3, np.int64), np.float32(0.5))\n"
        "print(np.asarray(keep).tolist())\n")
    done = _python(code, NUMBA_ENABLE_CUDASIM="1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[0, 2]"


def test_numpy_is_left_alone_where_it_has_row_stack():
    done = _python("import numpy; r = numpy.row_stack; "
                   "from minirpn.cuda.launch import numba_cuda, _numpy_row_stack; "
                   "numba_cuda(); print(_numpy_row_stack(), numpy.row_stack is r)",
                   NUMBA_ENABLE_CUDASIM="1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["False", "True"]


def test_importing_minirpn_does_not_touch_numpy():
    done = _python(_NUMPY_2_5 + "import minirpn, minirpn.nn.functional; "
                   "print(hasattr(numpy, 'row_stack'))")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "False"


def test_missing_numba_cuda_names_the_package(monkeypatch):
    import numba
    monkeypatch.delattr(numba, "cuda", raising=False)     # imported by an earlier test
    monkeypatch.setitem(sys.modules, "numba.cuda", None)  # import fails
    with pytest.raises(RuntimeError, match=r'pip install "numba-cuda\[cu12\]"'):
        launch._import_numba_cuda()


def test_missing_nvvm_names_the_package(monkeypatch):
    from numba.cuda.cudadrv import nvvm

    def no_nvvm():
        raise OSError("libnvvm.so: cannot open shared object file")
    monkeypatch.setattr(nvvm, "NVVM", no_nvvm)
    with pytest.raises(RuntimeError, match="pip install nvidia-cuda-nvcc-cu12") as info:
        launch._check_nvvm(None)
    assert "libnvvm.so" in str(info.value)


def test_missing_nvrtc_names_the_package(monkeypatch):
    from numba.cuda.cudadrv import nvrtc

    def no_nvrtc():
        raise OSError("Failure finding libnvrtc.so.12")
    monkeypatch.setattr(nvrtc, "_get_nvrtc_version", no_nvrtc, raising=False)
    with pytest.raises(RuntimeError, match="pip install nvidia-cuda-nvrtc-cu12"):
        launch._check_nvvm(None)


def test_the_gpu_extra_installs_every_piece():
    config = configparser.ConfigParser()
    config.read(os.path.join(ROOT, "setup.cfg"))
    extra = config["options.extras_require"]["gpu"].split()
    names = [r.split(">")[0].split("=")[0] for r in extra]
    assert names == ["cupy-cuda12x", "numba-cuda[cu12]", "nvidia-cuda-nvcc-cu12"]
