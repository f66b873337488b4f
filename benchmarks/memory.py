"""Peak memory of DistilEmbedder.transform as the number of texts grows.

The anchor-shaped random DistilBERT (hidden 768; see _common.make_anchor_model), SST-2
train sentences repeated with a suffix " [copy k]" so that every text is distinct. Each
measurement runs in a fresh process and reports the peak RSS after loading the model and
after the transform, and the peak of its anonymous (not file-backed) part, sampled every
20 ms; the output goes to a new in-memory array or, with ``out=``, to a numpy memmap on
disk, whose pages count in RSS but are file-backed, so the kernel can drop them. Run from the repository root:

    python benchmarks/memory.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading

from _common import ROOT, load_average, load_texts, make_anchor_model, peak_rss_mb

CONFIGS = [  # (layer, number of texts, output)
    (0, 10_000, "array"),
    (0, 30_000, "array"),
    (0, 100_000, "array"),
    (0, 100_000, "memmap"),
    (6, 500, "array"),
    (6, 2_000, "array"),
]


def distinct_texts(n):
    base, _ = load_texts("sst2", "train")
    return [f"{base[i % len(base)]} [copy {i // len(base)}]" for i in range(n)]


def anonymous_rss_mb() -> float:
    """Resident memory that is not file-backed (a memmap's pages are file-backed: the
    kernel can write them out and drop them, so they do not need RAM)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class AnonymousPeak(threading.Thread):
    """Samples RssAnon every 20 ms; the kernel keeps no peak of it."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak = anonymous_rss_mb()
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(0.02):
            self.peak = max(self.peak, anonymous_rss_mb())


def worker(layer, n, output, path):
    import numpy as np

    from fewshot import DistilEmbedder

    texts = distinct_texts(n)
    embedder = DistilEmbedder(model=path, layers=layer).fit()
    embedder.transform(texts[:8])
    loaded_rss, loaded_anon = peak_rss_mb(), anonymous_rss_mb()
    sampler = AnonymousPeak()
    sampler.start()
    with tempfile.TemporaryDirectory() as folder:
        out = None
        if output == "memmap":
            out = np.lib.format.open_memmap(
                os.path.join(folder, "X.npy"), mode="w+", dtype=np.float32, shape=(n, 768)
            )
        X = embedder.transform(texts, out=out)
        assert X.shape == (n, 768)
        sampler.done.set()
        sampler.join()
        del X, out
    print(
        json.dumps(
            {
                "loaded": loaded_rss,
                "peak": peak_rss_mb(),
                "loaded_anon": loaded_anon,
                "peak_anon": sampler.peak,
            }
        )
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--configs", help="subset, e.g. 0:10000:array,0:100000:memmap")
    args = parser.parse_args()
    if args.worker:
        layer, n, output, path = args.worker
        return worker(int(layer), int(n), output, path)
    path = make_anchor_model(os.path.join(tempfile.gettempdir(), "fewshot-anchor-random"))
    print(f"# anchor-shaped random DistilBERT; {load_average()} at start")
    print()
    print(
        "| layer | texts | output | output size (MiB) | RSS after load (MiB) | peak RSS (MiB) | growth (MiB) "
        "| anonymous RSS growth (MiB) |"
    )
    print("|---:|---:|---|---:|---:|---:|---:|---:|")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    configs = CONFIGS
    if args.configs:
        configs = [
            (int(a), int(b), c) for a, b, c in (x.split(":") for x in args.configs.split(","))
        ]
    for layer, n, output in configs:
        done = subprocess.run(
            [sys.executable, __file__, "--worker", str(layer), str(n), output, path],
            capture_output=True,
            text=True,
            env=env,
        )
        if done.returncode != 0:
            print(f"# layer {layer}, {n} texts failed: {done.stderr.strip().splitlines()[-1]}")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        size = n * 768 * 4 / 2**20
        print(
            f"| {layer} | {n:,} | {output} | {size:.0f} | {r['loaded']:.0f} | {r['peak']:.0f} | "
            f"{r['peak'] - r['loaded']:.0f} | {r['peak_anon'] - r['loaded_anon']:.0f} |",
            flush=True,
        )
    print()
    print(f"# {load_average()} at end")


if __name__ == "__main__":
    main()
