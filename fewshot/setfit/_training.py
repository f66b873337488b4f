"""Phase 1 of SetFit: contrastive fine-tuning of an encoder body on pairs of texts.

Same class -> cosine similarity 1, different classes -> 0, mean squared error
(sentence-transformers' ``CosineSimilarityLoss``), AdamW with linear warm-up and decay.
Each step pads and pools through the encoding path's own helpers
(:func:`fewshot._core.encoding.pad_batch`, :func:`fewshot._core.encoding.pooled_features`), so the
body trains on exactly the embedding it later produces; every distinct text of a step
runs through the body once, however many of the step's pairs it appears in (twice when
a pair joins it with itself: two dropout views).
Class descriptions (``label_descriptions``) join the texts as anchors of their class.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

from .._core.encoding import EncodingSpec, pad_batch, padded_length, pooled_features
from .._core.forward import forward_layers, only_blocks, replace_block_input
from .._core.loading import LoadedModel
from .._estimator.validation import plain
from ._precision import compute_autocast

__all__ = [
    "LabelDescriptions",
    "STOP_WINDOW",
    "TrainingLog",
    "TrainingSchedule",
    "adamw",
    "anchor_texts",
    "cosine_similarity_loss",
    "layer_groups",
    "length_chunks",
    "token_embeddings",
    "train_body",
]


@dataclass(frozen=True)
class TrainingSchedule:
    """How long and how fast to train: passes, pairs per step, learning rate, warm-up.

    ``max_grad_norm`` clips the gradient's L2 norm before each step (None: no clipping).
    ``layer_decay`` scales the learning rate down by this factor per block below the
    top one (1.0: one rate for the whole body). ``stop_loss`` ends training early once
    it has come back to a pair it already trained on and the mean pair loss of the last
    :data:`STOP_WINDOW` steps is below it (None: never).
    """

    epochs: int = 1
    batch_size: int = 16
    learning_rate: float = 2e-5
    warmup_proportion: float = 0.1
    max_grad_norm: float | None = None
    layer_decay: float = 1.0
    stop_loss: float | None = None

    def n_steps(self, n_pairs: int) -> int:
        return math.ceil(n_pairs / self.batch_size) * self.epochs

    def lr_factor(self, n_pairs: int):
        """Linear warm-up over the first steps, then linear decay to zero."""
        total = self.n_steps(n_pairs)
        warmup = int(total * self.warmup_proportion)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / (warmup + 1)
            return max(0.0, (total - step) / max(1, total - warmup))

        return factor


# Steps whose mean pair loss ``stop_loss`` compares: one step's loss, over 16 pairs,
# varies too much to stop on.
STOP_WINDOW = 5


@dataclass(frozen=True)
class TrainingLog:
    """What :func:`train_body` did: each epoch's mean pair loss and the steps it ran."""

    losses: list[float]
    n_steps: int


def _returns(trained_on: set, first: np.ndarray, second: np.ndarray) -> bool:
    """Whether a pair of this step was trained on before; records the step's pairs."""
    step = set(zip(np.minimum(first, second).tolist(), np.maximum(first, second).tolist()))
    again = not trained_on.isdisjoint(step)
    trained_on |= step
    return again


def cosine_similarity_loss(a: torch.Tensor, b: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between ``cos(a, b)`` and the pair targets (1 same class, 0 not)."""
    similarity = torch.nn.functional.cosine_similarity(a, b)
    return torch.nn.functional.mse_loss(similarity, target)


def train_body(
    body: LoadedModel,
    token_ids: list[list[int]],
    pairs,
    spec: EncodingSpec,
    schedule: TrainingSchedule,
    *,
    torch_seed: int,
    order_seed: int,
    n_frozen: int = 0,
    parameters=None,
    train_token_embeddings: bool = True,
    compute_dtype: str = "float32",
    progress: bool = False,
) -> TrainingLog:
    """Fine-tune ``body`` in place on ``pairs`` of ``token_ids``; return the losses and steps.

    ``pairs`` is a :class:`fewshot.setfit._pairs.Pairs` (``first``, ``second``, ``target``).
    The first epoch takes the pairs in the sampler's order, later epochs reshuffle them
    with ``order_seed``; dropout draws from ``torch_seed`` without touching the
    caller's global torch random state. With ``schedule.stop_loss`` training ends once
    it has reached a pair it trained on before and the last :data:`STOP_WINDOW` steps'
    mean loss is below it; the epoch it ends in reports the mean over the pairs it saw.
    While every pair is new the loss says how the body does on pairs it has not fitted,
    and stopping on it cut training short where it still paid (N = 64,
    docs/benchmarks.md); once pairs come back, a low loss means the few texts are fitted.

    With ``n_frozen`` the bottom blocks stay as they are: each distinct text runs through
    them once, its token states are kept, and every step trains only the blocks above
    from those states (the same result as a forward through frozen blocks in eval mode,
    at a fraction of the cost).

    ``parameters`` names the only parameters to train (a LoRA adapter's matrices); by
    default every parameter of the trained blocks, and of the embedding layer when every
    block trains, less the token embedding table unless ``train_token_embeddings``.
    Every parameter's ``requires_grad`` is as it was afterwards.

    ``compute_dtype="bfloat16"`` runs the forward passes under bfloat16 autocast; the
    weights, their gradients and AdamW's state stay float32, and the loss is taken in
    float32.
    """
    from tqdm.auto import tqdm

    network = body.model
    pad_id = body.tokenizer.pad_token_id or 0
    batch_size = schedule.batch_size
    n_texts = len(token_ids)
    total = schedule.n_steps(len(pairs))
    if n_frozen:
        with compute_autocast(body.device, compute_dtype):
            states = _frozen_states(body, token_ids, n_frozen, pad_id)
    else:
        states = None
    if parameters is not None:
        trainable = list(parameters)
    elif n_frozen:
        trainable = [p for block in body.blocks[n_frozen:] for p in block.parameters()]
    else:
        kept = set() if train_token_embeddings else set(map(id, token_embeddings(network)))
        trainable = [p for p in network.parameters() if id(p) not in kept]
    previous = [(p, p.requires_grad) for p in network.parameters()]
    for parameter in network.parameters():
        parameter.requires_grad_(False)
    for parameter in trainable:
        parameter.requires_grad_(True)
    learning_rate = float(schedule.learning_rate)
    if schedule.layer_decay != 1.0:
        groups = layer_groups(body.blocks, trainable, learning_rate, schedule.layer_decay)
        optimizer = adamw(groups, learning_rate)
    else:
        optimizer = adamw(trainable, learning_rate)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule.lr_factor(len(pairs)))
    order_rng = np.random.default_rng(order_seed)
    devices = [body.device.index or 0] if body.device.type == "cuda" else []
    losses, recent, n_steps = [], deque(maxlen=STOP_WINDOW), 0
    trained_on, returning = set(), False  # pairs seen so far; has a pair come back?
    network.train()
    try:
        with (
            torch.random.fork_rng(devices=devices),
            tqdm(total=total, disable=not progress, desc="Fine-tuning", unit="step") as bar,
        ):
            torch.manual_seed(torch_seed)
            for epoch in range(schedule.epochs):
                order = order_rng.permutation(len(pairs)) if epoch else np.arange(len(pairs))
                epoch_loss, seen, stop = 0.0, 0, False
                for start in range(0, len(pairs), batch_size):
                    batch = order[start : start + batch_size]
                    if schedule.stop_loss is not None and not returning:
                        returning = _returns(trained_on, pairs.first[batch], pairs.second[batch])
                    views, where = _step_views(pairs.first[batch], pairs.second[batch], n_texts)
                    rows = views % n_texts  # a text's second view runs the same tokens
                    embeddings = _embed_step(
                        body, token_ids, rows, spec, pad_id, states, n_frozen, compute_dtype
                    )
                    where = torch.as_tensor(where, device=body.device)
                    target = torch.as_tensor(pairs.target[batch], device=body.device)
                    loss = cosine_similarity_loss(
                        embeddings[where[: len(batch)]], embeddings[where[len(batch) :]], target
                    )
                    loss.backward()
                    if schedule.max_grad_norm is not None:
                        torch.nn.utils.clip_grad_norm_(trainable, schedule.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    step_loss = loss.item()
                    epoch_loss += step_loss * len(batch)
                    seen += len(batch)
                    n_steps += 1
                    bar.update(1)
                    recent.append(step_loss)
                    if returning and len(recent) == STOP_WINDOW:
                        stop = sum(recent) / STOP_WINDOW < schedule.stop_loss
                        if stop:
                            break
                losses.append(epoch_loss / seen)
                if stop:
                    break
    finally:
        network.eval()
        for parameter, flag in previous:
            parameter.requires_grad_(flag)
    return TrainingLog(losses, n_steps)


def _step_views(first: np.ndarray, second: np.ndarray, n_texts: int):
    """The distinct views a step embeds, and where each pair side finds its view.

    A text embedded once serves every pair it is in; but a pair of a text with itself
    (``sample_pairs(self_pairs=True)``) needs two views, so its second side is the
    view numbered ``text + n_texts``: the same tokens through another dropout draw.
    Returns the sorted view numbers (text = view % n_texts) and, for the sides
    ``first`` then ``second``, the position of each side's view among them.
    """
    second = np.where(first == second, second + n_texts, second)
    return np.unique(np.concatenate([first, second]), return_inverse=True)


def token_embeddings(network: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The parameters of ``network``'s token embedding table (none if it has no such table)."""
    try:
        table = network.get_input_embeddings()
    except (AttributeError, NotImplementedError):
        return []
    return [] if table is None else list(table.parameters())


# Where torch has a fused AdamW kernel.
_FUSED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_FUSED_DEVICES = ("cpu", "cuda")


def adamw(parameters, learning_rate: float) -> torch.optim.AdamW:
    """AdamW with torch's fused kernel where it has one for these parameters.

    ``parameters`` is a list of tensors or of torch parameter groups (dicts with
    ``"params"`` and their own ``"lr"``). The same update as the default
    (multi-tensor) AdamW up to rounding, in one pass per tensor: for
    all-MiniLM-L6-v2 on 2 CPU cores a step took 12.5 ms instead of 65, without the
    default's temporary copies of every parameter.
    """
    parameters = list(parameters)
    tensors = [
        p for item in parameters for p in (item["params"] if isinstance(item, dict) else [item])
    ]
    fusable = all(p.dtype in _FUSED_DTYPES and p.device.type in _FUSED_DEVICES for p in tensors)
    return torch.optim.AdamW(parameters, lr=learning_rate, fused=fusable or None)


def layer_groups(blocks, trainable, learning_rate: float, decay: float) -> list[dict]:
    """AdamW parameter groups whose learning rate shrinks by ``decay`` per block downwards.

    The top block trains at ``learning_rate``, block ``i`` of ``n`` at
    ``learning_rate * decay ** (n - 1 - i)``, and whatever lies outside the blocks
    (the embedding layer) at ``learning_rate * decay ** n``: the lower a layer, the
    more general what it holds and the less a handful of texts should move it. One
    group per depth, bottom first; empty ones are left out.

    Examples
    --------
    >>> blocks = torch.nn.ModuleList(torch.nn.Linear(2, 2) for _ in range(3))
    >>> outside = torch.nn.Parameter(torch.zeros(2))
    >>> groups = layer_groups(blocks, [outside, *blocks.parameters()], 1.0, 0.5)
    >>> [(len(group["params"]), group["lr"]) for group in groups]
    [(1, 0.125), (2, 0.25), (2, 0.5), (2, 1.0)]
    """
    n = len(blocks)
    depth = {id(p): i for i, block in enumerate(blocks) for p in block.parameters()}
    by_depth: dict[int, list] = {}
    for parameter in trainable:
        by_depth.setdefault(depth.get(id(parameter), -1), []).append(parameter)
    return [
        {"params": by_depth[i], "lr": learning_rate * decay ** (n - 1 - i)}
        for i in sorted(by_depth)
    ]


def _embed_step(body, token_ids, rows, spec, pad_id, states, n_frozen, compute_dtype):
    """Pooled float32 embeddings of ``rows`` (in that order), in length-sorted chunks.

    Padding every text of a step to the step's longest wastes up to half the tokens
    when lengths vary (news, reviews); :func:`length_chunks` splits the step where
    that saves more than a forward call costs.
    """
    # Chunk costs count the rounded lengths: those are what each pass runs.
    rounding = {"multiple_of": TRAINING_PAD_MULTIPLE, "limit": spec.max_length}
    lengths = [padded_length(len(token_ids[i]), **rounding) for i in rows]
    parts, order = [], []
    for chunk in length_chunks(lengths):
        chunk_rows = [rows[j] for j in chunk]
        input_ids, mask = pad_batch(
            [token_ids[i] for i in chunk_rows], pad_id, body.device, **rounding
        )
        with compute_autocast(body.device, compute_dtype):
            if states is None:
                part = pooled_features(body, input_ids, mask, spec)
            else:
                part = _from_states(body, states, chunk_rows, input_ids, mask, spec, n_frozen)
        parts.append(part.float())
        order.extend(chunk)
    # Chunks come shortest first, even a single one: put the rows back in asked order.
    embeddings = torch.cat(parts)
    return embeddings[torch.as_tensor(np.argsort(order), device=embeddings.device)]


# Training batches are padded to a multiple of this many tokens. Every new matrix shape
# costs memory that is not given back (oneDNN builds a kernel for it, glibc keeps freed
# buffers of odd sizes); rounded lengths make steps repeat shapes. Measured (SST-2,
# N = 64, 320 steps, bfloat16, one fit each): peak RSS 1,667-1,711 MiB unrounded,
# 1,385 rounded to 8, fit time within the runs' own spread (139-151 s). Short texts pay
# most for the extra tokens (SST-2 at N = 64 ran about 8 % longer; docs/benchmarks.md).
TRAINING_PAD_MULTIPLE = 8

# A forward call's fixed cost, in padded tokens: below this a split does not pay
# (measured on 2 CPU cores with all-MiniLM-L6-v2; see docs/few-shot.md).
CHUNK_OVERHEAD_TOKENS = 128
MAX_CHUNKS = 4


def length_chunks(lengths, overhead: int = CHUNK_OVERHEAD_TOKENS, max_chunks: int = MAX_CHUNKS):
    """Split positions ``0..n-1`` into length-sorted chunks of least padded cost.

    The cost of a chunk is its size times its longest length (every row is padded to
    it) plus ``overhead`` for the call; dynamic programming over the sorted lengths
    finds the split into at most ``max_chunks`` chunks with the least total cost.
    Returns lists of positions, shortest texts first; together they hold every
    position once.

    Examples
    --------
    >>> length_chunks([5, 100, 6, 7, 98], overhead=10)
    [[0, 2, 3], [4, 1]]
    >>> length_chunks([5, 6, 7], overhead=10)
    [[0, 1, 2]]
    """
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    sorted_lengths = [lengths[i] for i in order]
    n = len(order)
    # best[c][j]: least cost of the first j sorted rows in c chunks; cut[c][j]: where the
    # last of those chunks starts.
    infinity = float("inf")
    best = [[infinity] * (n + 1) for _ in range(max_chunks + 1)]
    cut = [[0] * (n + 1) for _ in range(max_chunks + 1)]
    best[0][0] = 0
    for c in range(1, max_chunks + 1):
        for j in range(1, n + 1):
            for i in range(c - 1, j):
                cost = best[c - 1][i] + (j - i) * sorted_lengths[j - 1] + overhead
                if cost < best[c][j]:
                    best[c][j], cut[c][j] = cost, i
    chunks_used = min(range(1, max_chunks + 1), key=lambda c: (best[c][n], c)) if n else 0
    bounds, j = [], n
    for c in range(chunks_used, 0, -1):
        bounds.append((cut[c][j], j))
        j = cut[c][j]
    return [order[start:stop] for start, stop in reversed(bounds)]


def _frozen_states(body, token_ids, n_frozen: int, pad_id: int, batch: int = 32):
    """Each text's token states after the ``n_frozen`` bottom blocks (eval mode, no grad)."""
    states = [None] * len(token_ids)
    order = sorted(range(len(token_ids)), key=lambda i: -len(token_ids[i]))
    body.model.eval()
    with torch.no_grad():
        for start in range(0, len(order), batch):
            rows = order[start : start + batch]
            input_ids, mask = pad_batch([token_ids[i] for i in rows], pad_id, body.device)
            hidden = forward_layers(body, input_ids, mask, [n_frozen])[0][n_frozen].float()
            for j, i in enumerate(rows):
                states[i] = hidden[j, : len(token_ids[i])].clone()
    body.model.train()
    return states


def _from_states(body, states, rows, input_ids, mask, spec, n_frozen):
    """Pooled embeddings of ``rows``, running only the blocks above the frozen ones."""
    hidden = torch.zeros(
        (len(rows), input_ids.shape[1], states[rows[0]].shape[-1]), device=body.device
    )
    for j, i in enumerate(rows):
        hidden[j, : len(states[i])] = states[i]
    first = body.blocks[n_frozen]
    with only_blocks(body, n_frozen, body.n_layers), replace_block_input(first, hidden):
        return pooled_features(body, input_ids, mask, spec)


class LabelDescriptions:
    """``label_descriptions``: None, "labels" or a dict of non-empty texts."""

    def check(self, name, value):
        if value is None or value == "labels":
            return
        if not isinstance(value, dict) or not all(
            isinstance(text, str) and text.strip() for text in value.values()
        ):
            raise TypeError(
                f"{name} must be None, 'labels' or a dict mapping every class to a short "
                f"text, got {value!r}."
            )


def anchor_texts(descriptions, classes, multilabel: bool) -> list[str]:
    """One description per class, in ``classes`` order (empty without descriptions)."""
    if descriptions is None:
        return []
    if multilabel:
        raise ValueError("label_descriptions works with single-label y only.")
    names = [plain(c) for c in classes]
    if descriptions == "labels":
        if not all(isinstance(name, str) for name in names):
            raise ValueError(
                "label_descriptions='labels' uses string labels as their own descriptions, "
                f"but the classes are {names}; pass a dict {{class: text}} instead."
            )
        return list(names)
    missing = [name for name in names if name not in descriptions]
    unknown = [key for key in descriptions if key not in names]
    if missing or unknown:
        raise ValueError(
            f"label_descriptions must name exactly the classes {names}; missing {missing}, "
            f"not classes {unknown}."
        )
    return [descriptions[name] for name in names]
