"""Input templates (``prompt``): one encoding path, cache keys, folders, ONNX and the CLI.

The reference for every prompted result is the same estimator with ``prompt=None`` given
texts formatted by hand with :meth:`str.format` (or ``prefix + text``).
"""

import dataclasses
import hashlib
import json
import shutil
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from fewshot import (
    DistilEmbedder,
    EmbeddingCache,
    HeadClassifier,
    SetFitClassifier,
    TruncationWarning,
    load_model,
    save_model,
)
from fewshot._core.plan import _namespace
from fewshot._folder.format import write_json
from fewshot.cli import cli
from fewshot.model_folder import MANIFEST

TEXTS = ["good value", "broke after a week", "works fine", "", "Ünïcödé café ☕"]
TEMPLATE = "Review: {text}"


def by_hand(prompt, texts):
    """The prompted texts, formatted independently of fewshot._core.prompt."""
    if "{text}" in prompt:
        return [prompt.format(text=t) for t in texts]
    return [prompt + t for t in texts]


# -- the one encoding path --------------------------------------------------------------


@pytest.mark.parametrize(
    "prompt",
    [TEMPLATE, "query: ", "{text} (end)", "{{label}}: {text}", "Sentiment of «{text}» is"],
)
def test_prompted_vectors_equal_texts_prompted_by_hand(tiny_model, prompt):
    embedder = DistilEmbedder(model=tiny_model, layers=[2, 6], prompt=prompt).fit(TEXTS)
    manual = DistilEmbedder(model=tiny_model, layers=[2, 6]).transform(by_hand(prompt, TEXTS))
    np.testing.assert_array_equal(embedder.transform(TEXTS), manual)
    assert embedder.prompt_ == prompt
    plain = DistilEmbedder(model=tiny_model, layers=[2, 6]).fit_transform(TEXTS)
    assert not np.allclose(plain, manual)


def test_template_and_equal_prefix_give_identical_vectors(tiny_model):
    template = DistilEmbedder(model=tiny_model, prompt="Review: {text}").fit_transform(TEXTS)
    prefix = DistilEmbedder(model=tiny_model, prompt="Review: ").fit_transform(TEXTS)
    np.testing.assert_array_equal(template, prefix)


def test_prompt_tokens_count_toward_max_length(tiny_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    text, prompt = "good value works fine", "this is a long review prefix: "
    n_plain = len(tokenizer(text)["input_ids"])
    n_prompted = len(tokenizer(prompt + text)["input_ids"])
    assert n_plain < n_prompted
    params = dict(model=tiny_model, max_length=n_plain)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncationWarning)
        DistilEmbedder(**params).fit_transform([text])  # fits without the prompt
    with pytest.warns(TruncationWarning, match="1 of 1 texts"):
        prompted = DistilEmbedder(**params, prompt=prompt).fit_transform([text])
    ids = tokenizer(prompt + text, truncation=True, max_length=n_plain)["input_ids"]
    cut = tokenizer.decode(ids, skip_special_tokens=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncationWarning)
        manual = DistilEmbedder(**params).fit_transform([cut])
    np.testing.assert_allclose(prompted, manual, atol=1e-6)


@pytest.mark.parametrize(
    ("prompt", "error", "match"),
    [
        ("{txt}", ValueError, r"has the field \{txt\}; a template has exactly one field"),
        ("{text} and {text}", ValueError, r"has \{text\} 2 times"),
        ("Review: {} {text}", ValueError, r"has the field \{\}"),
        ("a { b", ValueError, r"not a valid template .*write literal braces as '\{\{'"),
        ("close } {text}", ValueError, r"not a valid template"),
        ("{text!r}", ValueError, r"write the field as plain '\{text\}'"),
        ("{text:>20}", ValueError, r"write the field as plain '\{text\}'"),
        (3, TypeError, r"prompt must be a str .* or None, got int"),
    ],
)
def test_bad_prompts_are_refused_naming_the_fix(tiny_model, prompt, error, match):
    for estimator, y in (
        (DistilEmbedder(model=tiny_model, prompt=prompt), None),
        (HeadClassifier(model=tiny_model, prompt=prompt), None),
        (SetFitClassifier(model=tiny_model, prompt=prompt), ["a", "b", "a", "b"]),
    ):
        with pytest.raises(error, match=match):
            estimator.fit(TEXTS[:4], y)


def test_head_classifier_applies_the_prompt(tiny_model):
    clf = HeadClassifier(model=tiny_model, prompt=TEMPLATE).fit(TEXTS)
    logits = DistilEmbedder(model=tiny_model, layers=[], head="logits")
    expected = logits.fit_transform(by_hand(TEMPLATE, TEXTS))
    expected = np.exp(expected - expected.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)  # zero-shot: temperature 1
    np.testing.assert_allclose(clf.predict_proba(TEXTS), expected[:, clf.head_indices_], atol=1e-6)
    assert clf.prompt_ == TEMPLATE


def test_clone_and_pickle_keep_the_prompt_as_ray_workers_receive_it(tiny_model):
    """The Ray helpers ship the estimator pickled to each actor; the prompt must travel."""
    import pickle

    from sklearn.base import clone

    embedder = DistilEmbedder(model=tiny_model, prompt=TEMPLATE).fit(TEXTS)
    assert clone(embedder).prompt == TEMPLATE
    shipped = pickle.loads(pickle.dumps(embedder))
    np.testing.assert_array_equal(shipped.transform(TEXTS), embedder.transform(TEXTS))


# -- cache keys -------------------------------------------------------------------------


def test_cache_key_holds_the_prompt_and_unprompted_keys_are_unchanged(tiny_model, tmp_path):
    cache = EmbeddingCache(tmp_path)
    plain = DistilEmbedder(model=tiny_model, cache=cache).fit_transform(TEXTS)
    prompted = DistilEmbedder(model=tiny_model, cache=cache, prompt=TEMPLATE).fit_transform(TEXTS)
    assert cache.stats()["hits"] == 0  # a prompt never gets unprompted vectors
    uncached = DistilEmbedder(model=tiny_model, prompt=TEMPLATE).fit_transform(TEXTS)
    np.testing.assert_array_equal(prompted, uncached)
    again = DistilEmbedder(model=tiny_model, cache=cache, prompt=TEMPLATE).fit_transform(TEXTS)
    np.testing.assert_array_equal(again, prompted)
    assert not np.allclose(plain, prompted)

    plan = DistilEmbedder(model=tiny_model)._encoding_plan()
    # Keys from before prompts existed: the namespace without a "prompt" entry.
    old_settings = {k: v for k, v in dataclasses.asdict(plan.spec).items() if k != "prompt"}
    old_settings["stride"] = None
    old = {
        "format": 1,
        "model": plan.loaded.fingerprint(),
        "dtype": str(plan.loaded.dtype),
        **old_settings,
    }
    expected = hashlib.sha256(json.dumps(old, sort_keys=True).encode()).digest()
    assert _namespace(plan.loaded, plan.spec) == expected
    other = dataclasses.replace(plan.spec, prompt=TEMPLATE)
    assert _namespace(plan.loaded, other) != expected


# -- sentence-transformers folders ------------------------------------------------------


def st_folder(tiny_model, path, config):
    """A copy of the tiny model as a sentence-transformers folder with ``config``."""
    shutil.copytree(tiny_model, path)
    write_json(
        path / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling",
            },
        ],
    )
    write_json(path / "sentence_bert_config.json", {"max_seq_length": 64, "do_lower_case": False})
    (path / "1_Pooling").mkdir()
    write_json(
        path / "1_Pooling" / "config.json",
        {"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True},
    )
    write_json(path / "config_sentence_transformers.json", config)
    return str(path)


def test_a_folder_default_prompt_is_used_when_none_is_set(tiny_model, tmp_path):
    from sentence_transformers import SentenceTransformer

    prompts = {"query": "query: ", "passage": "passage: "}
    folder = st_folder(
        tiny_model, tmp_path / "st", {"prompts": prompts, "default_prompt_name": "query"}
    )
    embedder = DistilEmbedder(model=folder).fit(TEXTS)
    assert embedder.prompt_ == "query: "
    reference = SentenceTransformer(folder, device="cpu").encode(TEXTS)
    np.testing.assert_allclose(embedder.transform(TEXTS), reference, atol=1e-5)
    # What the caller sets wins; "" turns the folder's prompt off.
    assert DistilEmbedder(model=folder, prompt="passage: ").fit().prompt_ == "passage: "
    off = DistilEmbedder(model=folder, prompt="").fit(TEXTS)
    assert off.prompt_ is None
    manual = off.transform(by_hand("query: ", TEXTS))
    np.testing.assert_array_equal(embedder.transform(TEXTS), manual)
    assert HeadClassifier(model=folder).fit().prompt_ == "query: "
    few = SetFitClassifier(model=folder, n_iterations=1, random_state=0)
    assert few.fit(TEXTS[:4], ["a", "b", "a", "b"]).prompt_ == "query: "


def test_no_default_prompt_name_means_no_prompt_and_braces_stay_literal(tiny_model, tmp_path):
    several = st_folder(tiny_model, tmp_path / "several", {"prompts": {"q": "q: ", "p": "p: "}})
    assert DistilEmbedder(model=several).fit().prompt_ is None
    braces = st_folder(
        tiny_model, tmp_path / "braces", {"prompts": {"q": "{q}: "}, "default_prompt_name": "q"}
    )
    embedder = DistilEmbedder(model=braces).fit(TEXTS)
    assert embedder.prompt_ == "{{q}}: "
    manual = DistilEmbedder(model=braces, prompt="").fit_transform(["{q}: " + t for t in TEXTS])
    np.testing.assert_array_equal(embedder.transform(TEXTS), manual)


# -- SetFit: training and prediction through the same prompt ---------------------------

FEW_X = ["great value", "love it", "works well", "broke fast", "awful", "hate it"]
FEW_Y = ["pos", "pos", "pos", "neg", "neg", "neg"]
DESCRIPTIONS = {"pos": "a happy customer", "neg": "an angry customer"}


def setfit(tiny_model, **params):
    return SetFitClassifier(
        model=tiny_model, n_iterations=2, random_state=0, body_learning_rate=1e-3, **params
    )


def test_setfit_trains_and_predicts_on_prompted_texts_and_round_trips(tiny_model, tmp_path):
    from sentence_transformers import SentenceTransformer

    prompt = "Review: "
    clf = setfit(tiny_model, prompt=prompt, label_descriptions=DESCRIPTIONS).fit(FEW_X, FEW_Y)
    # Training texts, label descriptions and prediction all prompted: the same model
    # as one trained on texts and descriptions prompted by hand.
    by_hand_descriptions = {c: prompt + d for c, d in DESCRIPTIONS.items()}
    manual = setfit(tiny_model, label_descriptions=by_hand_descriptions)
    manual.fit(by_hand(prompt, FEW_X), FEW_Y)
    np.testing.assert_allclose(
        clf.predict_proba(TEXTS), manual.predict_proba(by_hand(prompt, TEXTS)), atol=1e-6
    )
    assert clf.prompt_ == prompt

    folder = clf.save(tmp_path / "setfit")
    loaded = SetFitClassifier.load(folder)
    assert loaded.prompt_ == prompt and loaded.prompt == prompt
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), clf.predict_proba(TEXTS))
    # A prefix is the saved sentence-transformers folder's default prompt too.
    st = SentenceTransformer(str(folder), device="cpu")
    np.testing.assert_allclose(st.encode(TEXTS), clf.transform(TEXTS), atol=1e-5)
    other = setfit(tiny_model, prompt="{text} !!", label_descriptions=DESCRIPTIONS)
    assert not np.allclose(other.fit(FEW_X, FEW_Y).predict_proba(TEXTS), clf.predict_proba(TEXTS))


def test_a_setfit_folder_from_before_prompts_loads_without_one(tiny_model, tmp_path):
    folder = setfit(tiny_model).fit(FEW_X, FEW_Y).save(tmp_path / "old")
    manifest = json.loads((folder / MANIFEST).read_text())
    del manifest["fitted"]["prompt"], manifest["params"]["prompt"]
    write_json(folder / MANIFEST, manifest)
    assert SetFitClassifier.load(folder).prompt_ is None


# -- pipeline and head folders ----------------------------------------------------------


def test_pipeline_and_head_folders_keep_the_prompt(tiny_model, tmp_path):
    def pipe(prompt):
        embed = DistilEmbedder(model=tiny_model, layers=[2, 4], prompt=prompt)
        return Pipeline([("embed", embed), ("lr", LogisticRegression())]).fit(FEW_X, FEW_Y)

    clf = pipe(TEMPLATE)
    loaded = load_model(save_model(clf, tmp_path / "pipe"))
    assert loaded[0].prompt == TEMPLATE
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), clf.predict_proba(TEXTS))
    assert not np.allclose(pipe("{text} !!").predict_proba(TEXTS), clf.predict_proba(TEXTS))

    head = HeadClassifier(model=tiny_model, prompt="query: ").fit(
        FEW_X, ["POSITIVE"] * 3 + ["NEGATIVE"] * 3
    )
    restored = load_model(save_model(head, tmp_path / "head"))
    assert restored.prompt_ == "query: "
    np.testing.assert_array_equal(restored.predict_proba(TEXTS), head.predict_proba(TEXTS))


def test_a_folder_default_prompt_is_recorded_when_saving(tiny_model, tmp_path):
    folder = st_folder(
        tiny_model, tmp_path / "st", {"prompts": {"q": "query: "}, "default_prompt_name": "q"}
    )
    clf = Pipeline([("embed", DistilEmbedder(model=folder)), ("lr", LogisticRegression())])
    clf.fit(FEW_X, FEW_Y)
    saved = save_model(clf, tmp_path / "pipe")
    # encoder/ has no sentence-transformers files: the manifest keeps what was resolved.
    params = json.loads((saved / MANIFEST).read_text())["params"]
    assert (params["prompt"], params["pooling"], params["normalize"], params["max_length"]) == (
        "query: ",
        "mean",
        False,
        64,
    )
    np.testing.assert_array_equal(load_model(saved).predict_proba(TEXTS), clf.predict_proba(TEXTS))


# -- ONNX -------------------------------------------------------------------------------


def test_onnx_file_applies_the_prompt_and_token_ids_are_refused(tiny_model, tmp_path):
    pytest.importorskip("onnxruntime_extensions")
    pytest.importorskip("onnxscript")
    from fewshot.export import to_onnx
    from fewshot.runtime import OnnxClassifier

    embed = DistilEmbedder(model=tiny_model, layers=[2, 4], prompt="{{review}} {text} .")
    clf = Pipeline([("embed", embed), ("lr", LogisticRegression())]).fit(FEW_X, FEW_Y)
    report = to_onnx(clf, tmp_path / "m.onnx", check_texts=TEXTS, verbose=False)
    assert report.checks["tokenizer_agreement"] == 1.0
    onnx_clf = OnnxClassifier(tmp_path / "m.onnx")
    assert onnx_clf.manifest["prompt"] == "{{review}} {text} ."
    assert onnx_clf.manifest["prompt_parts"] == ["{review} ", " ."]
    assert onnx_clf.manifest["format_version"] == 2
    np.testing.assert_allclose(onnx_clf.predict_proba(TEXTS), clf.predict_proba(TEXTS), atol=1e-4)
    with pytest.raises(ValueError, match="export it with inputs='text'"):
        to_onnx(clf, tmp_path / "ids.onnx", inputs="token_ids", check_texts=TEXTS, verbose=False)


# -- command line ------------------------------------------------------------------------


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_cli_prompt_on_embed_and_train(tiny_model, tmp_path):
    import pandas as pd

    table = tmp_path / "in.csv"
    pd.DataFrame({"text": FEW_X, "label": FEW_Y}).to_csv(table, index=False)
    out = tmp_path / "emb.npy"
    result = run("embed", table, "--model", tiny_model, "--prompt", TEMPLATE, "-q", "--out", out)
    assert result.exit_code == 0, result.output
    expected = DistilEmbedder(model=tiny_model).fit_transform(by_hand(TEMPLATE, FEW_X))
    np.testing.assert_allclose(np.load(out), expected, atol=1e-6)

    folder = tmp_path / "model"
    result = run(
        "train", table, "--model", tiny_model, "--prompt", "query: ", "-q", "--out", folder
    )
    assert result.exit_code == 0, result.output
    assert load_model(folder)[0].prompt == "query: "

    bad = run("embed", table, "--model", tiny_model, "--prompt", "{label}", "--out", out)
    assert bad.exit_code == 2
    assert "Invalid value for '--prompt'" in bad.stderr and "{text}" in bad.stderr
