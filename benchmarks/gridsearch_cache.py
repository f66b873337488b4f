"""The embedding cache inside cross-validation: GridSearchCV, 5 folds x 4 values of C.

``Pipeline([DistilEmbedder(cache=dir), LogisticRegression()])`` on SST-2 train sentences
with all-MiniLM-L6-v2. The same search without a cache, with a cold cache and again
(warm), for ``n_jobs=1`` and ``n_jobs=2``; speed-ups are against the uncached run with
the same ``n_jobs``. "texts embedded"
counts texts that reached the model (instrumented in this process; for ``n_jobs=2``
the cache's miss counter, which all processes share). Run from the repository root:

    python benchmarks/gridsearch_cache.py            # 300 sentences
"""

from __future__ import annotations

import argparse
import tempfile
import time

from _common import load_average, load_texts, minilm_path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    args = parser.parse_args()

    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline

    import fewshot._core.encoding as encoding
    from fewshot import DistilEmbedder, EmbeddingCache

    texts, labels = load_texts("sst2", "train", args.n)
    embedded = []
    original = encoding._encode_rows

    def counting(loaded, batch_texts, *rest):
        embedded.append(len(batch_texts))
        return original(loaded, batch_texts, *rest)

    encoding._encode_rows = counting

    def search(cache, n_jobs):
        pipe = Pipeline(
            [
                ("embed", DistilEmbedder(model=minilm_path(), cache=cache)),
                ("lr", LogisticRegression(max_iter=1000)),
            ]
        )
        grid = GridSearchCV(pipe, {"lr__C": [0.01, 0.1, 1.0, 10.0]}, cv=5, n_jobs=n_jobs)
        embedded.clear()
        start = time.perf_counter()
        grid.fit(texts, labels)
        return time.perf_counter() - start, sum(embedded), grid.best_score_

    print(
        f"# all-MiniLM-L6-v2, layer 6; {len(texts)} SST-2 train sentences "
        f"({len(set(texts))} distinct); GridSearchCV cv=5 over C in [0.01, 0.1, 1, 10]"
    )
    print(f"# {load_average()} at start")
    print()
    print("| run | n_jobs | seconds | texts embedded | speed-up vs uncached | best CV accuracy |")
    print("|---|---:|---:|---:|---:|---:|")
    for n_jobs in (1, 2):
        uncached, n_embedded, score = search(None, n_jobs)
        shown = n_embedded if n_jobs == 1 else "n/a (in workers)"
        print(
            f"| no cache | {n_jobs} | {uncached:.1f} | {shown} | 1.0x | {score:.3f} |", flush=True
        )
        with tempfile.TemporaryDirectory() as folder:
            for label in ("cold cache", "warm cache (second run)"):
                before = EmbeddingCache(folder).stats()["misses"]
                seconds, n_embedded, score = search(folder, n_jobs)
                if n_jobs > 1:  # the work happened in the workers: read the shared counter
                    n_embedded = EmbeddingCache(folder).stats()["misses"] - before
                print(
                    f"| {label} | {n_jobs} | {seconds:.1f} | {n_embedded} | "
                    f"{uncached / seconds:.1f}x | {score:.3f} |",
                    flush=True,
                )
    print()
    print(f"# {load_average()} at end")


if __name__ == "__main__":
    main()
