"""What one training step embeds: each distinct view once, in length-sorted chunks.

A step's pairs name texts; :func:`step_views` turns them into the distinct views to
embed (a text paired with itself needs two dropout views), :func:`embed_step` embeds
them padded in chunks of similar length (:func:`length_chunks`), from kept token states
when the bottom blocks are frozen (:func:`frozen_states`). Every chunk pools through the
encoding path's own helpers, so the body trains on the embedding it later produces.
"""

from __future__ import annotations

import numpy as np
import torch

from .._core.encoding import pad_batch, padded_length, pooled_features
from .._core.forward import forward_layers, only_blocks, replace_block_input
from ._precision import compute_autocast

__all__ = [
    "CHUNK_OVERHEAD_TOKENS",
    "MAX_CHUNKS",
    "TRAINING_PAD_MULTIPLE",
    "embed_step",
    "frozen_states",
    "from_states",
    "length_chunks",
    "step_views",
]


def step_views(first: np.ndarray, second: np.ndarray, n_texts: int):
    """The distinct views a step embeds, and where each pair side finds its view.

    A text embedded once serves every pair it is in; but a pair of a text with itself
    (``sample_pairs(self_pairs=True)``) needs two views, so its second side is the
    view numbered ``text + n_texts``: the same tokens through another dropout draw.
    Returns the sorted view numbers (text = view % n_texts) and, for the sides
    ``first`` then ``second``, the position of each side's view among them.
    """
    second = np.where(first == second, second + n_texts, second)
    return np.unique(np.concatenate([first, second]), return_inverse=True)


def embed_step(body, token_ids, rows, spec, pad_id, states, n_frozen, compute_dtype):
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
                part = from_states(body, states, chunk_rows, input_ids, mask, spec, n_frozen)
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


def frozen_states(body, token_ids, n_frozen: int, pad_id: int, batch: int = 32):
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


def from_states(body, states, rows, input_ids, mask, spec, n_frozen):
    """Pooled embeddings of ``rows``, running only the blocks above the frozen ones."""
    hidden = torch.zeros(
        (len(rows), input_ids.shape[1], states[rows[0]].shape[-1]), device=body.device
    )
    for j, i in enumerate(rows):
        hidden[j, : len(states[i])] = states[i]
    first = body.blocks[n_frozen]
    with only_blocks(body, n_frozen, body.n_layers), replace_block_input(first, hidden):
        return pooled_features(body, input_ids, mask, spec)
