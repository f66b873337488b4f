"""Declared parameter constraints: each estimator says what every parameter may be.

Every estimator holds a ``_constraints`` mapping ``{parameter: constraint}`` covering all
of its ``__init__`` parameters (a test checks the coverage, as scikit-learn's
``check_param_validation`` does) and checks it with :func:`validate_params` in ``fit``,
never in ``__init__``. A constraint has ``check(name, value)``, which raises a
``ValueError`` or ``TypeError`` naming the parameter and the fix, and ``invalid()``,
a value it refuses (what the coverage test feeds it).
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping

import numpy as np

__all__ = [
    "Boolean",
    "CacheReference",
    "Classifier",
    "Deprecated",
    "Devices",
    "DType",
    "Integer",
    "Layers",
    "ModelReference",
    "Options",
    "Prompt",
    "RandomState",
    "Real",
    "Text",
    "validate_params",
]


class Options:
    """One of a fixed set of values (``None`` allowed only when listed)."""

    def __init__(self, *values):
        self.values = values

    def check(self, name, value):
        if value not in self.values:
            raise ValueError(f"{name}={value!r} is not valid; choose one of {list(self.values)}.")

    def invalid(self):
        return "not-an-option"


class Integer:
    """An int (not a bool) ``>= minimum`` (any int when ``minimum`` is None); ``optional``: None."""

    def __init__(self, minimum, *, optional=False):
        self.minimum, self.optional = minimum, optional

    def check(self, name, value):
        if value is None and self.optional:
            return
        if (
            not isinstance(value, numbers.Integral)
            or isinstance(value, bool)
            or (self.minimum is not None and value < self.minimum)
        ):
            bound = "an int" if self.minimum is None else f"an int >= {self.minimum}"
            raise ValueError(f"{name} must be {bound}, got {value!r}.")

    def invalid(self):
        return 1.5 if self.minimum is None else self.minimum - 1


class Real:
    """A real number in ``[low, high)`` (``high=None``: unbounded); ``low_open`` excludes low.

    With ``optional`` also None.
    """

    def __init__(self, low, high=None, *, low_open=False, optional=False):
        self.low, self.high, self.low_open = low, high, low_open
        self.optional = optional

    def check(self, name, value):
        if value is None and self.optional:
            return
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if ok:
            ok = value > self.low if self.low_open else value >= self.low
            ok = ok and (self.high is None or value < self.high)
        if not ok:
            if self.high is None:
                bound = f"> {self.low}" if self.low_open else f">= {self.low}"
            else:
                bound = f"in {'(' if self.low_open else '['}{self.low}, {self.high})"
            raise ValueError(f"{name} must be a float {bound}, got {value!r}.")

    def invalid(self):
        return self.low - 1


class Boolean:
    """True or False (numpy bools too); with ``optional`` also None."""

    def __init__(self, *, optional=False):
        self.optional = optional

    def check(self, name, value):
        if value is None and self.optional:
            return
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False, got {value!r}.")

    def invalid(self):
        return "yes"


class Text:
    """A non-empty str; with ``optional`` also None."""

    def __init__(self, *, optional=False):
        self.optional = optional

    def check(self, name, value):
        if value is None and self.optional:
            return
        if not isinstance(value, str) or not value:
            raise TypeError(f"{name} must be a non-empty str, got {value!r}.")

    def invalid(self):
        return 3


class ModelReference:
    """A Hugging Face model id or a folder: a non-empty str or any ``os.PathLike``."""

    def check(self, name, value):
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str) or not value.strip():
            raise TypeError(
                f"{name} must be a Hugging Face model id or a folder path (str or "
                f"pathlib.Path), got {value!r}."
            )

    def invalid(self):
        return 3


class Layers:
    """An int, a list of ints or "all" (the range is checked against the loaded model)."""

    def check(self, name, value):
        if isinstance(value, str):
            if value != "all":
                raise ValueError(
                    f"{name}={value!r} is not valid; use an int, a list of ints or 'all'."
                )
            return
        if isinstance(value, (list, tuple, range, np.ndarray)):
            bad = [v for v in value if not isinstance(v, numbers.Integral) or isinstance(v, bool)]
            if bad:
                raise TypeError(f"{name} holds {bad[0]!r}; every layer must be an int.")
            return
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise TypeError(
                f"{name} must be an int, a list of ints or 'all', got {type(value).__name__}."
            )

    def invalid(self):
        return 1.5


class Prompt:
    """None, or a str: a template with exactly one ``{text}`` field, or a prefix.

    Other braces must be escaped as ``{{`` and ``}}`` (see :mod:`fewshot._core.prompt`).
    """

    def check(self, name, value):
        from .._core.prompt import prompt_parts

        if value is not None:
            prompt_parts(value)  # names the parameter "prompt" and the fix

    def invalid(self):
        return "{text} and {text}"


class Classifier:
    """None or an unfitted scikit-learn classifier (checked before any training)."""

    def check(self, name, value):
        from sklearn.base import is_classifier

        if value is None:
            return
        if not (hasattr(value, "fit") and hasattr(value, "predict")):
            raise TypeError(f"{name} must be a scikit-learn classifier or None, got {value!r}.")
        if not is_classifier(value):
            raise TypeError(
                f"{name}={value!r} is not a classifier (a regressor or transformer would "
                "only fail after fine-tuning); pass a classifier such as "
                "LogisticRegression(), or None for the default."
            )

    def invalid(self):
        return "logistic"


class RandomState:
    """None, an int >= 0 or a ``numpy.random.RandomState`` (scikit-learn's rule)."""

    def check(self, name, value):
        if value is None or isinstance(value, np.random.RandomState):
            return
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 0:
            raise ValueError(
                f"{name} must be None, an int >= 0 or a numpy RandomState, got {value!r}."
            )

    def invalid(self):
        return -1


class Devices:
    """``"auto"`` or a torch device that exists here."""

    def check(self, name, value):
        from .._core.devices import resolve_device

        resolve_device(value)

    def invalid(self):
        return "no-such-device"


class DType:
    """A dtype name that torch runs: "float32", "float16" or "bfloat16"."""

    def check(self, name, value):
        from .._core.devices import resolve_dtype

        resolve_dtype(value, None)

    def invalid(self):
        return "float7"


class CacheReference:
    """None, a non-empty folder path or an EmbeddingCache."""

    def check(self, name, value):
        from .._core.plan import as_cache

        as_cache(value)

    def invalid(self):
        return 3


class Deprecated:
    """A renamed parameter: its default ``"deprecated"``, or what ``constraint`` accepts."""

    def __init__(self, constraint):
        self.constraint = constraint

    def check(self, name, value):
        if value != "deprecated":
            self.constraint.check(name, value)

    def invalid(self):
        return self.constraint.invalid()


def validate_params(estimator, constraints: Mapping | None = None) -> None:
    """Check every parameter of ``estimator``; raise naming the first bad one.

    ``constraints`` defaults to the estimator's ``_constraints``; a parameter without a
    declared constraint is an error of the estimator's author, raised as such.
    """
    constraints = estimator._constraints if constraints is None else constraints
    for name, value in estimator.get_params(deep=False).items():
        if name not in constraints:
            raise TypeError(
                f"{type(estimator).__name__} declares no constraint for its parameter {name!r}."
            )
        constraints[name].check(name, value)
