"""Helpers for testing code that uses fewshot without downloading anything.

:func:`make_tiny_distilbert` writes a tiny, randomly initialised
``DistilBertForSequenceClassification`` with a WordPiece tokenizer to a folder, in the
same layout ``save_pretrained`` gives a real model, so every code path that loads a
model folder can be exercised offline in a second.
"""

from __future__ import annotations

from pathlib import Path

_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Whole words the tiny vocabulary knows; any other word falls back to characters.
_WORDS = """
the a an and or but not no is was are were be been it this that these those i you we they
he she my your our their me us them of to in on at for with from by as about after before
very too so really quite more most less good great excellent fine nice love like happy
best perfect fast quick easy helpful friendly bad poor terrible awful hate slow late broken
worst rude wrong never again movie film story product order delivery package item price
refund money charge bill invoice account support service staff app screen battery quality
size colour color box day days week weeks time phone call email help problem issue works
work worked working arrived came still want need would will can could should do does did
""".split()
_CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'\"-:;()/&%$")


def tiny_vocabulary() -> list[str]:
    """The tiny model's WordPiece vocabulary, special tokens first."""
    vocab = _SPECIAL + _WORDS + _CHARS + ["##" + c for c in _CHARS]
    return list(dict.fromkeys(vocab))


def make_tiny_distilbert(
    path,
    *,
    seed: int = 0,
    hidden_size: int = 32,
    n_layers: int = 6,
    n_heads: int = 2,
    max_position_embeddings: int = 128,
    labels=("NEGATIVE", "POSITIVE"),
) -> Path:
    """Write a tiny random DistilBERT classifier and its tokenizer to ``path``.

    The weights are deterministic for a given ``seed`` and saved as safetensors; the
    folder loads with ``AutoTokenizer.from_pretrained`` / ``AutoModel.from_pretrained``
    and with every fewshot estimator (``model=str(path)``).

    Parameters
    ----------
    path : str or Path
        Folder to create (or overwrite).
    seed : int, default=0
        Seed of the random weights.
    hidden_size, n_layers, n_heads, max_position_embeddings : int
        Shape of the model; the defaults give about 40k parameters.
    labels : sequence of str, default=("NEGATIVE", "POSITIVE")
        Class names of the classification head (its ``id2label``).

    Returns
    -------
    Path
        The folder.

    Examples
    --------
    >>> import tempfile
    >>> from transformers import AutoModel
    >>> folder = make_tiny_distilbert(tempfile.mkdtemp(), n_layers=3)
    >>> AutoModel.from_pretrained(folder).config.num_hidden_layers
    3
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import (
        DistilBertConfig,
        DistilBertForSequenceClassification,
        PreTrainedTokenizerFast,
    )

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vocab = tiny_vocabulary()
    ids = {token: i for i, token in enumerate(vocab)}

    backend = Tokenizer(models.WordPiece(ids, unk_token="[UNK]", max_input_chars_per_word=100))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
    )
    backend.decoder = decoders.WordPiece()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        model_max_length=max_position_embeddings,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_input_names=["input_ids", "attention_mask"],
    )
    tokenizer.save_pretrained(path)
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")

    labels = list(labels)
    config = DistilBertConfig(
        vocab_size=len(vocab),
        dim=hidden_size,
        hidden_dim=2 * hidden_size,
        n_layers=n_layers,
        n_heads=n_heads,
        max_position_embeddings=max_position_embeddings,
        pad_token_id=ids["[PAD]"],
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DistilBertForSequenceClassification(config)
    from ._core.loading import quiet_transformers

    with quiet_transformers():
        model.save_pretrained(path, safe_serialization=True)
    return path


__all__ = ["make_tiny_distilbert", "tiny_vocabulary"]
