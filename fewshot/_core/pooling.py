"""Pool a batch of token hidden states into one vector per text.

Pure functions on tensors: ``hidden`` is ``(batch, tokens, features)`` and ``mask`` is
the tokenizer's ``(batch, tokens)`` attention mask (1 for real tokens, 0 for padding).
Padding never changes a result, which is what makes embeddings batch-invariant.
"""

from __future__ import annotations

import torch

from .choices import POOLINGS

__all__ = ["cls_pool", "max_pool", "mean_pool", "pool"]


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average of the real (unmasked) tokens.

    Examples
    --------
    >>> import torch
    >>> hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    >>> mean_pool(hidden, torch.tensor([[1, 1, 0]]))
    tensor([[2., 3.]])
    """
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * weights).sum(dim=1)
    counts = weights.sum(dim=1).clamp(min=1e-9)
    return summed / counts


def cls_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The first token's hidden state ([CLS] for BERT-like models, <s> for RoBERTa).

    Examples
    --------
    >>> import torch
    >>> cls_pool(torch.tensor([[[1.0, 2.0], [3.0, 4.0]]]), torch.tensor([[1, 1]]))
    tensor([[1., 2.]])
    """
    return hidden[:, 0]


def max_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Feature-wise maximum over the real tokens.

    Examples
    --------
    >>> import torch
    >>> hidden = torch.tensor([[[1.0, 5.0], [3.0, 4.0], [100.0, 100.0]]])
    >>> max_pool(hidden, torch.tensor([[1, 1, 0]]))
    tensor([[3., 5.]])
    """
    filled = hidden.masked_fill(~mask.bool().unsqueeze(-1), torch.finfo(hidden.dtype).min)
    return filled.max(dim=1).values


_POOLERS = {"mean": mean_pool, "cls": cls_pool, "max": max_pool}


def pool(hidden: torch.Tensor, mask: torch.Tensor, method: str) -> torch.Tensor:
    """Pool with ``method`` in ``{"mean", "cls", "max"}``."""
    try:
        pooler = _POOLERS[method]
    except KeyError:
        raise ValueError(f"pooling={method!r} is not one of {POOLINGS}.") from None
    return pooler(hidden, mask)
