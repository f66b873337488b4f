from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import matthews_corrcoef  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402

from fewshot import DistilEmbedder  # noqa: E402
from fewshot.data import load_customer_feedback, read_dataset, read_split, sample_per_class  # noqa: E402
from fewshot.evaluation import evaluate_few_shot, plot_learning_curve, summarize  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason="../shared/data is not beside the checkout"
)


@needs_shared
def test_read_real_dataset_folder():
    splits = read_dataset(SHARED / "sst2")
    assert len(splits["train"]) == 6920 and len(splits["test"]) == 1821
    assert set(splits["train"]["label"]) == {0, 1}
    assert {"text", "label", "label_text"} <= set(splits["test"].columns)
    trec = read_split(SHARED / "trec", "test")
    assert len(trec) == 500 and sorted(trec["label"].unique()) == list(range(6))


def test_read_csv_and_errors(tmp_path):
    (tmp_path / "train.csv").write_text('review,stars\n"great, really",5\n"",1\n', encoding="utf-8")
    frame = read_split(tmp_path, "train", text_column="review", label_column="stars")
    assert frame["text"].tolist() == ["great, really", ""] and frame["label"].tolist() == [5, 1]
    with pytest.raises(FileNotFoundError, match="No test.jsonl or test.csv"):
        read_split(tmp_path, "test")
    with pytest.raises(ValueError, match="no column 'text'"):
        read_split(tmp_path / "train.csv")
    with pytest.raises(ValueError, match="name the split"):
        read_split(tmp_path)


def test_sample_per_class_is_stratified_without_replacement_and_seeded():
    texts, topics = load_customer_feedback(return_X_y=True)
    X, y = sample_per_class(texts, topics, 5, random_state=3)
    assert len(X) == 20 and len(set(X)) == 20
    assert {t: list(y).count(t) for t in set(y)} == {
        "billing": 5,
        "delivery": 5,
        "product": 5,
        "service": 5,
    }
    assert all(topics[texts.index(x)] == label for x, label in zip(X, y))
    assert sample_per_class(texts, topics, 5, random_state=3)[0] == X
    assert sample_per_class(texts, topics, 5, random_state=4)[0] != X
    with pytest.raises(ValueError, match="class 'billing' has 20 examples, fewer than the 21"):
        sample_per_class(texts, topics, 21)


def test_evaluate_few_shot_matches_a_manual_run(tiny_model):
    texts, topics = load_customer_feedback(return_X_y=True)
    topics = np.asarray(topics)
    pipe = Pipeline(
        [("embed", DistilEmbedder(model=tiny_model, layers=3)), ("lr", LogisticRegression())]
    )
    runs = evaluate_few_shot(
        pipe,
        texts,
        topics,
        texts,
        topics,
        n_per_class=[2, 4],
        seeds=[0, 1],
        scoring="matthews",
        method="probe",
    )
    assert runs[["n_per_class", "seed"]].values.tolist() == [[2, 0], [2, 1], [4, 0], [4, 1]]
    X_s, y_s = sample_per_class(texts, topics, 4, random_state=1)
    manual = matthews_corrcoef(topics, pipe.fit(X_s, y_s).predict(texts))
    assert runs["score"].iloc[3] == pytest.approx(manual)

    table = summarize(runs)
    row = table[table["n_per_class"] == 2].iloc[0]
    scores = runs[runs["n_per_class"] == 2]["score"].to_numpy()
    assert row["mean"] == pytest.approx(scores.mean()) and row["std"] == pytest.approx(scores.std())
    assert row["result"] == f"{100 * scores.mean():.1f} ± {100 * scores.std():.1f}"

    ax = plot_learning_curve(runs)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["probe"]
    line = ax.get_lines()[0]
    np.testing.assert_allclose(line.get_xdata(), [2, 4])
    np.testing.assert_allclose(line.get_ydata(), table["mean"].to_numpy())
    assert ax.get_ylabel() == "matthews"


def test_unknown_metric():
    with pytest.raises(ValueError, match="scoring='auc' is not known"):
        evaluate_few_shot(LogisticRegression(), [[0]] * 4, [0, 0, 1, 1], [[0]], [0], scoring="auc")


def test_calibration_does_not_embed_the_test_set_twice(tiny_model, monkeypatch):
    texts, topics = load_customer_feedback(return_X_y=True)
    test_sizes = []
    real = DistilEmbedder.transform

    def counting(self, X, *args, **kwargs):
        if len(X) == 40:
            test_sizes.append(len(X))
        return real(self, X, *args, **kwargs)

    monkeypatch.setattr(DistilEmbedder, "transform", counting)
    clf = Pipeline(
        [
            ("embed", DistilEmbedder(model=tiny_model, layers=2)),
            ("lr", LogisticRegression(max_iter=500)),
        ]
    )
    runs = evaluate_few_shot(
        clf, texts[::2], topics[::2], texts[1::2], topics[1::2], n_per_class=2, seeds=[0, 1]
    )
    assert test_sizes == [40, 40]  # one pass over the test texts per run, ece and brier included
    assert runs["ece"].notna().all() and runs["brier"].notna().all()
