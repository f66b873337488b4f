"""The ``fewshot`` command line: embed, train, predict, info, probe, plot, export, serve, demo.

Commands only: input tables are read and results written by :mod:`fewshot.cli._tables`
(CSV, TSV, JSON Lines or Parquet, chosen by the file's extension, written atomically so
a failed run never leaves a half-written file where a good one was), and model folders
are written and read by :mod:`fewshot.model_folder`, the format ``SetFitClassifier.save``
also writes. Progress bars and notes go to stderr (``--quiet`` silences them); tables
that are the result of a command go to stdout.

Texts follow the library's rule: a missing or non-text cell is refused, naming its row,
unless ``--skip-bad-rows`` is given (then the count of skipped rows is reported).

Exit codes: 0 success; 2 usage error (a bad option, or an input file or column that
does not exist); 1 any other failure (an empty or unreadable file, rows with empty
labels, a model that cannot be loaded), reported in one ``Error: ...`` line.
"""

from ._main import cli, main


def __getattr__(name):
    # The demo loads models: imported on first use, so `fewshot --help` stays light.
    if name in ("pick_model", "run_demo"):
        from . import _demo

        return getattr(_demo, name)
    raise AttributeError(f"module 'fewshot.cli' has no attribute {name!r}")


__all__ = ["cli", "main", "pick_model", "run_demo"]
