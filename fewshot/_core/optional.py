"""Optional dependencies: import them on use, or say which extra to install.

The library's hard dependencies are what every path imports; heavier or interop-only
parts are extras (``fewshot[onnx]``, ``fewshot[ray]``, ``fewshot[viz]``,
``fewshot[setfit]``, ``fewshot[peft]``), and every path that needs one fails with the
same message naming the ``pip install`` that fixes it.
"""

from __future__ import annotations

import importlib

__all__ = ["require"]


def require(*modules: str, extra: str, feature: str):
    """Import ``modules`` and return the first; raise ImportError naming ``extra`` if missing.

    Examples
    --------
    >>> require("json", extra="none", feature="reading JSON").__name__
    'json'
    """
    imported, missing = [], []
    for name in modules:
        try:
            imported.append(importlib.import_module(name))
        except ImportError:
            missing.append(name.split(".")[0])
    if missing:
        names = ", ".join(dict.fromkeys(missing))
        raise ImportError(
            f"{feature} needs {names}, which is not installed. Install the extra: "
            f"pip install 'fewshot[{extra}]'"
        )
    return imported[0]
