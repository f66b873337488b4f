"""Provenance in saved folders: the manifest's record, the model card, the loading checks."""

import hashlib
import json
import os
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from fewshot import DistilEmbedder, HeadClassifier, SetFitClassifier, load_model, save_model
from fewshot._core.loading import get_model
from fewshot._folder.provenance import (
    check_base,
    hub_commit,
    package_versions,
    training_data_record,
)
from fewshot.cli import cli
from fewshot.model_folder import MANIFEST

TEXTS = ["love it", "great value", "works well", "broke fast", "awful", "hate it"]
LABELS = ["pos", "pos", "pos", "neg", "neg", "neg"]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _expected_hash(texts, labels):
    """The documented data hash, computed independently of fewshot."""
    pairs = [[t, lab] for t, lab in zip(texts, labels)]
    payload = json.dumps(pairs, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _manifest(folder):
    return json.loads((folder / MANIFEST).read_text())


def _card(folder):
    text = (folder / "README.md").read_text()
    assert text.startswith("---\n")
    front, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(front), body


def _setfit(model, **params):
    params = {"n_iterations": 2, "random_state": 0, **params}
    return SetFitClassifier(model=model, **params).fit(TEXTS, LABELS)


@pytest.fixture(scope="module")
def setfit_folder(tiny_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("prov") / "model"
    _setfit(tiny_model).save(
        folder, metrics={"accuracy": np.float64(0.75)}, metadata={"datasets": "my-reviews"}
    )
    return folder


# -- reproducibility --------------------------------------------------------------------


def test_refitting_with_the_same_seed_gives_the_same_bytes_and_manifest(tiny_model, tmp_path):
    folders = [_setfit(tiny_model).save(tmp_path / name / "m") for name in ("a", "b")]
    for name in ("model.safetensors", "head.skops"):
        assert (folders[0] / name).read_bytes() == (folders[1] / name).read_bytes(), name
    first, second = (_manifest(f) for f in folders)
    first.pop("created_at"), second.pop("created_at")
    assert first == second
    # Another seed changes the weights, and the manifest says so.
    other = _setfit(tiny_model, random_state=1).save(tmp_path / "c" / "m")
    assert (other / "model.safetensors").read_bytes() != (
        folders[0] / "model.safetensors"
    ).read_bytes()
    assert _manifest(other)["seeds"] != _manifest(folders[0])["seeds"]


# -- what the manifest records ---------------------------------------------------------


def test_setfit_manifest_records_versions_base_data_seeds_and_metrics(tiny_model, setfit_folder):
    manifest = _manifest(setfit_folder)
    assert manifest["versions"] == package_versions()
    assert set(manifest["versions"]) == {"fewshot", "torch", "transformers", "scikit-learn"}
    import sklearn
    import torch

    assert manifest["versions"]["torch"] == torch.__version__
    assert manifest["versions"]["scikit-learn"] == sklearn.__version__
    base = manifest["base_model"]
    assert base["model"] == os.path.abspath(tiny_model) and base["commit"] is None
    assert base["fingerprint"] == get_model(tiny_model).fingerprint() is not None
    data = manifest["training_data"]
    assert data == {
        "n_samples": 6,
        "class_counts": {"neg": 3, "pos": 3},
        "sha256": _expected_hash(TEXTS, LABELS),
    }
    seeds = manifest["seeds"]
    assert seeds["random_state"] == 0 and {"pairs", "torch", "head"} <= set(seeds)
    assert manifest["metrics"] == {"accuracy": 0.75}
    params = manifest["estimator"]["params"]
    assert manifest["estimator"]["class"] == "fewshot.setfit.SetFitClassifier"
    assert set(params) == set(SetFitClassifier().get_params(deep=False))
    assert manifest["created_at"].endswith("Z")
    # The texts themselves are kept nowhere: not in the manifest, not in the card.
    saved = (setfit_folder / MANIFEST).read_text() + (setfit_folder / "README.md").read_text()
    assert not any(text in saved for text in TEXTS)


def test_data_hash_depends_on_order_labels_and_label_type():
    base = training_data_record(["a", "b"], [1, 0])
    assert base["sha256"] == _expected_hash(["a", "b"], [1, 0])
    assert training_data_record(["b", "a"], [0, 1])["sha256"] != base["sha256"]
    assert training_data_record(["a", "b"], ["1", "0"])["sha256"] != base["sha256"]
    assert training_data_record(["a", "b"], np.array([1, 0]))["sha256"] == base["sha256"]
    multi = training_data_record(["a", "b"], np.array([[1, 0], [1, 1]]))
    assert multi["class_counts"] == {"0": 2, "1": 1}
    assert multi["sha256"] == _expected_hash(["a", "b"], [[1, 0], [1, 1]])
    unlabelled = training_data_record(["a"])
    assert unlabelled["class_counts"] is None
    assert unlabelled["sha256"] == _expected_hash(["a"], [None])


def test_pipeline_and_head_folders_record_what_fit_saw(tiny_model, tmp_path):
    y = [1, 1, 1, 0, 0, 0]
    pipe = Pipeline(
        [("embed", DistilEmbedder(model=tiny_model, layers=2)), ("lr", LogisticRegression())]
    )
    folder = save_model(pipe.fit(TEXTS, y), tmp_path / "pipe")
    manifest = _manifest(folder)
    assert manifest["training_data"]["sha256"] == _expected_hash(TEXTS, y)
    assert manifest["training_data"]["class_counts"] == {"0": 3, "1": 3}
    assert manifest["seeds"] == {"lr__random_state": None}
    assert manifest["estimator"]["params"]["steps"][1][1]["class"].endswith("LogisticRegression")
    # Loaded and saved again, the folder keeps the original record.
    again = _manifest(save_model(load_model(folder), tmp_path / "again"))
    assert again["training_data"] == manifest["training_data"]
    assert again["base_model"] == manifest["base_model"]

    head = HeadClassifier(model=tiny_model, temperature=1.0).fit(TEXTS[:4], [1, 1, 1, 0])
    manifest = _manifest(save_model(head, tmp_path / "head"))
    assert manifest["training_data"]["sha256"] == _expected_hash(TEXTS[:4], [1, 1, 1, 0])
    assert manifest["base_model"]["fingerprint"] == get_model(tiny_model).fingerprint()


def test_metrics_must_be_numbers(tiny_model, tmp_path):
    clf = _setfit(tiny_model)
    with pytest.raises(TypeError, match="metrics hold numbers"):
        clf.save(tmp_path / "m", metrics={"accuracy": "high"})


# -- the base model: hub commit and fingerprint ----------------------------------------


def _fake_hub_cache(root, source):
    """The Hugging Face cache layout: snapshot files are links to blobs named by hash."""
    repo = root / "models--org--tiny"
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    for file in sorted(os.listdir(source)):
        data = open(os.path.join(source, file), "rb").read()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        os.symlink(os.path.relpath(blob, snapshot), snapshot / file)
    return snapshot


def test_hub_model_records_the_resolved_commit_and_its_files(tiny_model, tmp_path, monkeypatch):
    import huggingface_hub.constants

    source = tmp_path / "with-card"
    shutil.copytree(tiny_model, source)
    (source / "README.md").write_text("---\nlicense: apache-2.0\n---\n# tiny\n")
    snapshot = _fake_hub_cache(tmp_path / "hub", source)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    embedder = DistilEmbedder(model="org/tiny", revision="main", layers=1).fit(TEXTS)
    base = embedder.base_model_
    # A branch name alone is not a pin: the commit it resolved to is recorded.
    assert base["model"] == "org/tiny" and base["revision"] == "main"
    assert base["commit"] == COMMIT == hub_commit(snapshot)
    # The fingerprint hashes the snapshot's files (not the hash-named blobs behind them).
    assert base["fingerprint"] == get_model(tiny_model).fingerprint()
    assert base["license"] == "apache-2.0"
    pipe = Pipeline([("embed", embedder), ("lr", LogisticRegression())]).fit(TEXTS, LABELS)
    meta, _ = _card(save_model(pipe, tmp_path / "m"))
    assert meta["base_model"] == "org/tiny" and meta["license"] == "apache-2.0"


def test_hub_commit_only_from_a_snapshot_folder(tmp_path):
    assert hub_commit(tmp_path / "models--a--b" / "snapshots" / COMMIT) == COMMIT
    assert hub_commit(tmp_path / "snapshots" / COMMIT) is None
    assert hub_commit(tmp_path / "models--a--b" / "snapshots" / "main") is None
    assert hub_commit(None) is None


def test_check_base_refuses_other_weights(tiny_model, tiny_body_only, setfit_folder):
    base = _manifest(setfit_folder)["base_model"]
    check_base(base, get_model(tiny_model))
    with pytest.raises(ValueError, match="is not the encoder .* its files differ"):
        check_base(base, get_model(tiny_body_only), where="the adapter")


# -- loading checks ---------------------------------------------------------------------


def _copy_with(folder, tmp_path, **changes):
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    manifest = _manifest(copy)
    for key, value in changes.items():
        manifest[key] = value(manifest[key]) if callable(value) else value
    (copy / MANIFEST).write_text(json.dumps(manifest))
    return copy


def test_a_newer_format_version_is_refused(setfit_folder, tmp_path):
    copy = _copy_with(setfit_folder, tmp_path, format_version=99, fewshot_version="9.0")
    with pytest.raises(ValueError, match="made by fewshot 9.0 with format version 99.*Upgrade"):
        load_model(copy)
    with pytest.raises(ValueError, match="Upgrade"):
        SetFitClassifier.load(copy)


def test_other_package_versions_give_one_warning_naming_them(setfit_folder, tmp_path):
    def older(versions):
        return {**versions, "torch": "1.0.0", "scikit-learn": "0.1"}

    copy = _copy_with(setfit_folder, tmp_path, versions=older)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_model(copy)
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(messages) == 1, messages
    assert "torch 1.0.0" in messages[0] and "scikit-learn 0.1" in messages[0]
    assert "transformers" not in messages[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model(setfit_folder)  # same versions: silent


# -- the model card and `fewshot info` --------------------------------------------------


def test_model_card_has_hub_metadata_and_a_usage_snippet(setfit_folder):
    meta, body = _card(setfit_folder)
    assert meta["library_name"] == "fewshot"
    assert {"fewshot", "setfit", "text-classification"} <= set(meta["tags"])
    assert meta["datasets"] == ["my-reviews"]
    assert "base_model" not in meta  # a local folder is no hub id
    manifest = _manifest(setfit_folder)
    assert manifest["training_data"]["sha256"] in body and "accuracy" in body
    assert f"load_model({str(setfit_folder)!r})" in body


def test_info_prints_the_manifest_as_text_and_json(setfit_folder):
    result = CliRunner().invoke(cli, ["info", str(setfit_folder), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == _manifest(setfit_folder)
    result = CliRunner().invoke(cli, ["info", str(setfit_folder)])
    assert result.exit_code == 0, result.output
    text = result.output
    assert "kind: setfit" in text and "fingerprint: " in text
    assert _manifest(setfit_folder)["training_data"]["sha256"] in text


def test_info_on_a_train_folder_and_bad_paths(tiny_model, tmp_path):
    table = tmp_path / "train.csv"
    pd.DataFrame({"text": TEXTS, "label": LABELS}).to_csv(table, index=False)
    out = tmp_path / "trained"
    runner = CliRunner()
    args = ["train", str(table), "--out", str(out), "--model", tiny_model, "--layers", "1", "-q"]
    assert runner.invoke(cli, args).exit_code == 0
    manifest = json.loads(runner.invoke(cli, ["info", str(out), "--json"]).output)
    assert manifest["training_data"]["sha256"] == _expected_hash(TEXTS, LABELS)
    assert manifest["metadata"]["random_state"] == 0
    result = runner.invoke(cli, ["info", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "does not exist" in result.output
    result = runner.invoke(cli, ["info", str(tmp_path)])
    assert result.exit_code == 1 and "has no fewshot.json" in result.output


def test_info_prints_an_onnx_files_manifest_with_its_provenance(tiny_model, tmp_path):
    pytest.importorskip("onnxscript")
    pytest.importorskip("onnxruntime")
    from fewshot.export import to_onnx

    pipe = Pipeline(
        [("embed", DistilEmbedder(model=tiny_model, layers=2)), ("lr", LogisticRegression())]
    ).fit(TEXTS, LABELS)
    path = tmp_path / "model.onnx"
    to_onnx(pipe, path, inputs="token_ids", check_texts=TEXTS[:2], verbose=False)
    result = CliRunner().invoke(cli, ["info", str(path), "--json"])
    assert result.exit_code == 0, result.output
    provenance = json.loads(result.output)["provenance"]
    assert provenance["training_data"]["sha256"] == _expected_hash(TEXTS, LABELS)
    assert provenance["versions"] == package_versions()
    assert "provenance:" in CliRunner().invoke(cli, ["info", str(path)]).output
