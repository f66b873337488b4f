"""``SetFitClassifier``: contrastive fine-tuning of an encoder body plus a classifier head.

Phase 1 fine-tunes a private copy of the pretrained body on pairs of labelled texts
(same class pulled together, different classes pushed apart, cosine-similarity loss).
Phase 2 embeds the training texts with the fine-tuned body and fits the head.

The training loop is ours, written on torch rather than wrapped around
``setfit.Trainer``: setfit's sampler builds all O(n²) pairs and seeds itself with a
constant, and its model always runs every layer. Here pairs come from
:mod:`fewshot.sampling` (bounded memory, drawn by ``random_state``), and the body is cut
at ``layer`` and embeds through the same encoding path as :class:`DistilEmbedder`, so
a fine-tuned body embeds exactly as it trained.
"""

from __future__ import annotations

import copy
import json
import math
import numbers

import tempfile
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.multioutput import ClassifierChain, MultiOutputClassifier
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted

from ._encoding import EncodingSpec, _pad, encode, forward_layers, tokenize
from ._loading import (
    DEFAULT_MODEL,
    LoadedModel,
    _find_blocks,
    get_model,
    quiet_transformers,
    resolve_device,
)
from ._validation import check_texts
from .embedder import _check_choice, _check_int, _check_model_name, resolve_layers
from .pooling import POOLINGS, pool
from .sampling import SAMPLING, sample_pairs

MARKER = "fewshot_setfit.json"
FORMAT = "fewshot-setfit"
FORMAT_VERSION = 1
HEAD_FILE = "head.skops"
MULTI_TARGET = ("one-vs-rest", "multi-output", "classifier-chain")


# -- the fine-tuned body --------------------------------------------------------------


def _trainable_body(pretrained: LoadedModel, layer: int) -> LoadedModel:
    """A private copy of the encoder with the blocks above ``layer`` removed."""
    body = copy.deepcopy(pretrained.body).float()
    blocks = _find_blocks(body, body.config)
    del blocks[layer:]
    body.config.num_hidden_layers = layer
    return LoadedModel(
        name=pretrained.name,
        tokenizer=pretrained.tokenizer,
        model=body,
        body=body,
        blocks=blocks,
        device=pretrained.device,
        dtype=torch.float32,
        has_head=False,
    )


def _write_body(body: LoadedModel, folder: Path, *, pooling: str, max_length: int) -> None:
    """A Hugging Face model folder that sentence-transformers (and setfit) also load."""
    with quiet_transformers():
        body.model.save_pretrained(folder, safe_serialization=True)
    body.tokenizer.save_pretrained(folder)
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ], indent=2))
    (folder / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": max_length, "do_lower_case": False}, indent=2)
    )
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": body.hidden_size,
        "pooling_mode_cls_token": pooling == "cls",
        "pooling_mode_mean_tokens": pooling == "mean",
        "pooling_mode_max_tokens": pooling == "max",
        "pooling_mode_mean_sqrt_len_tokens": False,
    }, indent=2))


def _read_body(folder: Path, device) -> LoadedModel:
    from transformers import AutoModel, AutoTokenizer

    with quiet_transformers():
        model = AutoModel.from_pretrained(folder, use_safetensors=True)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    device = resolve_device(device)
    model.eval().to(device)
    return LoadedModel(
        name=str(folder), tokenizer=tokenizer, model=model, body=model,
        blocks=_find_blocks(model, model.config), device=device,
        dtype=torch.float32, has_head=False,
    )


# -- input checks -----------------------------------------------------------------------


def _check_targets(y, n_samples: int):
    """Return ``(classes, encoded y, multilabel)`` or raise before any training."""
    if y is None:
        raise TypeError("y is None; SetFitClassifier needs a label for every text.")
    if isinstance(y, str):
        raise TypeError("y is a single str; pass one label per text (a list or array).")
    y_array = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y, dtype=object)
    if y_array.ndim == 2:
        y_array = np.asarray(y_array.tolist())
    if y_array.ndim == 0 or len(y_array) != n_samples:
        got = 1 if y_array.ndim == 0 else len(y_array)
        raise ValueError(f"X has {n_samples} texts but y has {got} labels; they must match.")
    if y_array.ndim == 1:
        for i, label in enumerate(y_array):
            if label is None or (isinstance(label, float) and math.isnan(label)):
                raise ValueError(f"y[{i}] is missing ({label!r}); every text needs a label.")
        kinds = {type(label) for label in y_array}
        if len(kinds) > 1 and not all(issubclass(k, numbers.Integral) for k in kinds):
            raise TypeError(f"y mixes label types {sorted(k.__name__ for k in kinds)}; use one type.")
        y_array = np.asarray(y_array.tolist())
    target_type = type_of_target(y_array)
    if target_type == "multilabel-indicator":
        Y = y_array.astype(int)
        if Y.shape[1] < 2:
            raise ValueError("A multi-label y needs at least two label columns.")
        return np.arange(Y.shape[1]), Y, True
    if target_type not in ("binary", "multiclass"):
        raise ValueError(
            f"y looks {target_type}; SetFitClassifier takes class labels (ints or strings) "
            "or a 0/1 multi-label indicator matrix."
        )
    classes, encoded = np.unique(y_array, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(
            f"y has a single class ({classes[0].item()!r}); a classifier needs at least two."
        )
    counts = np.bincount(encoded)
    if counts.min() < 2:
        lonely = classes[counts.argmin()].item()
        raise ValueError(
            f"class {lonely!r} has a single example; contrastive pairs need at least two "
            "texts per class. Add an example of it or drop the class."
        )
    return classes, encoded, False


class SetFitClassifier(ClassifierMixin, TransformerMixin, BaseEstimator):
    """Few-shot text classifier: SetFit contrastive fine-tuning plus a scikit-learn head.

    For tasks with a handful (5-50) of labelled texts per class. ``fit`` first
    fine-tunes a private copy of the pretrained encoder on pairs of training texts
    (cosine-similarity loss: same class -> similarity 1, different classes -> 0), then
    fits ``head`` on the fine-tuned embeddings. Every ``fit`` starts again from the
    pretrained weights.

    Parameters
    ----------
    model : str, default="distilbert-base-uncased-finetuned-sst-2-english"
        Hugging Face model id or local folder of the pretrained encoder.
    revision : str, optional
        Hub branch, tag or commit.
    layer : int, default=-1
        The body's sentence embedding is the pooled hidden state of this layer
        (1..L, negatives from the top); layers above it are removed, not run.
    pooling : {"mean", "cls", "max"}, default="mean"
    head : sklearn classifier, default=None
        Fitted on the fine-tuned embeddings; None means ``LogisticRegression(max_iter=1000)``.
        Pass an estimator to tune it, e.g. ``GridSearchCV(..., {"head__C": [...]})``.
    n_iterations : int or None, default=20
        Pair-generation iterations (SetFit's meaning): ``n_iterations * n_samples``
        positive and as many negative pairs. None lets ``sampling`` decide.
    sampling : {"oversampling", "undersampling", "unique"}, default="oversampling"
        Pair counts when ``n_iterations`` is None (see :func:`fewshot.sampling.sample_pairs`).
    max_pairs : int, optional
        Upper bound on the number of pairs.
    epochs : int, default=1
        Passes over the pairs.
    batch_size : int, default=16
        Pairs per optimisation step (the texts in a step are embedded once each).
    body_learning_rate : float, default=2e-5
        AdamW learning rate of the body, with linear warm-up and decay.
    warmup_proportion : float, default=0.1
        Share of the steps spent warming the learning rate up.
    max_length : int, default=256
        Tokens per text; capped at the model's limit.
    multi_target_strategy : {None, "one-vs-rest", "multi-output", "classifier-chain"}
        How the head handles a multi-label indicator ``y``; None means one-vs-rest.
    device : "auto", str or torch.device, default="auto"
    random_state : int, RandomState or None
        Decides the pairs, their order, dropout and the head's randomness.
    progress : bool, default=False
        tqdm bars for training and embedding.
    trust_remote_code : bool, default=False

    Attributes
    ----------
    classes_ : ndarray
        Class labels (``arange(n_labels)`` for multi-label y).
    head_ : sklearn classifier
        The fitted head.
    layer_ : int
        The resolved layer (1..L).
    n_pairs_ : int
        Number of pairs drawn for fine-tuning.
    train_loss_ : list of float
        Mean loss of each epoch.

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

    def __init__(
        self,
        *,
        model=DEFAULT_MODEL,
        revision=None,
        layer=-1,
        pooling="mean",
        head=None,
        n_iterations=20,
        sampling="oversampling",
        max_pairs=None,
        epochs=1,
        batch_size=16,
        body_learning_rate=2e-5,
        warmup_proportion=0.1,
        max_length=256,
        multi_target_strategy=None,
        device="auto",
        random_state=None,
        progress=False,
        trust_remote_code=False,
    ):
        self.model = model
        self.revision = revision
        self.layer = layer
        self.pooling = pooling
        self.head = head
        self.n_iterations = n_iterations
        self.sampling = sampling
        self.max_pairs = max_pairs
        self.epochs = epochs
        self.batch_size = batch_size
        self.body_learning_rate = body_learning_rate
        self.warmup_proportion = warmup_proportion
        self.max_length = max_length
        self.multi_target_strategy = multi_target_strategy
        self.device = device
        self.random_state = random_state
        self.progress = progress
        self.trust_remote_code = trust_remote_code

    # -- checks -------------------------------------------------------------------------

    def _check_params(self):
        _check_model_name(self.model)
        _check_choice("pooling", self.pooling, POOLINGS)
        _check_choice("sampling", self.sampling, SAMPLING)
        _check_choice("multi_target_strategy", self.multi_target_strategy, (None,) + MULTI_TARGET)
        if self.n_iterations is not None:
            _check_int("n_iterations", self.n_iterations, 1)
        if self.max_pairs is not None:
            _check_int("max_pairs", self.max_pairs, 2)
        _check_int("epochs", self.epochs, 1)
        _check_int("batch_size", self.batch_size, 1)
        _check_int("max_length", self.max_length, 2)
        if not isinstance(self.body_learning_rate, numbers.Real) or not self.body_learning_rate > 0:
            raise ValueError(f"body_learning_rate must be a float > 0, got {self.body_learning_rate!r}.")
        if not isinstance(self.warmup_proportion, numbers.Real) or not 0 <= self.warmup_proportion < 1:
            raise ValueError(f"warmup_proportion must be in [0, 1), got {self.warmup_proportion!r}.")
        if self.head is not None and not (hasattr(self.head, "fit") and hasattr(self.head, "predict")):
            raise TypeError(f"head must be a scikit-learn classifier or None, got {self.head!r}.")
        resolve_device(self.device)

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

    def _spec(self) -> EncodingSpec:
        return EncodingSpec(layers=(self.layer_,), pooling=self.pooling, max_length=self.max_length_)

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
        classes, y_encoded, multilabel = _check_targets(y, len(texts))
        self._check_params()
        random = check_random_state(self.random_state)
        pair_seed, torch_seed, head_seed = (int(s) for s in random.randint(0, 2**31 - 1, size=3))

        pretrained = get_model(
            self.model, revision=self.revision, device=self.device, trust_remote_code=self.trust_remote_code
        )
        (layer,) = resolve_layers(self.layer, pretrained.n_layers, f"model {self.model!r}")
        if layer == 0:
            raise ValueError("layer=0 is the embedding output, which has no transformer block to fine-tune; use 1..L.")
        self.layer_ = layer
        self.max_length_ = min(int(self.max_length), pretrained.max_length)
        pairs = sample_pairs(
            y_encoded, n_iterations=self.n_iterations, sampling=self.sampling,
            max_pairs=self.max_pairs, random_state=pair_seed,
        )
        if len(pairs) == 0:
            raise ValueError("No training pairs could be drawn from y; check the labels.")

        body = _trainable_body(pretrained, layer)
        ids, _ = tokenize(body.tokenizer, texts, self._spec())
        self.train_loss_ = self._train(body, ids, pairs, torch_seed, pair_seed)
        self.body_ = body
        self.n_pairs_ = len(pairs)
        self.classes_ = classes
        self.multilabel_ = multilabel

        features = self.transform(texts)
        head = self._make_head(multilabel, head_seed)
        head.fit(features, y_encoded if multilabel else classes[y_encoded])
        self.head_ = head
        return self

    def _train(self, body: LoadedModel, ids, pairs, torch_seed: int, order_seed: int) -> list[float]:
        from tqdm.auto import tqdm

        network = body.model
        pad_id = body.tokenizer.pad_token_id or 0
        batch_size = int(self.batch_size)
        steps_per_epoch = math.ceil(len(pairs) / batch_size)
        total = steps_per_epoch * int(self.epochs)
        warmup = int(total * self.warmup_proportion)

        def schedule(step):  # linear warm-up, then linear decay to zero
            if step < warmup:
                return (step + 1) / (warmup + 1)
            return max(0.0, (total - step) / max(1, total - warmup))

        optimizer = torch.optim.AdamW(network.parameters(), lr=float(self.body_learning_rate))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        order_rng = np.random.default_rng(order_seed)
        devices = [body.device.index or 0] if body.device.type == "cuda" else []
        losses = []
        network.train()
        try:
            with torch.random.fork_rng(devices=devices), tqdm(
                total=total, disable=not self.progress, desc="Fine-tuning", unit="step"
            ) as bar:
                torch.manual_seed(torch_seed)
                for epoch in range(int(self.epochs)):
                    order = order_rng.permutation(len(pairs)) if epoch else np.arange(len(pairs))
                    epoch_loss = 0.0
                    for start in range(0, len(pairs), batch_size):
                        batch = order[start : start + batch_size]
                        first, second = pairs.first[batch], pairs.second[batch]
                        # Each distinct text of the step runs through the body once.
                        unique, where = np.unique(np.concatenate([first, second]), return_inverse=True)
                        input_ids, mask = _pad([ids[i] for i in unique], pad_id, body.device)
                        hidden, _ = forward_layers(body, input_ids, mask, [self.layer_])
                        embeddings = pool(hidden[self.layer_], mask, self.pooling)
                        a = embeddings[torch.as_tensor(where[: len(batch)], device=body.device)]
                        b = embeddings[torch.as_tensor(where[len(batch) :], device=body.device)]
                        similarity = torch.nn.functional.cosine_similarity(a, b)
                        target = torch.as_tensor(pairs.target[batch], device=body.device)
                        loss = torch.nn.functional.mse_loss(similarity, target)
                        loss.backward()
                        optimizer.step()
                        scheduler.step()
                        optimizer.zero_grad(set_to_none=True)
                        epoch_loss += loss.item() * len(batch)
                        bar.update(1)
                    losses.append(epoch_loss / len(pairs))
        finally:
            network.eval()
        return losses

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
        return encode(self.body_, texts, self._spec(), batch_size=32, progress=bool(self.progress))

    def fit_transform(self, X, y=None, **fit_params):
        """Fit and return the fine-tuned embeddings of ``X``."""
        return self.fit(X, y).transform(X)

    def predict(self, X):
        """Predicted class (or indicator row for multi-label y) per text."""
        check_is_fitted(self, "head_")
        return self.head_.predict(self.transform(X))

    def predict_proba(self, X):
        """Class probabilities from the head; rows sum to 1 for single-label y."""
        check_is_fitted(self, "head_")
        return self.head_.predict_proba(self.transform(X))

    def decision_function(self, X):
        """The head's decision function, where it has one."""
        check_is_fitted(self, "head_")
        return self.head_.decision_function(self.transform(X))

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

    def save(self, directory, *, setfit_compatible: bool = False) -> Path:
        """Write the fitted classifier to ``directory`` without pickling weights.

        The folder holds the fine-tuned body as a Hugging Face model (``config.json``,
        ``model.safetensors``, tokenizer files, plus sentence-transformers module files
        so ``SentenceTransformer(directory)`` embeds like :meth:`transform`), the head in
        skops format (``head.skops``) and ``fewshot_setfit.json``.

        Parameters
        ----------
        directory : str or Path
        setfit_compatible : bool, default=False
            Also write ``config_setfit.json`` and setfit's pickled ``model_head.pkl`` so
            ``setfit.SetFitModel.from_pretrained(directory)`` loads the whole model.
            fewshot's own :meth:`load` never reads the pickle.

        Returns
        -------
        Path
        """
        import skops.io

        check_is_fitted(self, "head_")
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        _write_body(self.body_, folder, pooling=self.pooling, max_length=self.max_length_)
        skops.io.dump(self.head_, folder / HEAD_FILE)
        params = {k: v for k, v in self.get_params(deep=False).items() if k != "head"}
        marker = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "params": params,
            "layer": int(self.layer_),
            "max_length": int(self.max_length_),
            "multilabel": bool(self.multilabel_),
            "classes": self.classes_.tolist(),
            "n_pairs": int(self.n_pairs_),
            "train_loss": self.train_loss_,
            "default_head": self.head is None,
        }
        from . import __version__

        marker["fewshot_version"] = __version__
        (folder / MARKER).write_text(json.dumps(marker, indent=2, default=_json_default))
        if setfit_compatible:
            import joblib

            labels = None if self.multilabel_ else [str(c) for c in self.classes_]
            (folder / "config_setfit.json").write_text(
                json.dumps({"normalize_embeddings": False, "labels": labels}, indent=2)
            )
            joblib.dump(self.head_, folder / "model_head.pkl")
        return folder

    @classmethod
    def load(cls, directory, *, device="auto") -> "SetFitClassifier":
        """Load a classifier written by :meth:`save`; predictions are identical.

        Parameters
        ----------
        directory : str or Path
        device : "auto", str or torch.device, default="auto"

        Returns
        -------
        SetFitClassifier
        """
        import skops.io

        folder = Path(directory)
        marker_file = folder / MARKER
        if not marker_file.is_file():
            raise ValueError(
                f"{str(folder)!r} is not a SetFitClassifier folder saved by fewshot: it has no "
                f"{MARKER}. Save one with SetFitClassifier.save(directory)."
            )
        marker = json.loads(marker_file.read_text())
        if marker.get("format") != FORMAT or marker.get("format_version", 0) > FORMAT_VERSION:
            raise ValueError(
                f"{str(folder)!r} holds format {marker.get('format')!r} version "
                f"{marker.get('format_version')!r}; this fewshot reads {FORMAT!r} up to "
                f"version {FORMAT_VERSION}. Upgrade fewshot."
            )
        untrusted = skops.io.get_untrusted_types(file=folder / HEAD_FILE)
        foreign = [t for t in untrusted if not t.startswith(("sklearn.", "numpy."))]
        if foreign:
            raise ValueError(
                f"The head in {str(folder)!r} uses types outside scikit-learn and numpy "
                f"({foreign}); refusing to load them. Load it with skops yourself if you trust it."
            )
        head = skops.io.load(folder / HEAD_FILE, trusted=untrusted)
        params = dict(marker["params"])
        params["device"] = device
        clf = cls(**params)
        clf.head = None if marker.get("default_head", True) else _unwrap(head)
        clf.body_ = _read_body(folder, device)
        clf.layer_ = clf.body_.n_layers
        clf.max_length_ = int(marker["max_length"])
        clf.multilabel_ = bool(marker["multilabel"])
        clf.classes_ = np.asarray(marker["classes"])
        clf.n_pairs_ = int(marker["n_pairs"])
        clf.train_loss_ = list(marker["train_loss"])
        clf.head_ = head
        return clf

    # -- pickling: weights travel as safetensors bytes, not as pickled tensors -----------

    def __getstate__(self):
        state = self.__dict__.copy()
        body = state.pop("body_", None)
        if body is not None:
            with tempfile.TemporaryDirectory() as tmp:
                _write_body(body, Path(tmp), pooling=self.pooling, max_length=self.max_length_)
                state["_body_files"] = {
                    str(p.relative_to(tmp)): p.read_bytes() for p in Path(tmp).rglob("*") if p.is_file()
                }
        return state

    def __setstate__(self, state):
        files = state.pop("_body_files", None)
        self.__dict__.update(state)
        if files is not None:
            with tempfile.TemporaryDirectory() as tmp:
                for name, data in files.items():
                    path = Path(tmp) / name
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(data)
                self.body_ = _read_body(Path(tmp), self.device)


def _unwrap(head):
    """The user's head inside a multi-label wrapper, for the ``head`` parameter."""
    inner = getattr(head, "estimator", None) or getattr(head, "base_estimator", None)
    return clone(inner if inner is not None else head)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.random.RandomState):
        return None
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


