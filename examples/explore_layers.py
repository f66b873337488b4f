"""Explore layers: which layer sorts customer feedback by topic, and how does it look?

Probes every layer and pooling with a cross-validated LogisticRegression (one forward pass
for all of them), prints the table, and saves two pictures: the score per layer and a
UMAP of the texts at every layer.

    python examples/explore_layers.py [--model ID_OR_FOLDER] [--out-dir DIR] [--method umap]

Without ``--model`` it uses the anchor model when it can be loaded, else the packaged
all-MiniLM-L6-v2 (as ``make demo`` does). ``docs/layers.png`` in the README was made by
this script.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no window

import matplotlib.pyplot as plt  # noqa: E402

from fewshot import probe_layers  # noqa: E402
from fewshot.cli import pick_model  # noqa: E402
from fewshot.data import load_customer_feedback  # noqa: E402
from fewshot.viz import plot_layers  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="Hugging Face model id or local folder")
    parser.add_argument("--out-dir", default=".", help="folder for probe.png and layers.png")
    parser.add_argument("--dpi", type=int, default=80)
    parser.add_argument(
        "--method",
        choices=["umap", "pca", "tsne"],
        default="umap",
        help="2-D projection of the layer pictures",
    )
    args = parser.parse_args(argv)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    model = pick_model(args.model)
    data = load_customer_feedback()
    print(f"Model: {model}\nData: {len(data.text)} texts, topics {data.target_names}\n")

    result = probe_layers(data.text, data.target, model=model, cv=5, random_state=0)
    print(result.to_string())
    embedder_params = result.best_params
    print(
        f"\nUse it: DistilEmbedder(model=..., layers={embedder_params['layers']}, "
        f"pooling={embedder_params['pooling']!r})"
    )

    ax = result.plot()
    ax.figure.savefig(out_dir / "probe.png", dpi=args.dpi, bbox_inches="tight")
    plt.close(ax.figure)

    fig = plot_layers(data.text, data.target, model=model, method=args.method, random_state=0)
    fig.savefig(out_dir / "layers.png", dpi=args.dpi, bbox_inches="tight")
    plt.close(fig)
    print(f"Saved {out_dir / 'probe.png'} and {out_dir / 'layers.png'}")


if __name__ == "__main__":
    main()
