"""``embed_dataset`` and ``predict_dataset``: their checks and the actor pool.

How they behave is described in :mod:`fewshot.distributed`.
"""

from __future__ import annotations

import dataclasses
import numbers
import warnings

from .._core.optional import require
from ._worker import BatchWorker

__all__ = ["embed_dataset", "predict_dataset"]

ON_ERROR = ("raise", "null")


def _import_ray():
    ray = require("ray", "ray.data", extra="ray", feature="fewshot.distributed (Ray Data)")
    return ray


# -- the public helpers -----------------------------------------------------------------


# map_batches arguments that fewshot sets itself; ray_remote_args must not repeat them.
_OWN_ARGUMENTS = (
    "fn_constructor_args",
    "fn_constructor_kwargs",
    "batch_size",
    "batch_format",
    "compute",
    "concurrency",
    "num_cpus",
    "num_gpus",
    "max_restarts",
    "max_task_retries",
)


@dataclasses.dataclass(frozen=True)
class _Job:
    """One call's settings, checked once and handed on whole (no argument relays).

    Its defaults are the public functions' defaults: written here once.
    """

    text_column: str = "text"
    on_error: str = "raise"
    error_column: str = "error"
    id_column: str | None = None
    batch_size: int = 512
    concurrency: int | tuple = 1
    num_cpus: float = 1
    num_gpus: float = 0
    max_restarts: int | None = None
    max_task_retries: int | None = None
    ray_remote_args: dict | None = None
    columns: dict = dataclasses.field(default_factory=dict)  # output columns by role

    @classmethod
    def of(cls, call: dict, columns: dict) -> _Job:
        """The settings among a public function's arguments (``locals()``)."""
        names = [f.name for f in dataclasses.fields(cls) if f.name != "columns"]
        return cls(**{name: call[name] for name in names}, columns=columns)

    def names(self) -> dict:
        """Every column name the call uses, by role, for the checks."""
        names = {"text_column": self.text_column, **self.columns}
        if self.on_error == "null":
            names["error_column"] = self.error_column
        return names

    def remote_args(self) -> dict:
        """Keyword arguments for the actors beyond Ray Data's defaults.

        Ray Data's defaults (max_restarts=-1, max_task_retries=-1) restart a killed
        actor, which reloads the model, and run its unfinished task again; the task's
        outputs are numbered, and those the failed attempt had already handed over are
        not taken twice, so every row comes out once. Only values the user sets are
        passed on (Ray 2.60 deprecates passing them as loose keywords).
        """
        args = dict(self.ray_remote_args or {})
        if self.max_restarts is not None:
            args["max_restarts"] = self.max_restarts
        if self.max_task_retries is not None:
            args["max_task_retries"] = self.max_task_retries
        return args


_DEFAULT = _Job()


def _check(ds, estimator, method: str, job: _Job):
    """Every check that needs no data, so a mistake fails before any actor starts."""
    ray = _import_ray()
    if not isinstance(ds, ray.data.Dataset):
        raise TypeError(
            f"ds must be a ray.data.Dataset, got {type(ds).__name__}; build one with "
            "ray.data.read_parquet(...), ray.data.from_pandas(df) or ray.data.from_items(rows)."
        )
    if not callable(getattr(estimator, method, None)):
        raise TypeError(f"estimator must have a {method}() method; got {type(estimator).__name__}.")
    if job.on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {job.on_error!r}.")
    names = job.names()
    for name, value in names.items():
        if not isinstance(value, str) or not value:
            raise TypeError(f"{name} must be a column name (a non-empty str), got {value!r}.")
    if job.id_column is not None and not isinstance(job.id_column, str):
        raise TypeError(f"id_column must be None or a column name (str), got {job.id_column!r}.")
    outputs = [v for k, v in names.items() if k != "text_column"]
    if len(set(outputs)) != len(outputs):
        raise ValueError(f"The output columns need distinct names, got {outputs}.")
    _check_pool(job)
    if (allowed := ray.data.DataContext.get_current().max_errored_blocks) != 0:
        warnings.warn(
            f"ray.data.DataContext.max_errored_blocks is {allowed}: Ray drops the rows of a "
            "batch that fails instead of stopping the job, so rows can go missing from the "
            "output. Set it to 0 to keep every row, and use on_error='null' to keep rows "
            "with bad text.",
            UserWarning,
            stacklevel=4,
        )
    _check_schema(ds, job.text_column, job.id_column, outputs)
    return ray


def _check_pool(job: _Job) -> None:
    """The actors' settings: batch size, pool size, resources, retries, Ray options."""
    if not isinstance(job.batch_size, numbers.Integral) or job.batch_size < 1:
        raise ValueError(
            "batch_size (rows per batch handed to an actor) must be a positive int, got "
            f"{job.batch_size!r}."
        )
    concurrency = job.concurrency
    sizes = concurrency if isinstance(concurrency, tuple) else (concurrency,)
    if (
        not sizes
        or len(sizes) > 2
        or not all(isinstance(s, numbers.Integral) and s >= 1 for s in sizes)
    ):
        raise ValueError(
            f"concurrency must be a number of actors (int >= 1) or a (min, max) pair for an "
            f"autoscaling pool, got {concurrency!r}."
        )
    for name in ("num_cpus", "num_gpus"):
        value = getattr(job, name)
        if not isinstance(value, numbers.Real) or value < 0:
            raise ValueError(f"{name} (per actor) must be a number >= 0, got {value!r}.")
    for name in ("max_restarts", "max_task_retries"):
        value = getattr(job, name)
        if value is not None and (not isinstance(value, numbers.Integral) or value < -1):
            raise ValueError(f"{name} must be None or an int >= -1 (-1: no limit), got {value!r}.")
    extra = job.ray_remote_args
    if extra is not None:
        if not isinstance(extra, dict):
            raise TypeError(
                f"ray_remote_args must be a dict of map_batches options, got {extra!r}."
            )
        if clash := sorted(set(extra) & set(_OWN_ARGUMENTS)):
            raise ValueError(
                f"ray_remote_args sets {clash}, which fewshot sets itself; use the function's own "
                "parameters (batch_size, concurrency, num_cpus, num_gpus, max_restarts, "
                "max_task_retries)."
            )


def _check_schema(ds, text_column, id_column, outputs):
    """Column checks when Ray knows the schema without running anything (the actors check too)."""
    try:
        schema = ds.schema(fetch_if_missing=False)
    except Exception:  # noqa: BLE001 - only an early check
        return
    if schema is None:
        return
    columns = dict(zip(schema.names, schema.types))
    for name in (text_column, id_column):
        if name is not None and name not in columns:
            raise ValueError(
                f"{name!r} is not a column of the dataset; its columns are {list(columns)}."
            )
    if taken := [name for name in outputs if name in columns]:
        raise ValueError(
            f"The dataset already has column(s) {taken}; choose other output column names."
        )
    import pyarrow as pa

    kind = columns[text_column]
    if isinstance(kind, pa.DataType) and (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_temporal(kind)
    ):
        raise TypeError(
            f"Column {text_column!r} holds {kind}, not text; pass the column that holds the texts "
            "as text_column."
        )


def _check_fitted(estimator):
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(estimator)
    except NotFittedError as error:
        raise NotFittedError(
            f"predict_dataset needs a fitted estimator; call {type(estimator).__name__}.fit(texts, "
            "labels) first."
        ) from error
    except TypeError:  # not a scikit-learn estimator: trust it
        pass


def _apply(ds, estimator, task: str, job: _Job):
    """Check every argument, then add the output columns with a pool of ``BatchWorker`` actors."""
    ray = _check(ds, estimator, "transform" if task == "embed" else "predict", job)
    if task == "predict":
        _check_fitted(estimator)
    # One copy of the estimator in the object store, whatever the number of actors and
    # batches. It stays there as long as the returned Dataset exists.
    estimator_ref = ray.put(estimator)
    concurrency = job.concurrency
    size = concurrency if isinstance(concurrency, tuple) else (concurrency, concurrency)
    threads = None if job.num_gpus else max(1, int(job.num_cpus))
    return ds.map_batches(
        BatchWorker,
        fn_constructor_args=(estimator_ref,),
        fn_constructor_kwargs=dict(
            task=task,
            text_column=job.text_column,
            columns=job.columns,
            on_error=job.on_error,
            error_column=job.error_column,
            id_column=job.id_column,
            num_threads=threads,
        ),
        batch_size=int(job.batch_size),
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(min_size=size[0], max_size=size[1]),
        num_cpus=job.num_cpus,
        num_gpus=job.num_gpus,
        **job.remote_args(),
    )


def embed_dataset(
    ds,
    embedder,
    *,
    text_column=_DEFAULT.text_column,
    output_column="embedding",
    batch_size=_DEFAULT.batch_size,
    concurrency=_DEFAULT.concurrency,
    num_cpus=_DEFAULT.num_cpus,
    num_gpus=_DEFAULT.num_gpus,
    on_error=_DEFAULT.on_error,
    error_column=_DEFAULT.error_column,
    id_column=_DEFAULT.id_column,
    max_restarts=_DEFAULT.max_restarts,
    max_task_retries=_DEFAULT.max_task_retries,
    ray_remote_args=_DEFAULT.ray_remote_args,
):
    """Add ``embedder.transform(texts)`` as a vector column of a Ray dataset.

    Lazy, like every Ray Data transformation: nothing runs until the result is consumed
    (``write_parquet``, ``take``, ``materialize``, ...).

    Parameters
    ----------
    ds : ray.data.Dataset
        Rows with a text column; every other column is passed through unchanged.
    embedder : estimator with ``transform``
        A :class:`~fewshot.DistilEmbedder`, a fitted :class:`~fewshot.SetFitClassifier`,
        or a (fitted) pipeline ending in a transformer. Shipped once to each actor.
    text_column : str, default="text"
    output_column : str, default="embedding"
        New column: one fixed-size list of float32 per row (``transform``'s row).
    batch_size : int, default=512
        Rows per batch that Ray hands to an actor (``map_batches``' ``batch_size``; a
        Ray task takes one or more such batches). Independent of the embedder's own
        ``batch_size`` (texts per forward pass): a batch of 512 rows runs 16 forward
        passes of 32. Texts are sorted by length within a batch, so batches of several
        hundred rows waste less on padding (``benchmarks/scale.py``).
    concurrency : int or (int, int), default=1
        Actors in the pool, or a (min, max) pair for a pool that Ray scales.
    num_cpus : float, default=1
        CPU cores reserved per actor; on CPU the forward pass and the tokenizer use that
        many threads (an estimator's own ``n_threads``, when set, wins).
    num_gpus : float, default=0
        GPUs per actor; with ``device="auto"`` (the default) the embedder runs on the GPU
        that Ray assigns. Fractions share a GPU between actors.
    on_error : {"raise", "null"}, default="raise"
        A row whose text is None or not a string: "raise" stops the job with an error
        naming the row; "null" writes a null output for it and the reason in
        ``error_column`` (null for good rows).
    error_column : str, default="error"
        Added only when ``on_error="null"``.
    id_column : str, optional
        Column that identifies rows in error messages (otherwise the row's values).
    max_restarts : int, optional
        How often Ray may restart a dead actor. Default: Ray Data's, -1 (always).
    max_task_retries : int, optional
        How often a batch whose actor died is retried (-1: no limit). Default: Ray
        Data's, -1. A finite number stops a job whose batch keeps killing its actor
        (say, out of memory) instead of retrying it forever.
    ray_remote_args : dict, optional
        More options for the actors, passed to ``map_batches`` as keywords: ``memory``
        (bytes reserved per actor), ``resources``, ``accelerator_type``,
        ``runtime_env``, ...

    Returns
    -------
    ray.data.Dataset
        The input rows, each once, with the new column(s).

    Examples
    --------
    >>> import ray                                          # doctest: +SKIP
    >>> from fewshot import DistilEmbedder
    >>> from fewshot.distributed import embed_dataset
    >>> ds = ray.data.read_parquet("reviews/")             # doctest: +SKIP
    >>> ds = embed_dataset(ds, DistilEmbedder(layers=4), concurrency=4)  # doctest: +SKIP
    >>> ds.write_parquet("embedded/")                      # doctest: +SKIP
    """
    job = _Job.of(locals(), {"output_column": output_column})
    return _apply(ds, embedder, "embed", job)


def predict_dataset(
    ds,
    estimator,
    *,
    text_column=_DEFAULT.text_column,
    prediction_column="prediction",
    proba_column="probabilities",
    batch_size=_DEFAULT.batch_size,
    concurrency=_DEFAULT.concurrency,
    num_cpus=_DEFAULT.num_cpus,
    num_gpus=_DEFAULT.num_gpus,
    on_error=_DEFAULT.on_error,
    error_column=_DEFAULT.error_column,
    id_column=_DEFAULT.id_column,
    max_restarts=_DEFAULT.max_restarts,
    max_task_retries=_DEFAULT.max_task_retries,
    ray_remote_args=_DEFAULT.ray_remote_args,
):
    """Add a fitted classifier's predictions (and probabilities) to a Ray dataset.

    Parameters
    ----------
    ds : ray.data.Dataset
    estimator : fitted classifier that takes texts
        A :class:`~fewshot.SetFitClassifier`, or a fitted pipeline such as
        ``Pipeline([("embed", DistilEmbedder()), ("clf", LogisticRegression())])``.
    text_column : str, default="text"
    prediction_column : str, default="prediction"
        ``predict``'s output: the class label (a fixed-size 0/1 list for multi-label).
    proba_column : str or None, default="probabilities"
        ``predict_proba``'s row as a fixed-size list, in the order of
        ``estimator.classes_``; None skips it. Skipped too when the estimator has no
        ``predict_proba``.
    batch_size, concurrency, num_cpus, num_gpus, on_error, error_column, id_column, \
max_restarts, max_task_retries, ray_remote_args
        As in :func:`embed_dataset`.

    Returns
    -------
    ray.data.Dataset

    Examples
    --------
    >>> from fewshot.distributed import predict_dataset
    >>> scored = predict_dataset(ds, fitted_classifier, concurrency=4)  # doctest: +SKIP
    >>> scored.write_parquet("scored/")                                  # doctest: +SKIP
    """
    columns = {"prediction_column": prediction_column}
    if proba_column is not None and callable(getattr(estimator, "predict_proba", None)):
        columns["proba_column"] = proba_column
    return _apply(ds, estimator, "predict", _Job.of(locals(), columns))
