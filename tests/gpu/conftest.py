"""tests/gpu: CPU-vs-GPU parity of the CuPy backend.

Every test here needs CuPy and a CUDA device; without them the whole folder
is skipped with the reason (CI has no GPU). On a GPU machine:

    pip install -e .[gpu,test]
    python -m pytest tests/gpu            # or: python -m pytest -m gpu

Note ``import cupy`` succeeds without a GPU; only ``cupy.cuda.is_available()``
tells.
"""
import os

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def _missing():
    """Why the GPU tests cannot run here, or None."""
    try:
        import cupy
    except ImportError:
        return "needs CuPy and a CUDA device: CuPy is not installed (pip install minirpn[gpu])"
    try:
        available = cupy.cuda.is_available()
    except Exception:  # a broken driver raises instead of returning False
        available = False
    return None if available else "needs CuPy and a CUDA device: no CUDA device is available"


def pytest_collection_modifyitems(config, items):
    reason = _missing()
    for item in items:
        if str(item.path).startswith(HERE):
            item.add_marker(pytest.mark.gpu)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def cp():
    """The cupy module; the backend is numpy again after the test."""
    import cupy

    import minirpn
    yield cupy
    minirpn.set_backend("numpy")
