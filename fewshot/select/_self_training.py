"""Self-training: a classifier that also learns from confident pseudo-labels on unlabelled texts.

scikit-learn's convention (``sklearn.semi_supervised.SelfTrainingClassifier``): ``X``
holds labelled and unlabelled rows together, and ``y`` marks the unlabelled ones with
``-1``. Here the mark is the ``unlabelled`` parameter (default ``-1``), and a missing
label (None or NaN, as a pandas column with empty cells gives) is unlabelled too. String
labels work either way: ``["pos", -1, "neg"]`` as sklearn writes it, ``["pos", None,
"neg"]``, or ``unlabelled=""`` for ``["pos", "", "neg"]``.

Refitting a :class:`~fewshot.SetFitClassifier` costs a contrastive fine-tuning, which
grows with the number of texts; ``refit="head"`` keeps the body fine-tuned on the real
labels and refits only the head on the embeddings of labelled and pseudo-labelled texts,
for the price of embedding the pool once (see ``docs/select.md`` for what this was
measured to cost and gain).
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.neighbors import KNeighborsClassifier
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from .._estimator.constraints import (
    Classifier,
    Integer,
    Options,
    RandomState,
    Real,
    validate_params,
)
from .._estimator.predict import split_head
from .._estimator.validation import as_rows, check_labels, plain, take_rows
from ._uncertainty import check_proba_classifier

__all__ = ["PseudoLabelClassifier"]


class _Marker:
    """Any value that is hashable and not a list: the mark of an unlabelled row (or None)."""

    def check(self, name, value):
        if isinstance(value, (list, tuple, set, dict, np.ndarray)):
            raise TypeError(
                f"{name} must be one value that marks unlabelled rows (such as -1 or ''), got "
                f"{type(value).__name__}."
            )

    def invalid(self):
        return [-1]


class _Cap:
    """None, an int >= 1 (a count) or a float > 0 (a multiple of the labels per class)."""

    def check(self, name, value):
        if value is None:
            return
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            Integer(1).check(name, value)
        else:
            Real(0, low_open=True).check(name, value)

    def invalid(self):
        return 0


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, numbers.Real) and math.isnan(value))


def _estimator_has(name):
    def check(self):
        return hasattr(self.estimator_ if hasattr(self, "estimator_") else self._base(), name)

    return check


def _shallow_copy(fitted):
    """A second object sharing ``fitted``'s attributes (copy.copy would pickle a body)."""
    model = object.__new__(type(fitted))
    model.__dict__.update(fitted.__dict__)
    return model


def _with_head(fitted, head):
    """``fitted`` with its head replaced: what :func:`split_head` took apart, put back."""
    if hasattr(fitted, "steps") and len(fitted.steps) > 1:  # a Pipeline: new last step
        model = _shallow_copy(fitted)
        model.steps = list(fitted.steps[:-1]) + [(fitted.steps[-1][0], head)]
        return model
    if hasattr(fitted, "head_"):  # a SetFitClassifier: the same body, a new head
        model = _shallow_copy(fitted)
        model.head_ = head
        return model
    return head  # the estimator is its own head


class PseudoLabelClassifier(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Self-training: fit, label the unlabelled texts the model is sure of, fit again.

    ``fit(X, y)`` trains ``estimator`` on the labelled rows, predicts the unlabelled
    ones, adds those that pass ``criterion`` as pseudo-labels, and refits; up to
    ``max_iter`` rounds. Deterministic for a fixed ``random_state``.

    Parameters
    ----------
    estimator : classifier with ``predict_proba``, default=None
        What is trained, cloned for every fit: a :class:`~fewshot.SetFitClassifier`, a
        Pipeline of a :class:`~fewshot.DistilEmbedder` and a classifier, or any
        scikit-learn classifier. None: ``SetFitClassifier()``.
    criterion : {"threshold", "knn"}, default="threshold"
        Which unlabelled rows may become pseudo-labelled. "threshold": those whose
        predicted class has probability ``>= threshold``. "knn": those, if also the
        ``n_neighbors`` labelled texts nearest to the row (cosine, in the classifier's
        own embedding) vote for the predicted class; needs a feature step (a
        SetFitClassifier, a Pipeline) or numeric ``X``. Of the rows that pass, the
        ``max_per_class`` most confident of each class are kept.
    threshold : float in [0, 1), default=0.0
        Smallest probability of the predicted class for a pseudo-label. SetFit's
        logistic-regression head is rarely sure with few labels (at 8 texts per class
        on SST-2, 90 % of its probabilities were below 0.66-0.75), so a fixed
        threshold keeps few rows, often of one class only; the default ranks instead:
        the most confident rows of each class (``max_per_class``).
    n_neighbors : int, default=3
        Voters of the "knn" criterion (at most the number of labelled rows); few, so
        that a class with two labelled texts can win its vote.
    max_per_class : int, float or None, default=2.0
        Pseudo-labels per class and round, the most confident rows predicted as that
        class: an int is a count, a float a multiple of the labelled rows per class (2.0
        with 8 labels per class: 16 per class), None every row that passes. Equal
        counts per class keep a head fitted on a skewed draw from learning the skew (see
        ``docs/select.md``).
    max_iter : int, default=3
        Rounds of pseudo-labelling; rows labelled in one round keep their label. With
        ``refit="head"`` a round costs a head fit, not a pass through the encoder.
    refit : {"head", "full"}, default="head"
        After a round, refit only the head on the embeddings of the labelled and
        pseudo-labelled rows, with the feature step (a SetFitClassifier's fine-tuned
        body, a Pipeline's first steps) fitted on the real labels alone; or fit a fresh
        clone of the whole estimator on them. An estimator without a feature step is
        its own head, so both mean the same refit there.
    unlabelled : object, default=-1
        The label that marks an unlabelled row; None or NaN labels are unlabelled too.
        None: only missing labels mark unlabelled rows (for int labels where -1 is a
        class).
    random_state : int, RandomState or None, default=None
        Set as the estimator's ``random_state`` (when it has one) for every fit; None
        leaves the estimator's own.

    Attributes
    ----------
    estimator_ : classifier
        The final model, used by ``predict``; with ``refit="head"`` the estimator fitted
        on the real labels with the head refitted on the pseudo-labels too (a
        SetFitClassifier or Pipeline that ``save`` and ``fewshot.save_model`` take).
    classes_ : ndarray
        Class labels, from the labelled rows.
    transduction_ : ndarray
        The label of every row after fitting: the given one, a pseudo-label, or
        ``unlabelled`` for rows never pseudo-labelled.
    labeled_iter_ : ndarray of int
        The round in which each row got its label: 0 for given labels, -1 for never.
    n_iter_ : int
        Rounds run.
    n_pseudo_labels_ : int
        Rows that got a pseudo-label.
    termination_condition_ : {"max_iter", "no_change", "all_labeled"}
        Why the rounds ended.

    See Also
    --------
    sklearn.semi_supervised.SelfTrainingClassifier : the same idea, always a full refit.

    Examples
    --------
    >>> import tempfile
    >>> from fewshot import SetFitClassifier
    >>> from fewshot.data import load_customer_feedback
    >>> from fewshot.select import PseudoLabelClassifier
    >>> from fewshot.testing import make_tiny_distilbert
    >>> path = str(make_tiny_distilbert(tempfile.mkdtemp()))    # a tiny random model
    >>> texts, topics = load_customer_feedback(return_X_y=True)
    >>> y = [t if i % 20 < 3 else -1 for i, t in enumerate(topics)]   # 3 labels per topic
    >>> clf = PseudoLabelClassifier(
    ...     estimator=SetFitClassifier(model=path, n_iterations=1), random_state=0
    ... ).fit(texts, y)
    >>> clf.classes_.tolist(), clf.n_pseudo_labels_ <= 3 * 4 * 6   # rounds x topics x 2 x 3
    (['billing', 'delivery', 'product', 'service'], True)
    >>> clf.predict(["The refund never came."]).shape
    (1,)
    """

    _constraints = {
        "estimator": Classifier(),
        "criterion": Options("threshold", "knn"),
        "threshold": Real(0, 1),
        "n_neighbors": Integer(1),
        "max_per_class": _Cap(),
        "max_iter": Integer(1),
        "refit": Options("head", "full"),
        "unlabelled": _Marker(),
        "random_state": RandomState(),
    }

    def __init__(
        self,
        *,
        estimator=None,
        criterion="threshold",
        threshold=0.0,
        n_neighbors=3,
        max_per_class=2.0,
        max_iter=3,
        refit="head",
        unlabelled=-1,
        random_state=None,
    ):
        self.estimator = estimator
        self.criterion = criterion
        self.threshold = threshold
        self.n_neighbors = n_neighbors
        self.max_per_class = max_per_class
        self.max_iter = max_iter
        self.refit = refit
        self.unlabelled = unlabelled
        self.random_state = random_state

    def _base(self):
        if self.estimator is not None:
            return self.estimator
        from ..setfit._classifier import SetFitClassifier

        return SetFitClassifier()

    def _new_estimator(self):
        estimator = clone(self._base())
        if self.random_state is not None and "random_state" in estimator.get_params(deep=False):
            estimator.set_params(random_state=self.random_state)
        return estimator

    def _split_y(self, y, n_rows):
        """Positions of labelled and unlabelled rows, and the labels of the labelled ones."""
        values = y.to_numpy() if hasattr(y, "to_numpy") else y
        if isinstance(values, (str, bytes)) or values is None:
            check_labels(values, n_rows)  # its message for these
        values = [plain(v) for v in np.asarray(list(values), dtype=object).ravel()]
        if len(values) != n_rows:
            check_labels(values, n_rows)
        marker = self.unlabelled

        def unlabelled(value):
            if _is_missing(value):
                return True
            if marker is None or _is_missing(marker):
                return False
            # -1 marks a row, but "-1" or True do not: same value and kind of value.
            same_kind = isinstance(value, str) == isinstance(marker, str)
            return same_kind and not isinstance(value, bool) and value == marker

        mask = np.array([unlabelled(v) for v in values], dtype=bool)
        if mask.all():
            raise ValueError(
                f"y has no labelled row: every label is the unlabelled mark "
                f"{self.unlabelled!r} or missing; label a few texts first (fewshot.select."
                "cold_start chooses which)."
            )
        labelled = np.flatnonzero(~mask)
        y_labelled = check_labels([values[i] for i in labelled], len(labelled))
        return labelled, np.flatnonzero(mask), y_labelled

    def fit(self, X, y):
        """Fit on the labelled rows, add confident pseudo-labels, refit.

        Parameters
        ----------
        X : sequence of str (or whatever ``estimator`` takes)
            Labelled and unlabelled rows together, read by position.
        y : array-like of shape (n_samples,)
            Labels, with ``unlabelled`` (default -1), None or NaN for unlabelled rows.

        Returns
        -------
        self
        """
        validate_params(self, self._constraints)
        X = as_rows(X)
        labelled, pool, y_labelled = self._split_y(y, len(X))
        estimator = self._new_estimator()
        estimator.fit(take_rows(X, labelled), y_labelled)
        check_proba_classifier(estimator, "estimator")
        featurize, head = split_head(estimator)
        head_only = self.refit == "head" and featurize is not None
        X_pool = take_rows(X, pool)
        F_labelled = F_pool = None
        if len(pool) and (featurize is not None or self.criterion == "knn"):
            F_labelled, F_pool = self._features(featurize, take_rows(X, labelled), X_pool)
        votes = None
        if self.criterion == "knn" and len(pool):
            # Fixed from the model fitted on the given labels: pseudo-labels never vote.
            n_neighbors = min(self.n_neighbors, len(labelled))
            votes = (
                KNeighborsClassifier(n_neighbors=n_neighbors, metric="cosine", algorithm="brute")
                .fit(F_labelled, y_labelled)
                .predict(F_pool)
            )

        pool_features = F_pool if featurize is not None and len(pool) else None
        rounds = np.full(len(X), -1, dtype=np.intp)
        rounds[labelled] = 0
        labels = np.empty(len(X), dtype=object)
        labels[labelled] = [plain(v) for v in y_labelled]
        self.termination_condition_ = "max_iter"
        n_iter = 0
        while n_iter < self.max_iter:
            remaining = np.flatnonzero(rounds[pool] < 0)
            if not len(remaining):
                self.termination_condition_ = "all_labeled"
                break
            if pool_features is not None:  # embedded by the current body: ask the head
                model, inputs = head, pool_features[remaining]
            else:
                model, inputs = estimator, take_rows(X_pool, remaining)
            proba = np.asarray(model.predict_proba(inputs))
            chosen, predicted = self._choose(
                proba, np.asarray(model.classes_), remaining, votes, len(labelled)
            )
            if not len(chosen):
                self.termination_condition_ = "no_change"
                break
            n_iter += 1
            rounds[pool[chosen]] = n_iter
            labels[pool[chosen]] = [plain(v) for v in predicted]
            pseudo = np.flatnonzero(rounds[pool] >= 1)
            given = [plain(v) for v in y_labelled]
            y_trained = check_labels(given + list(labels[pool[pseudo]]))
            if head_only:
                head = clone(head).fit(np.vstack([F_labelled, F_pool[pseudo]]), y_trained)
            else:
                trained = np.concatenate([labelled, pool[pseudo]])
                estimator = self._new_estimator().fit(take_rows(X, trained), y_trained)
                pool_features = None  # a new body: the pool's features are out of date
        if not (rounds[pool] < 0).any():
            self.termination_condition_ = "all_labeled"
        self.estimator_ = _with_head(estimator, head) if head_only else estimator
        self.classes_ = np.asarray(estimator.classes_)
        self.labeled_iter_ = rounds
        self.n_iter_ = n_iter
        self.n_pseudo_labels_ = int((rounds >= 1).sum())
        labels[rounds < 0] = self.unlabelled
        self.transduction_ = _label_array(labels)
        return self

    def _features(self, featurize, X_labelled, X_pool):
        """Features of the labelled and pool rows: the fitted feature step's, or numeric X."""
        if featurize is not None:
            return np.asarray(featurize(X_labelled)), np.asarray(featurize(X_pool))
        try:
            return np.asarray(X_labelled, dtype=float), np.asarray(X_pool, dtype=float)
        except (TypeError, ValueError):
            raise TypeError(
                "criterion='knn' measures distances in the classifier's embedding, but "
                f"{type(self._base()).__name__} has no feature step and X is not numeric; use a "
                "SetFitClassifier or a Pipeline([DistilEmbedder(...), classifier]), or "
                "criterion='threshold'."
            ) from None

    def _choose(self, proba, classes, remaining, votes, n_labelled):
        """The rows of ``remaining`` that pass the criterion, and their predicted classes."""
        predicted = proba.argmax(axis=1)
        confidence = proba.max(axis=1)
        passed = confidence >= self.threshold
        if votes is not None:
            passed &= votes[remaining] == classes[predicted]
        chosen = np.flatnonzero(passed)
        if self.max_per_class is not None:
            cap = self.max_per_class
            if not isinstance(cap, numbers.Integral):  # a multiple of the labels per class
                cap = max(1, math.ceil(cap * n_labelled / len(classes)))
            kept = []
            for c in np.unique(predicted[chosen]):
                members = chosen[predicted[chosen] == c]
                order = np.lexsort((members, -confidence[members]))
                kept.append(members[order][:cap])
            chosen = np.sort(np.concatenate(kept)) if kept else chosen
        return remaining[chosen], classes[predicted[chosen]]

    # -- prediction: the final model's ------------------------------------------------

    @available_if(_estimator_has("predict"))
    def predict(self, X):
        """Predicted class of each row (the final model's ``predict``)."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(X)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities, columns in ``classes_`` order."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X):
        """The final model's decision function."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.decision_function(X)

    @available_if(_estimator_has("transform"))
    def transform(self, X):
        """The final model's features (a SetFitClassifier's fine-tuned embeddings)."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.transform(X)

    def _split_head(self):
        """The final model's ``(features, head)``, so callers embed once and ask the head."""
        check_is_fitted(self, "estimator_")
        return split_head(self.estimator_)

    def __sklearn_tags__(self):
        from sklearn.utils import get_tags

        tags = super().__sklearn_tags__()
        inner = get_tags(self._base())
        tags.input_tags.string = inner.input_tags.string
        tags.input_tags.two_d_array = inner.input_tags.two_d_array
        tags.non_deterministic = inner.non_deterministic and self.random_state is None
        return tags


def _label_array(values) -> np.ndarray:
    """Labels as numpy's plain dtype when they share a type, else an object array."""
    kinds = {type(v) for v in values}
    if len(kinds) == 1 or all(issubclass(k, numbers.Real) for k in kinds):
        return np.asarray(list(values))
    return np.asarray(values, dtype=object)
