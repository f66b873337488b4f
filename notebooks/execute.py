"""Execute notebooks in place, keeping their outputs (how the committed outputs were made).

    python notebooks/execute.py notebooks/02_exploring_layers.ipynb [...]

Each notebook takes its model from the FEWSHOT_MODEL environment variable (unset: the
anchor model when it can be loaded, else the packaged all-MiniLM-L6-v2) and its data from
FEWSHOT_DATA (unset: the shipped demo data). The test suite runs the same notebooks with a
tiny random model without saving them.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import nbformat
from jupyter_client import KernelManager
from nbclient import NotebookClient


def execute(path: Path, *, timeout: int = 1800) -> nbformat.NotebookNode:
    """Run every cell of the notebook at ``path`` (in its folder) and return it."""
    notebook = nbformat.read(path, as_version=4)
    # Pictures inline, whatever backend the calling shell asks for.
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    # IPC transport: a local kernel without TCP (and without its warning in the outputs).
    with tempfile.TemporaryDirectory(prefix="fewshot-kernel-") as sockets:
        # Absolute socket paths: the kernel runs in the notebook's folder.
        manager = KernelManager(kernel_name="python3", transport="ipc",
                                ip=os.path.join(sockets, "ipc"))
        client = NotebookClient(notebook, timeout=timeout, km=manager,
                                resources={"metadata": {"path": str(path.parent)}})
        client.execute()
    return notebook


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    for path in args.notebooks:
        notebook = execute(path)
        nbformat.write(notebook, path)
        print(f"{path}: {path.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
