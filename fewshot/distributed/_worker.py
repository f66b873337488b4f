"""The Ray Data actor behind :mod:`fewshot.distributed`: one estimator per actor.

Each actor gets the estimator once from the object store, loads its model before taking
rows, and turns every batch into output columns with a fixed Arrow type, writing nulls
and a reason for bad rows when asked to.
"""

from __future__ import annotations

import os
import reprlib

import numpy as np

from .._estimator.predict import split_head

__all__ = ["BatchWorker", "arrow_column"]


class BatchWorker:
    """One Ray actor: holds one copy of the estimator, turns batches into output columns."""

    def __init__(
        self,
        estimator_ref,
        *,
        task,
        text_column,
        columns,
        on_error,
        error_column,
        id_column,
        num_threads,
    ):
        import ray

        if num_threads:
            # Ray reserved num_cpus cores for this actor: the forward pass and the Rust
            # tokenizer (imported below, with the estimator) use that many threads, no more.
            os.environ.setdefault("RAYON_NUM_THREADS", str(num_threads))
            import torch

            torch.set_num_threads(num_threads)
        # One copy of the estimator in the object store; each actor fetches it once here.
        self.estimator = ray.get(estimator_ref)
        self.featurize, self.head = (
            split_head(self.estimator) if task == "predict" else (None, None)
        )
        self.task = task
        self.text_column = text_column
        self.columns = columns
        self.on_error = on_error
        self.error_column = error_column
        self.id_column = id_column
        # Load the model now: an actor that cannot load it fails before taking any rows,
        # and the first batch does not pay for the loading. The result also fixes each
        # output column's Arrow type, so every batch (even one whose rows are all bad)
        # has the same schema.
        template = self._run(["warm-up"])
        self.types = {
            name: arrow_column(values, np.ones(len(values), bool)).type
            for name, values in template.items()
        }

    def _run(self, texts):
        if self.task == "embed":
            outputs = {self.columns["output_column"]: self.estimator.transform(texts)}
        else:
            # predict and predict_proba share one forward pass through the encoder.
            features = self.featurize(texts) if self.featurize is not None else texts
            outputs = {self.columns["prediction_column"]: self.head.predict(features)}
            if "proba_column" in self.columns:
                outputs[self.columns["proba_column"]] = self.head.predict_proba(features)
        for name, values in outputs.items():
            if hasattr(values, "toarray"):  # a sparse matrix
                values = values.toarray()
            values = np.asarray(values)
            if values.ndim not in (1, 2) or len(values) != len(texts):
                raise ValueError(
                    f"{type(self.estimator).__name__} returned an array of shape "
                    f"{values.shape} for {len(texts)} texts; column {name!r} needs one value "
                    "or one 1-D row per text."
                )
            outputs[name] = values
        return outputs

    def _identity(self, table, row):
        if self.id_column is not None:
            return f"{self.id_column}={table.column(self.id_column)[row].as_py()!r}"
        return f"row {reprlib.repr(table.slice(row, 1).to_pylist()[0])}"

    def __call__(self, table):
        import pyarrow as pa

        if self.text_column not in table.column_names:
            raise ValueError(
                f"text_column={self.text_column!r} is not a column of the dataset; its columns "
                f"are {table.column_names}. Pass the name of the column that holds the texts."
            )
        for name in [
            *self.columns.values(),
            self.error_column if self.on_error == "null" else None,
        ]:
            if name is not None and name in table.column_names:
                raise ValueError(
                    f"The dataset already has a column {name!r}; choose another output column name."
                )
        values = table.column(self.text_column).to_pylist()
        good = np.fromiter((isinstance(v, str) for v in values), dtype=bool, count=len(values))
        errors = [None] * len(values)
        for row in np.flatnonzero(~good):
            message = (
                f"{self._identity(table, row)}: column {self.text_column!r} holds "
                f"{reprlib.repr(values[row])} ({type(values[row]).__name__}), not a string"
            )
            if self.on_error == "raise":
                raise ValueError(
                    f"{message}. Clean the column first (for example ds.filter(expr=...)), or "
                    "pass on_error='null' to write a null output and the reason in an error "
                    "column."
                )
            errors[row] = message
        texts = [v for v, ok in zip(values, good) if ok]
        outputs = self._run(texts) if texts else dict.fromkeys(self.types)
        for name, kind in self.types.items():
            table = table.append_column(name, arrow_column(outputs[name], good, kind))
        if self.on_error == "null":
            table = table.append_column(self.error_column, pa.array(errors, type=pa.string()))
        return table


def arrow_column(values, good, kind=None):
    """An Arrow column with one entry per row: ``values`` for good rows, null for the rest.

    1-D outputs (class labels) become a plain column; 2-D outputs (embeddings,
    probabilities, multi-label indicators) a fixed-size list per row. ``kind`` is the
    column's Arrow type, fixed once per actor; ``values`` is None when no row is good.
    """
    import pyarrow as pa

    n_rows, mask = len(good), ~good
    if values is None:
        return pa.nulls(n_rows, type=kind)
    if values.ndim == 1:
        full = np.empty(n_rows, dtype=values.dtype)
        full[good] = values
        return pa.array(full, mask=mask if mask.any() else None, type=kind)
    width = values.shape[1]
    full = np.zeros((n_rows, width), dtype=values.dtype)
    full[good] = values
    flat = pa.array(full.reshape(-1), type=None if kind is None else kind.value_type)
    return pa.FixedSizeListArray.from_arrays(
        flat, width, mask=pa.array(mask) if mask.any() else None
    )
