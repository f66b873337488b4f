"""SetFitClassifier on the tiny model: behaviour, determinism, persistence, bad input."""

import io
import itertools
import pickle

import joblib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV

from fewshot import DistilEmbedder, SetFitClassifier
from fewshot.setfit import _fit


def make(tiny_model, **params):
    defaults = dict(
        model=tiny_model, n_iterations=2, pairs_per_step=8, random_state=0, body_learning_rate=1e-3
    )
    return SetFitClassifier(**{**defaults, **params})


def test_fit_predict_proba_and_transform(tiny_model, few):
    X, y = few
    clf = make(tiny_model).fit(X, y)
    assert clf.classes_.tolist() == ["billing", "delivery", "service"]
    assert clf.n_pairs_ == 2 * 2 * 12
    predicted = clf.predict(X + ["something new"])
    assert predicted.shape == (13,) and set(predicted) <= set(y)
    proba = clf.predict_proba(X)
    assert proba.shape == (12, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    Z = clf.transform(X)
    assert Z.shape == (12, 32) and Z.dtype == np.float32
    np.testing.assert_allclose(clf.head_.predict_proba(Z), proba, atol=1e-6)
    assert clf.get_feature_names_out()[0] == "setfit_layer6_mean_0"


def test_same_random_state_same_model_different_state_different_pairs(tiny_model, few):
    X, y = few
    a = make(tiny_model, random_state=7).fit(X, y)
    b = make(tiny_model, random_state=7).fit(X, y)
    c = make(tiny_model, random_state=8).fit(X, y)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert a.train_loss_ == b.train_loss_
    assert not np.allclose(a.transform(X), c.transform(X))


def test_refit_starts_from_the_pretrained_body(tiny_model, few):
    X, y = few
    before = DistilEmbedder(model=tiny_model).fit_transform(X)
    clf = make(tiny_model)
    first = clf.fit(X, y).transform(X)
    second = clf.fit(X, y).transform(X)
    np.testing.assert_array_equal(first, second)  # no accumulation across fits
    np.testing.assert_array_equal(
        DistilEmbedder(model=tiny_model).transform(X), before
    )  # shared copy untouched
    assert not np.allclose(first, before)  # but the private copy did learn


def test_body_is_cut_at_the_layer_and_embeds_as_the_embedder(tiny_model, few):
    X, y = few
    clf = make(tiny_model, layer=2, pooling="max", body_learning_rate=1e-12).fit(X, y)
    assert clf.layer_ == 2 and len(clf.body_.blocks) == 2
    # With a vanishing learning rate the fine-tuned body is the pretrained one cut at layer 2.
    expected = DistilEmbedder(model=tiny_model, layers=2, pooling="max").fit_transform(X)
    np.testing.assert_allclose(clf.transform(X), expected, atol=1e-5)


def test_training_pulls_classes_apart(tiny_model, few):
    X, y = few
    clf = make(tiny_model, n_iterations=10, epochs=3, body_learning_rate=3e-3).fit(X, y)
    assert clf.train_loss_[-1] < clf.train_loss_[0]
    Z = clf.transform(X)
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    same = y[:, None] == y[None, :]
    cosine = Z @ Z.T
    off_diagonal = ~np.eye(len(y), dtype=bool)
    assert cosine[same & off_diagonal].mean() > cosine[~same].mean() + 0.1


def test_integer_labels(tiny_model, few):
    X, _ = few
    y = np.repeat([3, 1, 2], 4)
    clf = make(tiny_model).fit(X, y)
    assert clf.classes_.tolist() == [1, 2, 3]
    assert clf.predict(X).dtype.kind == "i"


@pytest.mark.parametrize("strategy", [None, "one-vs-rest", "multi-output", "classifier-chain"])
def test_multilabel_indicator(tiny_model, few, strategy):
    X, _ = few
    Y = np.zeros((12, 3), dtype=int)
    Y[:6, 0] = 1
    Y[4:10, 1] = 1
    Y[8:, 2] = 1
    clf = make(tiny_model, multi_target_strategy=strategy).fit(X, Y)
    assert clf.classes_.tolist() == [0, 1, 2]
    predicted = clf.predict(X)
    assert predicted.shape == (12, 3) and set(np.unique(predicted)) <= {0, 1}


def test_save_load_round_trip(tiny_model, few, tmp_path):
    X, y = few
    clf = make(tiny_model, layer=4, head=LogisticRegression(C=0.5)).fit(X, y)
    folder = clf.save(tmp_path / "model")
    assert (folder / "model.safetensors").is_file() and (folder / "head.skops").is_file()
    assert not list(folder.glob("*.pkl")) and not list(folder.glob("*.bin"))
    loaded = SetFitClassifier.load(folder)
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), atol=1e-6)
    assert loaded.get_params()["head"].C == 0.5 and loaded.layer_ == 4
    assert loaded.classes_.tolist() == clf.classes_.tolist()
    assert loaded.n_steps_ == clf.n_steps_ and loaded.train_loss_ == clf.train_loss_


@pytest.mark.parametrize("normalize", [False, True])
def test_saved_body_loads_in_sentence_transformers_and_setfit(tiny_model, few, tmp_path, normalize):
    from sentence_transformers import SentenceTransformer
    from setfit import SetFitModel

    X, y = few
    clf = make(tiny_model, layer=3, normalize=normalize).fit(X, y)
    folder = clf.save(tmp_path / "model", setfit_compatible=True)
    st = SentenceTransformer(str(folder), device="cpu")
    np.testing.assert_allclose(st.encode(X), clf.transform(X), atol=1e-5)
    norms = np.linalg.norm(st.encode(X), axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5) == normalize
    setfit_model = SetFitModel.from_pretrained(str(folder), device="cpu")
    assert list(setfit_model.predict(X)) == list(clf.predict(X))


def test_load_refuses_a_folder_that_is_not_ours(tiny_model, tmp_path):
    with pytest.raises(ValueError, match="is not a SetFitClassifier folder saved by fewshot"):
        SetFitClassifier.load(tiny_model)
    with pytest.raises(ValueError, match="is not a SetFitClassifier folder"):
        SetFitClassifier.load(tmp_path)


def test_joblib_and_pickle_round_trip(tiny_model, few):
    X, y = few
    clf = make(tiny_model).fit(X, y)
    buffer = io.BytesIO()
    joblib.dump(clf, buffer)
    restored = joblib.load(io.BytesIO(buffer.getvalue()))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.transform(X), clf.transform(X))


def test_clone_and_grid_search(tiny_model, few):
    X, y = few
    clf = make(tiny_model, head=LogisticRegression()).fit(X, y)
    fresh = clone(clf)
    assert not hasattr(fresh, "head_") and fresh.get_params()["n_iterations"] == 2
    search = GridSearchCV(
        make(tiny_model, head=LogisticRegression()),
        {"head__C": [0.1, 10.0], "n_iterations": [1, 2]},
        cv=2,
    )
    search.fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_estimator_.predict(X).shape == (12,)


@pytest.mark.parametrize(
    "X, y, error, message",
    [
        (["a", "b", "c"], ["x", "x", "x"], ValueError, "single class"),
        (["a", "b", "c"], ["x", "x", "y"], ValueError, "class 'y' has a single example"),
        (["a", "b", "c", "d"], ["x", "x", "y"], ValueError, "X has 4 texts but y has 3 labels"),
        ([], [], ValueError, "X is empty"),
        (["a", None, "c", "d"], [0, 0, 1, 1], TypeError, r"X\[1\] is NoneType"),
        (["a", "b", "c", "d"], None, TypeError, "y is None"),
        (["a", "b", "c", "d"], [0, None, 1, 1], ValueError, r"y\[1\] is missing"),
        (["a", "b", "c", "d"], [0.5, 0.1, 1.2, 1.0], ValueError, "looks continuous"),
    ],
)
def test_bad_input_fails_before_training(tiny_model, monkeypatch, X, y, error, message):
    monkeypatch.setattr(_fit, "train_body", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(error, match=message):
        make(tiny_model).fit(X, y)


@pytest.mark.parametrize(
    "params, error, message",
    [
        ({"layer": 0}, ValueError, "layer=0 is the embedding output"),
        ({"layer": 9}, ValueError, r"layer 9 is out of range .* use 0\.\.6"),
        ({"sampling": "all"}, ValueError, "sampling='all'"),
        ({"head": "lr"}, TypeError, "head must be a scikit-learn classifier"),
        ({"n_iterations": 0}, ValueError, "n_iterations must be an int >= 1"),
        ({"body_learning_rate": -1.0}, ValueError, "body_learning_rate must be a float > 0"),
        ({"multi_target_strategy": "chain"}, ValueError, "multi_target_strategy='chain'"),
        ({"self_pairs": "yes"}, TypeError, "self_pairs must be True or False"),
        ({"layer_learning_rate_decay": 0.0}, ValueError, "layer_learning_rate_decay must be"),
        ({"stop_pair_loss": -0.1}, ValueError, "stop_pair_loss must be a float > 0"),
    ],
)
def test_bad_parameters_fail_before_training(tiny_model, monkeypatch, params, error, message):
    monkeypatch.setattr(_fit, "train_body", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(error, match=message):
        make(tiny_model, **params).fit(["a", "b", "c", "d"], [0, 0, 1, 1])


def test_unfitted_predict_says_fit_first(tiny_model):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        make(tiny_model).predict(["a"])


def test_local_model_makes_no_network_call(tiny_model, few, monkeypatch):
    """setfit issue #495: loading a local folder must not touch the network."""
    import socket

    from fewshot import clear_model_cache

    def no_network(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    clear_model_cache()
    X, y = few
    clf = make(tiny_model, n_iterations=1).fit(X, y)
    assert clf.predict(X[:2]).shape == (2,)


# -- the few-shot levers: frozen lower blocks, unit-length head input -------------------


def test_training_only_the_top_blocks_leaves_the_others_as_pretrained(tiny_model, few):
    import torch

    from fewshot._core.loading import get_model

    X, y = few
    clf = make(tiny_model, train_layers=2, random_state=0).fit(X, y)
    pretrained = get_model(tiny_model, device=clf.body_.device)
    for i, (before, after) in enumerate(zip(pretrained.blocks, clf.body_.blocks)):
        same = all(torch.equal(a, b) for a, b in zip(before.parameters(), after.parameters()))
        assert same == (i < 4), f"block {i + 1}"
    assert all(p.requires_grad for p in clf.body_.model.parameters())  # left as found


@pytest.mark.parametrize("train_token_embeddings", [True, False])
def test_train_token_embeddings_decides_whether_the_table_moves(
    tiny_model, few, train_token_embeddings
):
    import torch

    from fewshot._core.loading import get_model

    X, y = few
    clf = make(tiny_model, train_token_embeddings=train_token_embeddings, random_state=0)
    clf.fit(X, y)
    before = dict(get_model(tiny_model, device=clf.body_.device).body.named_parameters())
    after = dict(clf.body_.model.named_parameters())
    unchanged = {name for name, p in after.items() if torch.equal(p, before[name])}
    # The tiny DistilBERT's token table is its word_embeddings; the rest all train.
    table = {name for name in after if "word_embeddings" in name}
    assert table and unchanged == (set() if train_token_embeddings else table)
    assert all(p.requires_grad for p in clf.body_.model.parameters())  # left as found


def test_frozen_states_give_the_same_embeddings_as_a_full_forward(tiny_model, spec_of):
    import torch

    from fewshot._core.encoding import pad_batch, pooled_features
    from fewshot._core.loading import get_model, trainable_copy
    from fewshot.setfit._step_embedding import from_states as _from_states
    from fewshot.setfit._step_embedding import frozen_states as _frozen_states

    body = trainable_copy(get_model(tiny_model, device="cpu"), 6)
    ids = [body.tokenizer(t)["input_ids"] for t in ["a long enough text here", "short", "mid one"]]
    spec = spec_of(tiny_model, layers=6, pooling="mean", max_length=128)
    states = _frozen_states(body, ids, 4, 0)
    body.model.eval()
    input_ids, mask = pad_batch(ids, 0, body.device)
    with torch.no_grad():
        full = pooled_features(body, input_ids, mask, spec)
        from_states = _from_states(body, states, [0, 1, 2], input_ids, mask, spec, 4)
    torch.testing.assert_close(from_states, full, atol=1e-5, rtol=0)


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 300), min_size=1, max_size=9),
    overhead=st.integers(0, 300),
    max_chunks=st.integers(1, 4),
)
def test_length_chunks_is_the_least_padded_split(lengths, overhead, max_chunks):
    from fewshot.setfit._step_embedding import length_chunks

    chunks = length_chunks(lengths, overhead=overhead, max_chunks=max_chunks)
    # Every position once, at most max_chunks chunks, shortest texts first.
    assert sorted(i for chunk in chunks for i in chunk) == list(range(len(lengths)))
    assert 1 <= len(chunks) <= max_chunks
    flat = [lengths[i] for chunk in chunks for i in chunk]
    assert flat == sorted(lengths)

    def cost(parts):
        return sum(len(part) * max(part) + overhead for part in parts)

    # Brute force: every split of the sorted lengths into at most max_chunks pieces.
    ordered = sorted(lengths)
    best = min(
        cost([ordered[a:b] for a, b in zip((0, *cuts), (*cuts, len(ordered)))])
        for k in range(max_chunks)
        for cuts in itertools.combinations(range(1, len(ordered)), k)
    )
    assert cost([[lengths[i] for i in chunk] for chunk in chunks]) == best


@pytest.mark.parametrize("n_frozen", [0, 4])
@pytest.mark.parametrize("overhead", [0, 10**9])
def test_a_chunked_step_embeds_as_one_padded_batch(
    tiny_model, spec_of, monkeypatch, n_frozen, overhead
):
    # Texts of very different lengths are split into chunks when a call costs nothing,
    # kept in one when it costs a lot; either way the step gets every text's embedding
    # in the order it asked for (one chunk is still sorted shortest first).
    import torch

    import fewshot.setfit._step_embedding as contrastive
    from fewshot._core.encoding import pad_batch, pooled_features
    from fewshot._core.loading import get_model, trainable_copy

    body = trainable_copy(get_model(tiny_model, device="cpu"), 6)
    texts = ["short", " ".join(["a much longer text"] * 5), "mid sized text", "tiny"]
    ids = [body.tokenizer(t)["input_ids"] for t in texts]
    spec = spec_of(tiny_model, layers=6, pooling="mean", max_length=128)
    states = contrastive.frozen_states(body, ids, n_frozen, 0) if n_frozen else None
    calls = []
    real = contrastive.length_chunks
    monkeypatch.setattr(
        contrastive,
        "length_chunks",
        lambda lengths: calls.append(real(lengths, overhead=overhead)) or calls[-1],
    )
    widths = []  # every training forward's padded length
    monkeypatch.setattr(
        contrastive,
        "pooled_features",
        lambda body, ids, mask, spec: (
            widths.append(ids.shape[1]) or pooled_features(body, ids, mask, spec)
        ),
    )
    rows = [2, 0, 3, 1]
    body.model.eval()
    with torch.no_grad():
        chunked = contrastive.embed_step(body, ids, rows, spec, 0, states, n_frozen, "float32")
        input_ids, mask = pad_batch([ids[i] for i in rows], 0, body.device)
        whole = pooled_features(body, input_ids, mask, spec)
    assert (len(calls[0]) > 1) == (overhead == 0)
    # Rounded up to the multiple (fewer shapes), and the extra padding changes nothing.
    assert widths and all(w % contrastive.TRAINING_PAD_MULTIPLE == 0 for w in widths)
    multiple = contrastive.TRAINING_PAD_MULTIPLE
    assert max(widths) == -(-input_ids.shape[1] // multiple) * multiple
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=0)


def test_training_padding_never_passes_max_length(tiny_model, spec_of, monkeypatch):
    # max_length is capped at the model's position limit, which need not be a multiple
    # of 8: a text at the limit must not be padded past it.
    import torch

    import fewshot.setfit._step_embedding as contrastive
    from fewshot._core.loading import get_model, trainable_copy

    body = trainable_copy(get_model(tiny_model, device="cpu"), 6)
    spec = spec_of(tiny_model, layers=6, pooling="mean", max_length=13)
    long_text = " ".join("abcdefghijklmnopqrstuvwxyz")
    ids = [
        body.tokenizer(t, truncation=True, max_length=13)["input_ids"] for t in (long_text, "ab")
    ]
    assert len(ids[0]) == 13
    widths = []
    real = contrastive.pooled_features
    monkeypatch.setattr(
        contrastive,
        "pooled_features",
        lambda body, ids, mask, spec: widths.append(ids.shape[1]) or real(body, ids, mask, spec),
    )
    with torch.no_grad():
        contrastive.embed_step(body, ids, [0, 1], spec, 0, None, 0, "float32")
    assert max(widths) == 13


def test_pad_batch_rounds_the_length_up_and_masks_the_extra():
    from fewshot._core.encoding import pad_batch

    input_ids, mask = pad_batch([[5, 6, 7], [8]], 0, "cpu", multiple_of=4)
    assert input_ids.tolist() == [[5, 6, 7, 0], [8, 0, 0, 0]]
    assert mask.tolist() == [[1, 1, 1, 0], [1, 0, 0, 0]]
    exact, _ = pad_batch([[1] * 8, [2]], 0, "cpu", multiple_of=8)  # already a multiple
    assert exact.shape == (2, 8)
    plain, _ = pad_batch([[5, 6, 7], [8]], 0, "cpu")  # default: the longest only
    assert plain.shape == (2, 3)
    # Never past the model's position limit (a max_length that is not a multiple).
    capped, _ = pad_batch([[1] * 10], 0, "cpu", multiple_of=8, limit=12)
    assert capped.shape == (1, 12)


def test_fused_adamw_trains_as_the_default_adamw(tiny_model, few, monkeypatch):
    # The fused kernel is a speed choice only: the same fit with torch's default
    # (multi-tensor) AdamW ends at the same embeddings up to rounding.
    import torch

    import fewshot.setfit._training as contrastive

    X, y = few
    built = []
    real = contrastive.adamw

    def recorded(parameters, learning_rate):
        built.append(real(parameters, learning_rate))
        return built[-1]

    monkeypatch.setattr(contrastive, "adamw", recorded)
    fused = make(tiny_model, dtype="float32").fit(X, y)
    assert built[-1].defaults["fused"] is True
    monkeypatch.setattr(
        contrastive, "adamw", lambda parameters, lr: torch.optim.AdamW(parameters, lr=lr)
    )
    default = make(tiny_model, dtype="float32").fit(X, y)
    np.testing.assert_allclose(fused.transform(X), default.transform(X), atol=1e-4)
    assert not np.allclose(
        fused.transform(X), make(tiny_model, n_iterations=1).fit(X, y).transform(X)
    )


@pytest.mark.parametrize("max_grad_norm", [None, 1e-3])
def test_max_grad_norm_clips_every_step(tiny_model, few, monkeypatch, max_grad_norm):
    # Each optimiser step sees a gradient of norm <= max_grad_norm; None clips nothing.
    import torch

    X, y = few
    seen = []
    real_step = torch.optim.AdamW.step

    def step(self, *args, **kwargs):
        grads = [p.grad for group in self.param_groups for p in group["params"]]
        seen.append(
            float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads if g is not None])))
        )
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", step)
    make(tiny_model, dtype="float32", max_grad_norm=max_grad_norm).fit(X, y)
    assert len(seen) > 1
    if max_grad_norm is None:
        assert max(seen) > 1e-3  # unclipped: the bound below would bite
    else:
        assert max(seen) <= max_grad_norm * (1 + 1e-4)


def test_max_grad_norm_is_checked(tiny_model, few):
    X, y = few
    with pytest.raises(ValueError, match="max_grad_norm must be a float > 0"):
        make(tiny_model, max_grad_norm=0).fit(X, y)


def test_train_layers_covering_every_block_is_plain_fine_tuning(tiny_model, few):
    X, y = few
    a = make(tiny_model, layer=3, train_layers=3, random_state=0).fit(X, y)
    b = make(tiny_model, layer=3, random_state=0).fit(X, y)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))


def test_normalize_gives_unit_rows_to_the_head(tiny_model, few):
    X, y = few
    clf = make(tiny_model, normalize=True, random_state=0).fit(X, y)
    np.testing.assert_allclose(np.linalg.norm(clf.transform(X), axis=1), 1.0, atol=1e-5)
    raw = make(tiny_model, random_state=0).fit(X, y).transform(X)
    np.testing.assert_allclose(
        clf.transform(X), raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-5
    )


def test_normalize_none_follows_the_bodys_sentence_transformers_folder(tiny_model, few, tmp_path):
    # A plain Hugging Face folder states nothing: raw mean-pooled vectors, as before.
    X, y = few
    plain = make(tiny_model, random_state=0).fit(X, y)
    assert plain.normalize is None and plain.normalize_ is False
    assert not np.allclose(np.linalg.norm(plain.transform(X), axis=1), 1.0)
    # A sentence-transformers folder ending in Normalize (all-MiniLM-L6-v2's layout):
    # unit vectors for the head, as the setfit library gives its head.
    st_folder = make(tiny_model, normalize=True, random_state=0).fit(X, y).save(tmp_path / "st")
    assert "models.Normalize" in (st_folder / "modules.json").read_text()
    clf = make(str(st_folder), random_state=0).fit(X, y)
    assert clf.normalize_ is True
    np.testing.assert_allclose(np.linalg.norm(clf.transform(X), axis=1), 1.0, atol=1e-5)
    # The caller's choice wins over the folder's.
    raw = make(str(st_folder), normalize=False, random_state=0).fit(X, y)
    assert raw.normalize_ is False
    np.testing.assert_allclose(
        clf.transform(X),
        raw.transform(X) / np.linalg.norm(raw.transform(X), axis=1, keepdims=True),
        atol=1e-5,
    )
    # Saved and reloaded, pickled and unpickled: the resolved value travels with the model.
    loaded = SetFitClassifier.load(clf.save(tmp_path / "fitted"))
    assert loaded.normalize_ is True
    np.testing.assert_allclose(loaded.transform(X), clf.transform(X), atol=1e-6)
    assert pickle.loads(pickle.dumps(clf)).normalize_ is True


def test_label_descriptions_join_training_as_anchors(tiny_model, few, monkeypatch):
    X, y = few
    seen = {}
    real = _fit.train_body

    def spy(body, ids, pairs, *args, **kwargs):
        seen["n_texts"], seen["max_index"] = (
            len(ids),
            int(max(pairs.first.max(), pairs.second.max())),
        )
        return real(body, ids, pairs, *args, **kwargs)

    monkeypatch.setattr(_fit, "train_body", spy)
    descriptions = {
        "billing": "money, invoices and charges",
        "delivery": "parcels and couriers",
        "service": "support staff and help",
    }
    clf = make(tiny_model, label_descriptions=descriptions).fit(X, y)
    assert seen["n_texts"] == len(X) + 3 and seen["max_index"] >= len(X)  # anchors are paired
    assert clf.classes_.tolist() == ["billing", "delivery", "service"]
    assert make(tiny_model, label_descriptions="labels").fit(X, y).predict(X).shape == (12,)


def spy_training(monkeypatch, record):
    """Wrap the training loop: ``record(body, ids, pairs)`` sees what training got."""
    real = _fit.train_body

    def spy(body, ids, pairs, *args, **kwargs):
        finish = record(body, ids, pairs)
        try:
            return real(body, ids, pairs, *args, **kwargs)
        finally:
            if finish:
                finish()

    monkeypatch.setattr(_fit, "train_body", spy)


@pytest.mark.parametrize("n_frozen", [0, 4])
def test_a_text_paired_with_itself_trains_on_two_dropout_views(
    tiny_model, n_frozen, spec_of, run_of
):
    # Embedded once, both sides of (i, i) would be one vector: cosine 1, loss 0, no
    # gradient. As two views (two dropout draws) the pair has a loss and moves the body.
    import torch

    from fewshot._core.loading import get_model, trainable_copy
    from fewshot.setfit._pairs import Pairs
    from fewshot.setfit._training import train_body

    body = trainable_copy(get_model(tiny_model, device="cpu"), 6)
    before = {name: p.detach().clone() for name, p in body.model.named_parameters()}
    texts = ["the parcel never came", "refund my card please", "the agent was kind"]
    ids = [body.tokenizer(t)["input_ids"] for t in texts]
    same = np.array([0, 1, 2, 0])
    losses = train_body(
        body,
        ids,
        Pairs(same, same.copy(), np.ones(4, dtype=np.float32)),
        spec_of(tiny_model, layers=6, pooling="mean", max_length=128),
        run_of(n_frozen=n_frozen, pairs_per_step=4, body_learning_rate=1e-3),
    )
    assert losses.losses[0] > 0 and losses.n_steps == 1
    moved = [n for n, p in body.model.named_parameters() if not torch.equal(p, before[n])]
    assert moved and all(f"layer.{i}." not in n for n in moved for i in range(n_frozen))


@pytest.mark.parametrize("decay", [1.0, 0.5])
def test_layer_learning_rate_decay_scales_each_blocks_first_step(
    tiny_model, decay, spec_of, run_of
):
    # Adam's first step moves every weight by about its learning rate (m / sqrt(v) is
    # the gradient's sign), so each block's median move is its rate: decay ** depth.
    import torch

    from fewshot._core.loading import get_model, trainable_copy
    from fewshot.setfit._pairs import Pairs
    from fewshot.setfit._training import train_body

    body = trainable_copy(get_model(tiny_model, device="cpu"), 6)
    before = [[p.detach().clone() for p in block.parameters()] for block in body.blocks]
    texts = ["the parcel never came", "refund my card please", "the agent was kind", "ok"]
    ids = [body.tokenizer(t)["input_ids"] for t in texts]
    rate = 1e-3
    run = run_of(
        pairs_per_step=4,
        body_learning_rate=rate,
        warmup_proportion=0.0,
        layer_learning_rate_decay=decay,
    )
    train_body(
        body,
        ids,
        Pairs(np.array([0, 2, 0, 1]), np.array([1, 3, 2, 3]), np.array([1, 1, 0, 0], "f4")),
        spec_of(tiny_model, layers=6, pooling="mean", max_length=128),
        run,
    )
    n = len(body.blocks)
    for i, block in enumerate(body.blocks):
        moves = torch.cat(
            [(p.detach() - b).abs().flatten() for p, b in zip(block.parameters(), before[i])]
        )
        assert torch.median(moves).item() == pytest.approx(rate * decay ** (n - 1 - i), rel=0.05)


def test_layer_learning_rate_decay_reaches_the_optimiser(tiny_model, few, monkeypatch):
    import fewshot.setfit._training as contrastive

    seen = []
    real = contrastive.adamw
    # The rates as handed over (the scheduler changes the groups' "lr" as it runs).
    record = lambda p, lr: seen.append([g["lr"] for g in p]) or real(p, lr)  # noqa: E731
    monkeypatch.setattr(contrastive, "adamw", record)
    make(tiny_model, layer_learning_rate_decay=0.5, body_learning_rate=1e-3).fit(*few)
    rates = sorted(seen[0])
    assert rates == pytest.approx([1e-3 * 0.5**k for k in range(len(rates))][::-1])


@pytest.mark.parametrize(
    "stop_pair_loss, epochs, stops",
    [(None, 2, False), (1e-9, 2, False), (10.0, 1, False), (10.0, 2, True)],
)
def test_stop_pair_loss_ends_training_once_a_pair_returns_and_the_window_is_below_it(
    tiny_model, few, monkeypatch, stop_pair_loss, epochs, stops
):
    # Every step's loss is below 10 (cosine and target lie in [-1, 1]) and none reaches
    # 1e-9 here. The first epoch draws no pair twice, so 10 never stops it (the N = 64
    # case, where stopping on new pairs cost accuracy); the second epoch's first step
    # brings pairs back, and 10 stops there. 1e-9 and None train every step.
    import fewshot.setfit._training as contrastive

    steps, drawn = [], {}
    real = contrastive.cosine_similarity_loss
    monkeypatch.setattr(
        contrastive,
        "cosine_similarity_loss",
        lambda a, b, t: steps.append(real(a, b, t)) or steps[-1],
    )
    spy_training(monkeypatch, lambda body, ids, pairs: drawn.update(pairs=pairs))
    X, y = few
    clf = make(tiny_model, stop_pair_loss=stop_pair_loss, epochs=epochs).fit(X, y)
    pairs = drawn["pairs"]
    low, high = np.minimum(pairs.first, pairs.second), np.maximum(pairs.first, pairs.second)
    unordered = set(zip(low.tolist(), high.tolist()))
    assert len(unordered) == len(pairs)  # no pair twice within the first epoch
    per_epoch = -(-clf.n_pairs_ // 8)
    assert per_epoch > contrastive.STOP_WINDOW
    assert clf.n_steps_ == len(steps) == (per_epoch + 1 if stops else per_epoch * epochs)
    assert len(clf.train_loss_) == epochs
    if stops:  # the last epoch's loss is the mean over the pairs it trained on (one step)
        assert clf.train_loss_[-1] == pytest.approx(steps[-1].item(), rel=1e-6)


@pytest.mark.parametrize("self_pairs", [False, True])
def test_self_pairs_reach_training(tiny_model, few, monkeypatch, self_pairs):
    X, y = few
    seen = {}
    spy_training(monkeypatch, lambda body, ids, pairs: seen.update(pairs=pairs))
    clf = make(tiny_model, self_pairs=self_pairs).fit(X, y)
    pairs = seen["pairs"]
    same = pairs.first == pairs.second
    assert same.any() == self_pairs and np.all(pairs.target[same] == 1.0)
    assert clf.n_pairs_ == len(pairs) == 2 * 2 * len(X)  # n_iterations=2: the counts stay


def test_frozen_blocks_run_once_per_text_and_the_top_every_step(tiny_model, few, monkeypatch):
    X, y = few
    rows = {"bottom": 0, "top": 0, "n_texts": 0, "n_steps": 0}

    def record(body, ids, pairs):
        rows["n_texts"] = len(ids)
        rows["n_steps"] = -(-len(pairs) // 8)

        def counter(name):
            def hook(module, args, output):
                rows[name] += args[0].shape[0]

            return hook

        handles = [
            body.blocks[0].register_forward_hook(counter("bottom")),
            body.blocks[-1].register_forward_hook(counter("top")),
        ]
        return lambda: [h.remove() for h in handles]

    spy_training(monkeypatch, record)
    make(tiny_model, train_layers=2, pairs_per_step=8).fit(X, y)
    # The four frozen blocks see each distinct text exactly once; the trained top block
    # sees the texts of every step (at least one per step, more than one pass in all).
    assert rows["bottom"] == rows["n_texts"] == len(X)
    assert rows["top"] >= rows["n_steps"] and rows["top"] > rows["n_texts"]


def test_anchors_change_the_pairs_deterministically_per_seed(tiny_model, few, monkeypatch):
    X, y = few
    seen = []

    def record(body, ids, pairs):
        seen.append((len(ids), pairs.first.copy(), pairs.second.copy(), pairs.target.copy()))

    spy_training(monkeypatch, record)
    descriptions = {"billing": "money", "delivery": "parcels", "service": "help"}
    for params in (
        dict(label_descriptions=descriptions, random_state=3),
        dict(label_descriptions=descriptions, random_state=3),
        dict(label_descriptions=descriptions, random_state=4),
        dict(random_state=3),
    ):
        make(tiny_model, n_iterations=3, **params).fit(X, y)
    (n_a, *a), (n_b, *b), (_, *c), (n_plain, *plain) = seen
    assert n_a == n_b == len(X) + 3 and n_plain == len(X)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))  # same seed: the same pairs
    assert not all(np.array_equal(u, v) for u, v in zip(a, c))  # another seed: others
    anchors = set(range(len(X), len(X) + 3))
    assert anchors & set(a[0]) | anchors & set(a[1])  # the descriptions take part
    assert not (anchors & (set(plain[0]) | set(plain[1])))


@pytest.mark.parametrize(
    "descriptions, message",
    [
        ({"billing": "money"}, r"missing \['delivery', 'service'\]"),
        (
            {"billing": "a", "delivery": "b", "service": "c", "other": "d"},
            r"not classes \['other'\]",
        ),
        ({"billing": ""}, "must be None, 'labels' or a dict"),
    ],
)
def test_label_descriptions_must_name_the_classes(tiny_model, few, descriptions, message):
    X, y = few
    with pytest.raises((ValueError, TypeError), match=message):
        make(tiny_model, label_descriptions=descriptions).fit(X, y)


def test_fit_trains_one_copy_of_the_weights(tiny_model, few):
    """Unshared, the model loaded for a fit is trained itself; shared, it is copied."""
    import torch

    from fewshot import clear_caches
    from fewshot._core.loading import _CACHE, get_model

    X, y = few
    clear_caches()
    private = make(tiny_model, device="cpu").fit(X, y)
    assert not _CACHE  # nothing kept beside the fitted body
    shared = get_model(tiny_model, device="cpu")
    before = {k: v.clone() for k, v in shared.body.state_dict().items()}
    copied = make(tiny_model, device="cpu").fit(X, y)
    assert all(torch.equal(before[k], v) for k, v in shared.body.state_dict().items())
    assert copied.body_.model is not shared.body
    np.testing.assert_array_equal(private.transform(X), copied.transform(X))


def test_fits_of_an_unshared_model_hash_its_files_once(tiny_model, few, monkeypatch):
    """Each fit loads the model afresh (one copy in memory); its fingerprint is not recomputed."""
    import fewshot._core.model_files as model_files
    from fewshot import clear_caches

    reads = []
    real = model_files._hash_contents
    monkeypatch.setattr(
        model_files, "_hash_contents", lambda *args: reads.append(args[0]) or real(*args)
    )
    monkeypatch.setattr(model_files, "_HASHES", {})
    X, y = few
    clear_caches()
    first = make(tiny_model, device="cpu").fit(X, y)
    second = make(tiny_model, device="cpu").fit(X, y)
    assert first.base_model_["fingerprint"] == second.base_model_["fingerprint"]
    assert len(reads) == 1
