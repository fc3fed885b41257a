"""The scalar argument checks every floor shares (minirpn.checks): each names
the argument, says what was expected and shows what was given."""
import math
import re

import numpy as np
import pytest

from minirpn.checks import (check_float_array, check_image_size, check_index,
                            check_non_negative_int, check_non_negative_number,
                            check_positive_int, check_positive_number, check_rng)


@pytest.mark.parametrize("check,good,type_bad,value_bad,words", [
    (check_positive_int, [1, np.int64(7)], [True, 1.0, "3", None], [0, -2],
     "a positive int"),
    (check_non_negative_int, [0, np.int32(4)], [False, 0.0, "0"], [-1],
     "a non-negative int"),
    (check_positive_number, [1e-9, 3, np.float32(2.5)], [True, "1", None],
     [0, -1.0, math.inf, math.nan], "a finite number > 0"),
    (check_non_negative_number, [0, 0.0, 2], [False, "0"], [-1e-9, math.inf, math.nan],
     "a finite number >= 0"),
])
def test_scalar_checks(check, good, type_bad, value_bad, words):
    for value in good:
        assert check(value, "n") == value and type(check(value, "n")) in (int, float)
    for value in type_bad:
        with pytest.raises(TypeError, match=re.escape(f"n must be {words}, got {value!r}")):
            check(value, "n")
    for value in value_bad:
        with pytest.raises(ValueError, match=f"^n must be {words}, got"):
            check(value, "n")


def test_check_index_refuses_negative_indices():
    assert check_index(np.int64(3), 4) == 3
    for index in (-1, 4):
        with pytest.raises(IndexError, match=rf"anchor must lie in \[0, 4\), got {index}"):
            check_index(index, 4, "anchor")
    with pytest.raises(TypeError, match="index must be an int, got 1.0"):
        check_index(1.0, 4)


def test_check_image_size_and_rng():
    assert check_image_size((2, np.int64(3))) == (2.0, 3.0)
    with pytest.raises(TypeError, match="size must be a pair"):
        check_image_size(5, "size")
    with pytest.raises(ValueError, match=r"image_size must be \(H, W\) with H > 0"):
        check_image_size((0, 3))
    rng = np.random.default_rng(0)
    assert check_rng(rng) is rng and isinstance(check_rng(None), np.random.Generator)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator or None"):
        check_rng(0)


def test_float_arrays_are_float32_or_float64_in_native_byte_order():
    """What the numba kernels and BLAS take; anything else is refused up
    front, not inside a kernel with a compiler's error."""
    for dtype in (np.float32, np.float64, "=f4"):
        x = np.zeros((2, 3), dtype)
        assert check_float_array(x, "x", shape=(2, 3)) is x
    for dtype in (np.float16, np.longdouble, np.int32, np.complex64):
        if np.dtype(dtype).itemsize in (4, 8) and np.dtype(dtype).kind == "f":
            continue  # a platform whose longdouble is double
        with pytest.raises(TypeError, match=r"x must be a floating-point array "
                                            r"\(float32 or float64\), got dtype"):
            check_float_array(np.zeros(3, dtype), "x")
    swapped = np.dtype(np.float32).newbyteorder("S")
    with pytest.raises(TypeError, match=re.escape(
            f"x must be in the machine's byte order, got dtype {swapped} ('{swapped.str}'); "
            f"convert it with .astype('{np.dtype(np.float32).str}')")):
        check_float_array(np.zeros(3, swapped), "x")
