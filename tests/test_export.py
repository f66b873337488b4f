"""fewshot.export.to_onnx: one ONNX file from text to label, equal to the Python estimator.

Every export here uses the tiny random DistilBERT (a few seconds each); files are made
once per module. Equality: float32 probabilities (and features) within 1e-4 of the
Python estimator and identical labels, on the 80 demo texts plus the edge-case texts of
conftest (empty, Unicode, long). The 1,000-sentence SST-2 check on real weights is in
benchmarks/latency.py.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from fewshot import DistilEmbedder, HeadClassifier, SetFitClassifier, load_model
from fewshot.data import load_customer_feedback

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxruntime_extensions")
pytest.importorskip("onnxscript")

from fewshot.export import ExportReport, to_onnx  # noqa: E402
from fewshot.export import _encoder as _export_encoder  # noqa: E402
from fewshot.export import _tokenizer as _export_tokenizer  # noqa: E402
from fewshot.runtime import MANIFEST_KEY, TOKENIZER_KEY, OnnxClassifier, read_manifest  # noqa: E402

TOLERANCE = 1e-4
# One check text is longer than the tiny model's 128 tokens on purpose (cut as in Python).
pytestmark = pytest.mark.filterwarnings("ignore::fewshot._core.encoding.TruncationWarning")


@pytest.fixture(scope="module")
def data():
    texts, topics = load_customer_feedback(return_X_y=True)
    return list(texts), np.asarray(topics)


EDGE_TEXTS = [
    "",
    "bad",
    "I was charged twice for the same order, and nobody answered my emails for weeks.",
    "Ünïcödé text — naïve café ☕ 日本語",
    "   spaces   and\ttabs\n",
    "word " * 300,  # longer than max_length: cut as in Python
]


@pytest.fixture(scope="module")
def eval_texts(data):
    return data[0] + EDGE_TEXTS


@pytest.fixture(scope="module")
def pipeline(tiny_model, data):
    texts, topics = data
    embed = DistilEmbedder(model=tiny_model, layers=[2, 4])
    return Pipeline([("embed", embed), ("lr", LogisticRegression(max_iter=1000))]).fit(
        texts, topics
    )


@pytest.fixture(scope="module")
def outdir(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx")


@pytest.fixture(scope="module")
def pipeline_file(pipeline, outdir):
    path = outdir / "pipeline.onnx"
    report = to_onnx(pipeline, path, verbose=False)
    return path, report


def assert_same_predictions(onnx_clf, clf, texts):
    proba = onnx_clf.predict_proba(texts)
    np.testing.assert_allclose(proba, clf.predict_proba(texts), atol=TOLERANCE, rtol=0)
    assert onnx_clf.predict(texts).tolist() == clf.predict(texts).tolist()


def test_pipeline_float32_file_equals_the_estimator(pipeline_file, pipeline, eval_texts):
    path, report = pipeline_file
    assert isinstance(report, ExportReport) and report.size_bytes == path.stat().st_size
    onnx_clf = OnnxClassifier(path)
    assert onnx_clf.classes_.tolist() == pipeline.classes_.tolist()
    assert_same_predictions(onnx_clf, pipeline, eval_texts)
    # The features output is the embedder's output (what the head sees).
    np.testing.assert_allclose(
        onnx_clf.transform(eval_texts), pipeline[0].transform(eval_texts), atol=TOLERANCE
    )


def test_manifest_records_classes_settings_and_measured_agreement(pipeline_file, pipeline):
    path, report = pipeline_file
    manifest = read_manifest(path)
    assert manifest == report.manifest
    assert manifest["kind"] == "pipeline" and manifest["inputs"] == "text"
    assert manifest["classes"] == pipeline.classes_.tolist() and manifest["class_type"] == "str"
    assert manifest["outputs"] == ["label", "probabilities", "features"]
    assert manifest["source"]["layers"] == [2, 4] and manifest["head"] == "LogisticRegression"
    assert manifest["max_length"] == 128 and manifest["tokenizer"]["in_graph"] is True
    checks = manifest["checks"]
    assert checks["n_texts"] == 84 and checks["tokenizer_agreement"] == 1.0
    assert checks["float32"]["max_abs_diff"] <= TOLERANCE
    assert checks["float32"]["label_agreement"] == 1.0
    assert "int8" not in checks
    assert "float32 vs the Python estimator" in report.summary()


def test_the_file_is_one_graph_with_tokenizer_encoder_and_head(pipeline_file):
    import onnx

    model = onnx.load(pipeline_file[0])
    assert [i.name for i in model.graph.input] == ["text"]
    assert [o.name for o in model.graph.output] == ["features", "label", "probabilities"]
    ops = {node.op_type for node in model.graph.node}
    assert {"Loop", "Softmax", "ArgMax"} <= ops
    keys = {entry.key for entry in model.metadata_props}
    assert MANIFEST_KEY in keys and TOKENIZER_KEY not in keys
    # The encoder is cut at layer 4 of 6: DistilBERT has one LayerNorm after the
    # embeddings and two per block, so the graph holds 1 + 2 * 4 of them, not 1 + 2 * 6.
    n_layer_norms = sum(node.op_type == "LayerNormalization" for node in model.graph.node)
    assert n_layer_norms == 1 + 2 * 4


@pytest.mark.parametrize("normalize", [None, True])
def test_setfit_folder_exported_by_the_cli_equals_the_loaded_classifier(
    tiny_model, data, eval_texts, tmp_path, normalize
):
    from fewshot.cli import cli

    texts, topics = data
    clf = SetFitClassifier(
        model=tiny_model, layer=3, n_iterations=1, normalize=normalize, random_state=0
    )
    clf.fit(texts[::4], topics[::4])
    clf.save(tmp_path / "setfit")
    out = tmp_path / "setfit.onnx"
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "setfit"), str(out)])
    assert result.exit_code == 0, result.output
    assert "float32 vs the Python estimator" in result.stderr
    assert "labels agree on 100.0%" in result.stderr
    onnx_clf = OnnxClassifier(out)
    assert onnx_clf.kind == "setfit"
    loaded = load_model(tmp_path / "setfit", device="cpu")
    assert_same_predictions(onnx_clf, loaded, eval_texts)
    np.testing.assert_allclose(
        onnx_clf.transform(eval_texts), loaded.transform(eval_texts), atol=TOLERANCE
    )
    norms = np.linalg.norm(onnx_clf.transform(eval_texts), axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5) == bool(normalize)  # the tiny model is no ST folder


def test_embedder_features_equal_with_layers_pooling_head_and_normalisation(
    tiny_model, eval_texts, outdir
):
    embedder = DistilEmbedder(
        model=tiny_model, layers=[0, 3], pooling="max", head="proba", normalize=True
    )
    path = outdir / "embedder.onnx"
    report = to_onnx(embedder, path, verbose=False)
    onnx_embedder = OnnxClassifier(path)
    assert onnx_embedder.kind == "embedder" and onnx_embedder.classes_ is None
    assert report.manifest["outputs"] == ["features"]
    np.testing.assert_allclose(
        onnx_embedder.transform(eval_texts), embedder.fit_transform(eval_texts), atol=TOLERANCE
    )
    with pytest.raises(TypeError, match="feature extractor"):
        onnx_embedder.predict(["a"])


def test_head_classifier_with_label_map_and_temperature(tiny_model, data, eval_texts, outdir):
    texts = data[0][:12]
    labels = ["bad", "good"] * 6
    clf = HeadClassifier(
        model=tiny_model, label_map={"bad": "NEGATIVE", "good": 1}, temperature=2.5
    ).fit(texts, labels)
    path = outdir / "head.onnx"
    report = to_onnx(clf, path, verbose=False)
    assert report.manifest["kind"] == "head" and report.manifest["n_features"] == 2
    assert "temperature 2.5" in report.manifest["head"]
    onnx_clf = OnnxClassifier(path)
    assert onnx_clf.classes_.tolist() == ["bad", "good"]
    assert_same_predictions(onnx_clf, clf, eval_texts)


def test_int8_file_is_measured_and_stored(pipeline, eval_texts, outdir, monkeypatch):
    # The tiny vocabulary has 240 rows (positions: 128); lower the threshold so its word
    # table is stored as int8 as an anchor-sized one would be.
    monkeypatch.setattr(_export_encoder, "EMBEDDING_ROWS", 200)
    path = outdir / "pipeline.int8.onnx"
    report = to_onnx(pipeline, path, quantize="int8", verbose=False)
    checks = read_manifest(path)["checks"]
    assert report.manifest["quantize"] == "int8" and checks["int8_embedding_tables"] == 1
    assert checks["float32"]["max_abs_diff"] <= TOLERANCE
    assert checks["int8"]["label_agreement"] >= 0.9 and checks["int8"]["max_abs_diff"] < 0.1
    assert "int8 vs the Python estimator" in report.summary()
    onnx_clf = OnnxClassifier(path)
    proba = onnx_clf.predict_proba(eval_texts)
    assert np.abs(proba - pipeline.predict_proba(eval_texts)).max() < 0.1
    import onnx

    ops = {node.op_type for node in onnx.load(path).graph.node}
    assert "DynamicQuantizeLinear" in ops or "MatMulInteger" in ops


def test_token_ids_file_takes_ids_and_stores_the_tokenizer(pipeline, eval_texts, outdir):
    import onnx
    from tokenizers import Tokenizer

    path = outdir / "pipeline.ids.onnx"
    to_onnx(pipeline, path, inputs="token_ids", verbose=False)
    model = onnx.load(path)
    assert [i.name for i in model.graph.input] == ["input_ids", "attention_mask"]
    assert all(entry.domain != "ai.onnx.contrib" for entry in model.opset_import)
    metadata = {entry.key: entry.value for entry in model.metadata_props}
    tokenizer = Tokenizer.from_str(metadata[TOKENIZER_KEY])
    tokenizer.enable_truncation(json.loads(metadata[MANIFEST_KEY])["max_length"])
    ids = [encoding.ids for encoding in tokenizer.encode_batch(eval_texts)]
    onnx_clf = OnnxClassifier(path)
    assert onnx_clf.inputs == "token_ids"
    np.testing.assert_allclose(
        onnx_clf.predict_proba(ids), pipeline.predict_proba(eval_texts), atol=TOLERANCE
    )
    assert onnx_clf.predict(ids).tolist() == pipeline.predict(eval_texts).tolist()
    with pytest.raises(ValueError, match="at most 128"):
        onnx_clf.predict([[2] * 200])
    # It runs where neither the extensions nor torch, transformers or scikit-learn import.
    code = f"""
import importlib.abc, importlib.util, json, sys

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {{"onnxruntime_extensions", "torch", "transformers", "sklearn"}}:
            raise ImportError(name + " is blocked in this test")

sys.meta_path.insert(0, Refuse())
from fewshot import runtime
print(json.dumps(runtime.OnnxClassifier({str(path)!r}).predict({ids[:5]!r}).tolist()))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == pipeline.predict(eval_texts[:5]).tolist()


def test_other_sklearn_heads_go_through_skl2onnx(tiny_model, data, eval_texts, outdir):
    pytest.importorskip("skl2onnx")
    texts, topics = data
    codes = np.unique(topics, return_inverse=True)[1]  # integer classes 0..3
    clf = Pipeline(
        [
            ("embed", DistilEmbedder(model=tiny_model, layers=1)),
            ("scale", StandardScaler()),
            ("lr", LogisticRegression(max_iter=1000)),
        ]
    ).fit(texts, codes)
    path = outdir / "scaled.onnx"
    report = to_onnx(clf, path, verbose=False)
    assert report.manifest["head"] == "StandardScaler -> LogisticRegression"
    assert report.manifest["class_type"] == "int"
    onnx_clf = OnnxClassifier(path)
    assert onnx_clf.classes_.tolist() == [0, 1, 2, 3]
    assert_same_predictions(onnx_clf, clf, eval_texts)


def test_refusals_name_what_is_supported(tiny_model, data, pipeline, tmp_path):
    texts, topics = data
    svc = Pipeline([("embed", DistilEmbedder(model=tiny_model)), ("svc", LinearSVC())])
    with pytest.raises(ValueError, match="Supported heads: LogisticRegression"):
        to_onnx(svc.fit(texts, topics), tmp_path / "svc.onnx", verbose=False)
    chunked = Pipeline(
        [
            ("embed", DistilEmbedder(model=tiny_model, long_text="chunk")),
            ("lr", LogisticRegression()),
        ]
    ).fit(texts, topics)
    with pytest.raises(ValueError, match="long_text='chunk'"):
        to_onnx(chunked, tmp_path / "chunk.onnx", verbose=False)
    with pytest.raises(TypeError, match="to_onnx exports a fitted DistilEmbedder"):
        to_onnx(LogisticRegression(), tmp_path / "x.onnx", verbose=False)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        to_onnx(SetFitClassifier(model=tiny_model), tmp_path / "x.onnx", verbose=False)
    with pytest.raises(ValueError, match="quantize="):
        to_onnx(pipeline, tmp_path / "x.onnx", quantize="int4", verbose=False)
    with pytest.raises(ValueError, match="inputs="):
        to_onnx(pipeline, tmp_path / "x.onnx", inputs="ids", verbose=False)
    assert not list(tmp_path.glob("*.onnx"))


def test_tokenizers_the_graph_cannot_hold_are_refused_with_the_alternative():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(vocab={"a": 0, "b": 1, "<unk>": 2}, merges=[], unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe)
    with pytest.raises(ValueError, match="inputs='token_ids'") as error:
        _export_tokenizer.wordpiece_settings(tokenizer)
    assert "model BPE" in str(error.value) and "WordPiece" in str(error.value)


def test_cli_export_errors_are_one_line(tmp_path):
    from fewshot.cli import cli

    result = CliRunner().invoke(
        cli, ["export", str(tmp_path / "missing"), str(tmp_path / "m.onnx")]
    )
    assert result.exit_code == 2 and "does not exist" in result.stderr
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "empty"), str(tmp_path / "m.txt")])
    assert result.exit_code == 2 and "must end in one of .onnx" in result.stderr
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "empty"), str(tmp_path / "m.onnx")])
    assert result.exit_code == 1 and "no fewshot.json" in result.stderr
