"""Bad parameters and missing models fail with errors that name the problem and the fix."""

import pytest

from fewshot import DistilEmbedder, ModelNotFoundError


@pytest.mark.parametrize(
    "params, error, message",
    [
        ({"layers": 7}, ValueError, r"layer 7 is out of range .* 6 layers: use 0\.\.6 .* -7\.\.-1"),
        ({"layers": -8}, ValueError, r"out of range"),
        ({"layers": [1, 9]}, ValueError, r"layer 9 is out of range"),
        ({"layers": "first"}, ValueError, r"layers='first' is not valid"),
        ({"layers": 2.5}, TypeError, r"layers must be an int"),
        ({"layers": [1, "2"]}, TypeError, r"every layer must be an int"),
        ({"layers": [2, 2]}, ValueError, r"same layer twice"),
        ({"layers": [2, -5]}, ValueError, r"same layer twice"),
        ({"layers": []}, ValueError, r"ask for no features"),
        (
            {"pooling": "sum"},
            ValueError,
            r"pooling='sum' is not valid; choose one of \[None, 'mean', 'cls', 'max'\]",
        ),
        ({"combine": "add"}, ValueError, r"combine='add'"),
        ({"head": "softmax"}, ValueError, r"head='softmax'"),
        ({"long_text": "split"}, ValueError, r"long_text='split'"),
        ({"max_length": 0}, ValueError, r"max_length must be an int >= 2"),
        ({"batch_size": 0}, ValueError, r"batch_size must be an int >= 1"),
        ({"normalize": "yes"}, TypeError, r"normalize must be True or False"),
        ({"dtype": "int8"}, ValueError, r"dtype='int8' is not supported"),
        ({"device": "gpu"}, ValueError, r"device='gpu' is not a torch device"),
        (
            {"long_text": "chunk", "max_length": 12, "stride": 10},
            ValueError,
            r"stride=10 must be smaller than the 10 text tokens",
        ),
    ],
)
def test_bad_parameters(tiny_model, params, error, message):
    embedder = DistilEmbedder(model=tiny_model, **params)  # init never complains
    with pytest.raises(error, match=message):
        embedder.fit(["text"])
    with pytest.raises(error, match=message):
        embedder.transform(["text"])


def test_head_on_a_model_without_one(tiny_body_only):
    with pytest.raises(
        ValueError, match=r"head='proba' needs a sequence-classification head.*DistilBertModel"
    ):
        DistilEmbedder(model=tiny_body_only, head="proba").fit()
    assert DistilEmbedder(model=tiny_body_only).fit().head_labels_ == []


@pytest.mark.parametrize("model", [None, 3, ""])
def test_model_must_be_a_string(model):
    with pytest.raises(TypeError, match="model must be a Hugging Face model id or a folder path"):
        DistilEmbedder(model=model).fit()


def test_missing_folder_names_the_model(tmp_path):
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(ModelNotFoundError, match=r"no-such-model.*no such folder.*local copy"):
        DistilEmbedder(model=missing).fit()


def test_unknown_hub_id_offline_fails_fast_and_explains(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        ModelNotFoundError,
        match=r"'someone/not-a-real-model'.*HF_HUB_OFFLINE.*model='/path/to/folder'",
    ):
        DistilEmbedder(model="someone/not-a-real-model").fit()


def test_unreachable_hub_fails_without_retrying(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr("fewshot._core.loading._hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(ModelNotFoundError, match=r"hub cannot be reached"):
        DistilEmbedder(model="someone/not-a-real-model").fit()


def test_folder_without_model_files(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        ModelNotFoundError, match=r"'.*empty': the folder is not a readable model folder"
    ):
        DistilEmbedder(model=str(tmp_path / "empty")).fit()
