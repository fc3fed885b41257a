"""``import minirpn`` and its numba kernels work from a read-only install
whose HOME is not writable either (numba then has no cache folder)."""
import os
import shutil
import stat
import subprocess
import sys

import minirpn

SCRIPT = """
import numpy as np
import minirpn
from minirpn.ops import box_iou, nms
boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], np.float32)
assert abs(float(box_iou(boxes, boxes)[0, 1]) - 81 / 119) < 1e-6
assert nms(boxes, np.array([0.9, 0.8, 0.7], np.float32), 0.5).tolist() == [0, 2]
print("imported from", minirpn.__file__)
"""


def _read_only_tree(root):
    for folder, dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            os.chmod(path, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        os.chmod(folder, stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP
                 | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)


def test_import_with_no_writable_cache_folder(tmp_path):
    site, home = tmp_path / "site", tmp_path / "home"
    package = os.path.dirname(minirpn.__file__)
    shutil.copytree(package, site / "minirpn",
                    ignore=shutil.ignore_patterns("__pycache__", "*.nb[ci]"))
    # chmod alone does not stop root (CI containers often run as root), so
    # every cache folder is also blocked by a plain file of its name:
    # numba's in-tree locator wants <package>/__pycache__ and its user-wide
    # one $HOME/.cache/numba.
    for folder, _, _ in os.walk(site):
        with open(os.path.join(folder, "__pycache__"), "w"):
            pass
    home.mkdir()
    (home / ".cache").write_text("not a folder")
    _read_only_tree(site)
    _read_only_tree(home)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("NUMBA_CACHE_DIR", "XDG_CACHE_HOME",
                                "PYTHONPATH"))}
    env.update(HOME=str(home), PYTHONPATH=str(site),
               PYTHONDONTWRITEBYTECODE="1")
    try:
        result = subprocess.run([sys.executable, "-c", SCRIPT], env=env,
                                cwd=str(tmp_path), capture_output=True,
                                text=True, timeout=300)
    finally:  # let pytest remove tmp_path
        for folder, _, _ in os.walk(tmp_path):
            os.chmod(folder, stat.S_IRWXU)
    assert result.returncode == 0, result.stderr[-2000:]
    assert str(site) in result.stdout
    left = [f for _, _, files in os.walk(site) for f in files
            if f.endswith((".nbi", ".nbc"))]
    assert left == []
