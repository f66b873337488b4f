"""What HeadClassifier adds to a head's logits: temperature scaling and label matching.

Temperature scaling (Guo et al., 2017) divides the logits by one number fitted to
minimise the log-loss of labelled texts; label matching maps the user's labels to the
head's classes by name (any case), by index, or through an explicit map.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from .validation import check_class_labels, check_labels, plain

__all__ = [
    "TEMPERATURE_BOUNDS",
    "LabelMap",
    "Temperature",
    "TemperatureHead",
    "fit_temperature",
    "head_classes_text",
    "log_loss_at",
    "match_classes",
    "match_head_class",
    "softmax",
]


# Where the fitted temperature is searched (log-spaced); a fit that ends on a bound warns.
TEMPERATURE_BOUNDS = (0.05, 20.0)


class Temperature:
    """None (fit it, or 1 without labels) or a finite float > 0."""

    def check(self, name, value):
        if value is None:
            return
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if not (ok and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be None or a finite float > 0, got {value!r}.")

    def invalid(self):
        return 0.0


class LabelMap:
    """None or a mapping {user label: head class name or index} naming two classes or more."""

    def invalid(self):
        return ["pos", "neg"]

    def check(self, name, value):
        if value is None:
            return
        if not isinstance(value, Mapping):
            raise TypeError(
                f"{name} must be None or a dict {{your_label: head_class_name_or_index}}, got "
                f"{type(value).__name__}."
            )
        if len(value) < 2:
            raise ValueError(f"{name} must name at least two classes, got {dict(value)!r}.")
        for key, target in value.items():
            if key is None or isinstance(key, float) and math.isnan(key):
                raise ValueError(f"{name} has a missing label ({key!r}) as a key.")
            if isinstance(target, bool) or not isinstance(target, (str, numbers.Integral)):
                raise TypeError(
                    f"{name}[{key!r}] is {target!r}; give the head class as its name (str) or "
                    "its index (int)."
                )


@dataclass(frozen=True)
class TemperatureHead:
    """A HeadClassifier's fitted head: its classes' logits, divided by T, then softmax.

    Works on the raw logits of every head class (what the encoding path gives with
    ``head="logits"``), so prediction, the Ray helpers and the ONNX export share it.
    """

    indices: tuple[int, ...]
    temperature: float
    classes: np.ndarray

    def decision(self, logits) -> np.ndarray:
        """The scaled logits of ``classes``, float64, one column per class."""
        logits = np.asarray(logits, dtype=np.float64).reshape(len(logits), -1)
        return logits[:, list(self.indices)] / self.temperature

    def predict_proba(self, logits) -> np.ndarray:
        return softmax(self.decision(logits))

    def decision_function(self, logits) -> np.ndarray:
        z = self.decision(logits)
        return z[:, 1] - z[:, 0] if z.shape[1] == 2 else z

    def predict(self, logits) -> np.ndarray:
        z = self.decision(logits)
        return self.classes[np.argmax(z, axis=1)] if len(z) else self.classes[:0]


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def log_loss_at(logits: np.ndarray, y: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of class indices ``y`` under ``softmax(logits / T)``."""
    from scipy.special import logsumexp

    z = logits / temperature
    return float(np.mean(logsumexp(z, axis=1) - z[np.arange(len(y)), y]))


def fit_temperature(logits, y, bounds=TEMPERATURE_BOUNDS) -> float:
    """The temperature ``T`` that minimises the log-loss of ``softmax(logits / T)`` on ``y``.

    One parameter, searched over ``log T`` inside ``bounds`` with bounded Brent
    (deterministic). Warns (``ConvergenceWarning``) when the best value is a bound: then
    the labelled texts cannot pin the temperature down (typically every one of them is
    already classified correctly, so sharper is always "better").

    Examples
    --------
    >>> logits = np.array([[4.0, -4.0], [-4.0, 4.0], [4.0, -4.0], [-4.0, 4.0]])
    >>> T = fit_temperature(logits, np.array([0, 1, 0, 0]))  # 3 of 4 right: p = 0.75
    >>> round(T, 3), round(8 / math.log(3), 3)
    (7.282, 7.282)
    """
    from scipy.optimize import minimize_scalar

    logits = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y, dtype=np.intp)
    low, high = math.log(bounds[0]), math.log(bounds[1])
    result = minimize_scalar(
        lambda log_t: log_loss_at(logits, y, math.exp(log_t)),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-7},
    )
    log_t = float(result.x)
    # Bounded Brent stops near, not on, a bound; snap to it and say so.
    if min(log_t - low, high - log_t) < 1e-3:
        log_t = low if log_t - low < high - log_t else high
        warnings.warn(
            f"The fitted temperature reached its bound T={math.exp(log_t):g} (searched in "
            f"[{bounds[0]:g}, {bounds[1]:g}]): the labelled texts do not determine it "
            f"(all classified correctly, or the head is no better than chance on them). Give "
            f"more or harder labelled texts, or fix it with temperature=.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return math.exp(log_t)


def match_head_class(target, names: list[str], what: str) -> int | None:
    """Head index of ``target`` (a name, any case, or an index), or None if none matches."""
    target = plain(target)
    if isinstance(target, numbers.Integral) and not isinstance(target, bool):
        return int(target) if 0 <= target < len(names) else None
    if isinstance(target, str):
        folded = [i for i, name in enumerate(names) if name.casefold() == target.casefold()]
        if len(folded) > 1:
            raise ValueError(
                f"{what} {target!r} matches several head classes {[names[i] for i in folded]} "
                "(they differ only in case); name it by index in label_map."
            )
        return folded[0] if folded else None
    return None


def head_classes_text(names: list[str]) -> str:
    return ", ".join(f"{i}: {name!r}" for i, name in enumerate(names))


def match_classes(names: list[str], y, n_texts: int, label_map=None):
    """``(classes, head index per class, y as class indices or None)`` for a head.

    ``names`` are the head's class names in index order; ``label_map`` (optional)
    maps the user's labels to head classes, else each label matches itself.
    """
    if label_map is not None:
        keys = [plain(k) for k in label_map]
        indices = {}
        for key, target in label_map.items():
            index = match_head_class(target, names, f"label_map[{plain(key)!r}]")
            if index is None:
                raise ValueError(
                    f"label_map[{plain(key)!r}] = {plain(target)!r} is not a class of the "
                    f"model's head; its classes are {head_classes_text(names)} (give the "
                    "name, any case, or the index)."
                )
            indices[plain(key)] = index
        kinds = sorted({type(k).__name__ for k in keys})
        if len(kinds) > 1:
            raise TypeError(f"label_map's keys mix types {kinds}; use one type for your labels.")
        classes = np.unique(np.asarray(keys))
        encoded = None
        if y is not None:
            y = check_labels(y, n_texts)
            unknown = sorted({plain(v) for v in y if plain(v) not in indices}, key=str)
            if unknown:
                raise ValueError(
                    f"y holds labels that label_map does not name: {unknown}; label_map "
                    f"maps {sorted(indices, key=str)}."
                )
            position = {label: i for i, label in enumerate(classes.tolist())}
            encoded = np.asarray([position[plain(v)] for v in y], dtype=np.intp)
        head = [indices[label] for label in classes.tolist()]
    elif y is None:
        if len(set(names)) != len(names):
            raise ValueError(
                f"The model's head names a class twice ({head_classes_text(names)}); "
                "pass label_map={your_label: head_index} to tell its classes apart."
            )
        order = sorted(range(len(names)), key=lambda i: names[i])
        classes = np.asarray([names[i] for i in order])
        head, encoded = order, None
    else:
        classes, encoded, multilabel = check_class_labels(y, n_texts)
        if multilabel:
            raise ValueError(
                "HeadClassifier takes one label per text; a multi-label indicator y is not "
                "supported (the head's softmax picks one class)."
            )
        head, unmatched = [], []
        for label in classes:
            index = match_head_class(label, names, "label")
            if index is None:
                unmatched.append(plain(label))
            else:
                head.append(index)
        if unmatched:
            raise ValueError(
                f"y holds labels that match no class of the model's head: {unmatched}. The "
                f"head's classes are {head_classes_text(names)}. Use those names (any "
                "case) or indices as labels, or pass label_map={your_label: head_class}."
            )
    taken: dict[int, list] = {}
    for label, index in zip(classes.tolist(), head):
        taken.setdefault(index, []).append(label)
    for index, labels in taken.items():
        if len(labels) > 1:
            raise ValueError(
                f"labels {labels} all map to the head class {names[index]!r}; each head "
                "class can stand for one of your classes only."
            )
    return classes, np.asarray(head, dtype=np.intp), encoded
