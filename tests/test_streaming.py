"""Writing into caller arrays and memmaps, streaming blocks, and embedding repeats once."""

import numpy as np
import pytest

from fewshot import DistilEmbedder
from fewshot._core.encoding import encode
from fewshot._core.loading import get_model


def test_out_array_and_memmap_get_the_same_rows(tiny_model, texts, tmp_path):
    embedder = DistilEmbedder(model=tiny_model, layers=[2, 4], head="proba")
    X = embedder.fit_transform(texts)

    buffer = np.full((len(texts), 66), np.nan, dtype=np.float32)
    assert embedder.transform(texts, out=buffer) is buffer
    np.testing.assert_array_equal(buffer, X)

    path = tmp_path / "features.npy"
    memmap = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(len(texts), 66))
    embedder.transform(texts, out=memmap)
    memmap.flush()
    np.testing.assert_array_equal(np.load(path), X)


def test_small_blocks_into_a_memmap_match(tiny_model, tmp_path):
    texts = [f"good {i} " * (i % 7 + 1) for i in range(50)]
    plan = DistilEmbedder(model=tiny_model, layers=3)._encoding_plan()
    loaded, spec = plan.loaded, plan.spec
    expected = encode(loaded, texts, spec, batch_size=32, progress=False, n_threads=None)
    memmap = np.lib.format.open_memmap(
        tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=(50, 32)
    )
    encode(
        loaded, texts, spec, out=memmap, block_size=7, batch_size=3, progress=False, n_threads=None
    )
    np.testing.assert_allclose(memmap, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    "out, match",
    [
        (np.empty((3, 31), dtype=np.float32), "shape"),
        (np.empty((3, 32), dtype=np.float64), "float32"),
        ([[0.0] * 32] * 3, "numpy array"),
    ],
)
def test_wrong_out_names_the_fix(tiny_model, out, match):
    embedder = DistilEmbedder(model=tiny_model, layers=2)
    with pytest.raises((TypeError, ValueError), match=match):
        embedder.transform(["a", "b", "c"], out=out)


def test_read_only_out_is_refused(tiny_model):
    out = np.empty((1, 32), dtype=np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        DistilEmbedder(model=tiny_model, layers=2).transform(["a"], out=out)


@pytest.mark.parametrize("long_text", ["truncate", "chunk"])
def test_repeated_texts_are_embedded_once_and_keep_their_order(tiny_model, texts, long_text):
    params = {"layers": 3, "long_text": long_text, "max_length": 16, "stride": 4}
    distinct = DistilEmbedder(model=tiny_model, **params).fit_transform(texts)
    order = [2, 0, 2, 5, 0, 0, 6, 2, 1, 3, 4, 3]
    repeated = [texts[i] for i in order]

    loaded = get_model(tiny_model, device="cpu")
    seen = []
    handle = loaded.blocks[0].register_forward_hook(lambda m, a, o: seen.append(a[0].shape[0]))
    try:
        X = DistilEmbedder(model=tiny_model, batch_size=64, **params).fit_transform(repeated)
    finally:
        handle.remove()
    np.testing.assert_allclose(X, distinct[order], atol=1e-6, rtol=0)
    assert (X[0] == X[2]).all() and (X[2] == X[7]).all()  # copies, bit for bit
    n_windows = len(
        loaded.tokenizer(
            texts,
            truncation=True,
            max_length=16,
            stride=4,
            return_overflowing_tokens=long_text == "chunk",
        )["input_ids"]
    )
    assert sum(seen) == n_windows  # each distinct text's windows ran once
