"""Every notebook runs end to end on the tiny model, and the committed copies hold their outputs."""

import os
import tempfile
from pathlib import Path

import nbclient  # noqa: E402
import nbformat  # noqa: E402
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MAX_BYTES = 1_500_000


def _read(path):
    return nbformat.read(path, as_version=4)


def _images(notebook) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_is_executed_small_and_names_its_model(path):
    notebook = _read(path)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code), "commit the notebook executed"
    assert not [o for cell in code for o in cell.outputs if o.output_type == "error"]
    assert _images(notebook) >= 1
    assert path.stat().st_size < MAX_BYTES
    first = notebook.cells[0].source
    assert "Which model produced the committed outputs" in first


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_end_to_end_on_the_tiny_model(path, tiny_model, tmp_path, monkeypatch):
    from jupyter_client import KernelManager

    notebook = _read(path)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    monkeypatch.setenv("FEWSHOT_MODEL", tiny_model)
    monkeypatch.setenv("FEWSHOT_QUICK", "1")  # notebooks may shrink their grids for tests
    monkeypatch.delenv("FEWSHOT_DATA", raising=False)
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    )
    with tempfile.TemporaryDirectory(prefix="fewshot-kernel-") as sockets:
        manager = KernelManager(
            kernel_name="python3", transport="ipc", ip=os.path.join(sockets, "ipc")
        )
        client = nbclient.NotebookClient(
            notebook, km=manager, timeout=240, resources={"metadata": {"path": str(tmp_path)}}
        )
        client.execute()  # raises CellExecutionError, naming the cell, if any cell fails
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code)
    assert _images(notebook) >= 1
    printed = "".join(
        o.get("text", "") for cell in code for o in cell.outputs if o.output_type == "stream"
    )
    assert tiny_model in printed  # the notebook used the model it was given
    assert list(tmp_path.iterdir()) == []  # notebooks write no files
