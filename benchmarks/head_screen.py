"""Which head input closes fewshot's gap to setfit: raw or unit-length fine-tuned vectors.

One fine-tuning per (dataset, seed, body) with ``normalize=False``; its training and test
embeddings then go to four logistic-regression heads: raw vectors (C=1, fewshot's old
default) and unit-length vectors with C = 1 (setfit's), 4 and 16. Accuracy only (scores are
deterministic per seed; the fit seconds in the CSV are not a timing result unless the
machine was otherwise idle).

    python benchmarks/head_screen.py --seeds 0 1 2 --results benchmarks/results/fewshot_head_screen.csv
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import minilm_path, protocol_classifier  # noqa: E402
from fewshot_accuracy import DATASETS, load, score  # noqa: E402

BODIES = {  # normalize=False: the heads below decide what they see
    "full_bf16": {"dtype": "bfloat16", "normalize": False},
    "lora_bf16": {
        "adapter": "lora",  # LoRA(): rank 8
        "body_learning_rate": 1e-3,
        "dtype": "bfloat16",
        "normalize": False,
    },
}
HEADS = {"raw": (False, 1.0), "unit": (True, 1.0), "unitC4": (True, 4.0), "unitC16": (True, 16.0)}
FIELDS = ["dataset", "seed", "body", "head", "score", "fit_seconds_under_load"]


def main(argv=None):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import normalize

    from fewshot.data import sample_per_class

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--bodies", nargs="+", default=list(BODIES))
    parser.add_argument("--results", type=Path, default=Path("/tmp/fewshot_head_screen.csv"))
    args = parser.parse_args(argv)
    new = not args.results.is_file()
    for seed in args.seeds:
        for name in args.datasets:
            X_train, y_train, X_test, y_test = load(name)
            X_s, y_s = sample_per_class(X_train, y_train, 8, random_state=seed)
            for body in args.bodies:
                start = time.perf_counter()
                clf = protocol_classifier(minilm_path(), seed, **BODIES[body]).fit(X_s, y_s)
                seconds = time.perf_counter() - start
                train, test = clf.transform(X_s), clf.transform(X_test)
                for head, (unit, C) in HEADS.items():
                    prep = normalize if unit else (lambda a: a)
                    fitted = LogisticRegression(max_iter=1000, C=C).fit(prep(train), y_s)
                    value = 100 * score(DATASETS[name], y_test, fitted.predict(prep(test)))
                    with open(args.results, "a", newline="") as f:
                        writer = csv.writer(f)
                        if new:
                            writer.writerow(FIELDS)
                            new = False
                        writer.writerow(
                            [name, seed, body, head, round(value, 2), round(seconds, 1)]
                        )
                    print(f"{name} seed={seed} {body} {head}: {value:.2f}", flush=True)


if __name__ == "__main__":
    main()
