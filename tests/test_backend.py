import subprocess
import sys

import numpy as np
import pytest

import minirpn
from minirpn import backend


def test_default_backend_is_numpy():
    assert backend.get_backend() == "numpy"
    assert backend.array_module() is np


def test_get_array_module_of_numpy_arrays_and_scalars():
    assert backend.get_array_module(np.zeros(3), 1.0, None) is np


def test_to_numpy_passes_numpy_through():
    x = np.arange(4.0)
    assert backend.to_numpy(x) is x


def test_unknown_backend_is_named_in_the_error():
    with pytest.raises(ValueError, match="'torch'"):
        minirpn.set_backend("torch")
    assert backend.get_backend() == "numpy"


def test_importing_minirpn_does_not_import_cupy():
    code = ("import sys, minirpn, minirpn.nn.functional; "
            "print('cupy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "False"


def test_asking_for_cupy_without_it_is_a_clear_error():
    try:
        import cupy  # noqa: F401
        pytest.skip("cupy is installed here")
    except ImportError:
        pass
    with pytest.raises(RuntimeError, match="pip install minirpn\\[gpu\\]"):
        minirpn.set_backend("cupy")
    assert backend.get_backend() == "numpy"


def test_env_variable_selects_backend_at_import():
    code = "import minirpn; print(minirpn.get_backend())"
    env = {"MINIRPN_BACKEND": "numpy", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True, env=env).stdout.strip()
    assert out == "numpy"


def test_cli_prints_version():
    out = subprocess.run([sys.executable, "-m", "minirpn", "--version"],
                         capture_output=True, text=True, check=True)
    assert minirpn.__version__ in out.stdout
