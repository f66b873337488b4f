"""What ``SetFitClassifier.fit`` does: the two phases, from parameters to fitted state.

Phase 1 draws pairs (:mod:`fewshot.setfit._pairs`), builds the body that trains (a
private copy cut at ``layer``, or LoRA adapters on the shared base) and fine-tunes it
(:func:`fewshot.setfit._training.train_body`). Phase 2 embeds the training texts with
the fine-tuned body, through the one encoding path, and fits the head.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state

from .._core.encoding import tokenize
from .._core.loading import trainable_copy
from .._estimator.constraints import validate_params
from .._estimator.resolve import check_backend, resolve_defaults, resolve_layers, training_base
from .._estimator.validation import check_class_labels, check_texts
from .._folder.provenance import base_record, training_data_record
from ._anchors import anchor_texts
from ._heads import make_head
from ._lora import adapter_body, adapter_parameters, is_adapter
from ._pairs import sample_pairs
from ._precision import resolve_compute_dtype
from ._renamed import lora_of, warn_renamed
from ._training import TrainingRun, TrainingSchedule, train_body

__all__ = ["fit_setfit", "n_frozen", "training_schedule"]


def fit_setfit(clf, X, y):
    """``clf.fit(X, y)``: fine-tune the body on pairs of ``X``, then fit the head."""
    texts = check_texts(X, allow_empty=False)
    classes, y_encoded, multilabel = check_class_labels(
        y, len(texts), min_per_class=2, why=" for contrastive pairs"
    )
    given = training_data_record(texts, y_encoded if multilabel else classes[y_encoded])
    validate_params(clf)
    warn_renamed(clf)
    params = clf.get_params(deep=False)
    # ONNX inference runs float32 whatever the training precision.
    check_backend({**params, "dtype": "float32"})
    random = check_random_state(clf.random_state)
    pair_seed, torch_seed, head_seed = (int(s) for s in random.randint(0, 2**31 - 1, size=3))
    # Full fine-tuning trains a model loaded for this fit alone unless one is shared
    # already (one copy of the weights in memory, not two); LoRA needs the shared one.
    pretrained = training_base(params, keep=clf.adapter is not None)
    layer = _body_settings(clf, pretrained, params)
    anchors = anchor_texts(clf.label_descriptions, classes, multilabel)
    if anchors:  # each class's description joins the training texts as one of its own
        texts = texts + anchors
        y_encoded = np.concatenate([y_encoded, np.arange(len(classes))])
    pairs = sample_pairs(
        y_encoded,
        n_iterations=clf.n_iterations,
        sampling=clf.sampling,
        max_pairs=clf.max_pairs,
        self_pairs=clf.self_pairs,
        random_state=pair_seed,
    )
    if len(pairs) == 0:
        raise ValueError("No training pairs could be drawn from y; check the labels.")
    body = _new_body(clf, pretrained, layer, torch_seed)
    clf.dtype_ = resolve_compute_dtype(clf.dtype, body.device)
    spec = clf._encoding_plan(body).spec
    ids, _, _ = tokenize(body.tokenizer, texts, spec)
    log = train_body(body, ids, pairs, spec, _training_run(clf, body, torch_seed, pair_seed))
    clf.train_loss_, clf.n_steps_ = log.losses, log.n_steps
    clf.body_, clf.layer_, clf.n_pairs_ = body, layer, len(pairs)
    clf.classes_, clf.multilabel_ = classes, multilabel
    # Provenance for a saved folder: what the body started from, what it saw, the seeds.
    clf.base_model_ = base_record(clf.model, clf.revision, pretrained)
    clf.training_data_ = given
    clf.seeds_ = {
        "random_state": clf.random_state
        if isinstance(clf.random_state, (int, np.integer, type(None)))
        else repr(clf.random_state),
        "pairs": pair_seed,
        "torch": torch_seed,
        "head": head_seed,
    }
    head = make_head(clf.head, multilabel, clf.multi_target_strategy, head_seed)
    head.fit(clf.transform(texts), y_encoded if multilabel else classes[y_encoded])
    clf.head_ = head
    return clf


def _body_settings(clf, pretrained, params) -> int:
    """The layer to cut at; sets ``max_length_``, ``prompt_`` and ``normalize_``."""
    (layer,) = resolve_layers(clf.layer, pretrained.n_layers, f"model {clf.model!r}")
    if layer == 0:
        raise ValueError(
            "layer=0 is the embedding output, which has no transformer block to "
            "fine-tune; use 1..L."
        )
    clf.max_length_ = min(int(clf.max_length), pretrained.max_length)
    # The pretrained folder decides a default prompt and whether embeddings are unit
    # length; the fine-tuned copy keeps both.
    defaults = resolve_defaults(params, pretrained)
    clf.prompt_ = defaults["prompt"] or None
    clf.normalize_ = bool(defaults["normalize"])
    return layer


def _new_body(clf, pretrained, layer: int, seed: int):
    """What ``fit`` trains: a private copy of the body, or LoRA on the shared one."""
    lora = lora_of(clf)
    if lora is None:
        return trainable_copy(pretrained, layer)
    return adapter_body(
        pretrained,
        layer,
        lora,
        first_block=n_frozen(clf, layer),
        seed=seed,
        base=base_record(clf.model, clf.revision, pretrained),
    )


def _training_run(clf, body, torch_seed: int, order_seed: int) -> TrainingRun:
    return TrainingRun(
        schedule=training_schedule(clf),
        torch_seed=torch_seed,
        order_seed=order_seed,
        n_frozen=n_frozen(clf, body.n_layers),
        parameters=tuple(adapter_parameters(body)) if is_adapter(body) else None,
        train_token_embeddings=bool(clf.train_token_embeddings),
        compute_dtype=clf.dtype_,
        progress=bool(clf.progress),
    )


def n_frozen(clf, n_layers: int) -> int:
    """Bottom blocks left as pretrained: all but the top ``train_layers``."""
    return 0 if clf.train_layers is None else max(0, n_layers - int(clf.train_layers))


def training_schedule(clf) -> TrainingSchedule:
    """How long and how fast the body trains, from a classifier's parameters."""
    return TrainingSchedule(
        epochs=int(clf.epochs),
        pairs_per_step=int(clf.pairs_per_step),
        learning_rate=float(clf.body_learning_rate),
        warmup_proportion=float(clf.warmup_proportion),
        max_grad_norm=None if clf.max_grad_norm is None else float(clf.max_grad_norm),
        layer_decay=float(clf.layer_learning_rate_decay),
        stop_loss=None if clf.stop_pair_loss is None else float(clf.stop_pair_loss),
    )
