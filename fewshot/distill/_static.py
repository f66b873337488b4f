"""The static embedding table: built from token vectors, quantised, and averaged per text.

A static student embeds a text as the mean of one row per token (its tokenizer's ids,
special tokens left out), L2-normalised: no attention, no layers, so a text costs a
table lookup per token. The table starts as model2vec's distillation does (Tulkens &
van Dongen, 2024): every vocabulary token's vector from the teacher's body, reduced by
PCA and weighted by SIF with Zipf's law standing in for token frequencies
(:func:`initial_table`). It is stored as int8 with one float32 scale per row
(:func:`quantize_rows`); a row scale of 0 marks a token the bag leaves out (the
special tokens), so the exported graph needs no second table. :func:`bag_features`
is the Python side of what the exported graph computes (:mod:`fewshot.distill._onnx`).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "bag_features",
    "initial_table",
    "quantize_rows",
    "sif_weights",
    "special_tokens",
    "truncating_tokenizer",
]


def sif_weights(n_tokens: int, coefficient: float | None) -> np.ndarray:
    """SIF weights ``a / (a + p(t))`` with ``p`` from Zipf's law over token ids.

    model2vec's choice: a WordPiece vocabulary lists frequent tokens first, so the id
    ranks tokens well enough; frequent tokens ("the", ",") get small weights. None gives
    every token weight 1.

    Examples
    --------
    >>> w = sif_weights(5, 1e-4)
    >>> bool(w[0] < w[-1] < 1)
    True
    """
    if coefficient is None:
        return np.ones(n_tokens)
    inverse_rank = 1.0 / np.arange(2, n_tokens + 2)
    probability = inverse_rank / inverse_rank.sum()
    return coefficient / (coefficient + probability)


def initial_table(
    token_vectors: np.ndarray,
    left_out: np.ndarray,
    *,
    dims: int,
    sif_coefficient: float | None,
    random_state: int,
) -> np.ndarray:
    """The float32 table of model2vec's distillation: PCA to ``dims``, then SIF weights.

    ``token_vectors`` holds one teacher vector per token id; rows where ``left_out`` is
    True (special tokens) are ignored by the PCA and set to zero.
    """
    from sklearn.decomposition import PCA

    kept = ~left_out
    dims = min(dims, token_vectors.shape[1], int(kept.sum()))
    # A full SVD: exact and, with scikit-learn's sign convention, the same every run.
    pca = PCA(n_components=dims, svd_solver="full", random_state=random_state)
    pca.fit(token_vectors[kept].astype(np.float64))
    table = pca.transform(token_vectors.astype(np.float64))
    table *= sif_weights(len(table), sif_coefficient)[:, None]
    table[left_out] = 0.0
    return table.astype(np.float32)


def quantize_rows(table: np.ndarray, left_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(int8 table, float32 scale per row)``; left-out rows get scale 0.

    The recipe of the transformer export's int8 word embeddings: each row divided by
    its largest absolute value over 127, rounded.

    Examples
    --------
    >>> q, s = quantize_rows(np.array([[0.5, -1.0], [1.0, 1.0]]), np.array([False, True]))
    >>> q.tolist(), (s * 127).tolist()
    ([[64, -127], [0, 0]], [1.0, 0.0])
    """
    table = np.asarray(table, dtype=np.float32)
    scales = np.maximum(np.abs(table).max(axis=1), 1e-12) / 127.0
    quantized = np.clip(np.rint(table / scales[:, None]), -127, 127).astype(np.int8)
    scales = scales.astype(np.float32)
    quantized[left_out] = 0
    scales[left_out] = 0.0
    return quantized, scales


def bag_features(
    ids: list, table: np.ndarray, scales: np.ndarray, *, normalize: bool
) -> np.ndarray:
    """Mean of the dequantised rows of each text's token ids (rows of scale 0 left out).

    Computed as the exported graph does: per token a weight ``scale * kept``, the
    weighted sum of the int8 rows, divided by the number of kept tokens (at least 1);
    a text with no kept token gets a zero vector. Then L2 normalisation.

    Examples
    --------
    >>> table = np.array([[0, 0], [127, 0], [0, 127]], dtype=np.int8)
    >>> scales = np.array([0.0, 1 / 127, 2 / 127], dtype=np.float32)
    >>> bag_features([[0, 1, 2, 0], [0, 0]], table, scales, normalize=False).round(3)
    array([[0.5, 1. ],
           [0. , 0. ]], dtype=float32)
    """
    out = np.zeros((len(ids), table.shape[1]), dtype=np.float32)
    for row, sequence in enumerate(ids):
        sequence = np.asarray(sequence, dtype=np.int64)
        weights = scales[sequence]
        kept = np.count_nonzero(weights)
        if kept:
            out[row] = (weights @ table[sequence].astype(np.float32)) / np.float32(kept)
    if normalize:
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), np.float32(1e-12))
    return out


def truncating_tokenizer(tokenizer_json: str, max_length: int):
    """A ``tokenizers.Tokenizer`` from its JSON that cuts at ``max_length`` and never pads."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(tokenizer_json)
    tokenizer.no_padding()
    tokenizer.enable_truncation(int(max_length))
    return tokenizer


def special_tokens(hf_tokenizer) -> dict:
    """The tokenizer's special tokens by role (cls, sep, pad, unk, mask)."""
    return {
        name: getattr(hf_tokenizer, f"{name}_token", None)
        for name in ("cls", "sep", "pad", "unk", "mask")
    }
