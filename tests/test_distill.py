"""fewshot.distill: a static student of a fitted classifier, on the tiny model."""

import json
import os

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from fewshot import DistilEmbedder, SetFitClassifier
from fewshot.data import load_customer_feedback
from fewshot.distill import MIN_POOL, StaticStudentClassifier, distill, write_static_encoder


@pytest.fixture(scope="module")
def data():
    feedback = load_customer_feedback()
    return list(feedback.text), np.asarray(feedback.target)


@pytest.fixture(scope="module")
def teacher(tiny_model, data):
    texts, y = data
    picked = np.concatenate([np.flatnonzero(y == c)[:4] for c in np.unique(y)])
    clf = SetFitClassifier(model=tiny_model, n_iterations=1, random_state=0)
    return clf.fit([texts[i] for i in picked], y[picked])


@pytest.fixture(scope="module")
def pool(data):
    texts, _ = data
    return texts + [f"{a} {b}" for a, b in zip(texts, texts[1:])]  # 159 texts


@pytest.fixture(scope="module")
def student(teacher, pool):
    return StaticStudentClassifier(teacher=teacher, pca_dims=16, random_state=0).fit(pool)


def test_fit_predict_transform(student, teacher, data):
    texts, _ = data
    assert student.classes_.tolist() == teacher.classes_.tolist()
    proba = student.predict_proba(texts + [""])
    assert proba.shape == (len(texts) + 1, len(teacher.classes_))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert set(student.predict(texts)) <= set(teacher.classes_)
    Z = student.transform(texts)
    assert Z.shape == (len(texts), 16) and Z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(student.transform([""]), 0.0)  # no token: a zero vector
    np.testing.assert_allclose(student.head_.predict_proba(Z), proba[:-1], atol=1e-12)
    assert student.embeddings_.dtype == np.int8
    assert student.n_pool_ == 159 and student.n_labelled_ == 0
    assert student.predict([]).shape == (0,)
    assert student.predict_proba([]).shape == (0, len(teacher.classes_))
    assert student.get_feature_names_out()[0] == "static_0"
    # It learnt the teacher: agreement well above chance on the teacher's own texts.
    assert (student.predict(texts) == teacher.predict(texts)).mean() > 0.6


def test_teacher_unchanged_and_determinism(teacher, pool, student, data):
    texts, _ = data
    before = teacher.predict_proba(texts)
    params = teacher.get_params()
    again = StaticStudentClassifier(teacher=teacher, pca_dims=16, random_state=0).fit(pool)
    np.testing.assert_array_equal(again.embeddings_, student.embeddings_)
    np.testing.assert_array_equal(again.predict_proba(texts), student.predict_proba(texts))
    np.testing.assert_array_equal(teacher.predict_proba(texts), before)
    assert teacher.get_params().keys() == params.keys()
    other = StaticStudentClassifier(teacher=teacher, pca_dims=16, random_state=1).fit(pool)
    assert other.seeds_["tune"] != student.seeds_["tune"]


def test_clone_keeps_the_fitted_teacher(student, teacher):
    copy = clone(student)
    assert copy.teacher is teacher and not hasattr(copy, "head_")
    assert copy.get_params()["pca_dims"] == 16
    copy.set_params(pca_dims=8, epochs=0)
    assert copy.get_params()["pca_dims"] == 8


def test_labelled_texts_replace_the_teachers_probabilities(teacher, pool, data):
    _, y = data
    labels = [None] * len(pool)
    labels[:80] = list(y)  # the demo texts come first in the pool
    labels[80] = -1  # scikit-learn's mark of an unlabelled text
    fitted = StaticStudentClassifier(teacher=teacher, pca_dims=8, epochs=0, random_state=0)
    fitted.fit(pool, labels)
    assert fitted.n_labelled_ == 80
    assert fitted.training_data_["class_counts"] is not None
    labels[0] = "no such class"
    with pytest.raises(ValueError, match="not one of the teacher's classes"):
        clone(fitted).fit(pool, labels)


def test_save_load_identical_and_safe(student, teacher, data, tmp_path):
    texts, _ = data
    folder = student.save(tmp_path / "student", metrics={"accuracy": 0.5})
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "README.md",
        "fewshot.json",
        "head.skops",
        "student.safetensors",
        "tokenizer.json",
    ]
    manifest = json.loads((folder / "fewshot.json").read_text())
    assert manifest["kind"] == "static-student"
    assert manifest["teacher"]["estimator"] == "fewshot.setfit.SetFitClassifier"
    assert manifest["teacher"]["training_data"] == teacher.training_data_
    assert manifest["base_model"] == teacher.base_model_
    assert manifest["training_data"]["n_samples"] == 159
    loaded = StaticStudentClassifier.load(folder)
    assert loaded.teacher is None and loaded.get_params()["pca_dims"] == 16
    np.testing.assert_array_equal(loaded.predict_proba(texts), student.predict_proba(texts))
    np.testing.assert_array_equal(loaded.predict(texts), student.predict(texts))
    # The hook fewshot.load_model uses for this kind.
    again = StaticStudentClassifier._read_folder(folder, manifest, trusted=None)
    np.testing.assert_array_equal(again.transform(texts), student.transform(texts))
    with pytest.raises(ValueError, match="model= is not used"):
        StaticStudentClassifier._read_folder(folder, manifest, model="x")


def test_load_model_reads_the_kind(student, data, tmp_path, monkeypatch):
    import fewshot.model_folder as model_folder

    if not hasattr(model_folder, "KINDS"):
        pytest.skip("this fewshot's load_model has no kind table")
    monkeypatch.setitem(
        model_folder.KINDS, "static-student", "fewshot.distill:StaticStudentClassifier"
    )
    texts, _ = data
    folder = model_folder.save_model(student, tmp_path / "s")
    loaded = model_folder.load_model(folder)
    np.testing.assert_array_equal(loaded.predict_proba(texts), student.predict_proba(texts))


def test_refuses_a_folder_of_another_kind(teacher, tmp_path):
    folder = teacher.save(tmp_path / "teacher")
    with pytest.raises(ValueError, match="not a StaticStudentClassifier folder"):
        StaticStudentClassifier.load(folder)


def test_export_matches_and_runs(student, data, tmp_path):
    pytest.importorskip("onnxruntime_extensions")
    from fewshot.distill import export_student
    from fewshot.runtime import OnnxClassifier

    texts, _ = data
    path = tmp_path / "student.onnx"
    report = export_student(student, path, verbose=False)
    assert report.checks["tokenizer_agreement"] == 1.0
    assert report.checks["float32"]["max_abs_diff"] < 1e-5
    assert report.manifest["kind"] == "static-student"
    runtime = OnnxClassifier(path)
    assert runtime.classes_.tolist() == student.classes_.tolist()
    labels, proba = runtime.predict_with_proba(texts + ["", "Ünïcödé — naïve café"])
    expected = student.predict_proba(texts + ["", "Ünïcödé — naïve café"])
    np.testing.assert_allclose(proba, expected, atol=1e-5)
    np.testing.assert_array_equal(labels, student.classes_[expected.argmax(axis=1)])
    np.testing.assert_allclose(runtime.transform(texts), student.transform(texts), atol=1e-5)


def test_static_encoder_graph_interface(student, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    path = tmp_path / "features.onnx"
    write_static_encoder(student, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask"]
    assert [o.name for o in session.get_outputs()] == ["features"]
    ids = student._token_ids(["good service", "late"])
    width = max(len(seq) for seq in ids)
    input_ids = np.zeros((2, width), dtype=np.int64)
    mask = np.zeros((2, width), dtype=np.int64)
    for row, seq in enumerate(ids):
        input_ids[row, : len(seq)], mask[row, : len(seq)] = seq, 1
    (features,) = session.run(["features"], {"input_ids": input_ids, "attention_mask": mask})
    np.testing.assert_allclose(features, student.transform(["good service", "late"]), atol=1e-6)


def test_pipeline_teacher(tiny_model, data, pool):
    texts, y = data
    teacher = Pipeline(
        [("embed", DistilEmbedder(model=tiny_model)), ("lr", LogisticRegression(max_iter=200))]
    ).fit(texts, y)
    fitted = distill(teacher, pool, pca_dims=8, epochs=1, random_state=0)
    assert fitted.classes_.tolist() == teacher.classes_.tolist()
    assert fitted.teacher_["estimator"] == "sklearn.pipeline.Pipeline"


def test_errors(tiny_model, teacher, pool):
    with pytest.raises(ValueError, match="teacher is None"):
        StaticStudentClassifier().fit(pool)
    with pytest.raises(ValueError, match="not fitted"):
        StaticStudentClassifier(teacher=SetFitClassifier(model=tiny_model)).fit(pool)
    with pytest.raises(TypeError, match="predict_proba"):
        StaticStudentClassifier(teacher="a model").fit(pool)
    with pytest.raises(ValueError, match=f"at least {MIN_POOL}"):
        StaticStudentClassifier(teacher=teacher).fit(pool[:10])
    with pytest.raises(TypeError, match=r"X\[3\]"):
        StaticStudentClassifier(teacher=teacher).fit(pool[:3] + [None] + pool[4:])
    with pytest.raises(ValueError, match="pca_dims"):
        StaticStudentClassifier(teacher=teacher, pca_dims=1).fit(pool)
    with pytest.raises(ValueError, match="one label per"):
        StaticStudentClassifier(teacher=teacher).fit(pool, ["billing"])
    with pytest.raises(Exception, match="not fitted"):
        StaticStudentClassifier(teacher=teacher).predict(["x"])


def test_every_parameter_has_a_constraint():
    params = StaticStudentClassifier().get_params(deep=False)
    assert set(params) == set(StaticStudentClassifier._constraints)
    for name, constraint in StaticStudentClassifier._constraints.items():
        with pytest.raises((ValueError, TypeError)):
            constraint.check(name, constraint.invalid())


def test_cli_distill(teacher, pool, tmp_path):
    from fewshot.cli._distill import distill as command

    folder = teacher.save(tmp_path / "teacher")
    table = tmp_path / "pool.csv"
    pd.DataFrame({"text": pool}).to_csv(table, index=False)
    out = tmp_path / "student"
    args = [folder, table, "--out", out, "--pca-dims", "8", "--epochs", "1", "--seed", "3", "-q"]
    result = CliRunner().invoke(command, [os.fspath(a) for a in args])
    assert result.exit_code == 0, result.output
    loaded = StaticStudentClassifier.load(out)
    assert loaded.embeddings_.shape[1] == 8 and loaded.random_state == 3
    assert json.loads((out / "fewshot.json").read_text())["metadata"]["n_pool"] == len(pool)
    small = tmp_path / "small.csv"
    pd.DataFrame({"text": pool[:5]}).to_csv(small, index=False)
    result = CliRunner().invoke(command, [os.fspath(folder), os.fspath(small), "--out", "x", "-q"])
    assert result.exit_code == 1 and f"at least {MIN_POOL}" in result.output
    result = CliRunner().invoke(command, ["nowhere", os.fspath(table), "--out", "x"])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_pickle_round_trip(student, data):
    import pickle

    texts, _ = data
    copy = pickle.loads(pickle.dumps(student))
    np.testing.assert_array_equal(copy.predict_proba(texts), student.predict_proba(texts))
