"""``DistilEmbedder``: pooled hidden states (and head outputs) as a scikit-learn transformer."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from ._backends import BACKENDS, QUANTIZE, check_onnx_installed
from ._encoding import COMBINE, HEAD_OUTPUTS, LONG_TEXT, EncodingSpec, encode, head_labels
from ._loading import DEFAULT_MODEL, get_model, resolve_device, resolve_dtype
from ._validation import check_texts
from .cache import as_cache, cached_encode
from .pooling import POOLINGS


def resolve_layers(layers, n_layers: int, model_name: str = "the model") -> tuple[int, ...]:
    """Turn ``layers`` (int, list of ints or "all") into layer numbers ``0..n_layers``.

    Negative numbers count from the top: -1 is the last layer, ``-(n_layers + 1)`` the
    embedding output.

    Examples
    --------
    >>> resolve_layers([0, -1], 6)
    (0, 6)
    >>> resolve_layers("all", 2)
    (0, 1, 2)
    """
    if isinstance(layers, str):
        if layers != "all":
            raise ValueError(f"layers={layers!r} is not valid; use an int, a list of ints or 'all'.")
        return tuple(range(n_layers + 1))
    if isinstance(layers, numbers.Integral) and not isinstance(layers, bool):
        requested = [layers]
    elif isinstance(layers, (list, tuple, range, np.ndarray)):
        requested = list(layers)
    else:
        raise TypeError(
            f"layers must be an int, a list of ints or 'all', got {type(layers).__name__}."
        )
    resolved = []
    for layer in requested:
        if not isinstance(layer, numbers.Integral) or isinstance(layer, bool):
            raise TypeError(f"layers holds {layer!r}; every layer must be an int.")
        if not -(n_layers + 1) <= layer <= n_layers:
            raise ValueError(
                f"layer {layer} is out of range for {model_name}, which has {n_layers} "
                f"layers: use 0..{n_layers} (0 = embedding output, {n_layers} = last) "
                f"or -{n_layers + 1}..-1 counting from the top."
            )
        resolved.append(int(layer) % (n_layers + 1))
    if len(set(resolved)) != len(resolved):
        raise ValueError(f"layers={layers!r} names the same layer twice.")
    return tuple(resolved)


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not valid; choose one of {list(choices)}.")


def _check_model_name(model):
    if not isinstance(model, str) or not model:
        raise TypeError(f"model must be a Hugging Face model id or a folder path (str), got {model!r}.")


def _check_int(name, value, minimum):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}.")


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
    model : str, default="distilbert-base-uncased-finetuned-sst-2-english"
        Hugging Face model id or local folder. Any encoder ``transformers.AutoModel``
        loads works for hidden states.
    revision : str, optional
        Hub branch, tag or commit to load.
    layers : int, list of int or "all", default=-1
        0 is the embedding output, 1..L the transformer blocks; negative numbers count
        from the top (-1 = last). ``[]`` with ``head`` gives head features only.
    pooling : {"mean", "cls", "max"}, default="mean"
        "mean" and "max" ignore padding; "cls" takes the first token.
    combine : {"concat", "mean"}, default="concat"
        How several layers are joined: side by side, or averaged.
    head : {None, "logits", "proba"}, default=None
        Append the sequence-classification head's logits or softmax probabilities
        (one column per class in the model's ``id2label``).
    max_length : int, default=512
        Tokens per window, special tokens included; capped at the model's limit.
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
    normalize : bool, default=False
        L2-normalise the hidden-state features of each text (head columns untouched).
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

    Attributes
    ----------
    layers_ : tuple of int
        The requested layers as numbers in ``0..n_model_layers_``.
    n_model_layers_ : int
        Number of transformer blocks in the model.
    max_length_ : int
        ``max_length`` after capping at the model's limit.
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

    def __init__(
        self,
        *,
        model=DEFAULT_MODEL,
        revision=None,
        layers=-1,
        pooling="mean",
        combine="concat",
        head=None,
        max_length=512,
        long_text="truncate",
        stride=64,
        batch_size=32,
        device="auto",
        dtype="float32",
        normalize=False,
        backend="torch",
        quantize=None,
        n_threads=None,
        cache=None,
        progress=False,
        trust_remote_code=False,
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

    # -- parameter checks and model resolution -------------------------------------

    def _check_params(self):
        """Checks that need no model, so typos fail before any download."""
        _check_model_name(self.model)
        _check_choice("pooling", self.pooling, POOLINGS)
        _check_choice("combine", self.combine, COMBINE)
        _check_choice("head", self.head, (None,) + HEAD_OUTPUTS)
        _check_choice("long_text", self.long_text, LONG_TEXT)
        _check_int("max_length", self.max_length, 2)
        _check_int("stride", self.stride, 0)
        _check_int("batch_size", self.batch_size, 1)
        for flag in ("normalize", "progress", "trust_remote_code"):
            if not isinstance(getattr(self, flag), (bool, np.bool_)):
                raise TypeError(f"{flag} must be True or False, got {getattr(self, flag)!r}.")
        if isinstance(self.layers, (list, tuple)) and len(self.layers) == 0 and self.head is None:
            raise ValueError("layers=[] and head=None ask for no features; request a layer or a head.")
        resolve_dtype(self.dtype, resolve_device(self.device))
        _check_choice("backend", self.backend, BACKENDS)
        _check_choice("quantize", self.quantize, QUANTIZE)
        if self.n_threads is not None:
            _check_int("n_threads", self.n_threads, 1)
        as_cache(self.cache)
        if self.quantize is not None and self.backend != "onnx":
            raise ValueError(
                f"quantize={self.quantize!r} is ONNX Runtime's dynamic quantisation; use "
                f"backend='onnx', quantize={self.quantize!r} (pip install 'fewshot[onnx]')."
            )
        if self.backend == "onnx":
            if resolve_dtype(self.dtype, None) != resolve_dtype("float32", None):
                raise ValueError(
                    f"backend='onnx' runs float32 weights, but dtype={self.dtype!r}; use "
                    "dtype='float32' (quantize='int8' for a smaller, faster model)."
                )
            if self.device != "auto" and resolve_device(self.device).type != "cpu":
                raise ValueError(
                    f"backend='onnx' runs on the CPU, but device={self.device!r}; use "
                    "device='cpu' or 'auto', or backend='torch' on the GPU."
                )
            check_onnx_installed()

    def _load(self):
        return get_model(
            self.model,
            revision=self.revision,
            # ONNX Runtime runs on the CPU; export from weights that live there too.
            device="cpu" if self.backend == "onnx" else self.device,
            dtype=self.dtype,
            trust_remote_code=self.trust_remote_code,
        )

    def _resolve(self):
        """Validate the parameters against the model; return ``(loaded model, spec)``."""
        self._check_params()
        loaded = self._load()
        layers = resolve_layers(self.layers, loaded.n_layers, f"model {self.model!r}")
        if self.head is not None and not loaded.has_head:
            architectures = getattr(loaded.config, "architectures", None)
            raise ValueError(
                f"head={self.head!r} needs a sequence-classification head, but model "
                f"{self.model!r} has none (architectures: {architectures}). Use head=None, "
                "or a model fine-tuned for classification such as "
                f"{DEFAULT_MODEL!r}."
            )
        max_length = min(int(self.max_length), loaded.max_length)
        if self.long_text == "chunk":
            room = max_length - loaded.tokenizer.num_special_tokens_to_add()
            if self.stride >= room:
                raise ValueError(
                    f"stride={self.stride} must be smaller than the {room} text tokens "
                    f"of a window (max_length={max_length} minus special tokens)."
                )
        spec = EncodingSpec(
            layers=layers,
            pooling=self.pooling,
            combine=self.combine,
            head=self.head,
            max_length=max_length,
            long_text=self.long_text,
            stride=int(self.stride),
            normalize=bool(self.normalize),
            backend=self.backend,
            quantize=self.quantize,
        )
        return loaded, spec

    # -- scikit-learn API ---------------------------------------------------------

    def fit(self, X=None, y=None):
        """Validate the parameters and input and load the model (no learning happens).

        Parameters
        ----------
        X : sequence of str, optional
            Texts; only checked.
        y : ignored

        Returns
        -------
        self
        """
        if X is not None:
            check_texts(X)
        loaded, spec = self._resolve()
        self.layers_ = spec.layers
        self.n_model_layers_ = loaded.n_layers
        self.max_length_ = spec.max_length
        self.n_features_out_ = spec.n_features(loaded)
        self.head_labels_ = head_labels(loaded) if loaded.has_head else []
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
        loaded, spec = self._resolve()
        options = {
            "batch_size": int(self.batch_size),
            "progress": bool(self.progress),
            "n_threads": self.n_threads,
        }
        cache = as_cache(self.cache)
        if cache is None:
            return encode(loaded, texts, spec, out=out, **options)
        return cached_encode(cache, loaded, texts, spec, out=out, **options)

    def fit_transform(self, X, y=None, **fit_params):
        """Fit (validate) and embed ``X``; same result as ``fit(X).transform(X)``."""
        return self.fit(X, y).transform(X)

    def get_feature_names_out(self, input_features=None):
        """Column names such as ``layer4_mean_0`` or ``head_proba_POSITIVE``.

        Returns
        -------
        ndarray of str
        """
        loaded, spec = self._resolve()
        return np.asarray(spec.feature_names(loaded), dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        tags.requires_fit = False
        return tags
