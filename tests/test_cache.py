"""The embedding cache: keys, stale-proofing, corruption, concurrency, size bound, plain data."""

import os
import pickle
import sqlite3
import warnings

import numpy as np
import pytest
from sklearn.base import clone

from fewshot import CacheWarning, DistilEmbedder, EmbeddingCache, clear_model_cache
from fewshot.testing import make_tiny_distilbert

WORDS = "good bad fine slow fast love hate great poor nice".split()


def many_texts(n):
    return [f"{WORDS[i % 10]} {WORDS[(i // 10) % 10]} {i}" for i in range(n)]


def test_cached_vectors_equal_uncached_and_repeat_calls_hit(tiny_model, texts, tmp_path):
    cache = EmbeddingCache(tmp_path)
    embedder = DistilEmbedder(model=tiny_model, layers=[2, 6], head="proba", cache=cache)
    plain = DistilEmbedder(model=tiny_model, layers=[2, 6], head="proba").fit_transform(texts)

    first = embedder.fit_transform(texts)
    np.testing.assert_array_equal(first, plain)
    assert cache.stats()["misses"] == len(texts) and cache.stats()["hits"] == 0

    subset = [texts[3], texts[0], texts[3]]
    second = embedder.transform(subset)
    np.testing.assert_array_equal(second, plain[[3, 0, 3]])
    stats = cache.stats()
    assert stats["hits"] == 2 and stats["misses"] == len(texts)  # distinct texts looked up
    assert stats["entries"] == len(texts) and stats["bytes"] > 0


def test_folder_path_works_like_a_cache_object(tiny_model, texts, tmp_path):
    X = DistilEmbedder(model=tiny_model, cache=str(tmp_path)).fit_transform(texts)
    assert len(EmbeddingCache(tmp_path)) == len(texts)
    again = DistilEmbedder(model=tiny_model, cache=tmp_path).fit_transform(texts)
    np.testing.assert_array_equal(again, X)
    assert EmbeddingCache(tmp_path).stats()["hits"] == len(texts)


# Each change alters the vectors, so each must miss: (base params, changed params).
BASE = {"layers": [2, 5], "max_length": 64}
CHANGES = {
    "layers": {"layers": [2, 6]},
    "pooling": {"pooling": "max"},
    "combine": {"combine": "mean"},
    "head": {"head": "logits"},
    "max_length": {"max_length": 12},
    "long_text": {"long_text": "chunk", "max_length": 12, "stride": 2},
    "dtype": {"dtype": "bfloat16"},
    "normalize": {"normalize": True},
}


@pytest.mark.parametrize("changed", list(CHANGES), ids=list(CHANGES))
def test_every_setting_that_changes_vectors_misses(tiny_model, texts, tmp_path, changed):
    cache = EmbeddingCache(tmp_path)
    DistilEmbedder(model=tiny_model, cache=cache, **BASE).fit_transform(texts)
    params = {**BASE, **CHANGES[changed]}
    X = DistilEmbedder(model=tiny_model, cache=cache, **params).fit_transform(texts)
    assert cache.stats()["hits"] == 0, f"changing {changed} must not hit"
    np.testing.assert_allclose(
        X, DistilEmbedder(model=tiny_model, **params).fit_transform(texts), atol=1e-6
    )


def test_stride_matters_only_for_windows(tiny_model, texts, tmp_path):
    cache = EmbeddingCache(tmp_path)
    chunk = {"long_text": "chunk", "max_length": 12}
    DistilEmbedder(model=tiny_model, cache=cache, stride=2, **chunk).fit_transform(texts)
    DistilEmbedder(model=tiny_model, cache=cache, stride=4, **chunk).fit_transform(texts)
    assert cache.stats()["hits"] == 0
    DistilEmbedder(model=tiny_model, cache=cache, stride=2).fit_transform(texts)
    DistilEmbedder(model=tiny_model, cache=cache, stride=4).fit_transform(texts)
    assert cache.stats()["hits"] == len(texts)  # truncation ignores the stride


def test_settings_that_do_not_change_vectors_hit(tiny_model, texts, tmp_path):
    cache = EmbeddingCache(tmp_path)
    X = DistilEmbedder(model=tiny_model, cache=cache, batch_size=2).fit_transform(texts)
    Y = DistilEmbedder(
        model=tiny_model, cache=cache, batch_size=64, n_threads=1, progress=False, max_length=10_000
    ).fit_transform(texts)  # max_length is capped at the model's 128: same vectors
    assert cache.stats()["hits"] == len(texts)
    np.testing.assert_array_equal(X, Y)


def test_another_model_misses(tiny_model, texts, tmp_path):
    cache = EmbeddingCache(tmp_path)
    DistilEmbedder(model=tiny_model, cache=cache).fit_transform(texts)
    other = str(make_tiny_distilbert(tmp_path / "other", seed=1))
    X = DistilEmbedder(model=other, cache=cache).fit_transform(texts)
    assert cache.stats()["hits"] == 0
    np.testing.assert_allclose(X, DistilEmbedder(model=other).fit_transform(texts), atol=1e-6)


def test_a_model_folder_overwritten_in_place_never_gets_stale_vectors(texts, tmp_path):
    folder = str(make_tiny_distilbert(tmp_path / "model", seed=0))
    cache = EmbeddingCache(tmp_path / "cache")
    old = DistilEmbedder(model=folder, cache=cache).fit_transform(texts)

    make_tiny_distilbert(folder, seed=1)  # same path, new weights
    # Still loaded in this process: the vectors match the weights in memory, uncached.
    with pytest.warns(CacheWarning, match="no identity"):
        same = DistilEmbedder(model=folder, cache=cache).fit_transform(texts)
    np.testing.assert_array_equal(same, old)

    clear_model_cache()
    new = DistilEmbedder(model=folder, cache=cache).fit_transform(texts)
    assert cache.stats()["hits"] == 0
    assert not np.allclose(new, old)
    clear_model_cache()
    np.testing.assert_allclose(new, DistilEmbedder(model=folder).fit_transform(texts), atol=1e-6)
    clear_model_cache()


def test_corrupt_entries_are_reported_and_recomputed(tiny_model, texts, tmp_path):
    cache = EmbeddingCache(tmp_path)
    embedder = DistilEmbedder(model=tiny_model, layers=3, cache=cache)
    X = embedder.fit_transform(texts)
    with sqlite3.connect(cache.file) as db:
        keys = [row[0] for row in db.execute("SELECT key FROM vectors ORDER BY key LIMIT 2")]
        flipped = np.ones(32, dtype=np.float32).tobytes()  # plausible length, wrong bytes
        db.execute("UPDATE vectors SET vector = ? WHERE key = ?", (flipped, keys[0]))
        db.execute("UPDATE vectors SET vector = substr(vector, 1, 20) WHERE key = ?", (keys[1],))
    with pytest.warns(CacheWarning, match="2 corrupt entries"):
        again = embedder.transform(texts)
    np.testing.assert_allclose(again, X, atol=1e-6, rtol=0)  # recomputed in other batches
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)  # repaired: no second warning
        np.testing.assert_array_equal(embedder.transform(texts), again)
    assert cache.stats()["entries"] == len(texts)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_an_unreadable_cache_file_is_set_aside_and_rebuilt(tiny_model, texts, tmp_path, damage):
    cache = EmbeddingCache(tmp_path)
    embedder = DistilEmbedder(model=tiny_model, layers=2, cache=cache)
    X = embedder.fit_transform(texts + many_texts(300))[: len(texts)]
    cache._close()  # checkpoints the WAL into the main file
    size = os.path.getsize(cache.file)
    with open(cache.file, "r+b") as handle:
        if damage == "truncate":
            handle.truncate(size // 2)
        else:
            handle.write(b"not a database at all" * 10)
    with pytest.warns(CacheWarning, match="unreadable"):
        again = embedder.transform(texts)
    np.testing.assert_allclose(again, X, atol=1e-6, rtol=0)
    assert any(name.startswith("embeddings.sqlite.corrupt-") for name in os.listdir(tmp_path))
    assert cache.stats()["entries"] == len(texts)


def test_size_bound_evicts_least_recently_used(tiny_model, tmp_path):
    # 32 floats (128 bytes) + 64 counted per row: 2,000 bytes hold 10 vectors.
    cache = EmbeddingCache(tmp_path, max_bytes=2_000)
    embedder = DistilEmbedder(model=tiny_model, layers=1, cache=cache)
    keep = many_texts(3)
    embedder.transform(keep)
    for start in range(3, 30, 3):
        embedder.transform(keep)  # recently used: survives eviction
        embedder.transform(many_texts(start + 3)[start:])
    stats = cache.stats()
    assert stats["bytes"] <= 2_000 and stats["entries"] <= 10
    hits = stats["hits"]
    X = embedder.transform(keep)
    assert cache.stats()["hits"] == hits + 3
    np.testing.assert_allclose(
        X, DistilEmbedder(model=tiny_model, layers=1).transform(keep), atol=1e-6
    )


def test_clear_empties_the_cache(tiny_model, texts, tmp_path):
    cache = EmbeddingCache(tmp_path)
    DistilEmbedder(model=tiny_model, cache=cache).fit_transform(texts)
    cache.clear()
    assert cache.stats() == {"entries": 0, "bytes": 0, "hits": 0, "misses": 0}


def test_cache_parameter_is_plain_data(tiny_model, texts, tmp_path):
    cache = EmbeddingCache(tmp_path, max_bytes=10**7)
    embedder = DistilEmbedder(model=tiny_model, cache=cache)
    X = embedder.fit_transform(texts)  # opens a connection, which must not travel
    copy = clone(embedder)
    assert copy.cache == cache and repr(cache) in repr(copy)
    payload = pickle.dumps(embedder)
    assert len(payload) < 5_000
    restored = pickle.loads(payload)
    assert restored.cache == cache
    np.testing.assert_array_equal(restored.transform(texts), X)
    assert cache.stats()["hits"] == len(texts)


def test_bad_cache_argument_names_the_fix(tiny_model):
    with pytest.raises(TypeError, match="folder path or a fewshot.EmbeddingCache"):
        DistilEmbedder(model=tiny_model, cache=42).fit()


def _embed_in_worker(model, folder, order_seed):
    """Embed overlapping texts in small calls, interleaving writes with the other worker."""
    texts = many_texts(120)
    order = np.random.default_rng(order_seed).permutation(len(texts))
    embedder = DistilEmbedder(model=model, layers=2, cache=folder)
    for start in range(0, len(order), 10):
        embedder.transform([texts[i] for i in order[start : start + 10]])
    return embedder.transform(texts)


def test_two_processes_writing_at_once(tiny_model, tmp_path):
    from joblib import Parallel, delayed

    results = Parallel(n_jobs=2, backend="loky")(
        delayed(_embed_in_worker)(tiny_model, str(tmp_path), seed) for seed in (0, 1)
    )
    expected = DistilEmbedder(model=tiny_model, layers=2).transform(many_texts(120))
    for X in results:
        np.testing.assert_allclose(X, expected, atol=1e-6, rtol=0)
    stats = EmbeddingCache(tmp_path).stats()
    assert stats["entries"] == 120
    # Each worker's final call is all hits; the races only decide who embeds first.
    assert stats["hits"] + stats["misses"] == 2 * (120 + 120)
    assert stats["misses"] <= 240


def test_grid_search_in_parallel_embeds_each_text_once_per_process(tiny_model, tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline

    texts = many_texts(60)
    labels = [i % 2 for i in range(60)]
    cache = EmbeddingCache(tmp_path)
    pipe = Pipeline(
        [
            ("embed", DistilEmbedder(model=tiny_model, layers=3, cache=cache)),
            ("lr", LogisticRegression(max_iter=200)),
        ]
    )
    search = GridSearchCV(pipe, {"lr__C": [0.1, 1.0]}, cv=3, n_jobs=2)
    search.fit(texts, labels)
    first = cache.stats()
    assert first["entries"] == 60
    search.fit(texts, labels)  # everything is cached now
    second = cache.stats()
    assert second["misses"] == first["misses"]
    assert second["hits"] > first["hits"]
