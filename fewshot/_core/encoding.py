"""The one encoding path: texts -> token windows -> sorted, padded batches -> pooled layers.

Knows nothing of scikit-learn. :func:`encode` embeds each distinct text once and streams
through them in blocks, so memory stays bounded however many texts there are (it can
write into a caller's array or memmap). Each batch goes through
:func:`fewshot._core.forward.forward_layers` (the single forward pass, also used with
gradients by SetFit training) or, with ``spec.backend == "onnx"``, through ONNX Runtime
(:mod:`fewshot._core.onnx_backend`); :func:`pooled_features` turns either into features, so
pooling and everything around it stay the same.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from .forward import forward_layers
from .loading import LoadedModel
from .onnx_backend import onnx_runner, resolve_threads, torch_threads
from .pooling import pool
from .prompt import apply_prompt

__all__ = [
    "EncodingSpec",
    "TruncationWarning",
    "check_out",
    "copy_duplicate_rows",
    "encode",
    "head_labels",
    "l2_normalize",
    "make_runner",
    "pad_batch",
    "padded_length",
    "pooled_features",
    "tokenize",
    "unique_texts",
]


class TruncationWarning(UserWarning):
    """Some texts were longer than ``max_length`` tokens and were cut."""


@dataclass(frozen=True)
class EncodingSpec:
    """Everything that decides the features of one text, resolved against a model.

    No field has a default: every spec comes out of the one resolver
    (:func:`fewshot._estimator.resolve.resolve_plan`), which reads the estimators'
    constructor defaults.

    ``layers`` holds non-negative layer numbers (0 = embedding output) in the
    order their columns appear; ``max_length`` is already capped at the model's limit.
    ``pooling`` is one method or a tuple of methods: with several, every pooling comes
    from the same forward pass and the body columns are grouped by pooling first, then
    by layer (layer probing uses this).
    ``backend`` and ``quantize`` say where the forward runs (they change the vectors
    slightly, so they belong here and in cache keys); thread counts and batch sizes
    do not change the vectors and are not part of the spec. ``prompt`` (a template or
    prefix, see :mod:`fewshot._core.prompt`) is applied to every text just before
    tokenisation, so its tokens count toward ``max_length``.
    """

    layers: tuple[int, ...]
    pooling: str | tuple[str, ...]
    combine: str
    head: str | None
    max_length: int
    long_text: str
    stride: int
    normalize: bool
    backend: str
    quantize: str | None
    prompt: str | None

    @property
    def poolings(self) -> tuple[str, ...]:
        return (self.pooling,) if isinstance(self.pooling, str) else tuple(self.pooling)

    def n_body_features(self, hidden_size: int) -> int:
        if not self.layers:
            return 0
        per_pooling = hidden_size * (len(self.layers) if self.combine == "concat" else 1)
        return per_pooling * len(self.poolings)

    def n_features(self, loaded: LoadedModel) -> int:
        n_head = len(head_labels(loaded)) if self.head else 0
        return self.n_body_features(loaded.hidden_size) + n_head

    def feature_names(self, loaded: LoadedModel) -> list[str]:
        names = []
        hidden = range(loaded.hidden_size)
        for pooling in self.poolings if self.layers else ():
            if self.combine == "concat":
                for layer in self.layers:
                    names += [f"layer{layer}_{pooling}_{j}" for j in hidden]
            else:
                tag = "+".join(map(str, self.layers))
                names += [f"layers{tag}_{pooling}_{j}" for j in hidden]
        if self.head:
            names += [f"head_{self.head}_{label}" for label in head_labels(loaded)]
        return names


def head_labels(loaded: LoadedModel) -> list[str]:
    n_labels = int(getattr(loaded.config, "num_labels", 0) or 0)
    labels = loaded.id2label
    return [labels.get(i, f"LABEL_{i}") for i in range(n_labels)]


def pooled_features(
    loaded, input_ids, attention_mask, spec: EncodingSpec, *, outputs=None
) -> torch.Tensor:
    """Features of one padded batch as float32, before normalisation.

    ``outputs`` is a ``(hidden states by layer, logits)`` pair already computed by a
    runner (see :func:`make_runner`); without it the PyTorch forward runs here.
    """
    if outputs is None:
        outputs = forward_layers(
            loaded, input_ids, attention_mask, spec.layers, head=spec.head is not None
        )
    captured, logits = outputs
    parts = []
    for pooling in spec.poolings if spec.layers else ():
        pooled = [pool(captured[layer].float(), attention_mask, pooling) for layer in spec.layers]
        if spec.combine == "mean":
            parts.append(torch.stack(pooled).mean(dim=0))
        else:
            parts.extend(pooled)
    if spec.head == "logits":
        parts.append(logits.float())
    elif spec.head == "proba":
        parts.append(torch.softmax(logits.float(), dim=-1))
    return torch.cat(parts, dim=-1)


def make_runner(loaded: LoadedModel, spec: EncodingSpec, n_threads=None):
    """The forward function for ``spec.backend``: ``(ids, mask) -> (hidden by layer, logits)``.

    Runs without gradients with ``n_threads`` intra-op threads (default:
    ``torch.get_num_threads()``, which joblib limits inside its workers).
    """
    threads = resolve_threads(n_threads)
    head = spec.head is not None
    if spec.backend == "onnx":
        return onnx_runner(loaded, spec.layers, head, spec.quantize, threads)
    if spec.quantize is not None:
        raise ValueError(
            f"quantize={spec.quantize!r} runs through ONNX Runtime; use backend='onnx'."
        )

    def run(input_ids, attention_mask):
        with torch.inference_mode(), loaded.lock, torch_threads(threads):
            return forward_layers(loaded, input_ids, attention_mask, spec.layers, head=head)

    return run


def unique_texts(texts: list[str]):
    """Distinct texts in first-seen order, with where they come from and go to.

    Returns the distinct texts, the row of each one's first occurrence, and for every
    row the index of its text among the distinct ones.

    Examples
    --------
    >>> unique_texts(["a", "b", "a"])
    (['a', 'b'], array([0, 1]), array([0, 1, 0]))
    """
    index: dict[str, int] = {}
    inverse = np.fromiter(
        (index.setdefault(text, len(index)) for text in texts), dtype=np.intp, count=len(texts)
    )
    first = np.full(len(index), -1, dtype=np.intp)
    # Reversed assignment leaves the smallest row of each text in ``first``.
    first[inverse[::-1]] = np.arange(len(texts) - 1, -1, -1, dtype=np.intp)
    return list(index), first, inverse


def check_out(out, n_texts: int, n_features: int) -> np.ndarray:
    """A float32 array to write features into: ``out`` after checks, or a new one."""
    if out is None:
        return np.empty((n_texts, n_features), dtype=np.float32)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array or numpy.memmap, got {type(out).__name__}.")
    if out.shape != (n_texts, n_features) or out.dtype != np.float32:
        raise ValueError(
            f"out has shape {out.shape} and dtype {out.dtype}, but these texts need a "
            f"float32 array of shape {(n_texts, n_features)}; create it with "
            f"np.empty({(n_texts, n_features)}, dtype=np.float32) or "
            "np.lib.format.open_memmap(path, mode='w+', dtype=np.float32, shape=...)."
        )
    if not out.flags.writeable:
        raise ValueError("out is read-only; pass a writeable array or memmap (mode='w+').")
    return out


def copy_duplicate_rows(
    out: np.ndarray, first: np.ndarray, inverse: np.ndarray, chunk: int = 4096
) -> None:
    """Fill each repeated text's row from the row of its first occurrence."""
    source = first[inverse]
    repeated = np.flatnonzero(source != np.arange(len(inverse)))
    for start in range(0, len(repeated), chunk):  # bounded temporaries for memmaps
        rows = repeated[start : start + chunk]
        out[rows] = out[source[rows]]


def tokenize(tokenizer, texts: list[str], spec: EncodingSpec):
    """Token ids per window, the text each window belongs to, and how many texts were cut.

    With ``long_text="truncate"`` each text gives one window cut at ``max_length``;
    with ``"chunk"`` a long text gives overlapping windows (``stride`` tokens shared
    between neighbours), so no token is dropped (and none is cut).
    This is where ``spec.prompt`` is applied: every text the model sees (training
    pairs, label descriptions, prediction) passes here. Its tokens count toward
    ``max_length``, as in sentence-transformers; with ``"chunk"`` the prompt's start
    is in the first window only (and its end in the last).
    """
    texts = apply_prompt(spec.prompt, texts)
    chunk = spec.long_text == "chunk"
    encoded = tokenizer(
        texts,
        truncation=True,
        max_length=spec.max_length,
        padding=False,
        return_attention_mask=False,
        return_token_type_ids=False,
        stride=spec.stride if chunk else 0,
        # Also when truncating: the overflow windows say which texts were cut.
        return_overflowing_tokens=True,
    )
    ids = encoded["input_ids"]
    owner = list(encoded["overflow_to_sample_mapping"])
    if chunk:
        return ids, owner, 0
    first = [j for j in range(len(ids)) if j == 0 or owner[j] != owner[j - 1]]
    n_cut = len({owner[j] for j in range(1, len(ids)) if owner[j] == owner[j - 1]})
    return [ids[j] for j in first], list(range(len(texts))), n_cut


def padded_length(longest: int, multiple_of: int = 1, limit: int | None = None) -> int:
    """``longest`` rounded up to a multiple of ``multiple_of``, but never past ``limit``.

    Examples
    --------
    >>> padded_length(17, 8), padded_length(16, 8), padded_length(510, 8, limit=511)
    (24, 16, 511)
    """
    rounded = -(-longest // multiple_of) * multiple_of
    return max(longest, min(rounded, limit)) if limit is not None else rounded


def pad_batch(sequences, pad_id: int, device, multiple_of: int = 1, limit: int | None = None):
    """Token id lists -> ``(input_ids, attention_mask)`` padded to the longest, on ``device``.

    With ``multiple_of`` the padded length is rounded up to a multiple of it, never past
    ``limit`` (the model's position limit); the extra positions are masked, so the pooled
    result is the same.
    """
    length = padded_length(max(len(s) for s in sequences), multiple_of, limit)
    input_ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for row, seq in enumerate(sequences):
        input_ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return input_ids.to(device), mask.to(device)


def l2_normalize(features: np.ndarray, n_columns: int | None = None, *, block=None) -> np.ndarray:
    """L2-normalise rows in place and return ``features``.

    Only the first ``n_columns`` columns are touched (the hidden-state block; head
    columns stay as they are); with ``block`` each run of ``block`` columns is
    normalised on its own (one layer of a concatenation at a time).

    Examples
    --------
    >>> l2_normalize(np.array([[3.0, 4.0, 7.0]]), 2)
    array([[0.6, 0.8, 7. ]])
    """
    n_columns = features.shape[1] if n_columns is None else n_columns
    step = block or n_columns
    for start in range(0, n_columns, max(step, 1)):
        part = features[:, start : start + step]
        part /= np.maximum(np.linalg.norm(part, axis=1, keepdims=True), 1e-12)
    return features


def encode(
    loaded: LoadedModel,
    texts: list[str],
    spec: EncodingSpec,
    *,
    batch_size: int,
    progress: bool,
    n_threads: int | None,
    out: np.ndarray | None = None,
    block_size: int | None = None,
) -> np.ndarray:
    """Embed ``texts`` and return a ``(len(texts), n_features)`` float32 array in input order.

    Each distinct text is embedded once; repeats get a copy of its row. Texts are
    handled in blocks of ``block_size``; inside a block the windows are sorted by length
    and padded per batch, so short texts are not padded to the longest one. ``out``
    (an array or ``numpy.memmap`` of the right shape, float32) receives the rows
    instead of a new array, so only one block is ever held in memory besides it.
    """
    out = check_out(out, len(texts), spec.n_features(loaded))
    if not texts:
        return out
    unique, first, inverse = unique_texts(texts)
    run = make_runner(loaded, spec, n_threads)
    _encode_rows(loaded, unique, first, spec, out, run, batch_size, progress, block_size)
    if len(unique) < len(texts):
        copy_duplicate_rows(out, first, inverse)
    return out


def _encode_rows(loaded, texts, rows, spec, out, run, batch_size, progress, block_size):
    """Write the features of ``texts[i]`` to ``out[rows[i]]``."""
    from tqdm.auto import tqdm

    n_texts = len(texts)
    n_features = spec.n_features(loaded)
    n_body = spec.n_body_features(loaded.hidden_size)
    pad_id = loaded.tokenizer.pad_token_id
    if pad_id is None:
        pad_id = 0
    block_size = block_size or max(64 * batch_size, 2048)
    chunk = spec.long_text == "chunk"
    n_cut = 0

    with tqdm(total=n_texts, disable=not progress, unit="text", desc="Embedding") as bar:
        for start in range(0, n_texts, block_size):
            block = texts[start : start + block_size]
            block_rows = rows[start : start + len(block)]
            ids, owner, cut = tokenize(loaded.tokenizer, block, spec)
            n_cut += cut
            # Longest first: a batch that does not fit fails at once, not at the end.
            order = sorted(range(len(ids)), key=lambda j: -len(ids[j]))
            if chunk:
                sums = np.zeros((len(block), n_features), dtype=np.float64)
                weights = np.zeros(len(block), dtype=np.float64)
            for b in range(0, len(order), batch_size):
                batch = order[b : b + batch_size]
                input_ids, mask = pad_batch([ids[j] for j in batch], pad_id, loaded.device)
                outputs = run(input_ids, mask)
                with torch.inference_mode():
                    features = pooled_features(loaded, input_ids, mask, spec, outputs=outputs)
                features = features.cpu().numpy()
                if chunk:
                    n_tokens = mask.sum(dim=1).cpu().numpy().astype(np.float64)
                    owners = np.asarray([owner[j] for j in batch])
                    np.add.at(sums, owners, features * n_tokens[:, None])
                    np.add.at(weights, owners, n_tokens)
                else:
                    if spec.normalize:
                        l2_normalize(features, n_body)
                    out[block_rows[np.asarray(batch)]] = features
            if chunk:
                block_out = (sums / weights[:, None]).astype(np.float32)
                if spec.normalize:
                    l2_normalize(block_out, n_body)
                out[block_rows] = block_out
            bar.update(len(block))
    if n_cut:
        warnings.warn(
            f"{n_cut} of {n_texts} texts are longer than max_length={spec.max_length} "
            "tokens and were cut there; pass long_text='chunk' to embed them whole.",
            TruncationWarning,
            stacklevel=4,
        )
