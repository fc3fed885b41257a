"""The course in notebooks/ executes headless, and is stored without outputs.

Every ``notebooks/*.ipynb`` is one test: it runs in a fresh ``python3``
kernel (nbclient), in ``notebooks/``, with ``MINIRPN_QUICK=1`` so the
training notebooks take their short path, and with the repository root on
``PYTHONPATH`` so a checkout works without ``pip install``. A cell that
raises fails the test, naming the notebook and the cell; a cell that shows
an error on purpose carries the ``raises-exception`` tag, which nbclient
honours. Each notebook's wall time and kernel CPU time are printed at the
end of the session (``conftest.pytest_terminal_summary``) and kept as the
test's ``notebook_seconds`` and ``notebook_cpu_seconds`` properties.
"""
import os
import resource
import time
from pathlib import Path

import nbclient
import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 600


def _children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _failing_cell(nb):
    """Index and first source line of the first cell with an unexpected error."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or "raises-exception" in cell.metadata.get("tags", []):
            continue
        if any(out.get("output_type") == "error" for out in cell.get("outputs", [])):
            first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
            return index, first
    return None, ""


def test_the_course_exists():
    names = [p.name for p in NOTEBOOKS]
    assert names, f"no notebooks in {NOTEBOOK_DIR}"
    assert names[0].startswith("00_"), names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path, monkeypatch, record_property, tmp_path):
    # The kernel inherits this process's environment. Its connection file goes to a fresh
    # folder, so a read-only or shared home directory does not matter.
    monkeypatch.setenv("MINIRPN_QUICK", "1")
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
        extra_arguments=["--InteractiveShell.colors=nocolor"],
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    start, cpu_start = time.perf_counter(), _children_cpu_seconds()
    failure = None
    try:
        client.execute()
    except CellExecutionError as error:
        index, first = _failing_cell(nb)
        failure = f"{path.name}: cell {index} ({first!r}) raised:\n{error}"
    finally:
        # Wall time, and the CPU time of the kernel (counted once it has exited): on a
        # machine shared with other jobs the second is the steadier measure.
        record_property("notebook_seconds", round(time.perf_counter() - start, 1))
        record_property("notebook_cpu_seconds", round(_children_cpu_seconds() - cpu_start, 1))
    if failure:
        pytest.fail(failure, pytrace=False)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
             and (cell.get("outputs") or cell.get("execution_count") is not None)]
    assert not dirty, (
        f"{path.name}: cells {dirty} have outputs or execution counts; clear them "
        f"(jupyter nbconvert --clear-output --inplace {path.relative_to(ROOT)})")
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", (
        f"{path.name}: kernelspec must be python3, got {nb.metadata.get('kernelspec')}")
