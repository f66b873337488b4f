"""Folders written before the restructuring (format 2) still load and predict the same.

``tests/fixtures/format2`` holds one folder of each kind, written by the code of commit
c0674d4 (the last flat layout) from the tiny model with seed 0, and the probabilities that
code predicted for a few texts (``expected.json``).
"""

import json
from pathlib import Path

import numpy as np
import pytest

from fewshot import HeadClassifier, SetFitClassifier, load_model
from fewshot.testing import make_tiny_distilbert

FIXTURES = Path(__file__).parent / "fixtures" / "format2"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """The adapter's base: the tiny model, rebuilt bit for bit (its fingerprint is checked)."""
    return str(make_tiny_distilbert(tmp_path_factory.mktemp("base")))


@pytest.mark.parametrize("kind", ["setfit", "setfit-adapter", "pipeline", "head"])
def test_a_folder_of_the_previous_layout_loads_and_predicts_the_same(kind, base):
    extra = {"model": base} if kind == "setfit-adapter" else {}
    model = load_model(FIXTURES / kind, **extra)
    proba = model.predict_proba(EXPECTED["texts"])
    np.testing.assert_allclose(proba, EXPECTED["proba"][kind], atol=1e-5)


def test_setfit_load_and_the_kinds_give_the_estimators_they_saved(base):
    assert isinstance(SetFitClassifier.load(FIXTURES / "setfit"), SetFitClassifier)
    adapter = SetFitClassifier.load(FIXTURES / "setfit-adapter", model=base)
    assert adapter.get_params()["adapter"] is not None
    assert isinstance(load_model(FIXTURES / "head"), HeadClassifier)
    assert [name for name, _ in load_model(FIXTURES / "pipeline").steps] == [
        "embed",
        "scale",
        "lr",
    ]
