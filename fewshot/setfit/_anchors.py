"""Class descriptions as anchors: ``SetFitClassifier(label_descriptions=...)``.

A short text per class joins the training texts as one example of its class, so pairs
pull each class's texts towards its description, and the head sees it too.
"""

from __future__ import annotations

from .._estimator.validation import plain

__all__ = ["LabelDescriptions", "anchor_texts"]


class LabelDescriptions:
    """``label_descriptions``: None, "labels" or a dict of non-empty texts."""

    def check(self, name, value):
        if value is None or value == "labels":
            return
        if not isinstance(value, dict) or not all(
            isinstance(text, str) and text.strip() for text in value.values()
        ):
            raise TypeError(
                f"{name} must be None, 'labels' or a dict mapping every class to a short "
                f"text, got {value!r}."
            )

    def invalid(self):
        return ["not", "a", "dict"]


def anchor_texts(descriptions, classes, multilabel: bool) -> list[str]:
    """One description per class, in ``classes`` order (empty without descriptions)."""
    if descriptions is None:
        return []
    if multilabel:
        raise ValueError("label_descriptions works with single-label y only.")
    names = [plain(c) for c in classes]
    if descriptions == "labels":
        if not all(isinstance(name, str) for name in names):
            raise ValueError(
                "label_descriptions='labels' uses string labels as their own descriptions, "
                f"but the classes are {names}; pass a dict {{class: text}} instead."
            )
        return list(names)
    missing = [name for name in names if name not in descriptions]
    unknown = [key for key in descriptions if key not in names]
    if missing or unknown:
        raise ValueError(
            f"label_descriptions must name exactly the classes {names}; missing {missing}, "
            f"not classes {unknown}."
        )
    return [descriptions[name] for name in names]
