"""Public modules that moved into subpackages, still importable under their old names.

``import fewshot.sampling`` gives the very module now at ``fewshot.setfit._pairs`` (one
module object, so ``isinstance`` checks and monkeypatching agree), with a
``DeprecationWarning`` naming where to import from instead. The table is the whole story;
:func:`install` puts one import hook in front of the others when ``fewshot`` is imported.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

__all__ = ["MOVED", "install"]

#: old module -> (the module it now is, what to tell its users)
MOVED = {
    "fewshot.sampling": ("fewshot.setfit._pairs", "import from fewshot.setfit instead"),
    "fewshot.pooling": (
        "fewshot._core.pooling",
        "it is internal now: choose pooling with the estimators' pooling= parameter",
    ),
    "fewshot.demo": ("fewshot.cli._demo", "import run_demo and pick_model from fewshot.cli"),
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name not in MOVED:
            return None
        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec):
        target, advice = MOVED[spec.name]
        warnings.warn(f"{spec.name} moved to {target}; {advice}.", DeprecationWarning, stacklevel=2)
        module = importlib.import_module(target)
        sys.modules[spec.name] = module
        return module

    def exec_module(self, module):
        """Nothing to run: the module was imported under its new name."""


def install() -> None:
    """Put the alias hook in front of the import system (once)."""
    if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Alias())
