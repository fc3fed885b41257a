"""Shared helpers of the GPU parity tests (plain functions, no fixtures)."""
import numpy as np


def relative_error(got, want):
    """max |got - want| / max |want|, got copied to the host."""
    got = got.get() if hasattr(got, "get") else np.asarray(got)
    want = np.asarray(want)
    if want.size == 0:
        return 0.0 if got.size == 0 else float("inf")
    scale = max(float(np.abs(want).max()), np.finfo(want.dtype).tiny)
    return float(np.abs(got.astype(np.float64) - want).max() / scale)


#: parity tolerance per dtype (the issue's: 1e-4 relative in float32, 1e-10 in float64)
TOLERANCE = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}
