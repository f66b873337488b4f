"""Does an input template change a linear probe's few-shot accuracy? (issue 14, part 2)

all-MiniLM-L6-v2 (real weights, its own mean pooling, normalisation and 256 tokens),
``DistilEmbedder`` + ``LogisticRegression``, N = 8 texts per class drawn from the train
split with seeds 0..S-1 (``fewshot.data.sample_per_class``), scored on the whole test
split of SST-2 and SST-5; ``prompt=None`` against ``prompt="Review: {text}"`` on the
same samples. Every text is embedded once per prompt (the drawn training texts and the
test set) and reused across seeds. Accuracy only, no timing. Prints a markdown table
(mean ± population std over seeds, and the paired difference) and writes one row per
dataset, seed and prompt to benchmarks/results/prompt_probe.csv.

    python benchmarks/prompt_probe.py
    python benchmarks/prompt_probe.py --datasets sst2 --seeds 3
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DATA, ROOT, load_average, minilm_path  # noqa: E402

PROMPTS = {"none": None, "review": "Review: {text}"}
FIELDS = ["dataset", "n_per_class", "seed", "prompt", "accuracy", "n_test"]


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown CPU"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def run(dataset: str, n: int, seeds: int, model: str) -> list[dict]:
    from sklearn.linear_model import LogisticRegression

    from fewshot import DistilEmbedder
    from fewshot.data import read_split, sample_per_class

    train, test = read_split(DATA / dataset, "train"), read_split(DATA / dataset, "test")
    y_train, y_test = train["label"].to_numpy(), test["label"].to_numpy()
    draws = [
        sample_per_class(np.arange(len(train)), y_train, n, random_state=seed)[0]
        for seed in range(seeds)
    ]
    drawn = np.unique(np.concatenate(draws))  # every training text any seed uses
    row_of = {int(i): r for r, i in enumerate(drawn)}
    rows = []
    for prompt in PROMPTS.values():
        embedder = DistilEmbedder(model=model, prompt=prompt, batch_size=64)
        X_drawn = embedder.fit_transform([train["text"][int(i)] for i in drawn])
        X_test = embedder.transform(list(test["text"]))
        for seed, chosen in enumerate(draws):
            X_s = X_drawn[[row_of[int(i)] for i in chosen]]
            head = LogisticRegression(max_iter=1000).fit(X_s, y_train[chosen])
            accuracy = float((head.predict(X_test) == y_test).mean())
            rows.append(
                {
                    "dataset": dataset,
                    "n_per_class": n,
                    "seed": seed,
                    "prompt": "" if prompt is None else prompt,
                    "accuracy": accuracy,
                    "n_test": len(y_test),
                }
            )
            print(f"  {dataset} seed {seed} prompt={prompt!r}: {accuracy:.4f}", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        '| dataset | prompt=None | prompt="Review: {text}" | paired difference |',
        "|---|---|---|---|",
    ]
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        scores = {}
        for r in rows:
            if r["dataset"] == dataset:
                scores.setdefault(r["prompt"], {})[int(r["seed"])] = 100 * float(r["accuracy"])
        seeds = sorted(scores[""])
        plain = np.asarray([scores[""][s] for s in seeds])
        review = np.asarray([scores[PROMPTS["review"]][s] for s in seeds])
        diff = review - plain
        lines.append(
            f"| {dataset} | {plain.mean():.1f} ± {plain.std():.1f} | "
            f"{review.mean():.1f} ± {review.std():.1f} | "
            f"{diff.mean():+.1f} ± {diff.std():.1f} ({(diff > 0).sum()} of {len(diff)} seeds up) |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["sst2", "sst5"])
    parser.add_argument("--n", type=int, default=8, help="training texts per class")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--results", default=str(ROOT / "benchmarks/results/prompt_probe.csv"))
    args = parser.parse_args(argv)
    from fewshot._core.encoding import TruncationWarning

    warnings.filterwarnings("ignore", category=TruncationWarning)  # as fewshot_accuracy.py
    print(load_average())
    print(cpu_model())
    model = minilm_path()
    rows = []
    for dataset in args.datasets:
        rows += run(dataset, args.n, args.seeds, model)
    with open(args.results, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    print(load_average())
    print(f"\nall-MiniLM-L6-v2 + LogisticRegression, N = {args.n} per class, {args.seeds} seeds")
    print("(accuracy ×100 on the whole test split; mean ± population std over seeds)\n")
    print(table(rows))


if __name__ == "__main__":
    main()
