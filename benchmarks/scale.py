"""Ray Data on one machine: embed_dataset with 1 and 2 actors against a plain transform.

Every row embeds the same real sentences (the first ``--n`` of SST-2's train split) with
the same model, layer and forward batch of 32, on a local Ray instance of ``--cpus``
CPUs. Each Ray configuration runs twice, on 1 row and on ``--n`` rows, so its cost splits
into a fixed start-up (actor processes, model loading, scheduling) and a marginal rate:

    marginal rows/s = (n - 1) / (wall(n) - wall(1))

A trivial estimator (one feature: the text's length) gives Ray's own cost per 1,000
rows: batching, Arrow conversion, object store, scheduling. Run from the repository root:

    python benchmarks/scale.py --n 1000           # anchor-shaped DistilBERT (random weights)
    python benchmarks/scale.py --model minilm     # real all-MiniLM-L6-v2
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from _common import load_average, load_texts, make_anchor_model, minilm_path, peak_rss_mb  # noqa: E402
from sklearn.base import BaseEstimator, TransformerMixin  # noqa: E402


class TextLength(TransformerMixin, BaseEstimator):
    """One feature per text, at almost no cost: what is left of a job is Ray's overhead."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.fromiter((len(t) for t in X), dtype=np.float32, count=len(X))[:, None]


class ActorMemory:
    """Peak RSS of Ray's map-worker processes (Linux /proc), sampled every 0.2 s."""

    def __enter__(self):
        self.peak_mb, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.wait(0.2):
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        if not f.read().startswith(b"ray::MapWorker"):
                            continue
                    with open(f"/proc/{pid}/status") as f:
                        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
                except (OSError, StopIteration):
                    continue
                self.peak_mb = max(self.peak_mb, rss / 1024)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def ray_wall(ray, embedder, texts, *, actors, cpus_per_actor, batch_size):
    from fewshot.distributed import embed_dataset

    ds = ray.data.from_items(
        [{"id": i, "text": t} for i, t in enumerate(texts)],
        override_num_blocks=max(1, min(len(texts) // batch_size, 64)),
    )
    with ActorMemory() as memory:
        start = time.perf_counter()
        out = embed_dataset(
            ds, embedder, batch_size=batch_size, concurrency=actors, num_cpus=cpus_per_actor
        ).materialize()
        wall = time.perf_counter() - start
    assert out.count() == len(texts)
    return wall, memory.peak_mb


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--model", choices=["anchor", "minilm"], default="anchor")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--ray-batch", type=int, default=128, help="rows per Ray task")
    args = parser.parse_args(argv)
    if args.n < 2:
        parser.error("--n must be at least 2: each Ray run is timed on 1 row and on n rows")

    import ray
    import torch

    from fewshot import DistilEmbedder

    texts, _ = load_texts("sst2", "train", args.n)
    model = (
        make_anchor_model(os.path.join(tempfile.gettempdir(), "fewshot-anchor"))
        if args.model == "anchor"
        else minilm_path()
    )
    embedder = DistilEmbedder(model=model, layers=-1, batch_size=32)
    print(
        f"> {len(texts)} SST-2 train sentences, model {args.model}, forward batch 32, "
        f"Ray batch {args.ray_batch} rows, {args.cpus} CPUs",
        flush=True,
    )
    print(f"> {load_average()} at start", flush=True)

    torch.set_num_threads(args.cpus)
    embedder.transform(texts[:32])  # load + warm up; not timed, as Ray's per-actor start-up is
    start = time.perf_counter()
    local = embedder.transform(texts)
    local_wall = time.perf_counter() - start
    assert local.shape[0] == len(texts)

    ray.init(
        num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, configure_logging=False
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    rows = [("single process: DistilEmbedder.transform", None, local_wall, None, peak_rss_mb())]
    configs = [
        (f"embed_dataset, 1 actor x {args.cpus} CPUs", embedder, 1, args.cpus),
        (f"embed_dataset, {args.cpus} actors x 1 CPU", embedder, args.cpus, 1),
        ("embed_dataset, 1 actor, trivial estimator (Ray overhead)", TextLength(), 1, args.cpus),
    ]
    for name, estimator, actors, per_actor in configs:
        one, _ = ray_wall(
            ray,
            estimator,
            texts[:1],
            actors=actors,
            cpus_per_actor=per_actor,
            batch_size=args.ray_batch,
        )
        full, memory = ray_wall(
            ray,
            estimator,
            texts,
            actors=actors,
            cpus_per_actor=per_actor,
            batch_size=args.ray_batch,
        )
        rows.append((name, one, full, (full - one) / (len(texts) - 1), memory))
        print(f"  {name}: 1 row {one:.1f} s, {len(texts)} rows {full:.1f} s", flush=True)
    ray.shutdown()

    print(
        "\n| run | start-up s (1-row job) | wall s, all rows | rows/s end to end | "
        "marginal rows/s | vs single process (marginal) | s per 1,000 rows | peak RSS per process MiB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    base = len(texts) / local_wall
    for name, one, full, per_row, memory in rows:
        if per_row is not None and per_row <= 0:  # the n-row job was no slower: below timing noise
            print(
                f"| {name} | {one:.1f} | {full:.1f} | {len(texts) / full:.1f} | below noise | — | "
                f"below noise | {memory:.0f} |"
            )
            continue
        marginal = 1 / per_row if per_row else len(texts) / full
        print(
            f"| {name} | {'—' if one is None else f'{one:.1f}'} | {full:.1f} | {len(texts) / full:.1f} | "
            f"{marginal:.1f} | {marginal / base:.2f}x | {1000 * (per_row or full / len(texts)):.2f} | "
            f"{memory:.0f} |"
        )
    print(f"\n> {load_average()} at end")


if __name__ == "__main__":
    sys.exit(main())
