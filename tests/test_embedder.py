"""DistilEmbedder against an independent computation, and its invariants."""

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

from fewshot import DistilEmbedder
from fewshot._core.loading import get_model


def reference_hidden_states(path, texts, max_length=512):
    """Hidden states of every layer from plain transformers, one text at a time."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    states = []
    for text in texts:
        enc = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")
        with torch.no_grad():
            out = model(**enc, output_hidden_states=True)
        states.append([h[0].numpy() for h in out.hidden_states])  # (tokens, hidden) per layer
    return states


def reference_pool(tokens, pooling):
    return {"mean": tokens.mean(axis=0), "cls": tokens[0], "max": tokens.max(axis=0)}[pooling]


@pytest.mark.parametrize("pooling", ["mean", "cls", "max"])
def test_every_layer_matches_transformers_hidden_states(tiny_model, texts, pooling):
    X = DistilEmbedder(model=tiny_model, layers="all", pooling=pooling, batch_size=3).fit_transform(
        texts
    )
    states = reference_hidden_states(tiny_model, texts)
    n_layers = len(states[0])
    assert n_layers == 7
    hidden = states[0][0].shape[1]
    assert X.shape == (len(texts), n_layers * hidden)
    expected = np.stack(
        [
            np.concatenate([reference_pool(layer, pooling) for layer in per_text])
            for per_text in states
        ]
    )
    np.testing.assert_allclose(X, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("head", ["logits", "proba"])
def test_head_columns_match_sequence_classification(tiny_model, texts, head):
    X = DistilEmbedder(model=tiny_model, layers=[], head=head).fit_transform(texts)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model).eval()
    with torch.no_grad():
        logits = torch.cat(
            [model(**tokenizer(t, return_tensors="pt")).logits for t in texts]
        ).numpy()
    expected = logits if head == "logits" else np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert X.shape == (len(texts), 2)
    np.testing.assert_allclose(X, expected, atol=1e-5, rtol=0)


def test_layers_and_head_come_from_one_forward_pass(tiny_model, texts):
    both = DistilEmbedder(model=tiny_model, layers=[2, 6], head="proba").fit_transform(texts)
    layers = DistilEmbedder(model=tiny_model, layers=[2, 6]).fit_transform(texts)
    head = DistilEmbedder(model=tiny_model, layers=[], head="proba").fit_transform(texts)
    np.testing.assert_allclose(both, np.hstack([layers, head]), atol=1e-6)

    loaded = get_model(tiny_model, device="cpu")
    calls = []
    handle = loaded.blocks[0].register_forward_hook(lambda *a: calls.append(1))
    try:
        DistilEmbedder(model=tiny_model, layers=[2, 6], head="proba", batch_size=64).transform(
            texts
        )
    finally:
        handle.remove()
    assert len(calls) == 1  # one batch, one pass through the first block


def test_forward_stops_at_deepest_requested_layer(tiny_model, texts):
    loaded = get_model(tiny_model, device="cpu")
    ran = []
    handles = [
        block.register_forward_hook(lambda m, a, o, i=i: ran.append(i))
        for i, block in enumerate(loaded.blocks, start=1)
    ]
    try:
        shallow = DistilEmbedder(model=tiny_model, layers=3, batch_size=64).transform(texts)
    finally:
        for h in handles:
            h.remove()
    assert sorted(set(ran)) == [1, 2, 3]
    full = DistilEmbedder(model=tiny_model, layers="all").transform(texts)
    hidden = shallow.shape[1]
    np.testing.assert_array_equal(shallow, full[:, 3 * hidden : 4 * hidden])


def test_same_text_same_vector_whatever_the_batch(tiny_model, texts):
    target = texts[2]
    alone = DistilEmbedder(model=tiny_model, layers="all", batch_size=1).fit_transform([target])[0]
    for batch_size in (1, 2, 3, 64):
        X = DistilEmbedder(model=tiny_model, layers="all", batch_size=batch_size).fit_transform(
            texts + ["x " * 60]
        )
        np.testing.assert_allclose(X[2], alone, atol=1e-5, rtol=0)


def test_outputs_follow_input_order(tiny_model, texts):
    embedder = DistilEmbedder(model=tiny_model, layers=4, batch_size=2)
    X = embedder.fit_transform(texts)
    permutation = np.random.default_rng(0).permutation(len(texts))
    X_shuffled = embedder.transform([texts[i] for i in permutation])
    np.testing.assert_allclose(X_shuffled, X[permutation], atol=1e-5)
    # Streaming in small blocks keeps the order too.
    from fewshot._core.encoding import encode

    plan = embedder._encoding_plan()
    loaded, spec = plan.loaded, plan.spec
    blocks = encode(loaded, texts, spec, batch_size=2, progress=False, n_threads=None, block_size=3)
    np.testing.assert_allclose(blocks, X, atol=1e-5)


def test_output_is_c_contiguous_float32(tiny_model, texts):
    X = DistilEmbedder(model=tiny_model, layers=[1, 2]).fit_transform(texts)
    assert X.dtype == np.float32 and X.flags.c_contiguous and X.ndim == 2


def test_negative_layers_count_from_the_top(tiny_model, texts):
    top = DistilEmbedder(model=tiny_model, layers=-1).fit(texts)
    assert top.layers_ == (6,)
    np.testing.assert_array_equal(
        top.transform(texts), DistilEmbedder(model=tiny_model, layers=6).transform(texts)
    )
    assert DistilEmbedder(model=tiny_model, layers=-7).fit().layers_ == (0,)


def test_combine_mean_averages_the_layer_blocks(tiny_model, texts):
    concat = DistilEmbedder(model=tiny_model, layers=[1, 3, 5]).fit_transform(texts)
    mean = DistilEmbedder(model=tiny_model, layers=[1, 3, 5], combine="mean").fit_transform(texts)
    np.testing.assert_allclose(mean, concat.reshape(len(texts), 3, -1).mean(axis=1), atol=1e-6)


def test_normalize_scales_hidden_features_only(tiny_model, texts):
    raw = DistilEmbedder(model=tiny_model, layers=[2, 4], head="logits").fit_transform(texts)
    unit = DistilEmbedder(
        model=tiny_model, layers=[2, 4], head="logits", normalize=True
    ).fit_transform(texts)
    body = raw[:, :-2]
    np.testing.assert_allclose(
        unit[:, :-2], body / np.linalg.norm(body, axis=1, keepdims=True), atol=1e-6
    )
    np.testing.assert_allclose(np.linalg.norm(unit[:, :-2], axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(unit[:, -2:], raw[:, -2:])


def test_long_text_chunk_is_the_token_weighted_mean_of_its_windows(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    long_text = " ".join(f"word{i} is good" for i in range(40))  # far beyond 24 tokens
    embedder = DistilEmbedder(
        model=tiny_model, layers=[3, 6], max_length=24, long_text="chunk", stride=6
    )
    X = embedder.fit_transform([long_text, "short one"])

    windows = tokenizer(
        long_text, truncation=True, max_length=24, stride=6, return_overflowing_tokens=True
    )
    ids = windows["input_ids"]
    assert len(ids) > 3
    model = AutoModel.from_pretrained(tiny_model).eval()
    vectors, weights = [], []
    for window in ids:
        with torch.no_grad():
            hs = model(input_ids=torch.tensor([window]), output_hidden_states=True).hidden_states
        vectors.append(np.concatenate([hs[3][0].numpy().mean(0), hs[6][0].numpy().mean(0)]))
        weights.append(len(window))
    expected = np.average(np.stack(vectors), axis=0, weights=weights)
    np.testing.assert_allclose(X[0], expected, atol=1e-5)

    # Every token is covered: the windows together hold the whole text.
    full = tokenizer(long_text, add_special_tokens=False)["input_ids"]
    covered = [t for window in ids for t in window[1:-1]]
    assert set(full) <= set(covered) and len(covered) > len(full)

    # A text that fits in one window embeds the same either way.
    truncate = DistilEmbedder(model=tiny_model, layers=[3, 6], max_length=24).fit_transform(
        ["short one"]
    )
    np.testing.assert_allclose(X[1], truncate[0], atol=1e-6)


def test_truncate_cuts_at_max_length(tiny_model):
    long_text = " ".join(["good"] * 200)
    cut = DistilEmbedder(model=tiny_model, layers=2, max_length=10).fit_transform([long_text])
    same_prefix = " ".join(["good"] * 8)  # 8 words + [CLS] + [SEP] = 10 tokens
    np.testing.assert_allclose(
        cut, DistilEmbedder(model=tiny_model, layers=2).fit_transform([same_prefix]), atol=1e-6
    )


def test_max_length_is_capped_at_the_model_limit(tiny_model):
    embedder = DistilEmbedder(model=tiny_model, max_length=100_000).fit()
    assert embedder.max_length_ == 128
    X = embedder.transform(["good " * 500])  # longer than the model's 128 positions
    assert np.isfinite(X).all()


def test_empty_input_gives_zero_rows(tiny_model):
    embedder = DistilEmbedder(model=tiny_model, layers=[1, 2], head="proba")
    X = embedder.fit_transform([])
    assert X.shape == (0, 66) and X.dtype == np.float32


def test_empty_string_and_unicode_are_text(tiny_model):
    X = DistilEmbedder(model=tiny_model).fit_transform(["", "日本語 ☕ ünï"])
    assert X.shape == (2, 32) and np.isfinite(X).all()


def test_feature_names(tiny_model):
    embedder = DistilEmbedder(model=tiny_model, layers=[4, 0], head="proba").fit()
    names = embedder.get_feature_names_out()
    assert len(names) == embedder.n_features_out_ == 2 * 32 + 2
    assert names[0] == "layer4_mean_0" and names[32] == "layer0_mean_0"
    assert list(names[-2:]) == ["head_proba_NEGATIVE", "head_proba_POSITIVE"]
    assert embedder.head_labels_ == ["NEGATIVE", "POSITIVE"]
    mean = DistilEmbedder(model=tiny_model, layers=[1, 2], pooling="max", combine="mean")
    assert mean.get_feature_names_out()[5] == "layers1+2_max_5"  # works without fit, too


def test_column_order_follows_the_layer_list(tiny_model, texts):
    a = DistilEmbedder(model=tiny_model, layers=[4, 1]).fit_transform(texts)
    b = DistilEmbedder(model=tiny_model, layers=[1, 4]).fit_transform(texts)
    np.testing.assert_array_equal(a, np.hstack([b[:, 32:], b[:, :32]]))


def test_reduced_precision_is_close_to_float32(tiny_model, texts):
    full = DistilEmbedder(model=tiny_model, layers=6).fit_transform(texts)
    half = DistilEmbedder(model=tiny_model, layers=6, dtype="bfloat16").fit_transform(texts)
    assert half.dtype == np.float32
    cosine = (full * half).sum(1) / np.linalg.norm(full, axis=1) / np.linalg.norm(half, axis=1)
    assert cosine.min() > 0.99


def test_works_with_another_encoder_family(minilm_path, texts):
    """A BERT checkpoint without a head (all-MiniLM-L6-v2) works for hidden states."""
    X = DistilEmbedder(model=minilm_path, layers=[0, -1], normalize=False).fit_transform(texts)
    expected = reference_hidden_states(minilm_path, texts)
    np.testing.assert_allclose(X[:, 384:], np.stack([s[6].mean(0) for s in expected]), atol=1e-5)
    np.testing.assert_allclose(X[:, :384], np.stack([s[0].mean(0) for s in expected]), atol=1e-5)
