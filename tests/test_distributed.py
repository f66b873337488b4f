"""Ray Data helpers on a local Ray instance (2 CPUs): equality, row identity, faults."""

import os
import sys

import numpy as np
import pytest
from ray.exceptions import UserCodeException  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402

from fewshot import DistilEmbedder, SetFitClassifier  # noqa: E402
from fewshot.distributed import embed_dataset, predict_dataset  # noqa: E402

WORDS = (
    "good bad great awful parcel refund late early support broke works fine price "
    "delivery quality screen battery charged twice answered"
).split()


def corpus(n, seed=0):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(1, 30))) for _ in range(n)]


class DiesOnceEmbedder(DistilEmbedder):
    """Kills its own worker process on its second real batch, once in the whole job.

    With blocks of 250 rows and batches of 100, one task runs 3 batches; with tiny output
    blocks (see the test) the first batch has been handed over when the actor dies, so
    the retry must not write it twice. The marker file makes the fault happen once.
    """

    calls = 0

    def transform(self, X, out=None):
        if len(X) > 1:  # not the actor's warm-up
            type(self).calls += 1
            if type(self).calls == 2:
                try:
                    os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                except FileExistsError:
                    pass
                else:
                    os._exit(1)  # as abrupt as an OOM kill: no exception, no cleanup
        return super().transform(X, out)


class CountingEmbedder(DistilEmbedder):
    """Notes the process id each time a copy is unpickled (once per actor, if all is well)."""

    def __setstate__(self, state):
        super().__setstate__(state)
        with open(self.log, "a") as f:
            f.write(f"{os.getpid()}\n")


@pytest.fixture(scope="module")
def local_ray():
    import ray.cloudpickle

    # The actors cannot import this test module; ship its classes by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    yield ray
    ray.shutdown()


def rows(texts):
    return [{"id": i, "text": t} for i, t in enumerate(texts)]


def collect(ds):
    df = ds.to_pandas()
    return df.sort_values("id").reset_index(drop=True)


def test_embed_equals_single_process_and_keeps_every_row(local_ray, tiny_model, tmp_path):
    texts = corpus(3000)
    embedder = CountingEmbedder(model=tiny_model, layers=[2, 6], batch_size=16)
    embedder.log = str(tmp_path / "unpickled")
    ds = local_ray.data.from_items(rows(texts), override_num_blocks=6)
    out = collect(embed_dataset(ds, embedder, batch_size=128, concurrency=2))
    # 24 batches, 2 actors: the estimator was unpickled once per actor, not per batch.
    pids = open(embedder.log).read().split()
    assert 1 <= len(pids) <= 2 and len(set(pids)) == len(pids)
    assert len(out) == 3000
    assert out["id"].tolist() == list(range(3000))  # each row once: none lost, none doubled
    assert out["text"].tolist() == texts  # the other columns pass through with their row
    expected = embedder.transform(texts)
    got = np.stack(out["embedding"].to_numpy())
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_predict_pipeline_with_string_labels(local_ray, tiny_model):
    train = ["good", "great", "works fine", "awful", "broke", "bad refund"]
    labels = ["pos", "pos", "pos", "neg", "neg", "neg"]
    pipeline = Pipeline(
        [("embed", DistilEmbedder(model=tiny_model, layers=3)), ("clf", LogisticRegression())]
    ).fit(train, labels)
    texts = corpus(500, seed=1)
    ds = local_ray.data.from_items(rows(texts))
    out = collect(predict_dataset(ds, pipeline, batch_size=64, concurrency=2))
    assert out["prediction"].tolist() == pipeline.predict(texts).tolist()
    np.testing.assert_allclose(
        np.stack(out["probabilities"].to_numpy()), pipeline.predict_proba(texts), atol=1e-5
    )


def test_predict_fine_tuned_setfit_classifier(local_ray, tiny_model):
    train = ["good", "great", "works fine", "awful", "broke", "bad refund", "late", "price"]
    labels = [0, 0, 0, 1, 1, 1, 2, 2]
    clf = SetFitClassifier(model=tiny_model, n_iterations=2, pairs_per_step=8, random_state=0).fit(
        train, labels
    )
    texts = corpus(300, seed=2)
    ds = local_ray.data.from_items(rows(texts))
    out = collect(predict_dataset(ds, clf, batch_size=50))
    # Fine-tuned weights reached the actor: predictions match the local fitted model.
    assert out["prediction"].tolist() == clf.predict(texts).tolist()
    proba = np.stack(out["probabilities"].to_numpy())
    np.testing.assert_allclose(proba, clf.predict_proba(texts), atol=1e-5)
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-6)
    embedded = collect(embed_dataset(ds, clf, batch_size=50))
    np.testing.assert_allclose(
        np.stack(embedded["embedding"].to_numpy()), clf.transform(texts), atol=1e-5
    )


def test_bad_row_fails_with_its_identity(local_ray, tiny_model):
    items = rows(corpus(200, seed=3))
    items[117]["text"] = None
    ds = local_ray.data.from_items(items)
    with pytest.raises(
        UserCodeException, match=r"id=117: column 'text' holds None \(NoneType\), not a string"
    ):
        embed_dataset(
            ds, DistilEmbedder(model=tiny_model), id_column="id", batch_size=64
        ).materialize()


def test_bad_rows_become_nulls_with_an_error_column(local_ray, tiny_model):
    texts = corpus(200, seed=4)
    items = rows(texts)
    bad = list(range(10)) + [15, 16, 150]  # rows 0-9 fill a whole Ray batch
    for i in bad:
        items[i]["text"] = None if i != 16 else 42
    pipeline = Pipeline(
        [("embed", DistilEmbedder(model=tiny_model)), ("clf", LogisticRegression())]
    )
    pipeline.fit(["good", "bad"], ["pos", "neg"])
    ds = local_ray.data.from_items(items, override_num_blocks=4)
    out = collect(predict_dataset(ds, pipeline, on_error="null", batch_size=10))
    assert out["id"].tolist() == list(range(200))
    assert np.flatnonzero(out["prediction"].isna()).tolist() == bad
    assert np.flatnonzero(out["probabilities"].isna()).tolist() == bad
    assert np.flatnonzero(out["error"].notna()).tolist() == bad
    assert "holds 42 (int), not a string" in out["error"][16]
    good = [i for i in range(200) if i not in bad]
    kept = [texts[i] for i in good]
    assert out["prediction"][good].tolist() == pipeline.predict(kept).tolist()
    np.testing.assert_allclose(
        np.stack(out["probabilities"][good].to_numpy()), pipeline.predict_proba(kept), atol=1e-5
    )


def test_killed_actor_mid_run_still_gives_every_row_once(local_ray, tiny_model, tmp_path):
    texts = corpus(2000, seed=5)
    embedder = DiesOnceEmbedder(model=tiny_model)
    embedder.marker = str(tmp_path / "died")
    ds = local_ray.data.from_items(rows(texts), override_num_blocks=8)
    ctx = local_ray.data.DataContext.get_current()
    block_size, ctx.target_max_block_size = (
        ctx.target_max_block_size,
        1024,
    )  # one output block per batch
    try:
        out = collect(embed_dataset(ds, embedder, batch_size=100, concurrency=2))
    finally:
        ctx.target_max_block_size = block_size
    assert os.path.exists(embedder.marker)  # an actor really died
    assert out["id"].tolist() == list(range(2000))
    np.testing.assert_allclose(
        np.stack(out["embedding"].to_numpy()),
        DistilEmbedder(model=tiny_model).transform(texts),
        atol=1e-5,
    )


def test_bad_arguments_fail_before_any_work(local_ray, tiny_model):
    ds = local_ray.data.from_items(rows(["a", "b"]))
    embedder = DistilEmbedder(model=tiny_model)
    with pytest.raises(TypeError, match="ray.data.Dataset"):
        embed_dataset(["a", "b"], embedder)
    with pytest.raises(ValueError, match="'body' is not a column.*'id', 'text'"):
        embed_dataset(ds, embedder, text_column="body")
    with pytest.raises(TypeError, match="Column 'id' holds int64, not text"):
        embed_dataset(ds, embedder, text_column="id")
    with pytest.raises(ValueError, match=r"already has column\(s\) \['text'\]"):
        embed_dataset(ds, embedder, output_column="text")
    with pytest.raises(ValueError, match="distinct names"):
        embed_dataset(ds, embedder, on_error="null", error_column="embedding")
    with pytest.raises(TypeError, match="error_column"):
        embed_dataset(ds, embedder, on_error="null", error_column=None)
    with pytest.raises(ValueError, match="on_error"):
        embed_dataset(ds, embedder, on_error="skip")
    with pytest.raises(ValueError, match="concurrency"):
        embed_dataset(ds, embedder, concurrency=0)
    with pytest.raises(ValueError, match="batch_size"):
        embed_dataset(ds, embedder, batch_size=0)
    with pytest.raises(ValueError, match="max_task_retries"):
        embed_dataset(ds, embedder, max_task_retries=-2)
    with pytest.raises(TypeError, match="ray_remote_args"):
        embed_dataset(ds, embedder, ray_remote_args=["memory"])
    with pytest.raises(ValueError, match=r"\['num_cpus'\], which fewshot sets itself"):
        embed_dataset(ds, embedder, ray_remote_args={"num_cpus": 4})
    with pytest.raises(TypeError, match="predict"):
        predict_dataset(ds, embedder)
    with pytest.raises(NotFittedError, match="fit"):
        predict_dataset(ds, Pipeline([("e", embedder), ("c", LogisticRegression())]))
    ctx = local_ray.data.DataContext.get_current()
    ctx.max_errored_blocks = 5
    try:
        with pytest.warns(UserWarning, match="rows can go missing"):
            embed_dataset(ds, embedder)
    finally:
        ctx.max_errored_blocks = 0
