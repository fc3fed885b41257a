"""Shared fixtures."""
import numpy as np
import pytest


@pytest.fixture
def rng():
    """A fresh, seeded numpy Generator per test."""
    return np.random.default_rng(0)


def pytest_terminal_summary(terminalreporter):
    """Print how long each notebook took (tests/test_notebooks.py records it)."""
    rows = []
    for outcome in ("passed", "failed"):
        for report in terminalreporter.stats.get(outcome, []):
            seconds = dict(getattr(report, "user_properties", ())).get("notebook_seconds")
            if getattr(report, "when", None) == "call" and seconds is not None:
                rows.append((report.nodeid.split("[")[-1].rstrip("]"), seconds, outcome))
    if rows:
        terminalreporter.section("notebook durations")
        for name, seconds, outcome in rows:
            terminalreporter.write_line(f"{seconds:7.1f} s  {name}  ({outcome})")
        terminalreporter.write_line(f"{sum(r[1] for r in rows):7.1f} s  in all")
