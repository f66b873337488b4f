"""``DistilEmbedder``: pooled hidden states (and head outputs) as a scikit-learn transformer."""

from __future__ import annotations

import os

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone

from ._core.choices import DEFAULT_MODEL, POOLINGS
from ._core.encoding import head_labels
from ._estimator.constraints import Integer, Layers, Options, validate_params
from ._estimator.resolve import ENCODING_CONSTRAINTS, check_backend, load_model_for, resolve_plan
from ._estimator.validation import check_texts
from ._folder.provenance import base_record, training_data_record

__all__ = ["DistilEmbedder", "as_embedder"]


class DistilEmbedder(TransformerMixin, BaseEstimator):
    """Sentence features from any layer of a Hugging Face encoder, for scikit-learn.

    Each text is tokenised, run once through the model and the hidden states of the
    requested layers are pooled into a vector; the sequence-classification head's output
    (for the default model: SST-2 sentiment) can be appended. The model is loaded on first
    use and shared by every embedder in the process with the same model, revision,
    device and dtype; it is never pickled.

    The transformer is stateless: ``fit`` only validates the parameters and records what
    they resolve to, and ``transform`` also works without ``fit`` (as for
    :class:`~sklearn.feature_extraction.text.HashingVectorizer`).

    Parameters
    ----------
    model : str or path-like, default="distilbert-base-uncased-finetuned-sst-2-english"
        Hugging Face model id or local folder. Any encoder ``transformers.AutoModel``
        loads works for hidden states.
    revision : str, optional
        Hub branch, tag or commit to load.
    layers : int, list of int or "all", default=-1
        0 is the embedding output, 1..L the transformer blocks; negative numbers count
        from the top (-1 = last). ``[]`` with ``head`` gives head features only.
    pooling : {"mean", "cls", "max"} or None, default=None
        "mean" and "max" ignore padding; "cls" takes the first token. None: the
        model folder's own pooling when it is a sentence-transformers model, else
        "mean".
    combine : {"concat", "mean"}, default="concat"
        How several layers are joined: side by side, or averaged.
    head : {None, "logits", "proba"}, default=None
        Append the sequence-classification head's logits or softmax probabilities
        (one column per class in the model's ``id2label``).
    max_length : int or None, default=None
        Tokens per window, special tokens included; capped at the model's limit.
        None: a sentence-transformers folder's ``max_seq_length``, else 512.
    long_text : {"truncate", "chunk"}, default="truncate"
        "truncate" cuts texts at ``max_length``. "chunk" splits a long text into
        overlapping windows, embeds each and averages them weighted by their token
        counts, so no part of the text is dropped.
    stride : int, default=64
        Tokens shared by neighbouring windows when ``long_text="chunk"``.
    batch_size : int, default=32
        Windows per forward pass.
    device : "auto", str or torch.device, default="auto"
        "auto" uses CUDA when available, else the CPU.
    dtype : {"float32", "float16", "bfloat16"}, default="float32"
        Weights and activations; features are returned as float32 either way.
    normalize : bool or None, default=None
        L2-normalise the hidden-state features of each text (head columns untouched).
        None: True when the model is a sentence-transformers folder ending in a
        ``Normalize`` module, else False. With the three defaults, a
        sentence-transformers folder embeds as ``SentenceTransformer(folder).encode``.
    backend : {"torch", "onnx"}, default="torch"
        Where the forward pass runs. "onnx" uses ONNX Runtime on the CPU (install
        ``fewshot[onnx]``): fewshot exports the model on first use and keeps the export
        under ``$FEWSHOT_HOME`` (default ``~/.cache/fewshot``), keyed by a hash of the
        model's files and the deepest layer asked for. Needs ``dtype="float32"``.
    quantize : {None, "int8"}, default=None
        "int8": ONNX Runtime dynamic quantisation (int8 weights, activations quantised
        per batch) of the ONNX export; needs ``backend="onnx"``. Faster on CPUs, with
        vectors close to but not equal to float32 ones.
    n_threads : int, optional
        Intra-op threads of the forward pass; default ``torch.get_num_threads()``,
        which joblib already limits inside parallel workers (``GridSearchCV(n_jobs=2)``),
        so parallel searches do not oversubscribe the CPU.
    cache : None, str, path-like or EmbeddingCache, default=None
        Folder (or :class:`~fewshot.EmbeddingCache`) for an on-disk embedding cache.
        Vectors are keyed by the text, a hash of the model's files and every setting that
        changes them, so a changed setting or model can never get stale vectors; only
        texts not yet cached reach the model. Safe to share between processes.
    progress : bool, default=False
        Show a tqdm progress bar.
    trust_remote_code : bool, default=False
        Allow model code from the hub; only for models whose code you have read.
    prompt : str or None, default=None
        Input template applied to every text before tokenisation: a str with exactly
        one ``{text}`` field (``"Review: {text}"``; write other braces as ``{{`` and
        ``}}``), or a prefix (``"query: "``, as instruction-tuned models such as E5
        want). Its tokens count toward ``max_length``. It is part of the cache key.
        None: the prompt a sentence-transformers folder names as its
        ``default_prompt_name`` (``config_sentence_transformers.json``), else none; a
        folder with several prompts and no default gets none. ``""`` turns a folder's
        default prompt off.

    Attributes
    ----------
    layers_ : tuple of int
        The requested layers as numbers in ``0..n_model_layers_``.
    n_model_layers_ : int
        Number of transformer blocks in the model.
    max_length_ : int
        ``max_length`` after defaults and capping at the model's limit.
    pooling_ : str
        The pooling used (``pooling``, or the model's own when it is None).
    normalize_ : bool
        Whether rows are L2-normalised (``normalize``, or the model's own when None).
    prompt_ : str or None
        The prompt applied (``prompt``, or the folder's default prompt when None).
    n_features_out_ : int
        Number of output columns.
    head_labels_ : list of str
        Class names of the model's sequence-classification head (from its
        ``id2label``); empty when the model has no such head.

    See Also
    --------
    fewshot.SetFitClassifier : fine-tunes the encoder on a few labelled texts.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import Pipeline
    >>> from fewshot import DistilEmbedder
    >>> import tempfile
    >>> from fewshot.testing import make_tiny_distilbert
    >>> path = make_tiny_distilbert(tempfile.mkdtemp())    # a tiny random model
    >>> embedder = DistilEmbedder(model=str(path), layers=[2, 4], head="proba")
    >>> X = embedder.fit_transform(["good value", "broke after a week", "works fine"])
    >>> X.shape, X.dtype
    ((3, 66), dtype('float32'))
    >>> list(embedder.get_feature_names_out()[[0, -1]])
    ['layer2_mean_0', 'head_proba_POSITIVE']
    >>> clf = Pipeline([("embed", DistilEmbedder(model=str(path), layers=4)),
    ...                 ("lr", LogisticRegression())])
    >>> clf.fit(["good", "bad", "great", "awful"], [1, 0, 1, 0]).predict(["good"]).shape
    (1,)
    """

    _constraints = {
        **ENCODING_CONSTRAINTS,
        "layers": Layers(),
        "pooling": Options(None, *POOLINGS),
        "max_length": Integer(2, optional=True),
    }

    def __init__(
        self,
        *,
        model=DEFAULT_MODEL,
        revision=None,
        layers=-1,
        pooling=None,
        combine="concat",
        head=None,
        max_length=None,
        long_text="truncate",
        stride=64,
        batch_size=32,
        device="auto",
        dtype="float32",
        normalize=None,
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
        self.layers = layers
        self.pooling = pooling
        self.combine = combine
        self.head = head
        self.max_length = max_length
        self.long_text = long_text
        self.stride = stride
        self.batch_size = batch_size
        self.device = device
        self.dtype = dtype
        self.normalize = normalize
        self.backend = backend
        self.quantize = quantize
        self.n_threads = n_threads
        self.cache = cache
        self.progress = progress
        self.trust_remote_code = trust_remote_code
        self.prompt = prompt

    # -- scikit-learn API ---------------------------------------------------------

    def fit(self, X=None, y=None):
        """Validate the parameters and input and load the model (no learning happens).

        Parameters
        ----------
        X : sequence of str, optional
            Texts; only checked (and recorded as a hash and counts, see below).
        y : array-like, optional
            Not used for the features; its counts and hash are recorded with ``X``'s.

        Returns
        -------
        self

        Notes
        -----
        ``base_model_`` (the model as loaded: id, revision, resolved commit,
        fingerprint) and ``training_data_`` (size, class counts and SHA-256 of ``X`` and
        ``y``; None without ``X``) are what a saved Pipeline's manifest records.
        """
        texts = None if X is None else check_texts(X)
        plan = self._encoding_plan()
        self.layers_ = plan.spec.layers
        self.n_model_layers_ = plan.loaded.n_layers
        self.max_length_ = plan.spec.max_length
        self.pooling_ = plan.spec.pooling
        self.normalize_ = plan.spec.normalize
        self.prompt_ = plan.spec.prompt
        self.n_features_out_ = plan.n_features
        self.head_labels_ = head_labels(plan.loaded) if plan.loaded.has_head else []
        self.base_model_ = base_record(self.model, self.revision, plan.loaded)
        self.training_data_ = None if texts is None else training_data_record(texts, y)
        return self

    def transform(self, X, out=None):
        """Embed texts.

        Repeated texts are embedded once; with ``cache`` set only texts not in the
        cache reach the model.

        Parameters
        ----------
        X : list, tuple, 1-D array, pandas Series or one-column DataFrame of str
        out : ndarray or numpy.memmap of shape (n_samples, n_features_out_), optional
            float32 array to write the features into (and return), for instance a
            memmap from ``np.lib.format.open_memmap`` when the output is larger than
            memory: texts stream through the model in blocks either way.

        Returns
        -------
        ndarray of shape (n_samples, n_features_out_), float32, C-contiguous
            Rows in input order; ``out`` itself when given.
        """
        texts = check_texts(X)
        return self._encoding_plan().encode(texts, out=out)

    def fit_transform(self, X, y=None, **fit_params):
        """Fit (validate) and embed ``X``; same result as ``fit(X).transform(X)``.

        ``X`` is read once, so a generator of texts works here as in ``transform``.
        """
        texts = check_texts(X)
        return self.fit(texts, y).transform(texts)

    def get_feature_names_out(self, input_features=None):
        """Column names such as ``layer4_mean_0`` or ``head_proba_POSITIVE``.

        Returns
        -------
        ndarray of str
        """
        plan = self._encoding_plan()
        return np.asarray(plan.spec.feature_names(plan.loaded), dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        tags.requires_fit = False
        return tags

    # -- what the rest of fewshot asks an estimator --------------------------------------

    def _encoding_plan(self, **overrides):
        """Validate the parameters, load the model and resolve how texts are embedded.

        ``overrides`` replace parameters for this plan only (the estimator is not
        changed): ``probe_layers`` asks for every layer and pooling at once, the ONNX
        export for float32 weights on the CPU.
        """
        validate_params(self)
        params = {**self.get_params(deep=False), **overrides}
        layers = params["layers"]
        if isinstance(layers, (list, tuple)) and not layers and params["head"] is None:
            # Before loading, so the mistake costs no download.
            raise ValueError(
                "layers=[] and head=None ask for no features; request a layer or a head."
            )
        check_backend(params)
        return resolve_plan(load_model_for(params), params)

    def _export_parts(self):
        """The parts of the one-file ONNX export: encoder to the deepest layer, pooling."""
        from ._estimator.resolve import CPU_FLOAT32
        from .export._parts import transformer_parts

        return transformer_parts(self, self._encoding_plan(**CPU_FLOAT32), kind="embedder")

    def _pipeline_step_params(self):
        """``(parameters, loaded model)`` a pipeline folder records for this first step.

        Parameters left at None get what they resolved to (the folder's ``encoder/``
        has no sentence-transformers files to resolve them from again).
        """
        from ._folder.encoder import with_resolved_defaults

        plan = self._encoding_plan()
        params = with_resolved_defaults(self.get_params(deep=False), plan)
        return {k: v for k, v in params.items() if k not in ("cache", "progress")}, plan.loaded


def as_embedder(model) -> DistilEmbedder:
    """A fresh DistilEmbedder from a model reference, or a clone of a given embedder."""
    if isinstance(model, DistilEmbedder):
        return clone(model)
    if isinstance(model, (str, os.PathLike)):
        return DistilEmbedder(model=model)
    raise TypeError(
        f"model must be a model id or folder (str or path) or a DistilEmbedder, got "
        f"{type(model).__name__}."
    )
