"""``StaticStudentClassifier``: a fitted classifier distilled into static token embeddings.

No transformer runs at prediction time: a text is the L2-normalised mean of one int8
row per token of the teacher's own tokenizer, and a scikit-learn head maps it to class
probabilities. ``fit`` builds the table from the teacher's body (model2vec's
distillation, :mod:`fewshot.distill._teacher`, :mod:`fewshot.distill._static`), tunes it
on a pool of unlabelled texts to reproduce the teacher's probabilities
(:mod:`fewshot.distill._tune`) and fits the head on those soft labels
(:mod:`fewshot.distill._soft`). Saving (:mod:`fewshot.distill._folder`) and the one-file
ONNX export (:mod:`fewshot.distill._onnx`) live beside it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .._estimator.constraints import (
    Boolean,
    Classifier,
    Integer,
    RandomState,
    Real,
    validate_params,
)
from .._estimator.predict import HeadPredictionMixin
from .._estimator.validation import check_texts, plain
from .._folder.provenance import training_data_record
from ._soft import default_head, fit_soft_head, labelled_rows
from ._static import (
    bag_features,
    initial_table,
    quantize_rows,
    special_tokens,
    truncating_tokenizer,
)
from ._teacher import Teacher, check_teacher, teacher_plan, teacher_record, token_vectors
from ._tune import tune_table

__all__ = ["MIN_POOL", "StaticStudentClassifier"]

#: The fewest texts a student distils from: its head and table learn from the
#: teacher's probabilities on them, and a few dozen texts cover too few tokens.
MIN_POOL = 100


class StaticStudentClassifier(
    HeadPredictionMixin, ClassifierMixin, TransformerMixin, BaseEstimator
):
    """A fast student of a fitted fewshot classifier: static token embeddings and a head.

    For deployments where a transformer is too slow or too large: the student needs no
    transformer at prediction time (numpy and the tokenizer in Python, one ONNX file of
    a few MB through :func:`~fewshot.distill.export_student`), at some cost in accuracy.
    ``fit`` takes a pool of unlabelled texts of the task (the more, the closer the
    student comes to its teacher; at least :data:`MIN_POOL`) and learns:

    1. a table of one vector per token of the teacher's tokenizer: model2vec's
       distillation of the teacher's (fine-tuned) body, each vocabulary token passed
       through it alone, reduced by PCA to ``pca_dims`` and weighted by SIF;
    2. that table tuned for ``epochs`` passes over the pool so that the mean of a
       text's token vectors, through a linear head, gives the teacher's probabilities
       (only tokens of the pool move);
    3. ``head`` fitted on the teacher's probabilities over the pool (soft labels: each
       text once per class, weighted by the teacher's probability), on the table
       stored as int8 with a scale per row.

    Labelled texts can be mixed into the pool: their labels replace the teacher's
    probabilities.

    Parameters
    ----------
    teacher : fitted fewshot classifier
        A fitted :class:`~fewshot.SetFitClassifier`, :class:`~fewshot.HeadClassifier`
        or ``Pipeline([DistilEmbedder, ..., classifier])`` (single-label). It is only
        read; ``clone`` keeps the same fitted teacher.
    pca_dims : int, default=256
        Width of the table (and of ``transform``); at most the teacher's hidden size.
        256 keeps a 30,522-token vocabulary at 7.8 MB in int8.
    sif_coefficient : float or None, default=1e-4
        SIF weighting of the initial table (``a / (a + p(token))``, token frequencies
        from Zipf's law over the vocabulary order, as model2vec does); None: no weights.
    epochs : int, default=3
        Passes of table tuning over the pool; 0 keeps model2vec's table as distilled.
    learning_rate : float, default=3e-3
        Adam's learning rate for the tuning.
    max_length : int, default=512
        Tokens per text, special tokens included; longer texts are cut. A static model
        has no position limit, and a token costs a lookup, so long texts are cheap.
    normalize : bool, default=True
        L2-normalise each text's mean vector (what ``transform`` returns and the head
        sees).
    head : sklearn classifier, default=None
        Fitted on the features of the pool with the teacher's probabilities as
        targets (with ``sample_weight``; a head without it learns the argmax). None
        means ``LogisticRegression(C=10, max_iter=2000)``.
    batch_size : int, default=256
        Tokens per forward pass of the teacher's body when distilling the table, and
        texts per tuning step.
    random_state : int, RandomState or None
        Decides the PCA, the tuning's order and the head's randomness.
    progress : bool, default=False
        tqdm bars for the teacher's passes and the tuning.

    Attributes
    ----------
    classes_ : ndarray
        The teacher's classes.
    head_ : sklearn classifier
        The fitted head.
    embeddings_ : ndarray of shape (n_tokens, n_dims), int8
        The table; row ``i`` is token id ``i`` of ``tokenizer_``.
    scales_ : ndarray of shape (n_tokens,), float32
        Each row's scale (0 for the tokens the mean leaves out: the special tokens).
    tokenizer_ : tokenizers.Tokenizer
        The teacher's tokenizer (truncating at ``max_length``).
    special_tokens_ : dict
        The tokenizer's ``cls``, ``sep``, ``pad``, ``unk`` and ``mask`` tokens.
    n_pool_ : int
        Texts distilled from; ``n_labelled_`` of them carried labels.
    teacher_ : dict
        The teacher's class, base model, training-data record, seeds and classes
        (saved in the manifest's ``teacher``).
    base_model_ : dict or None
        The teacher's base model record.
    training_data_ : dict
        Size and hash of the pool (and its labels, where given).
    seeds_ : dict
        ``random_state`` and the seeds drawn from it.

    Examples
    --------
    >>> import tempfile
    >>> from fewshot import SetFitClassifier
    >>> from fewshot.distill import StaticStudentClassifier
    >>> from fewshot.testing import make_tiny_distilbert
    >>> path = str(make_tiny_distilbert(tempfile.mkdtemp()))
    >>> texts = ["great value", "love it", "works well", "broke fast", "awful", "hate it"]
    >>> labels = ["pos", "pos", "pos", "neg", "neg", "neg"]
    >>> teacher = SetFitClassifier(model=path, n_iterations=2, random_state=0)
    >>> teacher = teacher.fit(texts, labels)
    >>> pool = [f"{a} {b}" for a in texts for b in texts] * 3
    >>> student = StaticStudentClassifier(teacher=teacher, pca_dims=16, random_state=0)
    >>> student = student.fit(pool)
    >>> student.classes_.tolist(), student.predict(["love it"]).shape
    (['neg', 'pos'], (1,))
    >>> student.transform(["awful"]).shape
    (1, 16)
    """

    _constraints = {
        "teacher": Teacher(),
        "pca_dims": Integer(2),
        "sif_coefficient": Real(0, 1, low_open=True, optional=True),
        "epochs": Integer(0),
        "learning_rate": Real(0, low_open=True),
        "max_length": Integer(3),
        "normalize": Boolean(),
        "head": Classifier(),
        "batch_size": Integer(1),
        "random_state": RandomState(),
        "progress": Boolean(),
    }
    #: The folder kind this classifier writes and reads (see fewshot.model_folder).
    _folder_kinds = ("static-student",)

    def __init__(
        self,
        *,
        teacher=None,
        pca_dims=256,
        sif_coefficient=1e-4,
        epochs=3,
        learning_rate=3e-3,
        max_length=512,
        normalize=True,
        head=None,
        batch_size=256,
        random_state=None,
        progress=False,
    ):
        self.teacher = teacher
        self.pca_dims = pca_dims
        self.sif_coefficient = sif_coefficient
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.max_length = max_length
        self.normalize = normalize
        self.head = head
        self.batch_size = batch_size
        self.random_state = random_state
        self.progress = progress

    # -- training -----------------------------------------------------------------------

    def fit(self, X, y=None):
        """Distil the teacher into a static table and a head, from the pool ``X``.

        Parameters
        ----------
        X : sequence of str
            The pool: texts of the task, unlabelled (at least :data:`MIN_POOL`). The
            more the better; the teacher's training texts may be among them.
        y : array-like of shape (n_samples,), optional
            Labels mixed into the pool: a class of the teacher replaces the teacher's
            probabilities for that text; ``None`` or NaN (or ``-1`` where -1 is not a
            class, scikit-learn's semi-supervised convention) marks an unlabelled text.

        Returns
        -------
        self
        """
        texts = check_texts(X, allow_empty=False)
        validate_params(self)
        teacher = self.teacher
        check_teacher(teacher)
        if len(texts) < MIN_POOL:
            raise ValueError(
                f"a pool of {len(texts)} texts is too small to distil from; pass at least "
                f"{MIN_POOL} texts of the task (unlabelled ones will do: the teacher labels "
                "them)."
            )
        classes = np.asarray(teacher.classes_)
        labelled = labelled_rows(y, len(texts), classes)
        random = check_random_state(self.random_state)
        seeds = [int(s) for s in random.randint(0, 2**31 - 1, size=3)]
        pca_seed, tune_seed, head_seed = seeds

        targets = np.asarray(teacher.predict_proba(texts), dtype=np.float64)
        has_label = labelled >= 0
        targets[has_label] = np.eye(len(classes))[labelled[has_label]]

        ids, table, left_out = self._distil_table(teacher, texts, targets, classes, seeds)
        self.embeddings_, self.scales_ = quantize_rows(table, left_out)
        features = bag_features(ids, self.embeddings_, self.scales_, normalize=self.normalize)
        head = default_head(head_seed) if self.head is None else clone(self.head)
        if "random_state" in head.get_params() and head.get_params()["random_state"] is None:
            head.set_params(random_state=head_seed)
        self.head_ = fit_soft_head(head, features, targets, classes)
        self.classes_ = classes
        self.n_pool_ = len(texts)
        self.n_labelled_ = int(has_label.sum())
        self.teacher_ = teacher_record(teacher)
        self.base_model_ = self.teacher_["base_model"]
        self.training_data_ = training_data_record(
            texts,
            None if y is None else [plain(classes[i]) if i >= 0 else None for i in labelled],
        )
        self.seeds_ = {
            "random_state": self.random_state
            if isinstance(self.random_state, (int, np.integer, type(None)))
            else repr(self.random_state),
            "pca": pca_seed,
            "tune": tune_seed,
            "head": head_seed,
        }
        return self

    def _distil_table(self, teacher, texts, targets, classes, seeds):
        """The int8-ready table: token vectors of the teacher's body, PCA, then tuning.

        Returns the texts' token ids, the float table and which rows the mean leaves out
        (special tokens); sets ``tokenizer_`` and ``special_tokens_``.
        """
        pca_seed, tune_seed, head_seed = seeds
        plan = teacher_plan(teacher)
        hf_tokenizer = plan.loaded.tokenizer
        self.tokenizer_ = truncating_tokenizer(
            hf_tokenizer.backend_tokenizer.to_str(), self.max_length
        )
        self.special_tokens_ = special_tokens(hf_tokenizer)
        n_tokens = self.tokenizer_.get_vocab_size(with_added_tokens=True)
        left_out = np.zeros(n_tokens, dtype=bool)
        left_out[[i for i in hf_tokenizer.all_special_ids if i < n_tokens]] = True

        vectors = token_vectors(
            plan, np.arange(n_tokens), batch_size=int(self.batch_size), progress=self.progress
        )
        table = initial_table(
            vectors,
            left_out,
            dims=int(self.pca_dims),
            sif_coefficient=self.sif_coefficient,
            random_state=pca_seed,
        )
        ids = self._token_ids(texts)
        if self.epochs:
            # The tuning starts from the head that fits the distilled table.
            start = fit_soft_head(
                default_head(head_seed),
                bag_features(ids, *quantize_rows(table, left_out), normalize=self.normalize),
                targets,
                classes,
            )
            table = tune_table(
                [seq[~left_out[seq]] for seq in ids],
                table,
                targets,
                start,
                epochs=int(self.epochs),
                learning_rate=float(self.learning_rate),
                batch_size=int(self.batch_size),
                normalize=bool(self.normalize),
                seed=tune_seed,
                progress=self.progress,
            )
        return ids, table, left_out

    # -- prediction ---------------------------------------------------------------------

    def _token_ids(self, texts: list[str]) -> list[np.ndarray]:
        """Each text's token ids, special tokens included, cut at ``max_length``."""
        return [np.asarray(e.ids, dtype=np.int64) for e in self.tokenizer_.encode_batch(texts)]

    def transform(self, X):
        """The student's sentence vectors, ``(n_samples, n_dims)`` float32.

        Parameters
        ----------
        X : sequence of str

        Returns
        -------
        ndarray of shape (n_samples, n_dims)
        """
        check_is_fitted(self, "embeddings_")
        texts = check_texts(X)
        return bag_features(
            self._token_ids(texts), self.embeddings_, self.scales_, normalize=self.normalize
        )

    def fit_transform(self, X, y=None, **fit_params):
        """Fit on the pool ``X`` and return its sentence vectors."""
        texts = check_texts(X)
        return self.fit(texts, y).transform(texts)

    def _split_head(self):
        """``(texts -> sentence vectors, the fitted head)``: embed once, ask both."""
        check_is_fitted(self, "head_")
        return self.transform, self.head_

    def get_feature_names_out(self, input_features=None):
        """Names of the sentence-vector columns: ``static_0``, ``static_1``, ..."""
        check_is_fitted(self, "embeddings_")
        n = self.embeddings_.shape[1]
        return np.asarray([f"static_{j}" for j in range(n)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        tags.non_deterministic = self.random_state is None
        return tags

    def __sklearn_clone__(self):
        # The teacher is a fitted input, not a parameter to refit: a clone shares it
        # (cloning it would hand the clone an unfitted teacher).
        params = self.get_params(deep=False)
        teacher = params.pop("teacher")
        return type(self)(teacher=teacher, **{k: clone(v, safe=False) for k, v in params.items()})

    # -- persistence --------------------------------------------------------------------

    def save(self, directory, *, metadata=None, metrics=None) -> Path:
        """Write the fitted student to ``directory``: :func:`fewshot.save_model`.

        The folder holds the table and its scales (``student.safetensors``), the
        tokenizer (``tokenizer.json``), the head (``head.skops``) and the manifest
        ``fewshot.json`` (kind ``"static-student"``) whose ``teacher`` entry names the
        teacher's class, base model and training data; no teacher weights.

        Parameters
        ----------
        directory : str or Path
        metadata : dict, optional
            JSON-serialisable notes stored in the manifest.
        metrics : dict, optional
            ``{name: number}`` from an evaluation, stored in the manifest and the card.

        Returns
        -------
        Path
        """
        from ..model_folder import save_model

        return save_model(self, directory, metadata=metadata, metrics=metrics)

    @classmethod
    def load(cls, directory, *, trusted=None) -> StaticStudentClassifier:
        """Load a student written by :meth:`save`; predictions are identical.

        Parameters
        ----------
        directory : str or Path
        trusted : list of str or type, optional
            Types a custom head needs beyond the allow-list
            (:data:`fewshot._folder.trust.HEAD_TYPES`), allowed at this call only.

        Returns
        -------
        StaticStudentClassifier
        """
        from ._folder import read_student_folder

        return read_student_folder(cls, directory, trusted=trusted)

    def _write_folder(self, folder, *, metadata=None, metrics=None) -> None:
        """Kind "static-student": table, tokenizer, head and manifest (no teacher)."""
        from ._folder import write_student_folder

        write_student_folder(self, Path(folder), metadata=metadata, metrics=metrics)

    @classmethod
    def _read_folder(
        cls, folder, manifest, *, model=None, device="auto", trust_remote_code=False, trusted=None
    ):
        """A fitted student from a kind "static-student" folder (checks already done)."""
        from ._folder import restore_student

        if model is not None:
            raise ValueError(
                f"{str(folder)!r} holds a static student, which embeds with its own table; "
                "model= is not used for it."
            )
        return restore_student(cls, Path(folder), manifest, trusted=trusted)

    def _export_parts(self):
        """The parts of the one-file ONNX export: tokenizer, embedding bag, head."""
        from ._onnx import student_parts

        return student_parts(self)
