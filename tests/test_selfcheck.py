"""The gradient-check report behind ``minirpn gradcheck``."""
import subprocess
import sys

import numpy as np

from minirpn.nn.selfcheck import LAYERS, SelfcheckReport, SelfcheckRow, run_selfcheck


def test_every_layer_passes():
    report = run_selfcheck(seed=0)
    assert report.passed, report.table()
    assert {row.layer for row in report.rows} == set(LAYERS)
    # every input with a gradient is checked: conv x, w, b ...
    conv = [r.input for r in report.rows if r.layer.startswith("conv2d stride 2")]
    assert conv == ["x", "w", "b"]
    assert all(r.error < 1e-6 for r in report.rows)


def test_another_seed_also_passes():
    assert run_selfcheck(seed=1).passed


def test_report_marks_failures_and_errors():
    report = SelfcheckReport([SelfcheckRow("relu", "x", (2, 3), error=1e-9),
                              SelfcheckRow("bad", "x", (2,), error=0.5),
                              SelfcheckRow("broken", "-", (), message="Boom: no")])
    assert not report.passed
    table = report.table()
    assert "FAIL" in table and "ERROR" in table and "Boom: no" in table
    assert "1/3 gradients ok" in table
    assert not SelfcheckReport().passed
    assert np.isnan(SelfcheckRow("x", "y", ()).error)


def test_gradcheck_cli_prints_the_table_and_exits_zero():
    out = subprocess.run([sys.executable, "-m", "minirpn", "gradcheck"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    for layer in LAYERS:
        assert layer in out.stdout
    assert "PASSED" in out.stdout
