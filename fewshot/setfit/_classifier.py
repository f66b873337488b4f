"""``SetFitClassifier``: its parameters, prediction and the hooks the rest of fewshot asks.

What fit does is :mod:`fewshot.setfit._fit`; the design is described in
:mod:`fewshot.setfit`.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._core.choices import DEFAULT_MODEL
from .._estimator.constraints import (
    Boolean,
    Classifier,
    Deprecated,
    Integer,
    Layers,
    Options,
    RandomState,
    Real,
)
from .._estimator.predict import HeadPredictionMixin
from .._estimator.resolve import (
    CPU_FLOAT32,
    ENCODING_CONSTRAINTS,
    resolve_plan,
)
from .._estimator.validation import check_texts
from ._anchors import LabelDescriptions
from ._folder import FolderMixin, fitted_normalize
from ._heads import MULTI_TARGET
from ._lora import Adapter, is_adapter
from ._pairs import SAMPLING
from ._precision import COMPUTE_DTYPES, compute_autocast, inference_dtype
from ._renamed import texts_per_pass

__all__ = ["SetFitClassifier"]


class SetFitClassifier(
    HeadPredictionMixin, FolderMixin, ClassifierMixin, TransformerMixin, BaseEstimator
):
    """Few-shot text classifier: SetFit contrastive fine-tuning plus a scikit-learn head.

    For tasks with a handful (5-50) of labelled texts per class. ``fit`` first
    fine-tunes a private copy of the pretrained encoder on pairs of training texts
    (cosine-similarity loss: same class -> similarity 1, different classes -> 0), then
    fits ``head`` on the fine-tuned embeddings. Every ``fit`` starts again from the
    pretrained weights.

    Parameters
    ----------
    model : str or path-like, default="distilbert-base-uncased-finetuned-sst-2-english"
        Hugging Face model id or local folder of the pretrained encoder.
    revision : str, optional
        Hub branch, tag or commit.
    layer : int, default=-1
        The body's sentence embedding is the pooled hidden state of this layer
        (1..L, negatives from the top); layers above it are removed, not run.
    pooling : {"mean", "cls", "max"}, default="mean"
    normalize : bool or None, default=None
        L2-normalise the fine-tuned embeddings (``transform``, and what the head is
        fitted on and predicts from). None follows the body: True for a
        sentence-transformers folder that ends in a ``Normalize`` module (such as
        all-MiniLM-L6-v2), as the setfit library does, else False (``normalize_``).
        The body is trained for cosine similarity, so unit vectors are what it optimises.
    train_layers : int or None, default=None
        Fine-tune only the top ``train_layers`` blocks and keep the ones below as
        pretrained; their output is computed once per training text, so each step costs
        only the top blocks. None fine-tunes every block up to ``layer``. With an
        ``adapter``, LoRA layers go into those top blocks only.
    train_token_embeddings : bool, default=False
        Fine-tune the token embedding table (the model's input embeddings) too, when
        every block trains, as the setfit library does. False keeps it as pretrained
        (the same accuracy, less memory and time: docs/few-shot.md).
    adapter : None, "lora" or LoRA, default=None
        None fine-tunes a private copy of the whole body. ``"lora"`` (``LoRA()``) or a
        :class:`~fewshot.setfit.LoRA` with its settings (``LoRA(rank=4)``; in a grid
        search ``adapter__rank``) trains LoRA adapters (low-rank updates, with the
        ``peft`` library: ``pip install 'fewshot[peft]'``) on the shared pretrained body
        instead, which stays unchanged: the saved folder holds the adapter and head only
        (a few hundred KB to a few MB), and any number of adapter classifiers share one
        copy of the base weights. Needs a larger ``body_learning_rate`` (about 1e-3
        rather than 5e-5).
    label_descriptions : None, "labels" or dict, default=None
        A short text per class ("billing: invoices, charges and refunds"), used as an
        anchor: it joins the training texts as an example of its class, so pairs pull
        each class's texts towards its description, and the head sees it too.
        ``"labels"`` uses string labels as their own descriptions; a dict maps every
        class to its text. Single-label ``y`` only (measured: docs/benchmarks.md).
    head : sklearn classifier, default=None
        Fitted on the fine-tuned embeddings; None means ``LogisticRegression(max_iter=1000)``.
        Pass an estimator to tune it, e.g. ``GridSearchCV(..., {"head__C": [...]})``.
    n_iterations : int or None, default=20
        Pair-generation iterations (SetFit's meaning): ``n_iterations * n_samples``
        positive and as many negative pairs. None lets ``sampling`` decide.
    sampling : {"oversampling", "undersampling", "unique"}, default="oversampling"
        Pair counts when ``n_iterations`` is None (see :func:`fewshot.setfit._pairs.sample_pairs`).
    max_pairs : int, optional
        Upper bound on the number of pairs.
    self_pairs : bool, default=True
        Also pair each text with itself as a positive pair, as the setfit library's
        sampler does: its two sides run through the body with different dropout
        (SimCSE's unsupervised objective).
    epochs : int, default=1
        Passes over the pairs.
    pairs_per_step : int, default=16
        Pairs per optimisation step (the texts in a step are embedded once each).
        Before fewshot 0.2 this was ``batch_size``.
    batch_size : int, default=32
        Texts per forward pass when embedding (``transform``, ``predict``, and the
        head's training features), as in ``DistilEmbedder``. Before fewshot 0.2 this
        was ``inference_batch_size`` (and ``batch_size`` meant pairs per step).
    body_learning_rate : float, default=5e-5
        AdamW learning rate of the body, with linear warm-up and decay (the setfit
        library's 2e-5 barely moves the body in 40-100 steps; docs/benchmarks.md).
    layer_learning_rate_decay : float, default=1.0
        Train each block of the body at this fraction of the learning rate of the block
        above it (the top block at ``body_learning_rate``, the embedding layer below
        the bottom block); 1.0 trains the whole body at one rate.
    warmup_proportion : float, default=0.1
        Share of the steps spent warming the learning rate up.
    stop_pair_loss : float or None, default=0.08
        End the contrastive phase once training has come back to a pair it already
        trained on and the mean pair loss (squared error of the cosine) over the last
        5 steps is below this value: a body that already fits its few texts this well
        only draws them closer together. While every pair is new (64 texts per class
        draw no pair twice) training runs to the end. None trains on every pair
        (measured: docs/benchmarks.md).
    max_grad_norm : float or None, default=None
        Clip the body's gradient to this L2 norm before each step (the setfit library's
        trainer clips at 1.0); None: no clipping.
    max_length : int, default=256
        Tokens per text; capped at the model's limit.
    multi_target_strategy : {None, "one-vs-rest", "multi-output", "classifier-chain"}
        How the head handles a multi-label indicator ``y``; None means one-vs-rest.
    device : "auto", str or torch.device, default="auto"
    dtype : {"auto", "float32", "bfloat16"}, default="auto"
        Precision of the body's arithmetic in training and at inference. "bfloat16"
        runs the forward passes under bfloat16 autocast (weights, gradients and
        optimiser state stay float32, and so do saved and exported weights); it pays
        where the hardware has bfloat16 units (CUDA GPUs, CPUs with AVX512-BF16 or
        AMX) and warns elsewhere. "auto" trains in bfloat16 on such CPUs only (fits
        1.4-1.6x faster) and always predicts in float32, so predictions match the
        float32 ONNX export; "float32" gives the same arithmetic on every machine,
        "bfloat16" predicts in bfloat16 too.
    backend : {"torch", "onnx"}, default="torch"
        Where the fine-tuned body runs at inference: "onnx" exports it to ONNX Runtime
        on first use (CPU only; ``pip install 'fewshot[onnx]'``). Training is PyTorch.
    quantize : {None, "int8"}, default=None
        ONNX Runtime dynamic int8 quantisation of that export (``backend="onnx"``).
    n_threads : int, optional
        Intra-op threads for inference; default ``torch.get_num_threads()``.
    random_state : int, RandomState or None
        Decides the pairs, their order, dropout and the head's randomness.
    progress : bool, default=False
        tqdm bars for training and embedding.
    trust_remote_code : bool, default=False
    prompt : str or None, default=None
        Input template (``"Review: {text}"``, exactly one ``{text}`` field, other braces
        as ``{{ }}``) or prefix (``"query: "``) applied to every text before
        tokenisation: training texts, label descriptions and texts to predict all go
        through it. Its tokens count toward ``max_length``. None: the pretrained
        sentence-transformers folder's ``default_prompt_name`` prompt, else none;
        ``""``: no prompt.
    inference_batch_size, lora_rank, lora_alpha, lora_dropout, lora_targets : deprecated
        The names before fewshot 0.2 (``batch_size``; ``adapter=LoRA(rank=...,
        alpha=..., dropout=..., targets=...)``). Set, they still act, with a
        ``FutureWarning``; they go in fewshot 0.4.

    Attributes
    ----------
    classes_ : ndarray
        Class labels (``arange(n_labels)`` for multi-label y).
    head_ : sklearn classifier
        The fitted head.
    layer_ : int
        The resolved layer (1..L).
    dtype_ : str
        The training precision ("float32" or "bfloat16"), after resolving "auto".
        Prediction runs in bfloat16 only when ``dtype="bfloat16"`` was asked for.
    n_pairs_ : int
        Number of pairs drawn for fine-tuning.
    n_steps_ : int
        Optimiser steps the body took (fewer than the pairs allow when
        ``stop_pair_loss`` ended training early).
    prompt_ : str or None
        The prompt the body was trained and predicts with (``prompt``, or the
        pretrained folder's default prompt when None); saved with the model.
    train_loss_ : list of float
        Mean loss of each epoch (of the pairs it trained on, when it ended early).
    base_model_ : dict
        The pretrained model the body started from (id, revision, resolved commit,
        fingerprint), recorded in a saved folder's manifest. With an ``adapter``,
        loading (and unpickling) checks the base against it.
    training_data_ : dict
        Size, class counts and SHA-256 of the texts and labels ``fit`` was given
        (``fewshot._folder.provenance.training_data_record``); the texts are not kept.
    seeds_ : dict
        ``random_state`` and the seeds drawn from it for the pairs, torch and the head.

    Examples
    --------
    >>> import tempfile
    >>> from fewshot import SetFitClassifier
    >>> from fewshot.testing import make_tiny_distilbert
    >>> path = str(make_tiny_distilbert(tempfile.mkdtemp()))
    >>> texts = ["great value", "love it", "works well", "broke fast", "awful", "hate it"]
    >>> labels = ["pos", "pos", "pos", "neg", "neg", "neg"]
    >>> clf = SetFitClassifier(model=path, n_iterations=2, random_state=0).fit(texts, labels)
    >>> clf.classes_.tolist(), clf.predict(["love it"]).shape, clf.transform(["ok"]).shape
    (['neg', 'pos'], (1,), (1, 32))
    """

    _constraints = {
        **ENCODING_CONSTRAINTS,
        "layer": Layers(),
        "normalize": Boolean(optional=True),
        "train_layers": Integer(1, optional=True),
        "train_token_embeddings": Boolean(),
        "adapter": Adapter(),
        "label_descriptions": LabelDescriptions(),
        "head": Classifier(),
        "n_iterations": Integer(1, optional=True),
        "sampling": Options(*SAMPLING),
        "max_pairs": Integer(2, optional=True),
        "self_pairs": Boolean(),
        "epochs": Integer(1),
        "pairs_per_step": Integer(1),
        "body_learning_rate": Real(0, low_open=True),
        "layer_learning_rate_decay": Real(0, low_open=True),
        "warmup_proportion": Real(0, 1),
        "max_grad_norm": Real(0, low_open=True, optional=True),
        "stop_pair_loss": Real(0, low_open=True, optional=True),
        "multi_target_strategy": Options(None, *MULTI_TARGET),
        "dtype": Options(*COMPUTE_DTYPES),
        "random_state": RandomState(),
        "inference_batch_size": Deprecated(Integer(1)),
        "lora_rank": Deprecated(Integer(1)),
        "lora_alpha": Deprecated(Real(0, low_open=True, optional=True)),
        "lora_dropout": Deprecated(Real(0, 1)),
        "lora_targets": Deprecated(Options("attention", "attention+ffn")),
    }

    def __init__(
        self,
        *,
        model=DEFAULT_MODEL,
        revision=None,
        layer=-1,
        pooling="mean",
        normalize=None,
        train_layers=None,
        train_token_embeddings=False,
        adapter=None,
        label_descriptions=None,
        head=None,
        n_iterations=20,
        sampling="oversampling",
        max_pairs=None,
        self_pairs=True,
        epochs=1,
        pairs_per_step=16,
        batch_size=32,
        body_learning_rate=5e-5,
        layer_learning_rate_decay=1.0,
        warmup_proportion=0.1,
        max_grad_norm=None,
        stop_pair_loss=0.08,
        max_length=256,
        multi_target_strategy=None,
        device="auto",
        dtype="auto",
        backend="torch",
        quantize=None,
        n_threads=None,
        random_state=None,
        progress=False,
        trust_remote_code=False,
        prompt=None,
        inference_batch_size="deprecated",
        lora_rank="deprecated",
        lora_alpha="deprecated",
        lora_dropout="deprecated",
        lora_targets="deprecated",
    ):
        self.model = model
        self.revision = revision
        self.layer = layer
        self.pooling = pooling
        self.normalize = normalize
        self.train_layers = train_layers
        self.train_token_embeddings = train_token_embeddings
        self.adapter = adapter
        self.label_descriptions = label_descriptions
        self.head = head
        self.n_iterations = n_iterations
        self.sampling = sampling
        self.max_pairs = max_pairs
        self.self_pairs = self_pairs
        self.epochs = epochs
        self.pairs_per_step = pairs_per_step
        self.batch_size = batch_size
        self.body_learning_rate = body_learning_rate
        self.layer_learning_rate_decay = layer_learning_rate_decay
        self.warmup_proportion = warmup_proportion
        self.max_grad_norm = max_grad_norm
        self.stop_pair_loss = stop_pair_loss
        self.max_length = max_length
        self.multi_target_strategy = multi_target_strategy
        self.device = device
        self.dtype = dtype
        self.backend = backend
        self.quantize = quantize
        self.n_threads = n_threads
        self.random_state = random_state
        self.progress = progress
        self.trust_remote_code = trust_remote_code
        self.prompt = prompt
        self.inference_batch_size = inference_batch_size
        self.lora_rank = lora_rank
        self.lora_alpha = lora_alpha
        self.lora_dropout = lora_dropout
        self.lora_targets = lora_targets

    # -- training -----------------------------------------------------------------------

    def fit(self, X, y):
        """Fine-tune the body on pairs of ``X`` and fit the head.

        Parameters
        ----------
        X : sequence of str
            Training texts.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels (ints or strings) or a 0/1 multi-label indicator matrix.

        Returns
        -------
        self
        """
        from ._fit import fit_setfit

        return fit_setfit(self, X, y)

    # -- prediction ---------------------------------------------------------------------

    def transform(self, X):
        """Fine-tuned sentence embeddings, ``(n_samples, hidden_size)`` float32.

        Parameters
        ----------
        X : sequence of str

        Returns
        -------
        ndarray of shape (n_samples, hidden_size)
        """
        check_is_fitted(self, "body_")
        texts = check_texts(X)
        with compute_autocast(self.body_.device, inference_dtype(self)):
            return self._encoding_plan().encode(texts)

    def fit_transform(self, X, y=None, **fit_params):
        """Fit and return the fine-tuned embeddings of ``X`` (read once)."""
        texts = check_texts(X)
        return self.fit(texts, y).transform(texts)

    def get_feature_names_out(self, input_features=None):
        """Names of the fine-tuned embedding columns, e.g. ``setfit_layer6_mean_0``."""
        check_is_fitted(self, "body_")
        prefix = f"setfit_layer{self.layer_}_{self.pooling}"
        return np.asarray([f"{prefix}_{j}" for j in range(self.body_.hidden_size)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        tags.classifier_tags.multi_label = True
        tags.non_deterministic = self.random_state is None
        return tags

    # -- what the rest of fewshot asks an estimator --------------------------------------

    def _encoding_plan(self, body=None, **overrides):
        """How the fine-tuned body embeds: its top layer, pooled, through the one path."""
        body = self.body_ if body is None else body
        params = {
            **self.get_params(deep=False),
            "layers": body.n_layers,
            "max_length": self.max_length_,
            "batch_size": texts_per_pass(self),
            "head": None,  # the classifier head is ours, not a model head output
            "normalize": fitted_normalize(self),
            "cache": None,  # a fine-tuned body has no identity on disk to key a cache by
            # Resolved at fit time; "" keeps a saved body's own folder from adding one.
            "prompt": getattr(self, "prompt_", None) or "",
            **overrides,
        }
        return resolve_plan(body, params)

    def _split_head(self):
        """``(texts -> fine-tuned embeddings, the fitted head)``: embed once, ask both."""
        check_is_fitted(self, "head_")
        return self.transform, self.head_

    def _export_parts(self):
        """The parts of the one-file ONNX export: fine-tuned body, pooling, head."""
        from ..export._parts import transformer_parts

        check_is_fitted(self, "head_")
        if self.multilabel_:
            raise ValueError(
                "to_onnx exports single-label classifiers; this SetFitClassifier was fitted "
                "on multi-label targets."
            )
        body = None
        if is_adapter(self.body_):
            from ._lora import merged_copy

            # A LoRA adapter goes into the file merged into a copy of its base's weights.
            body = merged_copy(self.body_)
        plan = self._encoding_plan(body, **{k: CPU_FLOAT32[k] for k in ("backend", "quantize")})
        return transformer_parts(self, plan, kind="setfit", head=self.head_, classes=self.classes_)
