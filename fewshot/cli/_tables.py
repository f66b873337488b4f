"""Tables in and out: CSV, TSV, JSON Lines and Parquet files, written atomically.

Reusable without the command line: errors are :class:`TableError` (a ValueError) with
one-line messages that name the file, the column and the rows; :class:`TableInputError`
marks the ones where the user pointed at something that is not there (a file, a column).
Texts follow the library's one rule (:func:`fewshot._estimator.validation.check_texts`): every
cell must be a string; an empty CSV cell or a JSON null is a missing text and a JSON
number is not a text. Such rows are refused, naming them, unless the caller asks to
skip them (and is told how many were skipped).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .._core.errors import first_line
from .._core.optional import require
from .._estimator.validation import check_labels

__all__ = [
    "READABLE",
    "TableError",
    "TableInputError",
    "atomic_file",
    "atomic_folder",
    "check_suffix",
    "read_labels",
    "read_table",
    "read_texts",
    "write_table",
]

READABLE = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
WRITABLE = (".csv", ".tsv", ".jsonl", ".ndjson", ".parquet", ".pq")


class TableError(ValueError):
    """A table that cannot be used as it is (empty, unreadable, bad rows)."""


class TableInputError(TableError):
    """The user pointed at something that is not there: a file, a folder or a column."""


# -- reading --------------------------------------------------------------------------


def read_table(path):
    """Read a CSV/TSV/JSONL/Parquet file into a DataFrame, or raise a one-line error.

    In CSV and TSV files every cell is text and an empty cell is missing ("NA" and
    "null" are words).
    """
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise TableInputError(f"input file '{path}' does not exist.")
    if path.is_dir():
        raise TableInputError(f"'{path}' is a folder; give a .csv, .tsv, .jsonl or .parquet file.")
    kind = READABLE.get(path.suffix.lower())
    if kind is None:
        raise TableInputError(
            f"cannot tell the format of '{path}' from its extension; use .csv, .tsv, "
            ".jsonl or .parquet."
        )
    if path.stat().st_size == 0:
        raise TableError(f"input file '{path}' is empty.")
    try:
        if kind in ("csv", "tsv"):
            frame = pd.read_csv(
                path,
                sep="," if kind == "csv" else "\t",
                dtype=str,
                keep_default_na=False,
                na_values=[""],
            )
        elif kind == "jsonl":
            frame = pd.read_json(path, lines=True, dtype=False)
        else:
            require("pyarrow", extra="parquet", feature="Parquet input")
            frame = pd.read_parquet(path)
    except ImportError:
        raise
    except pd.errors.EmptyDataError as exc:
        raise TableError(f"input file '{path}' is empty.") from exc
    except Exception as exc:  # parsers raise many types; all mean "unreadable"
        raise TableError(f"cannot read '{path}' as {kind}: {first_line(exc)}") from exc
    if len(frame) == 0:
        raise TableError(f"input file '{path}' has no rows.")
    return frame


def _column(frame, name, path, option):
    if name not in frame.columns:
        columns = ", ".join(map(str, frame.columns))
        raise TableInputError(
            f"column '{name}' not found in '{path}' (columns: {columns}); pass {option}."
        )
    return frame[name]


def _which(positions) -> str:
    """'row 2' / 'rows 2, 4, ...' (1-based data rows), for messages."""
    shown = ", ".join(str(i + 1) for i in positions[:5])
    return (
        f"row{'s' if len(positions) != 1 else ''} "
        + shown
        + (", ..." if len(positions) > 5 else "")
    )


def _rows(positions) -> str:
    return f"{len(positions)} row{'s' if len(positions) != 1 else ''} of"


def _is_blank(value) -> bool:
    return (
        value is None
        or (isinstance(value, float) and np.isnan(value))
        or (isinstance(value, str) and not value.strip())
    )


def read_texts(frame, column, path, *, skip_bad: bool = False, option: str = "--text-col"):
    """The texts of ``column`` and the positions of the rows they come from.

    Every cell must be a string. Missing cells (empty CSV cells, nulls) and non-text
    cells (numbers) are refused with the rows named; with ``skip_bad`` those rows are
    left out instead (compare the positions with ``len(frame)`` to report them).
    """
    values = _column(frame, column, path, option).tolist()
    missing = [
        i for i, v in enumerate(values) if v is None or (isinstance(v, float) and np.isnan(v))
    ]
    skipped = set(missing)
    other = [i for i, v in enumerate(values) if not isinstance(v, str) and i not in skipped]
    if (missing or other) and not skip_bad:
        if missing:
            raise TableError(
                f"{_rows(missing)} '{path}' without text in column '{column}' ("
                f"{_which(missing)}, counting data rows from 1); fill or drop them, or pass "
                "--skip-bad-rows."
            )
        first = values[other[0]]
        raise TableError(
            f"{_rows(other)} '{path}' with a non-text value in column '{column}' ("
            f"{_which(other)}, counting data rows from 1; e.g. {type(first).__name__} "
            f"{first!r}); quote them as text, or pass --skip-bad-rows."
        )
    bad = set(missing) | set(other)
    keep = np.asarray([i for i in range(len(values)) if i not in bad], dtype=np.intp)
    return [str(values[i]) for i in keep], keep


def read_labels(frame, column, path, *, option: str = "--label-col"):
    """The labels of ``column`` as an array; empty or blank labels are refused by row."""
    values = _column(frame, column, path, option)
    empty = [i for i, v in enumerate(values.tolist()) if _is_blank(v)]
    if empty:
        raise TableError(
            f"{_rows(empty)} '{path}' with an empty label in column '{column}' ("
            f"{_which(empty)}, counting data rows from 1); fill or drop them."
        )
    return check_labels(values, name=f"column '{column}'")


# -- writing --------------------------------------------------------------------------


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_file(path):
    """Yield a temporary path next to ``path``; move it onto ``path`` only on success."""
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise TableInputError(f"output folder '{folder}' does not exist.")
    # The temporary name keeps the suffix so writers that infer a format still do.
    handle, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=folder
    )
    os.close(handle)
    try:
        yield temporary
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def atomic_folder(path, *, marker: str):
    """Yield a temporary folder; swap it in for ``path`` only on success.

    An existing ``path`` is replaced only if it is empty or holds ``marker`` (an earlier
    result of the same kind), never a folder of other files.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise TableInputError(f"--out '{path}' is a file; give a folder for the model.")
    if path.is_dir() and any(path.iterdir()) and not (path / marker).exists():
        raise TableInputError(
            f"--out '{path}' is a folder that holds other files and no fewshot model; "
            "choose a new folder."
        )
    if not path.parent.is_dir():
        raise TableInputError(f"output folder '{path.parent}' does not exist.")
    temporary = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield temporary
        os.chmod(temporary, 0o777 & ~_umask())
        if path.exists():
            retired = Path(
                tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent)
            )
            os.replace(path, retired / "model")
            os.replace(temporary, path)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(temporary, path)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def check_suffix(path, allowed, option="--out") -> None:
    """Refuse an output path whose extension is not one of ``allowed``."""
    if path is not None and Path(path).suffix.lower() not in allowed:
        raise TableInputError(f"{option} '{path}' must end in one of {', '.join(allowed)}.")


def write_table(frame, path) -> None:
    """Write a DataFrame as CSV/TSV/JSONL/Parquet (by extension), atomically."""
    suffix = Path(path).suffix.lower()
    with atomic_file(path) as temporary:
        if suffix == ".csv":
            frame.to_csv(temporary, index=False)
        elif suffix == ".tsv":
            frame.to_csv(temporary, index=False, sep="\t")
        elif suffix in (".jsonl", ".ndjson"):
            frame.to_json(temporary, orient="records", lines=True, force_ascii=False)
        elif suffix in (".parquet", ".pq"):
            require("pyarrow", extra="parquet", feature="Parquet output")
            frame.to_parquet(temporary, index=False)
        else:
            raise TableInputError(f"cannot write '{path}': use .csv, .tsv, .jsonl or .parquet.")
