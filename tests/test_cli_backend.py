"""``--backend numpy|cupy`` on demo, train, evaluate and detect."""
import json
import subprocess
import sys

import pytest

from minirpn import backend
from minirpn.cli import build_parser, main

from test_cli import TINY

COMMANDS = {"demo": [], "train": ["--data", "shapes", "--out", "run"],
            "evaluate": ["model.npz", "--data", "shapes"],
            "detect": ["model.npz", "a.png", "--out", "det"]}


def _no_cupy():
    try:
        import cupy  # noqa: F401
    except ImportError:
        return
    pytest.skip("cupy is installed here")


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_the_flag_parses_and_is_in_the_help(command, capsys):
    parser = build_parser()
    assert parser.parse_args([command, *COMMANDS[command]]).backend is None
    for name in ("numpy", "cupy"):
        assert parser.parse_args([command, *COMMANDS[command], "--backend", name]).backend == name
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args([command, *COMMANDS[command], "--backend", "torch"])
    assert exit_.value.code == 2
    capsys.readouterr()
    with pytest.raises(SystemExit):
        parser.parse_args([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--backend {numpy,cupy}" in text and "MINIRPN_BACKEND" in text


def test_cupy_without_cupy_is_one_error_line_and_exit_1(tmp_path):
    _no_cupy()
    done = subprocess.run([sys.executable, "-m", "minirpn", "demo", "--backend", "cupy",
                           "--minutes", "0.01", "--out", str(tmp_path / "demo")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert done.stderr.strip() == ("minirpn demo: error: CuPy is not installed: "
                                   "pip install minirpn[gpu]")
    assert not (tmp_path / "demo").exists()  # nothing started


def test_cupy_without_cupy_in_process_leaves_numpy(tmp_path, capsys):
    _no_cupy()
    assert main(["evaluate", str(tmp_path / "model.npz"), "--data", "shapes",
                 "--backend", "cupy"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "minirpn evaluate: error: CuPy is not installed: pip install minirpn[gpu]"
    assert backend.get_backend() == "numpy"


def test_numpy_backend_trains(tmp_path):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    assert main(["train", "--data", "shapes", "--num-images", "2", "--out",
                 str(tmp_path / "run"), "--config", str(config), "--iterations", "1",
                 "--batch-size", "1", "--quiet", "--backend", "numpy"]) == 0
    assert backend.get_backend() == "numpy"
    assert (tmp_path / "run" / "model.npz").exists()
