"""``HeadClassifier``: a checkpoint's own sequence-classification head as a calibrated classifier.

The head's logits come out of the one encoding path (:meth:`EncodingPlan.encode` with
``layers=()`` and ``head="logits"``), so batching, the embedding cache, threads and the
ONNX backend work exactly as for :class:`~fewshot.DistilEmbedder`. On top of the logits
this module only maps the head's classes to the user's labels and scales the logits by
one fitted temperature (Guo et al., 2017, "On calibration of modern neural networks").
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from ._core.choices import DEFAULT_MODEL
from ._core.encoding import head_labels
from ._estimator.constraints import Integer, validate_params
from ._estimator.head_calibration import (
    LabelMap,
    Temperature,
    TemperatureHead,
    fit_temperature,
    match_classes,
)
from ._estimator.predict import HeadPredictionMixin
from ._estimator.resolve import (
    CPU_FLOAT32,
    ENCODING_CONSTRAINTS,
    check_backend,
    load_model_for,
    model_name,
    resolve_plan,
)
from ._estimator.validation import check_texts, plain
from ._folder.provenance import base_record, restore_provenance, training_data_record

__all__ = ["HeadClassifier"]


class HeadClassifier(HeadPredictionMixin, ClassifierMixin, BaseEstimator):
    """The model's own sequence-classification head as a scikit-learn classifier.

    For a checkpoint fine-tuned for classification (any model that
    ``transformers.AutoModelForSequenceClassification`` loads with its head, such as
    the anchor model's SST-2 sentiment head), this classifier predicts with that head
    unchanged. ``fit(X)`` without labels is zero-shot: ``classes_`` are the head's own
    class names (``config.id2label``). ``fit(X, y)`` with a few labelled texts maps the
    head's classes to your labels and fits one temperature ``T`` so that
    ``predict_proba = softmax(logits / T)`` is calibrated (minimum log-loss on those
    texts). Predictions are the head's argmax either way: a temperature changes how
    confident the probabilities are, never which class wins.

    The logits come from the same encoding path as :class:`~fewshot.DistilEmbedder`
    (``DistilEmbedder(layers=[], head="logits")`` gives the same numbers), so
    batching, ``cache``, ``n_threads`` and ``backend="onnx"`` work the same way. The
    model is loaded on first use and shared in the process; it is never pickled.

    Parameters
    ----------
    model : str or path-like, default="distilbert-base-uncased-finetuned-sst-2-english"
        Hugging Face model id or local folder of a model with a sequence-classification
        head. A model without one (a plain encoder such as all-MiniLM-L6-v2) is refused
        with a ``ValueError``: train a classifier on its features instead
        (``DistilEmbedder`` + ``LogisticRegression``, or ``SetFitClassifier``).
    revision : str, optional
        Hub branch, tag or commit.
    label_map : dict, optional
        ``{your_label: head_class}``, the head class given by name (any case) or index.
        Its keys are the classes (``classes_``) even when ``y`` lacks some of them, and
        it also renames the classes of a zero-shot ``fit(X)``. Without it, every label
        in ``y`` is matched by itself: a string to the head class of that name, ignoring
        case (``"positive"`` -> ``"POSITIVE"``), an int to the head class with that
        index. Labels that match no head class raise a ``ValueError`` listing the head's
        classes.
    temperature : float, optional
        Fix the temperature instead of fitting it. None: fitted on ``y`` when labels
        are given, 1.0 (the raw head) for a zero-shot ``fit(X)``.
    max_length : int, optional
        Tokens per text, special tokens included; capped at the model's limit. None:
        a sentence-transformers folder's ``max_seq_length``, else 512. Longer texts
        are cut.
    batch_size : int, default=32
        Texts per forward pass.
    device : "auto", str or torch.device, default="auto"
    dtype : {"float32", "float16", "bfloat16"}, default="float32"
    backend : {"torch", "onnx"}, default="torch"
        Where the forward pass runs; "onnx" uses ONNX Runtime on the CPU
        (``pip install 'fewshot[onnx]'``), as in ``DistilEmbedder``.
    quantize : {None, "int8"}, default=None
        ONNX Runtime dynamic int8 quantisation (``backend="onnx"``).
    n_threads : int, optional
        Intra-op threads of the forward pass; default ``torch.get_num_threads()``.
    cache : None, str, path-like or EmbeddingCache, default=None
        On-disk cache of the head's logits, keyed like ``DistilEmbedder``'s vectors
        (and shared with ``DistilEmbedder(layers=[], head="logits")``).
    progress : bool, default=False
        Show a tqdm progress bar.
    trust_remote_code : bool, default=False
        Allow model code from the hub; only for models whose code you have read.
    prompt : str or None, default=None
        Input template (``"Review: {text}"``, exactly one ``{text}`` field, other braces
        as ``{{ }}``) or prefix applied to every text before tokenisation, as in
        ``DistilEmbedder``; its tokens count toward ``max_length``. None: a
        sentence-transformers folder's ``default_prompt_name`` prompt, else none.

    Attributes
    ----------
    classes_ : ndarray
        The class labels, sorted (``predict_proba`` columns follow them): the head's
        class names after a zero-shot fit, your labels (or ``label_map``'s keys) after
        a fit with ``y``.
    head_indices_ : ndarray of int
        For each class in ``classes_``, the index of the head class it is (a column of
        the logits).
    head_labels_ : list of str
        All class names of the head, in index order (``config.id2label``).
    temperature_ : float
        The temperature the logits are divided by.
    base_model_ : dict
        The pretrained model as loaded (id, revision, resolved commit, fingerprint),
        recorded in a saved folder's manifest.
    training_data_ : dict or None
        Size, class counts and SHA-256 of the texts and labels ``fit`` was given
        (``fewshot._folder.provenance.training_data_record``); None after ``fit()`` without texts.
    prompt_ : str or None
        The prompt applied (``prompt``, or the folder's default prompt when None).

    See Also
    --------
    fewshot.SetFitClassifier : trains a classifier when the model has no suitable head.
    sklearn.calibration.CalibratedClassifierCV : calibrates any fitted classifier
        (``method="temperature"``, with ``FrozenEstimator``).

    Notes
    -----
    When ``y`` (or ``label_map``) covers only some of the head's classes, the others are
    dropped: ``classes_`` holds just your classes and the probabilities are the softmax
    of their logits alone, i.e. the head's probabilities conditioned on the text being
    one of your classes. At least two classes are needed.

    The temperature is searched in [0.05, 20]; a fit that ends on a bound warns with a
    ``ConvergenceWarning`` (for instance when all labelled texts are already right,
    so the log-loss keeps falling as the probabilities sharpen).

    A classifier has no ``transform``, so ``set_output`` does not apply; for the head's
    logits or probabilities as DataFrame columns use
    ``DistilEmbedder(layers=[], head="logits").set_output(transform="pandas")``.

    Examples
    --------
    >>> import tempfile
    >>> from fewshot import HeadClassifier
    >>> from fewshot.testing import make_tiny_distilbert
    >>> path = str(make_tiny_distilbert(tempfile.mkdtemp()))  # tiny random model, 2-class head
    >>> texts = ["good value", "broke after a week", "works fine", "awful", "love it", "bad"]
    >>> clf = HeadClassifier(model=path).fit(texts)            # zero-shot
    >>> clf.classes_.tolist(), clf.temperature_
    (['NEGATIVE', 'POSITIVE'], 1.0)
    >>> clf.predict_proba(["great"]).shape
    (1, 2)
    >>> labels = ["pos", "neg", "pos", "neg", "pos", "neg"]
    >>> clf = HeadClassifier(model=path, label_map={"neg": "NEGATIVE", "pos": "POSITIVE"})
    >>> clf.fit(texts, labels).classes_.tolist()
    ['neg', 'pos']
    >>> clf.predict(["great"])[0] in {"neg", "pos"}, clf.temperature_ > 0
    (True, True)
    """

    _constraints = {
        **ENCODING_CONSTRAINTS,
        "max_length": Integer(2, optional=True),
        "label_map": LabelMap(),
        "temperature": Temperature(),
    }

    def __init__(
        self,
        *,
        model=DEFAULT_MODEL,
        revision=None,
        label_map=None,
        temperature=None,
        max_length=None,
        batch_size=32,
        device="auto",
        dtype="float32",
        backend="torch",
        quantize=None,
        n_threads=None,
        cache=None,
        progress=False,
        trust_remote_code=False,
        prompt=None,
    ):
        self.model = model
        self.revision = revision
        self.label_map = label_map
        self.temperature = temperature
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = device
        self.dtype = dtype
        self.backend = backend
        self.quantize = quantize
        self.n_threads = n_threads
        self.cache = cache
        self.progress = progress
        self.trust_remote_code = trust_remote_code
        self.prompt = prompt

    # -- fitting ------------------------------------------------------------------------

    def fit(self, X=None, y=None):
        """Zero-shot with ``y=None``; otherwise map the labels and fit the temperature.

        Parameters
        ----------
        X : sequence of str, optional
            Texts. Without ``y`` they are only checked; with ``y`` their logits fit the
            temperature (unless ``temperature`` is set).
        y : array-like of shape (n_samples,), optional
            One label per text: head class names (any case), head indices, or any labels
            named in ``label_map``.

        Returns
        -------
        self
        """
        if y is not None and X is None:
            raise TypeError("fit got labels y but no texts X.")
        texts = None if X is None else check_texts(X, allow_empty=y is None)
        plan = self._encoding_plan()
        names = head_labels(plan.loaded)
        n_texts = 0 if texts is None else len(texts)
        classes, head, encoded = match_classes(names, y, n_texts, self.label_map)
        if self.temperature is not None:
            temperature = float(self.temperature)
        elif encoded is None:
            temperature = 1.0
        else:
            logits = self._head_logits(texts).astype(np.float64)[:, head]
            temperature = fit_temperature(logits, encoded)
        self.head_labels_ = names
        self.classes_ = classes
        self.head_indices_ = head
        self.temperature_ = temperature
        # Provenance for a saved folder (never the texts: a hash and counts).
        self.base_model_ = base_record(self.model, self.revision, plan.loaded)
        self.training_data_ = None if texts is None else training_data_record(texts, y)
        self.prompt_ = plan.spec.prompt
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        return tags

    # -- what the rest of fewshot asks an estimator --------------------------------------

    def _encoding_plan(self, **overrides):
        """How the logits are computed: no layers, the head's logits, through the one path.

        Validates the parameters and refuses a model without a classification head.
        """
        validate_params(self)
        params = {
            **self.get_params(deep=False),
            "layers": [],
            "head": "logits",
            # As DistilEmbedder resolves them, so the cache is shared with it.
            "pooling": None,
            "normalize": None,
            **overrides,
        }
        check_backend(params)
        loaded = load_model_for(params)
        _check_has_head(loaded, model_name(params["model"]))
        return resolve_plan(loaded, params)

    def _split_head(self):
        """``(texts -> raw head logits, the fitted temperature head)``: one forward pass."""
        check_is_fitted(self, "temperature_")
        head = TemperatureHead(
            tuple(int(i) for i in self.head_indices_), float(self.temperature_), self.classes_
        )
        return self._head_logits, head

    def _head_logits(self, texts: list[str]):
        """Raw logits of every head class, ``(n_texts, n_head_classes)`` float32."""
        return self._encoding_plan().encode(texts)

    def _export_parts(self):
        """The parts of the one-file ONNX export: the model's head as logits -> classes."""
        from .export._parts import transformer_parts

        _, head = self._split_head()
        plan = self._encoding_plan(**CPU_FLOAT32)
        return transformer_parts(self, plan, kind="head", head=head, classes=self.classes_)

    _folder_kinds = ("head",)

    def _write_folder(self, folder, *, metadata=None, metrics=None) -> None:
        """Kind "head": the pretrained model (its head included) under ``encoder/``.

        The temperature, label map and classes go in the manifest; nothing is pickled.
        """
        from ._folder.encoder import with_resolved_defaults
        from ._folder.format import ENCODER_FOLDER, new_manifest, write_encoder, write_manifest

        check_is_fitted(self, "temperature_")
        plan = self._encoding_plan()
        write_encoder(plan.loaded, folder / ENCODER_FOLDER)
        params = with_resolved_defaults(self.get_params(deep=False), plan)
        label_map = (
            None
            if self.label_map is None
            else [[plain(k), plain(v)] for k, v in self.label_map.items()]
        )
        manifest = new_manifest(
            "head",
            metadata,
            estimator=self,
            loaded=plan.loaded,
            metrics=metrics,
            # label_map travels in "fitted" as pairs: JSON object keys would turn ints into str.
            params={k: v for k, v in params.items() if k not in ("cache", "progress", "label_map")},
            fitted={
                "temperature": float(self.temperature_),
                "head_indices": [int(i) for i in self.head_indices_],
                "head_labels": list(self.head_labels_),
                "label_map": label_map,
            },
            classes=self.classes_.tolist(),
        )
        write_manifest(folder, manifest)

    @classmethod
    def _read_folder(cls, folder, manifest, *, model, device, trust_remote_code, trusted):
        """A fitted classifier from a kind "head" folder: its model from ``encoder/``."""
        from ._folder.encoder import encoder_params

        params = dict(manifest.get("params") or {})
        params = encoder_params(folder, manifest, params, model, device, trust_remote_code)
        known = cls().get_params(deep=False)
        fitted = manifest["fitted"]
        params = {k: v for k, v in params.items() if k in known}
        pairs = fitted.get("label_map")
        params["label_map"] = None if pairs is None else {k: v for k, v in pairs}
        clf = cls(**params)
        clf.classes_ = np.asarray(manifest["classes"])
        clf.head_indices_ = np.asarray(fitted["head_indices"], dtype=np.intp)
        clf.head_labels_ = list(fitted["head_labels"])
        clf.temperature_ = float(fitted["temperature"])
        restore_provenance(clf, manifest, keys=("base_model", "training_data"))
        clf.prompt_ = params.get("prompt") or None
        return clf


def _check_has_head(loaded, name: str) -> None:
    n_labels = int(getattr(loaded.config, "num_labels", 0) or 0)
    if loaded.has_head and n_labels >= 2:
        return
    architectures = getattr(loaded.config, "architectures", None)
    what = (
        "has no sequence-classification head"
        if not loaded.has_head
        else f"has a head with {n_labels} output (a regression head)"
    )
    raise ValueError(
        f"HeadClassifier predicts with the model's own classification head, but "
        f"{name!r} {what} (architectures: {architectures}). Train a classifier on "
        f"its features instead: Pipeline([('embed', DistilEmbedder(model={name!r})), "
        f"('lr', LogisticRegression())]), or SetFitClassifier(model={name!r}) to "
        "fine-tune it on your labelled texts."
    )
