"""``SetFitClassifier``: contrastive fine-tuning of an encoder body plus a classifier head.

Phase 1 fine-tunes a private copy of the pretrained body on pairs of labelled texts
(:mod:`fewshot.setfit._training`). Phase 2 embeds the training texts with the fine-tuned body
and fits the head. The estimator here only checks, orchestrates and predicts; the
folder format lives in :mod:`fewshot.model_folder`.

The training loop is ours, written on torch rather than wrapped around
``setfit.Trainer``: setfit's sampler builds all O(n²) pairs and seeds itself with a
constant, and its model always runs every layer. Here pairs come from
:mod:`fewshot.setfit._pairs` (bounded memory, drawn by ``random_state``), and the body is cut
at ``layer`` and embeds through the same encoding path as :class:`DistilEmbedder`, so
a fine-tuned body embeds exactly as it trained.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.multioutput import ClassifierChain, MultiOutputClassifier
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .._core.encoding import tokenize
from .._core.loading import DEFAULT_MODEL, trainable_copy
from .._estimator.params import (
    ENCODING_CONSTRAINTS,
    Boolean,
    Classifier,
    Integer,
    Options,
    Real,
    check_backend,
    load_model_for,
    resolve_defaults,
    resolve_layers,
    resolve_plan,
    validate_params,
)
from .._estimator.validation import check_class_labels, check_texts
from .._folder.format import encoder_from_bytes, encoder_to_bytes
from .._folder.provenance import base_record, check_base, training_data_record
from ._folder import fitted_normalize, read_setfit_folder, write_setfit_folder
from ._lora import (
    ADAPTER_CONSTRAINTS,
    adapter_body,
    adapter_from_bytes,
    adapter_parameters,
    adapter_to_bytes,
    is_adapter,
)
from ._pairs import SAMPLING, sample_pairs
from ._precision import COMPUTE_DTYPES, compute_autocast, resolve_compute_dtype
from ._training import LabelDescriptions, TrainingSchedule, anchor_texts, train_body

__all__ = ["SetFitClassifier", "fitted_plan"]

MULTI_TARGET = ("one-vs-rest", "multi-output", "classifier-chain")


class SetFitClassifier(ClassifierMixin, TransformerMixin, BaseEstimator):
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
        all-MiniLM-L6-v2), as the setfit library does, else False. The resolved value
        is ``normalize_``. The body is trained for cosine similarity, so unit vectors
        are what it optimises, and the default head's regularisation suits them
        (raw vectors put fewshot 1.3 points below setfit on AG News at N = 8 over 10
        seeds; unit ones 0.1).
    train_layers : int or None, default=None
        Fine-tune only the top ``train_layers`` blocks and keep the ones below as
        pretrained; their output is computed once per training text, so each step costs
        only the top blocks. None fine-tunes every block up to ``layer``. With an
        ``adapter``, LoRA layers go into those top blocks only.
    train_token_embeddings : bool, default=False
        Fine-tune the token embedding table (the model's input embeddings) too, when
        every block trains, as the setfit library does. False keeps it as pretrained:
        with a few dozen training texts only the rows of the tokens they contain would
        move, and the table is about half of a small body's weights, so each step skips
        its gradient and AdamW update. Measured with all-MiniLM-L6-v2 over three seeds:
        the same accuracy, peak memory 100-200 MiB lower, and at N = 64 about 10 % less
        fit time (docs/benchmarks.md).
    adapter : {None, "lora"}, default=None
        None fine-tunes a private copy of the whole body. ``"lora"`` trains LoRA
        adapters (low-rank updates, with the ``peft`` library: ``pip install
        'fewshot[peft]'``) on the shared pretrained body instead, which stays unchanged:
        the saved folder holds the adapter and head only (a few hundred KB to a few MB),
        and any number of adapter classifiers share one copy of the base weights. Needs
        a larger ``body_learning_rate`` (about 1e-3 rather than 5e-5).
    lora_rank : int, default=8
        Rank of each LoRA update.
    lora_alpha : float, optional
        LoRA's scale: the update is multiplied by ``lora_alpha / lora_rank``. None means
        ``2 * lora_rank`` (a scale of 2).
    lora_dropout : float, default=0.1
        Dropout on the input of the LoRA layers while training.
    lora_targets : {"attention", "attention+ffn"}, default="attention"
        The weights adapted in each block: the attention's query, key, value and output
        projections, plus the two feed-forward layers with ``"attention+ffn"``.
    label_descriptions : None, "labels" or dict, default=None
        A short text per class ("billing: invoices, charges and refunds"), used as an
        anchor: it joins the training texts as an example of its class, so pairs pull
        each class's texts towards its description, and the head sees it too.
        ``"labels"`` uses string labels as their own descriptions; a dict maps every
        class to its text. Single-label ``y`` only. With descriptions fewshot led the
        setfit library on all four benchmark datasets at 8 texts per class, by 5.0
        points on the average over 10 seeds with the other defaults (docs/benchmarks.md).
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
        sampler does. Its two sides run through the body with different dropout, so
        the pair asks for an embedding that dropout does not move (SimCSE's
        unsupervised objective); a few dozen texts give many such pairs (a fifth of the
        positives at 8 per class, 3 % at 64). Without them fewshot trailed setfit on
        SST-2 at N = 64 by 0.8 points over three seeds; with them it is level.
    epochs : int, default=1
        Passes over the pairs.
    batch_size : int, default=16
        Pairs per optimisation step (the texts in a step are embedded once each).
    inference_batch_size : int, default=32
        Texts per forward pass when embedding (``transform``, ``predict``, and the
        head's training features).
    body_learning_rate : float, default=5e-5
        AdamW learning rate of the body, with linear warm-up and decay. The setfit
        library's 2e-5 barely moves the body in the 40-100 steps of 8 texts per class;
        with 5e-5 (and ``stop_pair_loss``) fewshot leads setfit by 1.9 points on the
        average of four datasets at N = 8 and is ahead or level on all four at N = 64
        (docs/benchmarks.md).
    layer_learning_rate_decay : float, default=1.0
        Train each block of the body at this fraction of the learning rate of the block
        above it (the top block at ``body_learning_rate``, the embedding layer below
        the bottom block); 1.0 trains the whole body at one rate. Measured at N = 8
        with all-MiniLM-L6-v2, decay 0.8 lost most of the default's lead over setfit
        (docs/benchmarks.md): the gain needs the lower blocks to move too.
    warmup_proportion : float, default=0.1
        Share of the steps spent warming the learning rate up.
    stop_pair_loss : float or None, default=0.08
        End the contrastive phase once training has come back to a pair it already
        trained on and the mean pair loss (squared error of the cosine) over the last
        5 steps is below this value: a body that already fits its few texts this well
        only draws them closer together. While every pair is new (64 texts per class
        draw no pair twice) training runs to the end. None trains on every pair.
        At 8 texts per class this ends AG News's fits (topics the pretrained body
        already separates) in under half their time and brings it level with the
        setfit library (from 0.8 behind); at 64 per class it never fires
        (docs/benchmarks.md).
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
        1.4-1.6x faster, accuracy per seed within a few tenths of float32; on a GPU
        few-shot batches are bound by kernel launches and bfloat16 measured no faster)
        and always predicts in float32, so predictions match the float32 ONNX export
        and other machines. The same seed gives slightly different weights on CPUs
        with and without bfloat16 units; pass "float32" for the same arithmetic
        everywhere, "bfloat16" to predict in bfloat16 too.
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
        "head": Classifier(),
        "n_iterations": Integer(1, optional=True),
        "sampling": Options(*SAMPLING),
        "max_pairs": Integer(2, optional=True),
        "self_pairs": Boolean(),
        "epochs": Integer(1),
        "inference_batch_size": Integer(1),
        "body_learning_rate": Real(0, low_open=True),
        "layer_learning_rate_decay": Real(0, low_open=True),
        "warmup_proportion": Real(0, 1),
        "max_grad_norm": Real(0, low_open=True, optional=True),
        "stop_pair_loss": Real(0, low_open=True, optional=True),
        "multi_target_strategy": Options(None, *MULTI_TARGET),
        "train_layers": Integer(1, optional=True),
        "train_token_embeddings": Boolean(),
        "label_descriptions": LabelDescriptions(),
        "normalize": Boolean(optional=True),
        "dtype": Options(*COMPUTE_DTYPES),
        **ADAPTER_CONSTRAINTS,
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
        lora_rank=8,
        lora_alpha=None,
        lora_dropout=0.1,
        lora_targets="attention",
        label_descriptions=None,
        head=None,
        n_iterations=20,
        sampling="oversampling",
        max_pairs=None,
        self_pairs=True,
        epochs=1,
        batch_size=16,
        inference_batch_size=32,
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
    ):
        self.model = model
        self.revision = revision
        self.layer = layer
        self.pooling = pooling
        self.normalize = normalize
        self.train_layers = train_layers
        self.train_token_embeddings = train_token_embeddings
        self.adapter = adapter
        self.lora_rank = lora_rank
        self.lora_alpha = lora_alpha
        self.lora_dropout = lora_dropout
        self.lora_targets = lora_targets
        self.label_descriptions = label_descriptions
        self.head = head
        self.n_iterations = n_iterations
        self.sampling = sampling
        self.max_pairs = max_pairs
        self.self_pairs = self_pairs
        self.epochs = epochs
        self.batch_size = batch_size
        self.inference_batch_size = inference_batch_size
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

    # -- helpers --------------------------------------------------------------------------

    def _make_head(self, multilabel: bool, random_state: int):
        head = LogisticRegression(max_iter=1000) if self.head is None else clone(self.head)
        if "random_state" in head.get_params() and head.get_params()["random_state"] is None:
            head.set_params(random_state=random_state)
        if not multilabel:
            return head
        strategy = self.multi_target_strategy or "one-vs-rest"
        if strategy == "one-vs-rest":
            return OneVsRestClassifier(head)
        if strategy == "multi-output":
            return MultiOutputClassifier(head)
        return ClassifierChain(head, random_state=random_state)

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
        texts = check_texts(X, allow_empty=False)
        classes, y_encoded, multilabel = check_class_labels(
            y, len(texts), min_per_class=2, why=" for contrastive pairs"
        )
        given = training_data_record(texts, y_encoded if multilabel else classes[y_encoded])
        validate_params(self, self._constraints)
        params = self.get_params(deep=False)
        # ONNX inference runs float32 whatever the training precision.
        check_backend({**params, "dtype": "float32"})
        random = check_random_state(self.random_state)
        pair_seed, torch_seed, head_seed = (int(s) for s in random.randint(0, 2**31 - 1, size=3))

        # float32 master weights whatever the compute precision (see fewshot.setfit._precision).
        # Full fine-tuning trains a model loaded for this fit alone unless one is shared
        # already (one copy of the weights in memory, not two); LoRA needs the shared one.
        pretrained = load_model_for(
            {**params, "backend": "torch", "dtype": "float32"}, keep=self.adapter is not None
        )
        (layer,) = resolve_layers(self.layer, pretrained.n_layers, f"model {self.model!r}")
        if layer == 0:
            raise ValueError(
                "layer=0 is the embedding output, which has no transformer block to "
                "fine-tune; use 1..L."
            )
        self.max_length_ = min(int(self.max_length), pretrained.max_length)
        # The pretrained folder decides a default prompt and whether embeddings are unit
        # length; the fine-tuned copy keeps both.
        defaults = resolve_defaults(params, pretrained)
        self.prompt_ = defaults["prompt"] or None
        self.normalize_ = bool(defaults["normalize"])
        anchors = anchor_texts(self.label_descriptions, classes, multilabel)
        if anchors:  # each class's description joins the training texts as one of its own
            texts = texts + anchors
            y_encoded = np.concatenate([y_encoded, np.arange(len(classes))])
        pairs = sample_pairs(
            y_encoded,
            n_iterations=self.n_iterations,
            sampling=self.sampling,
            max_pairs=self.max_pairs,
            self_pairs=self.self_pairs,
            random_state=pair_seed,
        )
        if len(pairs) == 0:
            raise ValueError("No training pairs could be drawn from y; check the labels.")

        body = self._new_body(pretrained, layer, torch_seed)
        self.dtype_ = resolve_compute_dtype(self.dtype, body.device)
        spec = fitted_plan(self, body).spec
        ids, _, _ = tokenize(body.tokenizer, texts, spec)
        log = self._train(body, ids, pairs, spec, torch_seed, pair_seed)
        self.train_loss_, self.n_steps_ = log.losses, log.n_steps
        self.body_ = body
        self.layer_ = layer
        self.n_pairs_ = len(pairs)
        self.classes_ = classes
        self.multilabel_ = multilabel
        # Provenance for a saved folder: what the body started from, what it saw, the seeds.
        self.base_model_ = base_record(self.model, self.revision, pretrained)
        self.training_data_ = given
        self.seeds_ = {
            "random_state": self.random_state
            if isinstance(self.random_state, (int, np.integer, type(None)))
            else repr(self.random_state),
            "pairs": pair_seed,
            "torch": torch_seed,
            "head": head_seed,
        }

        features = self.transform(texts)
        head = self._make_head(multilabel, head_seed)
        head.fit(features, y_encoded if multilabel else classes[y_encoded])
        self.head_ = head
        return self

    def _new_body(self, pretrained, layer: int, seed: int):
        """What ``fit`` trains: a private copy of the body, or LoRA on the shared one."""
        if self.adapter is None:
            return trainable_copy(pretrained, layer)
        return adapter_body(
            pretrained,
            layer,
            rank=self.lora_rank,
            alpha=self.lora_alpha,
            dropout=self.lora_dropout,
            targets=self.lora_targets,
            first_block=self._n_frozen(layer),
            seed=seed,
            base=base_record(self.model, self.revision, pretrained),
        )

    def _train(self, body, ids, pairs, spec, torch_seed: int, order_seed: int):
        schedule = TrainingSchedule(
            epochs=int(self.epochs),
            batch_size=int(self.batch_size),
            learning_rate=float(self.body_learning_rate),
            warmup_proportion=float(self.warmup_proportion),
            max_grad_norm=None if self.max_grad_norm is None else float(self.max_grad_norm),
            layer_decay=float(self.layer_learning_rate_decay),
            stop_loss=None if self.stop_pair_loss is None else float(self.stop_pair_loss),
        )
        return train_body(
            body,
            ids,
            pairs,
            spec,
            schedule,
            torch_seed=torch_seed,
            order_seed=order_seed,
            n_frozen=self._n_frozen(body.n_layers),
            parameters=adapter_parameters(body) if is_adapter(body) else None,
            train_token_embeddings=bool(self.train_token_embeddings),
            compute_dtype=self.dtype_,
            progress=bool(self.progress),
        )

    def _n_frozen(self, n_layers: int) -> int:
        """Bottom blocks left as pretrained: all but the top ``train_layers``."""
        return 0 if self.train_layers is None else max(0, n_layers - int(self.train_layers))

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
            return fitted_plan(self).encode(texts)

    def fit_transform(self, X, y=None, **fit_params):
        """Fit and return the fine-tuned embeddings of ``X`` (read once)."""
        texts = check_texts(X)
        return self.fit(texts, y).transform(texts)

    def _head_input(self, X):
        check_is_fitted(self, "head_")
        return self.transform(X)

    def predict(self, X):
        """Predicted class (or indicator row for multi-label y) per text."""
        features = self._head_input(X)
        if len(features) == 0:
            shape = (0, len(self.classes_)) if self.multilabel_ else (0,)
            return np.empty(shape, dtype=self.classes_.dtype if not self.multilabel_ else int)
        return self.head_.predict(features)

    def predict_proba(self, X):
        """Class probabilities from the head; rows sum to 1 for single-label y."""
        features = self._head_input(X)
        if len(features) == 0:
            return np.empty((0, len(self.classes_)))
        return self.head_.predict_proba(features)

    def decision_function(self, X):
        """The head's decision function, where it has one."""
        features = self._head_input(X)
        if len(features) == 0:
            return np.empty((0,) if len(self.classes_) == 2 else (0, len(self.classes_)))
        return self.head_.decision_function(features)

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

    # -- persistence --------------------------------------------------------------------

    def save(
        self, directory, *, setfit_compatible: bool = False, metadata=None, metrics=None
    ) -> Path:
        """Write the fitted classifier to ``directory`` without pickling weights.

        With ``adapter="lora"`` the folder holds the adapter in peft's format
        (``adapter_config.json``, ``adapter_model.safetensors``) and the base model's id,
        revision and fingerprint in the manifest instead of a body. Otherwise it holds
        the fine-tuned body as a Hugging Face model (``config.json``,
        ``model.safetensors``, tokenizer files, plus sentence-transformers module files
        so ``SentenceTransformer(directory)`` embeds like :meth:`transform`), the head in
        skops format (``head.skops``) and the manifest ``fewshot.json``: the format of
        :mod:`fewshot.model_folder`, the same one ``fewshot train`` writes.

        Parameters
        ----------
        directory : str or Path
        setfit_compatible : bool, default=False
            Also write ``config_setfit.json`` and setfit's pickled ``model_head.pkl`` so
            ``setfit.SetFitModel.from_pretrained(directory)`` loads the whole model.
            fewshot's own :meth:`load` never reads the pickle.
        metadata : dict, optional
            JSON-serialisable notes stored in the manifest; ``metadata["datasets"]``
            (dataset names) also goes into the model card.
        metrics : dict, optional
            ``{name: number}`` from an evaluation, stored in the manifest and the card.

        Returns
        -------
        Path

        Notes
        -----
        The manifest also records the provenance (package versions, base model with its
        resolved commit and fingerprint, every parameter, the training data's size,
        class counts and hash, the seeds, the creation time), and ``README.md`` is a
        model card generated from it; ``fewshot info directory`` prints it.
        """
        return write_setfit_folder(
            self, directory, setfit_compatible=setfit_compatible, metadata=metadata, metrics=metrics
        )

    @classmethod
    def load(
        cls, directory, *, model=None, device="auto", trust_remote_code=False, trusted=None
    ) -> SetFitClassifier:
        """Load a classifier written by :meth:`save`; predictions are identical.

        Parameters
        ----------
        directory : str or Path
        model : str or path-like, optional
            A LoRA adapter folder only, and required there: its base model (folder or
            id; the recorded hub id loads at the recorded commit). The folder's own
            base reference is never followed. Refused unless its files' fingerprint is
            the recorded one.
        device : "auto", str or torch.device, default="auto"
        trust_remote_code : bool, default=False
            Needed (and only honoured when passed here) for a folder saved with
            ``trust_remote_code=True``.
        trusted : list of str or type, optional
            Types a custom head needs beyond the allow-list of
            :data:`fewshot._folder.trust.HEAD_TYPES`, allowed at this call only (never stored
            in the folder). A head naming anything else is refused before it is read.

        Returns
        -------
        SetFitClassifier
        """
        return read_setfit_folder(
            cls,
            directory,
            model=model,
            device=device,
            trust_remote_code=trust_remote_code,
            trusted=trusted,
        )

    # -- pickling: weights travel as safetensors bytes, not as pickled tensors -----------

    # An adapter travels as its peft files and finds its base (checked) on arrival.

    def __getstate__(self):
        state = self.__dict__.copy()
        body = state.pop("body_", None)
        if body is not None and is_adapter(body):
            state["_adapter_files"] = adapter_to_bytes(body)
        elif body is not None:
            state["_body_files"] = encoder_to_bytes(body)
        return state

    def __setstate__(self, state):
        files = state.pop("_body_files", None)
        adapter_files = state.pop("_adapter_files", None)
        self.__dict__.update(state)
        if files is not None:
            self.body_ = encoder_from_bytes(files, self.device)
        if adapter_files is not None:
            params = {**self.get_params(deep=False), "backend": "torch", "dtype": "float32"}
            pretrained = load_model_for(params)
            check_base(self.base_model_, pretrained, where="this unpickled SetFitClassifier")
            self.body_ = adapter_from_bytes(adapter_files, pretrained, self.layer_)


def inference_dtype(clf) -> str:
    """Prediction precision: bfloat16 only where asked for by name ("auto" trains in it)."""
    return clf.dtype_ if clf.dtype == "bfloat16" else "float32"


def fitted_plan(clf, body=None):
    """How the fine-tuned body embeds: the body's top layer, pooled, one path."""
    body = clf.body_ if body is None else body
    params = {
        **clf.get_params(deep=False),
        "layers": body.n_layers,
        "max_length": clf.max_length_,
        "batch_size": clf.inference_batch_size,
        "head": None,  # the classifier head is ours, not a model head output
        "normalize": fitted_normalize(clf),
        "cache": None,  # a fine-tuned body has no identity on disk to key a cache by
        # Resolved at fit time; "" keeps a saved body's own folder from adding one.
        "prompt": getattr(clf, "prompt_", None) or "",
    }
    return resolve_plan(body, params)
