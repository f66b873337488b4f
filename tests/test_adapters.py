"""SetFitClassifier(adapter="lora"): peft LoRA on a shared base, its folder, its checks."""

import json
import os
import pickle
import threading

import numpy as np
import pytest
import torch
from sklearn.base import clone

import fewshot
from fewshot import DistilEmbedder, HeadClassifier, SetFitClassifier, load_model
from fewshot._core.loading import get_model
from fewshot.setfit import LoRA
from fewshot.testing import make_tiny_distilbert

pytest.importorskip("peft")


@pytest.fixture(scope="module")
def wider_model(tmp_path_factory):
    """A tiny DistilBERT with hidden size 64, where a rank-2 adapter is small next to it."""
    return str(make_tiny_distilbert(tmp_path_factory.mktemp("tiny-64"), hidden_size=64))


def make(model, **params):
    defaults = dict(
        model=model,
        adapter="lora",
        n_iterations=1,
        pairs_per_step=8,
        random_state=0,
        body_learning_rate=1e-2,
        device="cpu",
    )
    return SetFitClassifier(**{**defaults, **params})


@pytest.fixture(scope="module")
def fitted(tiny_model, few):
    """An adapter classifier with LoRA on every block's attention."""
    return make(tiny_model).fit(*few)


@pytest.fixture(scope="module")
def fitted_top(tiny_model, few):
    """LoRA on the attention and feed-forward layers of the top two blocks only."""
    return make(tiny_model, adapter=LoRA(targets="attention+ffn"), train_layers=2).fit(*few)


def lora_names(clf):
    return [n for n, _ in clf.body_.model.named_parameters() if "lora_" in n]


def test_training_moves_the_adapter_and_leaves_the_base_as_it_was(tiny_model, few):
    X, y = few
    base = get_model(tiny_model, device="cpu")
    weights = {k: v.clone() for k, v in base.model.state_dict().items()}
    sentiment = np.where(y == "billing", "NEGATIVE", "POSITIVE")  # the head's own classes
    head = HeadClassifier(model=tiny_model, temperature=1.0, device="cpu").fit(X, sentiment)
    logits = DistilEmbedder(model=tiny_model, head="logits", layers=[], device="cpu")
    before = logits.fit_transform(X), head.predict_proba(X)
    pretrained = DistilEmbedder(model=tiny_model, device="cpu").fit_transform(X)

    clf = make(tiny_model).fit(X, y)

    assert all(torch.equal(weights[k], v) for k, v in base.model.state_dict().items())
    np.testing.assert_array_equal(logits.transform(X), before[0])
    np.testing.assert_array_equal(head.predict_proba(X), before[1])
    # LoRA's B starts at zero: any difference from the base comes from training.
    assert np.abs(clf.transform(X) - pretrained).max() > 1e-3
    assert lora_names(clf) and all(p.requires_grad for p in base.model.parameters())
    assert not any("lora_" in n for n, _ in base.model.named_parameters())


def test_adapter_bodies_share_the_base_weight_tensors(tiny_model, fitted, fitted_top):
    base = get_model(tiny_model, device="cpu")
    storages = {p.untyped_storage().data_ptr() for p in base.body.parameters()}
    for clf in (fitted, fitted_top):
        others = [p for n, p in clf.body_.model.named_parameters() if "lora_" not in n]
        assert others and all(p.untyped_storage().data_ptr() in storages for p in others)
        assert clf.body_.lock is not base.lock and clf.body_.blocks is not base.blocks


def test_lora_goes_where_lora_targets_and_train_layers_say(fitted, fitted_top):
    attention, top = fitted, fitted_top
    blocks = {n.split(".")[2] for n in lora_names(attention)}
    assert blocks == {str(i) for i in range(6)}
    assert {n.split(".")[4] for n in lora_names(attention)} == {
        "q_lin",
        "k_lin",
        "v_lin",
        "out_lin",
    }
    assert {n.split(".")[2] for n in lora_names(top)} == {"4", "5"}
    assert {"lin1", "lin2"} <= {n.split(".")[4] for n in lora_names(top)}
    # Each LoRA layer has an A and a B matrix of the asked rank.
    shapes = {tuple(p.shape) for n, p in top.body_.model.named_parameters() if "lora_A" in n}
    assert {s[0] for s in shapes} == {8}


def test_train_layers_covering_every_block_is_plain_adapter_training(tiny_model, few):
    # The cached frozen-states path with zero frozen blocks must equal the plain path.
    X, y = few
    a = make(tiny_model, layer=3, train_layers=3).fit(X, y)
    b = make(tiny_model, layer=3).fit(X, y)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))


def test_frozen_states_with_an_adapter_in_the_top_blocks(fitted_top, few, tiny_model, spec_of):
    # With train_layers the bottom blocks run once (eval mode); the same adapter then
    # embeds exactly as a full forward of the adapter body.
    from fewshot._core.encoding import pad_batch, pooled_features
    from fewshot.setfit._step_embedding import from_states as _from_states
    from fewshot.setfit._step_embedding import frozen_states as _frozen_states

    X, _ = few
    body = fitted_top.body_
    ids = [body.tokenizer(t)["input_ids"] for t in X[:3]]
    spec = spec_of(tiny_model, layers=6, pooling="mean", max_length=128)
    states = _frozen_states(body, ids, 4, 0)
    body.model.eval()
    input_ids, mask = pad_batch(ids, 0, body.device)
    with torch.no_grad():
        full = pooled_features(body, input_ids, mask, spec)
        from_states = _from_states(body, states, [0, 1, 2], input_ids, mask, spec, 4)
    torch.testing.assert_close(from_states, full, atol=1e-5, rtol=0)


def test_same_random_state_same_adapter(tiny_model, few, fitted):
    X, y = few
    a, b = fitted, make(tiny_model).fit(X, y)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    assert a.train_loss_ == b.train_loss_
    grid = make(tiny_model, adapter=LoRA(alpha=1.0))
    assert grid.get_params()["adapter__alpha"] == 1.0
    assert grid.set_params(adapter__rank=3).adapter.rank == 3  # a grid search reaches it
    assert clone(a).get_params() == a.get_params()


def test_the_old_lora_parameters_still_act_and_say_the_new_spelling(tiny_model, few):
    X, y = few
    with pytest.warns(FutureWarning, match=r"lora_rank=\.\.\.\) is deprecated; use adapter=LoRA"):
        old = make(tiny_model, lora_rank=2, lora_alpha=4.0).fit(X, y)
    new = make(tiny_model, adapter=LoRA(rank=2, alpha=4.0)).fit(X, y)
    np.testing.assert_array_equal(old.transform(X), new.transform(X))


def test_saved_folder_holds_the_adapter_not_the_base(wider_model, few, tmp_path):
    X, y = few
    clf = make(wider_model, adapter=LoRA(rank=2)).fit(X, y)
    full = make(wider_model, adapter=None, body_learning_rate=1e-3).fit(X, y)
    clf.save(tmp_path / "lora")
    full.save(tmp_path / "full")
    files = set(os.listdir(tmp_path / "lora"))
    assert {
        "adapter_config.json",
        "adapter_model.safetensors",
        "fewshot.json",
        "head.skops",
    } <= files
    assert not {"model.safetensors", "config.json"} & files  # no body, no base

    def size(folder):
        return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())

    assert size(tmp_path / "lora") < 0.1 * size(tmp_path / "full")
    manifest = json.loads((tmp_path / "lora" / "fewshot.json").read_text())
    assert manifest["kind"] == "setfit-adapter"
    base = manifest["base_model"]
    assert base["model"] == os.path.abspath(wider_model) and base["revision"] is None
    assert base["fingerprint"] == get_model(wider_model, device="cpu").fingerprint()
    config = json.loads((tmp_path / "lora" / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 2 and config["lora_alpha"] == 4


def test_round_trip_predicts_identically(tiny_model, few, fitted_top, tmp_path):
    X, _ = few
    clf = fitted_top
    clf.save(tmp_path)
    for loaded in (
        load_model(tmp_path, model=tiny_model),
        SetFitClassifier.load(tmp_path, model=tiny_model, device="cpu"),
    ):
        np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
        np.testing.assert_array_equal(loaded.transform(X), clf.transform(X))
        params = {**clf.get_params(), "model": loaded.model, "device": loaded.device}
        # The LoRA settings come back as an equal object (compared through adapter__*).
        assert {k: v for k, v in loaded.get_params().items() if k != "adapter"} == {
            k: v for k, v in params.items() if k != "adapter"
        }
        assert os.path.abspath(loaded.model) == os.path.abspath(tiny_model)
        assert loaded.base_model_ == clf.base_model_


def test_peft_reads_the_saved_adapter(tiny_model, few, fitted, tmp_path):
    from peft import PeftModel
    from transformers import AutoModel

    X, _ = few
    clf = fitted
    clf.save(tmp_path)
    body = AutoModel.from_pretrained(tiny_model)
    peft_model = PeftModel.from_pretrained(body, tmp_path).eval()
    batch = clf.body_.tokenizer(X, padding=True, return_tensors="pt")
    with torch.no_grad():
        theirs = peft_model(**batch).last_hidden_state
        ours = clf.body_.model(**batch).last_hidden_state
    torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=0)


def test_a_different_base_is_refused(tiny_model, fitted, tmp_path):
    fitted.save(tmp_path / "lora")
    other = make_tiny_distilbert(tmp_path / "other", seed=1)
    with pytest.raises(ValueError, match="fingerprint") as error:
        load_model(tmp_path / "lora", model=other)
    fingerprint = get_model(tiny_model, device="cpu").fingerprint()
    assert fingerprint[:12] in str(error.value) and "model=" in str(error.value)


def test_the_recorded_base_is_named_not_followed(tiny_model, fitted, tmp_path, monkeypatch):
    """A folder is data: its base is loaded only when the caller names it."""
    fitted.save(tmp_path)
    loads = []
    monkeypatch.setattr(
        "fewshot._estimator.resolve.load_model_for", lambda params: loads.append(params) or 1 / 0
    )
    with pytest.raises(ValueError, match="pass its base as model=") as error:
        load_model(tmp_path)
    assert repr(os.path.abspath(tiny_model)) in str(error.value) and loads == []


def test_a_manifest_without_a_base_fingerprint_is_refused(tiny_model, fitted, tmp_path):
    fitted.save(tmp_path)
    manifest = json.loads((tmp_path / "fewshot.json").read_text())
    del manifest["base_model"]["fingerprint"]
    (tmp_path / "fewshot.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="records no base fingerprint"):
        load_model(tmp_path, model=tiny_model)


def test_a_missing_base_says_to_pass_it(fitted, tmp_path):
    fitted.save(tmp_path)
    with pytest.raises(fewshot.ModelNotFoundError, match="model=<a folder or id"):
        load_model(tmp_path, model=str(tmp_path / "moved-away"))


def test_the_adapter_configs_base_reference_is_not_followed(few, fitted, tmp_path):
    X, _ = few
    clf = fitted
    clf.save(tmp_path)
    config_file = tmp_path / "adapter_config.json"
    config = json.loads(config_file.read_text())
    config["base_model_name_or_path"] = str(tmp_path / "nowhere")
    config_file.write_text(json.dumps(config))
    loaded = load_model(tmp_path, model=clf.model)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_pickle_carries_the_adapter_and_finds_the_base(few, fitted):
    X, _ = few
    clf = fitted
    data = pickle.dumps(clf)
    assert len(data) < 200_000  # the adapter and head, not the base
    again = pickle.loads(data)
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))


def test_clear_caches_keeps_fitted_adapters_working(few, fitted, tmp_path):
    X, _ = few
    clf = fitted
    expected = clf.predict_proba(X)
    fewshot.clear_caches()
    np.testing.assert_array_equal(clf.predict_proba(X), expected)
    clf.save(tmp_path)  # the reloaded base has the recorded fingerprint
    np.testing.assert_array_equal(load_model(tmp_path, model=clf.model).predict_proba(X), expected)


def test_concurrent_predictions_of_several_adapters_and_the_base(
    tiny_model, few, fitted, fitted_top
):
    X, _ = few
    embedder = DistilEmbedder(model=tiny_model, device="cpu").fit(X)
    jobs = [fitted.predict_proba, fitted_top.predict_proba, embedder.transform]
    expected = [job(X) for job in jobs]
    results = {}

    def run(i):
        for _ in range(5):
            results.setdefault(i, []).append(jobs[i % len(jobs)](X))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, outputs in results.items():
        for output in outputs:
            np.testing.assert_array_equal(output, expected[i % len(jobs)])


def test_onnx_export_merges_the_adapter(few, fitted, tmp_path):
    pytest.importorskip("onnxruntime")
    from fewshot.export import to_onnx
    from fewshot.runtime import OnnxClassifier

    X, _ = few
    clf = fitted
    path = tmp_path / "model.onnx"
    report = to_onnx(clf, path, check_texts=X, verbose=False)
    assert report.checks["float32"]["label_agreement"] == 1.0
    np.testing.assert_allclose(
        OnnxClassifier(path).predict_proba(X), clf.predict_proba(X), atol=1e-5
    )
    # The export merged a copy: the classifier's own body still has its LoRA layers.
    assert lora_names(clf)


def test_bert_and_mpnet_layers_are_found():
    from transformers import BertConfig, BertModel, MPNetConfig, MPNetModel

    from fewshot._core.loading import LoadedModel, find_blocks
    from fewshot.setfit._lora import lora_target_modules

    shape = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
    for config, cls, query in (
        (BertConfig, BertModel, "self.query"),
        (MPNetConfig, MPNetModel, "attn.q"),
    ):
        model = cls(config(**shape))
        loaded = LoadedModel(
            name="x",
            tokenizer=None,
            model=model,
            body=model,
            blocks=find_blocks(model, model.config),
            device=torch.device("cpu"),
            dtype=torch.float32,
            has_head=False,
        )
        names = lora_target_modules(loaded, "attention+ffn", first_block=1)
        assert len(names) == 6 and all(n.startswith("encoder.layer.1.") for n in names)
        assert f"encoder.layer.1.attention.{query}" in names
        modules = dict(model.named_modules())
        assert all(isinstance(modules[n], torch.nn.Linear) for n in names)
        model.config.model_type = "gpt2"
        with pytest.raises(ValueError, match="adapter=None"):
            lora_target_modules(loaded, "attention")


@pytest.mark.parametrize(
    "params, message",
    [
        ({"adapter": "qlora"}, "adapter='qlora' is not valid"),
        ({"adapter": LoRA(rank=0)}, "adapter__rank must be an int >= 1"),
        ({"adapter": LoRA(alpha=-1.0)}, "adapter__alpha must be a float > 0"),
        ({"adapter": LoRA(dropout=1.0)}, r"adapter__dropout must be a float in \[0, 1\)"),
        ({"adapter": LoRA(targets="ffn")}, "adapter__targets='ffn' is not valid"),
        ({"lora_rank": 0}, "lora_rank must be an int >= 1"),
    ],
)
def test_bad_adapter_parameters_fail_before_training(tiny_model, few, params, message):
    X, y = few
    with pytest.raises(ValueError, match=message):
        make(tiny_model, **params).fit(X, y)


def test_setfit_compatible_is_refused_for_an_adapter(fitted, tmp_path):
    with pytest.raises(ValueError, match="setfit_compatible"):
        fitted.save(tmp_path, setfit_compatible=True)


def test_missing_peft_names_the_extra(tiny_model, few, monkeypatch):
    import sys

    X, y = few
    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(ImportError, match=r"fewshot\[peft\]"):
        make(tiny_model).fit(X, y)
