"""The one model-folder format: round trips, and the trust rule against attacks that worked."""

import json
import shutil

import numpy as np
import pytest
import skops.io
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from fewshot import DistilEmbedder, SetFitClassifier, load_model, save_model
from fewshot.data import load_customer_feedback
from fewshot.model_folder import MANIFEST

TEXTS = ["love it", "great value", "works well", "broke fast", "awful", "hate it"]
LABELS = ["pos", "pos", "pos", "neg", "neg", "neg"]


@pytest.fixture(scope="module")
def feedback():
    return load_customer_feedback(return_X_y=True)


def _pipeline(model, *steps):
    return Pipeline(
        [
            ("embed", DistilEmbedder(model=model, layers=3)),
            *steps,
            ("classify", LogisticRegression(max_iter=1000)),
        ]
    )


def _evil_model_folder(tmp_path, tiny_model):
    """A model folder whose config maps the auto classes to a Python file that leaves a mark."""
    folder = tmp_path / "evil-model"
    shutil.copytree(tiny_model, folder)
    marker = tmp_path / "code-ran"
    (folder / "evil.py").write_text(
        f"open({str(marker)!r}, 'w').write('pwned')\n"
        "from transformers import DistilBertConfig, DistilBertModel\n"
        "class EvilConfig(DistilBertConfig):\n    pass\n"
        "class EvilModel(DistilBertModel):\n    pass\n"
    )
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {
        "AutoConfig": "evil.EvilConfig",
        "AutoModel": "evil.EvilModel",
        "AutoModelForSequenceClassification": "evil.EvilModel",
    }
    (folder / "config.json").write_text(json.dumps(config))
    return folder, marker


def test_pipeline_round_trip_is_self_contained(tiny_model, feedback, tmp_path):
    texts, topics = feedback
    clf = _pipeline(tiny_model, ("scale", StandardScaler())).fit(texts, topics)
    folder = save_model(clf, tmp_path / "m")
    shutil.copytree(folder, tmp_path / "moved")  # works from anywhere: nothing points outside
    shutil.rmtree(folder)
    loaded = load_model(tmp_path / "moved")
    assert [name for name, _ in loaded.steps] == ["embed", "scale", "classify"]
    np.testing.assert_allclose(loaded.predict_proba(texts), clf.predict_proba(texts), atol=1e-6)
    assert loaded.predict(texts).tolist() == clf.predict(texts).tolist()


def test_the_head_file_holds_only_listed_types(tiny_model, feedback, tmp_path):
    from fewshot._folder.trust import HEAD_TYPES

    texts, topics = feedback
    folder = save_model(_pipeline(tiny_model).fit(texts, topics), tmp_path / "m")
    untrusted = skops.io.get_untrusted_types(file=folder / "head.skops")
    assert set(untrusted) <= HEAD_TYPES
    # A head rewritten to hold another type is refused, not loaded.
    skops.io.dump(Pipeline([("embed", DistilEmbedder(model=tiny_model))]), folder / "head.skops")
    with pytest.raises(ValueError, match=r"fewshot\.embedder\.DistilEmbedder .*is refused"):
        load_model(folder)


def test_stored_remote_code_request_is_refused_and_never_runs(tiny_model, feedback, tmp_path):
    """Issue 10, attack 1: params rewritten to model=<folder with auto_map .py>, trust=True."""
    texts, topics = feedback
    folder = save_model(_pipeline(tiny_model).fit(texts, topics), tmp_path / "m")
    evil, marker = _evil_model_folder(tmp_path, tiny_model)
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["params"].update(model=str(evil), trust_remote_code=True)
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="saved with trust_remote_code=True.*refused"):
        load_model(folder)
    assert not marker.exists()
    # The model reference alone is never followed: the folder's own encoder is used.
    manifest["params"]["trust_remote_code"] = False
    (folder / MANIFEST).write_text(json.dumps(manifest))
    loaded = load_model(folder)
    assert loaded.predict(texts[:3]).shape == (3,)
    assert "evil" not in loaded[0].model
    assert not marker.exists()


def test_an_encoder_with_an_auto_map_runs_no_code(tiny_model, feedback, tmp_path):
    texts, topics = feedback
    folder = save_model(_pipeline(tiny_model).fit(texts, topics), tmp_path / "m")
    evil, marker = _evil_model_folder(tmp_path, tiny_model)
    shutil.rmtree(folder / "encoder")
    shutil.copytree(evil, folder / "encoder")
    load_model(folder).predict(texts[:2])
    assert not marker.exists()


def test_the_cli_attack_on_a_fewshot_0_1_folder_is_refused(tiny_model, tmp_path):
    """fewshot 0.1's `fewshot train` wrote pipeline.skops trusting fewshot types."""
    from click.testing import CliRunner

    from fewshot.cli import cli

    folder = tmp_path / "old"
    folder.mkdir()
    evil, marker = _evil_model_folder(tmp_path, tiny_model)
    pipeline = Pipeline(
        [
            ("embed", DistilEmbedder(model=str(evil), trust_remote_code=True)),
            ("classify", LogisticRegression()),
        ]
    )
    skops.io.dump(pipeline, folder / "pipeline.skops")
    (folder / "fewshot-model.json").write_text(json.dumps({"format": 1, "kind": "pipeline"}))
    data = tmp_path / "new.csv"
    data.write_text("text\nlate again\n")
    result = CliRunner().invoke(
        cli, ["predict", str(folder), str(data), "--out", str(tmp_path / "p.csv")]
    )
    assert result.exit_code == 1 and "could be rewritten to run code" in result.output
    assert not marker.exists() and not (tmp_path / "p.csv").exists()


def test_model_override_must_be_the_same_weights(tiny_model, tiny_body_only, feedback, tmp_path):
    texts, topics = feedback
    clf = _pipeline(tiny_model).fit(texts, topics)
    folder = save_model(clf, tmp_path / "m")
    moved = tmp_path / "moved-base"
    shutil.copytree(tiny_model, moved)
    same = load_model(folder, model=moved)
    np.testing.assert_allclose(same.predict_proba(texts), clf.predict_proba(texts), atol=1e-6)
    with pytest.raises(ValueError, match="is not the encoder"):
        load_model(folder, model=tiny_body_only)
    shutil.rmtree(folder / "encoder")
    with pytest.raises(ValueError, match="has no encoder/.*pass model="):
        load_model(folder)


def test_setfit_folder_is_the_same_format(tiny_model, tmp_path):
    clf = SetFitClassifier(model=tiny_model, n_iterations=1, random_state=0).fit(TEXTS, LABELS)
    folder = clf.save(tmp_path / "sf")
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["kind"] == "setfit" and manifest["classes"] == ["neg", "pos"]
    again = load_model(folder)
    np.testing.assert_array_equal(again.predict_proba(TEXTS), clf.predict_proba(TEXTS))
    with pytest.raises(ValueError, match="model= is not used"):
        load_model(folder, model=tiny_model)
    manifest["params"]["trust_remote_code"] = True
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        SetFitClassifier.load(folder)
    assert SetFitClassifier.load(folder, trust_remote_code=True).predict(TEXTS).shape == (6,)


def test_a_fewshot_0_1_setfit_folder_still_loads(tiny_model, tmp_path):
    clf = SetFitClassifier(model=tiny_model, n_iterations=1, random_state=0).fit(TEXTS, LABELS)
    folder = clf.save(tmp_path / "sf")
    manifest = json.loads((folder / MANIFEST).read_text())
    legacy = {
        "format": "fewshot-setfit",
        "format_version": 1,
        "params": manifest["params"],
        "classes": manifest["classes"],
        "default_head": True,
        **manifest["fitted"],
    }
    (folder / MANIFEST).unlink()
    (folder / "fewshot_setfit.json").write_text(json.dumps(legacy))
    again = SetFitClassifier.load(folder)
    np.testing.assert_array_equal(again.predict(TEXTS), clf.predict(TEXTS))


def test_save_model_names_what_it_takes(tmp_path):
    with pytest.raises(
        TypeError, match="fitted fewshot classifier .* or a Pipeline whose first step"
    ):
        save_model(LogisticRegression(), tmp_path / "m")
