"""Shared fixtures."""
import numpy as np
import pytest


@pytest.fixture
def rng():
    """A fresh, seeded numpy Generator per test."""
    return np.random.default_rng(0)
