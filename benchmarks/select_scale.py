"""Selection time on a large pool, once it is embedded (issue 29's third target).

The pool is ``--n`` distinct texts whose embeddings are already computed: 384-dimensional
vectors (all-MiniLM-L6-v2's width) drawn around ``--topics`` random centres, as real
sentence embeddings of a few topics are. The embedder handed to fewshot.select is a lookup
table, so the times are the selection's own; embedding a pool is timed apart by
``label_efficiency.py`` (its ``features_seconds``) and ``throughput.py``. Each row runs
``--repeats`` times; the table shows the fastest and the slowest. Run alone:

    python benchmarks/select_scale.py                   # 100,000 texts, k = 64
    python benchmarks/select_scale.py --n 20000 --k 500
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import PeakMemory, load_average, machine
from sklearn.base import BaseEstimator, ClassifierMixin


class LookupEmbedder:
    """Rows of a precomputed matrix, by text: the pool "once embedded"."""

    def __init__(self, texts, vectors):
        self.row = {text: i for i, text in enumerate(texts)}
        self.vectors = vectors

    def transform(self, texts):
        return self.vectors[[self.row[text] for text in texts]]


class MarginProbabilities(ClassifierMixin, BaseEstimator):
    """A fitted two-class "classifier" whose probabilities are read off the embedding."""

    def __init__(self, embedder=None):
        self.embedder = embedder

    def fit(self, X=None, y=None):
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, texts):
        first = 1 / (1 + np.exp(-4 * self.embedder.transform(texts)[:, 0]))
        return np.column_stack([first, 1 - first])


def pool(n, topics, dims, seed):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(topics, dims))
    vectors = centres[rng.integers(topics, size=n)] + 0.8 * rng.normal(size=(n, dims))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [f"pool text {i}" for i in range(n)], vectors.astype(np.float32)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="pool size (default 100,000)")
    parser.add_argument("--k", type=int, default=64, help="texts to choose (default 64)")
    parser.add_argument("--topics", type=int, default=20)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    from fewshot.select import cold_start, next_batch

    texts, vectors = pool(args.n, args.topics, args.dims, seed=0)
    embedder = LookupEmbedder(texts, vectors)
    rows = {
        "cold_start density": lambda seed: cold_start(
            texts, args.k, strategy="density", embedder=embedder, random_state=seed
        ),
        "cold_start kmeans": lambda seed: cold_start(
            texts, args.k, strategy="kmeans", embedder=embedder, random_state=seed
        ),
        "cold_start random": lambda seed: cold_start(
            texts, args.k, strategy="random", embedder=embedder, random_state=seed
        ),
        "next_batch margin + diversity": lambda seed: next_batch(
            MarginProbabilities(embedder=embedder).fit(),
            texts,
            args.k,
            embedder=embedder,
            random_state=seed,
        ),
    }
    print(f"{machine()}; {load_average()} at the start")
    print(f"pool {args.n:,} texts ({args.dims} dims, {args.topics} topics), k = {args.k}\n")
    print("| selection | fastest s | slowest s | peak extra MiB | under a minute |")
    print("|---|---:|---:|---:|---|")
    for name, run in rows.items():
        seconds, extra = [], 0.0
        for seed in range(args.repeats):
            with PeakMemory() as used:
                t0 = time.perf_counter()
                chosen = run(seed)
                seconds.append(time.perf_counter() - t0)
            extra = max(extra, used.extra_mb)
            assert len(chosen.positions) == args.k
        verdict = "yes" if max(seconds) < 60 else "no"
        print(f"| {name} | {min(seconds):.2f} | {max(seconds):.2f} | {extra:.0f} | {verdict} |")
    print(f"\n{load_average()} at the end")


if __name__ == "__main__":
    main()
