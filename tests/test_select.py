"""fewshot.select: cold start, next batch, self-training and `fewshot select`, on toy pools.

Most tests embed with a stub: a text ``"c3 17"`` is the 17th text of cluster 3, and its
vector is cluster 3's centre plus a little noise, so what a strategy picks can be checked
against the clusters it should cover.
"""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.svm import LinearSVC

from fewshot.select import (
    PseudoLabelClassifier,
    SelectionWarning,
    cold_start,
    next_batch,
    texts_to_label,
    uncertainty,
)

SIZES = (120, 60, 30, 20, 10, 8)  # unequal clusters: random draws miss the small ones


class Stub:
    """Texts -> fixed vectors (module level, so pipelines holding it pickle)."""

    def __init__(self, vectors: dict):
        self.vectors = vectors

    def transform(self, X):
        return np.stack([self.vectors[t] for t in X])


def clustered_pool(sizes=SIZES, dim=16, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.eye(dim)[: len(sizes)] * 3
    texts, vectors, groups = [], {}, []
    for c, size in enumerate(sizes):
        for i in range(size):
            text = f"c{c} {i}"
            texts.append(text)
            vectors[text] = (centres[c] + noise * rng.normal(size=dim)).astype(np.float32)
            groups.append(c)
    return texts, Stub(vectors), np.asarray(groups)


@pytest.fixture(scope="module")
def pool():
    return clustered_pool()


def covered(selection, groups):
    return len(set(groups[selection.positions]))


# -- cold start ---------------------------------------------------------------------------


def test_kmeans_and_density_cover_every_cluster_where_random_misses_some(pool):
    texts, stub, groups = pool
    coverage = {
        strategy: [
            covered(cold_start(texts, 6, strategy=strategy, embedder=stub, random_state=s), groups)
            for s in range(8)
        ]
        for strategy in ("kmeans", "density", "random")
    }
    assert coverage["kmeans"] == [6] * 8
    assert coverage["density"] == [6] * 8
    assert np.mean(coverage["random"]) < 5  # the 8- and 10-text clusters are usually missed


def test_each_strategy_is_deterministic_per_seed(pool):
    texts, stub, _ = pool
    for strategy in ("kmeans", "density", "random"):
        a = cold_start(texts, 10, strategy=strategy, embedder=stub, random_state=3)
        b = cold_start(texts, 10, strategy=strategy, embedder=stub, random_state=3)
        np.testing.assert_array_equal(a.positions, b.positions)
        assert a.reasons == b.reasons
        assert len(set(a.positions)) == 10
    a = cold_start(texts, 10, strategy="random", random_state=1)
    b = cold_start(texts, 10, strategy="random", random_state=2)
    assert set(a.positions) != set(b.positions)


def test_the_order_is_largest_uncovered_cluster_first(pool):
    texts, stub, groups = pool
    picked = cold_start(texts, 6, strategy="density", embedder=stub, random_state=0)
    assert groups[picked.positions].tolist() == [0, 1, 2, 3, 4, 5]
    assert picked.reasons[0].startswith("most typical text of cluster")
    assert "(120 texts, none labelled or chosen before)" in picked.reasons[0]
    frame = picked.to_frame()
    assert frame["rank"].tolist() == list(range(1, 7))
    assert frame["text"].tolist() == [texts[i] for i in picked.positions]


def test_more_picks_than_clusters_take_each_clusters_next_best():
    texts, stub, _ = clustered_pool(sizes=(8, 8), noise=0.0)  # two distinct vectors
    picked = cold_start(texts, 5, strategy="kmeans", embedder=stub, random_state=0)
    assert len(set(picked.positions)) == 5
    assert sum(r.startswith("next nearest the centre") for r in picked.reasons) == 3


def test_density_prefers_typical_texts_to_outliers():
    texts, stub, groups = clustered_pool(sizes=(60,), noise=0.05)
    odd = "c0 odd"
    stub.vectors[odd] = stub.vectors[texts[0]] + 0.8  # far from the rest of its cluster
    picked = cold_start(texts + [odd], 3, strategy="density", embedder=stub, random_state=0)
    assert len(texts) not in picked.positions


def test_labelled_texts_are_never_picked_and_their_clusters_come_last(pool):
    texts, stub, groups = pool
    labelled = ["c0 0", "c1 0"]  # with k = 4: six clusters, two of them covered
    with pytest.warns(SelectionWarning, match="2 pool texts are already labelled"):
        picked = cold_start(
            texts, 4, strategy="kmeans", embedder=stub, labelled=labelled, random_state=0
        )
    assert not set(picked.texts) & set(labelled)
    assert sorted(groups[picked.positions].tolist()) == [2, 3, 4, 5]  # the uncovered ones
    with pytest.warns(SelectionWarning):
        random = cold_start(texts, 200, strategy="random", labelled=labelled, random_state=0)
    assert not set(random.texts) & set(labelled)


def test_repeated_pool_texts_are_offered_once(pool):
    texts, stub, _ = pool
    repeated = texts[:5] * 3
    picked = cold_start(repeated, 5, strategy="random", random_state=0)
    assert sorted(picked.positions.tolist()) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match=r"15 rows give 5 texts .*10 repeats"):
        cold_start(repeated, 6, strategy="random")


def test_selecting_from_a_large_pool_is_linear_in_memory():
    """20,001 rows: centres fitted on a sample, every row assigned to one; no n x n matrix."""
    from fewshot.select._clusters import FIT_SAMPLE, cluster

    rng = np.random.default_rng(0)
    Z = rng.normal(size=(FIT_SAMPLE + 1, 8)).astype(np.float32)
    labels, centres = cluster(Z, 4, seed=0)
    assert labels.shape == (FIT_SAMPLE + 1,) and centres.shape == (4, 8)
    assert set(labels.tolist()) == {0, 1, 2, 3}


# -- clear errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, error, message",
    [
        ((["a", "b"], 3), ValueError, r"k=3 is larger than the pool.* at most k=2"),
        (([], 1), ValueError, r"X \(the pool\) is empty"),
        ((["a", None, "b"], 1), TypeError, r"X\[1\] is NoneType None"),
        ((["a", 3], 1), TypeError, r"X\[1\] is int 3.*Convert numbers"),
        (("just one text", 1), TypeError, r"X is a single str"),
        ((["a", "b"], 0), ValueError, r"k must be an int >= 1"),
    ],
)
def test_bad_pools_and_k_fail_naming_the_problem(args, error, message):
    with pytest.raises(error, match=message):
        cold_start(*args, strategy="random")


def test_a_pool_of_labelled_texts_only_is_refused():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SelectionWarning)
        with pytest.raises(ValueError, match="all 2 rows are already labelled"):
            cold_start(["a", "b"], 1, strategy="random", labelled=["b", "a"])


def test_unknown_strategy_and_uncertainty_without_a_classifier(pool):
    texts, stub, _ = pool
    with pytest.raises(ValueError, match="strategy='typical' is not valid"):
        cold_start(texts, 2, strategy="typical", embedder=stub)
    with pytest.raises(ValueError, match="pass classifier="):
        texts_to_label(texts, 2, strategy="margin", embedder=stub)
    with pytest.raises(TypeError, match="embedder must be a model id or folder"):
        cold_start(texts, 2, strategy="kmeans", embedder=3)


# -- next batch --------------------------------------------------------------------------


def boundary_pool(seed=0):
    """Two classes along x; a tight group of 20 texts right on the boundary, and 40 texts
    near the boundary but spread around it, and confident texts on both sides."""
    rng = np.random.default_rng(seed)
    vectors = {}
    for i in range(20):
        vectors[f"tight {i}"] = np.array([0.0, 1.0, 0.0]) + 1e-4 * rng.normal(size=3)
    for i, angle in enumerate(np.linspace(0.6, 2 * np.pi - 0.6, 40)):
        x = rng.choice([-1, 1]) * rng.uniform(0.02, 0.05)  # less uncertain than the tight ones
        vectors[f"spread {i}"] = np.array([x, np.cos(angle), np.sin(angle)])
    for i in range(30):
        side = 1.0 if i % 2 else -1.0
        vectors[f"sure {i}"] = np.array([side * 2, 0.3 * rng.normal(), 0.3 * rng.normal()])
    labelled = {"a 0": [1, 0.1, 0], "a 1": [1, -0.1, 0], "b 0": [-1, 0.1, 0], "b 1": [-1, -0.1, 0]}
    vectors.update({t: np.asarray(v, dtype=float) for t, v in labelled.items()})
    stub = Stub({t: np.asarray(v, dtype=np.float32) for t, v in vectors.items()})
    classifier = Pipeline(
        [("embed", FunctionTransformer(stub.transform)), ("lr", LogisticRegression(C=10))]
    ).fit(list(labelled), ["a", "a", "b", "b"])
    pool = [t for t in vectors if t not in labelled]
    return pool, list(labelled), classifier


def test_uncertainty_alone_picks_near_copies_and_diversity_spreads_them():
    pool, labelled, classifier = boundary_pool()
    plain = next_batch(classifier, pool, 5, diversity=False, random_state=0)
    spread = next_batch(classifier, pool, 5, diversity=True, random_state=0)
    assert all(t.startswith("tight") for t in plain.texts)
    assert sum(t.startswith("tight") for t in spread.texts) <= 2
    assert not any(t.startswith("sure") for t in plain.texts + spread.texts)
    assert np.all(np.diff(plain.scores) <= 0) and np.all(np.diff(spread.scores) <= 0)
    assert "margin uncertainty" in spread.reasons[0] and "'a'" in spread.reasons[0]
    again = next_batch(classifier, pool, 5, diversity=True, random_state=0)
    np.testing.assert_array_equal(spread.positions, again.positions)


def test_next_batch_never_repicks_labelled_texts():
    pool, labelled, classifier = boundary_pool()
    with pytest.warns(SelectionWarning, match="already labelled"):
        batch = next_batch(classifier, labelled + pool, 30, labelled=labelled, random_state=0)
    assert not set(batch.texts) & set(labelled)
    assert len(set(batch.positions)) == 30


def test_next_batch_errors_name_the_fix():
    pool, labelled, classifier = boundary_pool()
    svc = Pipeline([("embed", classifier[0]), ("svc", LinearSVC())]).fit(labelled, [0, 0, 1, 1])
    with pytest.raises(TypeError, match="has no predict_proba.*CalibratedClassifierCV"):
        next_batch(svc, pool, 2)
    with pytest.raises(ValueError, match="not fitted"):
        next_batch(LogisticRegression(), pool, 2)
    with pytest.raises(ValueError, match="k=500 is larger than the pool"):
        next_batch(classifier, pool, 500)
    with pytest.raises(ValueError, match="max_candidates=2 is smaller than k=3"):
        next_batch(classifier, pool, 3, max_candidates=2)


def test_max_candidates_scores_a_seeded_sample():
    pool, _, classifier = boundary_pool()
    a = next_batch(classifier, pool, 3, max_candidates=30, random_state=5)
    b = next_batch(classifier, pool, 3, max_candidates=30, random_state=5)
    np.testing.assert_array_equal(a.positions, b.positions)


def test_uncertainty_is_zero_when_sure_and_one_for_a_toss_up():
    proba = np.array([[1 / 3, 1 / 3, 1 / 3], [1.0, 0.0, 0.0], [0.6, 0.3, 0.1]])
    for strategy in ("margin", "entropy", "least-confident"):
        u = uncertainty(proba, strategy)
        assert u[0] == pytest.approx(1.0 if strategy != "margin" else 1.0)
        assert u[1] == pytest.approx(0.0)
        assert 0 < u[2] < 1
    with pytest.raises(ValueError, match="one column per class"):
        uncertainty([0.2, 0.8])


# -- self-training -----------------------------------------------------------------------


class LengthClassifier(ClassifierMixin, BaseEstimator):
    """Texts in, no feature step: the classifier is its own head."""

    def fit(self, X, y):
        self.lr_ = LogisticRegression().fit([[len(t)] for t in X], y)
        self.classes_ = self.lr_.classes_
        return self

    def predict_proba(self, X):
        return self.lr_.predict_proba([[len(t)] for t in X])

    def predict(self, X):
        return self.lr_.predict([[len(t)] for t in X])


def two_blobs(n=40, seed=0, labels=("neg", "pos")):
    rng = np.random.default_rng(seed)
    vectors, y = {}, []
    for i in range(n):
        c = i % 2
        vectors[f"t{i}"] = (np.array([1.0, 0.0]) * (2 * c - 1) + 0.3 * rng.normal(size=2)).astype(
            np.float32
        )
        y.append(labels[c])
    texts = list(vectors)
    model = Pipeline(
        [("embed", FunctionTransformer(Stub(vectors).transform)), ("lr", LogisticRegression())]
    )
    return texts, np.asarray(y, dtype=object), model


@pytest.mark.parametrize("refit", ["head", "full"])
def test_self_training_adds_pseudo_labels_and_keeps_given_ones(refit):
    texts, y, model = two_blobs()
    given = y.copy()
    given[6:] = -1  # six labelled rows, sklearn's mark for the rest
    clf = PseudoLabelClassifier(
        estimator=model, criterion="threshold", threshold=0.6, refit=refit, max_iter=3
    ).fit(texts, given)
    assert clf.classes_.tolist() == ["neg", "pos"]
    assert clf.n_pseudo_labels_ > 10
    assert (clf.labeled_iter_[:6] == 0).all()
    pseudo = clf.labeled_iter_ >= 1
    assert (clf.transduction_[pseudo] == y[pseudo]).mean() > 0.9
    assert clf.transduction_[:6].tolist() == y[:6].tolist()
    assert clf.predict(texts).shape == (40,) and clf.score(texts, y) > 0.9
    assert clf.termination_condition_ in ("max_iter", "no_change", "all_labeled")
    assert isinstance(clf.estimator_, Pipeline)
    if refit == "head":  # the feature step fitted on the given labels, a new head
        assert clf.estimator_.steps[0][1] is not clf.estimator_.steps[-1][1]


@pytest.mark.parametrize(
    "marks, unlabelled",
    [([None] * 34, -1), ([float("nan")] * 34, -1), ([""] * 34, ""), ([-1] * 34, -1)],
)
def test_unlabelled_rows_can_be_marked_as_sklearn_does_or_left_missing(marks, unlabelled):
    texts, y, model = two_blobs()
    given = list(y[:6]) + marks
    clf = PseudoLabelClassifier(
        estimator=model, criterion="threshold", threshold=0.6, unlabelled=unlabelled
    ).fit(pd.Series(texts, index=range(100, 140)), pd.Series(given, index=range(40, 0, -1)))
    assert clf.classes_.tolist() == ["neg", "pos"]
    assert (clf.labeled_iter_[:6] == 0).all() and (clf.labeled_iter_[6:] != 0).all()


def test_int_labels_and_minus_one_as_a_real_class():
    texts, y, model = two_blobs(labels=(-1, 1))
    given = list(y[:6]) + [None] * 34
    clf = PseudoLabelClassifier(
        estimator=model, criterion="threshold", threshold=0.6, unlabelled=None
    ).fit(texts, given)
    assert clf.classes_.tolist() == [-1, 1]
    assert clf.n_pseudo_labels_ > 0


def test_knn_vote_rejects_what_the_neighbours_contradict():
    # Class "a" on both sides, "b" in the middle: a linear head says "a" everywhere, but
    # the labelled neighbours of the middle texts say "b".
    rng = np.random.default_rng(0)
    spots = {"a": [-2.0, 2.0], "b": [0.0]}
    vectors, texts, given = {}, [], []
    for label, xs in spots.items():
        for x in xs:
            for i in range(3):
                texts.append(f"{label} {x} {i}")
                vectors[texts[-1]] = np.array([x + 0.1 * rng.normal(), 1.0])
                given.append(label)
    middle = []
    for x in (-2.0, 0.0, 2.0):
        for i in range(10):
            texts.append(f"pool {x} {i}")
            vectors[texts[-1]] = np.array([x + 0.1 * rng.normal(), 1.0])
            given.append(-1)
            if x == 0.0:
                middle.append(len(texts) - 1)
    model = Pipeline(
        [("embed", FunctionTransformer(Stub(vectors).transform)), ("lr", LogisticRegression())]
    )
    params = dict(estimator=model, max_per_class=None, n_neighbors=3)
    loose = PseudoLabelClassifier(criterion="threshold", **params).fit(texts, given)
    voted = PseudoLabelClassifier(criterion="knn", **params).fit(texts, given)
    assert loose.n_pseudo_labels_ == 30
    assert voted.n_pseudo_labels_ == 20
    assert (voted.labeled_iter_[middle] == -1).all()
    assert (voted.transduction_[middle] == -1).all()


def test_max_per_class_keeps_the_most_confident_of_each_class():
    texts, y, model = two_blobs()
    given = np.array(list(y[:6]) + [-1] * 34, dtype=object)
    loose = PseudoLabelClassifier(estimator=model, criterion="threshold", max_per_class=None)
    assert loose.fit(texts, given).n_pseudo_labels_ == 34
    capped = clone(loose).set_params(max_per_class=4).fit(texts, given)
    counts = pd.Series(capped.transduction_[capped.labeled_iter_ == 1]).value_counts()
    assert counts.tolist() == [4, 4]
    # The kept ones are the surest of their predicted class under the model of the labels.
    proba = clone(model).fit(texts[:6], y[:6].astype(str)).predict_proba(texts[6:])
    for c in range(2):
        ours = np.flatnonzero(proba.argmax(axis=1) == c)
        surest = ours[np.argsort(-proba[ours, c], kind="stable")[:4]]
        assert (capped.labeled_iter_[6:][surest] == 1).all()
    # A float cap is a multiple of the labels per class: 1.5 x 6 labels / 2 classes = 5.
    relative = clone(loose).set_params(max_per_class=1.5).fit(texts, given)
    counts = pd.Series(relative.transduction_[relative.labeled_iter_ == 1]).value_counts()
    assert counts.tolist() == [5, 5]


def test_self_training_is_a_scikit_learn_estimator():
    texts, y, model = two_blobs()
    given = np.array(list(y[:6]) + [-1] * 34, dtype=object)
    clf = PseudoLabelClassifier(estimator=model, threshold=0.6, random_state=0)
    assert clone(clf).get_params()["threshold"] == 0.6
    assert set(clf.get_params()) >= {"estimator", "estimator__lr__C", "criterion", "refit"}
    fitted = clf.fit(texts, given)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(texts), fitted.predict_proba(texts))
    again = clone(clf).fit(texts, given)
    np.testing.assert_array_equal(again.labeled_iter_, fitted.labeled_iter_)


def test_self_training_errors_name_the_fix():
    texts, y, model = two_blobs()
    with pytest.raises(ValueError, match="y has no labelled row"):
        PseudoLabelClassifier(estimator=model).fit(texts, [-1] * 40)
    with pytest.raises(ValueError, match="threshold must be a float"):
        PseudoLabelClassifier(estimator=model, threshold=1.5).fit(texts, y)
    with pytest.raises(TypeError, match="mixes label types"):
        PseudoLabelClassifier(estimator=model).fit(texts, ["a", 2] + [-1] * 38)
    svc = Pipeline([("embed", model[0]), ("svc", LinearSVC())])
    with pytest.raises(TypeError, match="has no predict_proba"):
        PseudoLabelClassifier(estimator=svc).fit(texts, list(y[:6]) + [-1] * 34)
    with pytest.raises(TypeError, match="criterion='knn' measures distances"):
        PseudoLabelClassifier(estimator=LengthClassifier(), criterion="knn").fit(
            texts, list(y[:6]) + [-1] * 34
        )


def test_self_training_wraps_setfit_and_refits_only_its_head(tiny_model, few):
    from fewshot import SetFitClassifier

    X, y = few
    given = list(y[:2]) + [-1] * 2 + list(y[4:6]) + [-1] * 2 + list(y[8:10]) + [-1] * 2
    base = SetFitClassifier(model=tiny_model, n_iterations=1, batch_size=8)
    clf = PseudoLabelClassifier(
        estimator=base, criterion="threshold", max_per_class=None, random_state=0
    ).fit(X, given)
    assert clf.n_pseudo_labels_ == 6
    assert isinstance(clf.estimator_, SetFitClassifier)
    assert clf.estimator_.random_state == 0 and base.random_state is None
    assert clf.predict_proba(X).shape == (12, 3)
    assert clf.transform(X).shape == (12, 32)  # the fine-tuned body's embeddings
    batch = next_batch(clf, X, 3, random_state=0)  # through the fine-tuned body, once
    assert len(batch) == 3


# -- the command line ----------------------------------------------------------------------


@pytest.fixture
def pool_csv(tmp_path):
    from fewshot.data import load_customer_feedback

    data = load_customer_feedback()
    path = tmp_path / "pool.csv"
    pd.DataFrame({"id": range(80), "text": data.text, "topic": data.target}).to_csv(
        path, index=False
    )
    return path


def invoke(*args):
    from fewshot.cli import cli  # through the registered command, as a user runs it

    return CliRunner().invoke(cli, ["select", *[str(a) for a in args]])


def test_cli_cold_start_writes_the_chosen_rows_in_a_stable_order(tiny_model, pool_csv, tmp_path):
    out = tmp_path / "to_label.csv"
    result = invoke(pool_csv, "--k", 6, "--model", tiny_model, "--out", out, "-q")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out, keep_default_na=False)
    assert table.columns.tolist() == [
        "rank",
        "row",
        "id",
        "text",
        "topic",
        "score",
        "reason",
        "label",
    ]
    assert table["rank"].tolist() == [1, 2, 3, 4, 5, 6]
    assert (table["row"] == table["id"] + 1).all() and table["label"].eq("").all()
    first = out.read_bytes()
    assert invoke(pool_csv, "--k", 6, "--model", tiny_model, "--out", out, "-q").exit_code == 0
    assert out.read_bytes() == first

    labelled = tmp_path / "labelled.csv"
    table.assign(label=table["topic"]).to_csv(labelled, index=False)
    out2 = tmp_path / "next.jsonl"
    result = invoke(
        pool_csv, "--k", 6, "--model", tiny_model, "--labelled", labelled, "--out", out2
    )
    assert result.exit_code == 0, result.output
    assert "already labelled" in result.output or "already labelled" in result.stderr
    assert not set(pd.read_json(out2, lines=True)["text"]) & set(table["text"])


def test_cli_next_batch_from_a_trained_model_folder(tiny_model, pool_csv, tmp_path):
    from fewshot.cli import cli

    train = tmp_path / "train.csv"
    frame = pd.read_csv(pool_csv)
    frame.iloc[::10].rename(columns={"topic": "label"}).to_csv(train, index=False)
    folder = tmp_path / "model"
    trained = CliRunner().invoke(
        cli, ["train", str(train), "--model", tiny_model, "--out", str(folder), "-q"]
    )
    assert trained.exit_code == 0, trained.output
    out = tmp_path / "to_label.tsv"
    result = invoke(pool_csv, "--k", 5, "--model", folder, "--labelled", train, "--out", out, "-q")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out, sep="\t")
    assert len(table) == 5 and table["reason"].str.startswith("margin uncertainty").all()
    assert not set(table["text"]) & set(frame["text"].iloc[::10])


@pytest.mark.parametrize(
    "extra, code, message",
    [
        (["--k", 81], 1, "--k 81 is larger than the pool"),
        (["--k", 2, "--strategy", "margin"], 2, "--strategy margin ranks texts by a trained"),
        (["--k", 2, "--out", "x.txt"], 2, "must end in one of"),
        (["--k", 2, "--text-col", "body"], 2, "column 'body' not found"),
    ],
)
def test_cli_errors_are_one_line(tiny_model, pool_csv, tmp_path, extra, code, message):
    args = [pool_csv, "--model", tiny_model, "--out", tmp_path / "o.csv", *extra]
    if extra[-2:] == ["--out", "x.txt"]:
        args = [pool_csv, "--model", tiny_model, *extra]
    result = invoke(*args)
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0]
