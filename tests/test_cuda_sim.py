"""The GPU kernels of minirpn.cuda, run on the CPU by numba's CUDA simulator.

The simulator has to be switched on before numba.cuda is first imported, so
the checks (tests/cuda_sim_checks.py) run in one subprocess with
NUMBA_ENABLE_CUDASIM=1, and this process stays clean. On a machine with
NVVM (the CUDA toolkit's compiler library) a second test compiles every
kernel for a real GPU and reads the PTX.
"""
import glob
import importlib.util
import json
import os
import subprocess
import sys

import pytest

import cuda_sim_checks

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _run(script, *args, **env):
    path = [ROOT, HERE] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(path), **env}
    return subprocess.run([sys.executable, os.path.join(HERE, script), *args],
                          capture_output=True, text=True, env=environment, timeout=600)


@pytest.fixture(scope="module")
def simulated():
    done = _run("cuda_sim_checks.py", NUMBA_ENABLE_CUDASIM="1")
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", sorted(cuda_sim_checks.CHECKS))
def test_kernel_equals_the_cpu_under_the_simulator(simulated, name):
    assert simulated[name] is None, simulated[name]


def test_importing_minirpn_imports_neither_numba_cuda_nor_cupy():
    code = ("import sys, minirpn, minirpn.ops, minirpn.nn.functional, minirpn.faster_rcnn; "
            "print(sorted(m for m in ('numba.cuda', 'cupy', 'minirpn.cuda') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": ROOT}, check=True)
    assert done.stdout.strip() == "[]"


def _nvvm_available():
    homes = [os.environ.get("CUDA_HOME", ""), "/usr/local/cuda"]
    try:
        spec = importlib.util.find_spec("nvidia.cuda_nvcc")
        homes += list(spec.submodule_search_locations) if spec else []
    except ImportError:
        pass
    return any(glob.glob(os.path.join(h, "nvvm", "lib64", "libnvvm.so*")) for h in homes if h)


def test_a_pip_installed_nvvm_is_found_when_there_is_no_toolkit(tmp_path, monkeypatch):
    from minirpn.cuda import launch
    (tmp_path / "nvidia" / "cuda_nvcc" / "nvvm").mkdir(parents=True)
    (tmp_path / "nvidia" / "__init__.py").touch()  # wins over an installed nvidia package
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("CUDA_HOME", raising=False)
    monkeypatch.delenv("CUDA_PATH", raising=False)
    monkeypatch.setattr(launch.glob, "glob", lambda pattern: [])  # no system toolkit
    for name in [m for m in sys.modules if m == "nvidia" or m.startswith("nvidia.")]:
        monkeypatch.delitem(sys.modules, name)
    launch._use_pip_nvvm()
    assert os.environ["CUDA_HOME"] == str(tmp_path / "nvidia" / "cuda_nvcc")
    monkeypatch.setenv("CUDA_HOME", "/opt/my-cuda")  # an explicit choice wins
    launch._use_pip_nvvm()
    assert os.environ["CUDA_HOME"] == "/opt/my-cuda"


@pytest.mark.skipif(not _nvvm_available(),
                    reason="needs NVVM (libnvvm) from a CUDA toolkit: CUDA_HOME, "
                           "/usr/local/cuda, or pip install nvidia-cuda-nvcc-cu12")
def test_kernels_compile_for_a_gpu_without_fused_multiply_adds():
    # No GPU needed: NVVM compiles to PTX. A fused multiply-add would round
    # differently from the CPU kernels; mul_rn keeps them out.
    done = _run("cuda_ptx_check.py")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(report) == 40  # 20 kernels x 2 dtypes
    for kernel, counts in report.items():
        assert counts["fma"] == 0 or kernel.startswith("winograd"), kernel
    assert all(report[f"roi_align_backward {t}"]["atomics"] > 0 for t in ("float32", "float64"))
    assert all(report[f"roi_pool_backward {t}"]["atomics"] > 0 for t in ("float32", "float64"))
