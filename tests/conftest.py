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
            props = dict(getattr(report, "user_properties", ()))
            if getattr(report, "when", None) == "call" and "notebook_seconds" in props:
                rows.append((report.nodeid.split("[")[-1].rstrip("]"), props["notebook_seconds"],
                             props.get("notebook_cpu_seconds", float("nan")), outcome))
    if rows:
        terminalreporter.section("notebook durations (wall, kernel CPU)")
        for name, wall, cpu, outcome in rows:
            terminalreporter.write_line(f"{wall:7.1f} s {cpu:7.1f} s cpu  {name}  ({outcome})")
        terminalreporter.write_line(f"{sum(r[1] for r in rows):7.1f} s "
                                    f"{sum(r[2] for r in rows):7.1f} s cpu  in all")
