"""bfloat16 compute (SetFitClassifier(dtype=...)): where it runs, what stays float32."""

import contextlib
import os
import warnings

import numpy as np
import pytest
import torch

from fewshot import SetFitClassifier, load_model
from fewshot.setfit._precision import (
    ONEDNN_CACHE_CAPACITY,
    bf16_native,
    compute_autocast,
    resolve_compute_dtype,
)

CPU = torch.device("cpu")
needs_bf16 = pytest.mark.skipif(
    not bf16_native(CPU), reason="this CPU has no native bfloat16 (AVX512-BF16 or AMX)"
)


def make(tiny_model, **params):
    defaults = dict(
        model=tiny_model,
        n_iterations=2,
        pairs_per_step=8,
        random_state=0,
        body_learning_rate=1e-3,
        device="cpu",
    )
    return SetFitClassifier(**{**defaults, **params})


@contextlib.contextmanager
def recorded_linear_dtypes():
    """Collects the dtype of every Linear output computed inside the block."""
    seen = set()
    original = torch.nn.Linear.forward

    def spy(self, x):
        out = original(self, x)
        seen.add(out.dtype)
        return out

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.nn.Linear, "forward", spy)
        yield seen


def linear_output_dtypes(clf, X, y):
    """The dtypes the body's Linear layers produced while ``clf`` was fitted."""
    with recorded_linear_dtypes() as seen:
        clf.fit(X, y)
    return seen


@needs_bf16
def test_bfloat16_trains_and_predicts_in_bf16_with_float32_weights(tiny_model, few):
    X, y = few
    clf = make(tiny_model, dtype="bfloat16")
    assert linear_output_dtypes(clf, X, y) == {torch.bfloat16}
    assert clf.dtype_ == "bfloat16"
    assert {p.dtype for p in clf.body_.model.parameters()} == {torch.float32}
    Z = clf.transform(X)
    assert Z.dtype == np.float32
    # The same weights in float32 give close but different vectors: autocast really ran.
    with compute_autocast(CPU, "float32"):
        clf.dtype_ = "float32"
        Z32 = clf.transform(X)
    clf.dtype_ = "bfloat16"
    assert not np.array_equal(Z, Z32)
    np.testing.assert_allclose(Z, Z32, atol=0.1)


@needs_bf16
def test_auto_default_trains_in_bf16_and_predicts_in_float32(tiny_model, few):
    X, y = few
    clf = make(tiny_model)
    assert clf.dtype == "auto"  # the default
    # Training steps in bfloat16; the head's features (like every prediction) in float32.
    assert linear_output_dtypes(clf, X, y) == {torch.bfloat16, torch.float32}
    assert clf.dtype_ == "bfloat16"
    with recorded_linear_dtypes() as seen:
        Z = clf.transform(X)
    assert seen == {torch.float32}
    # Exactly what the same weights give when float32 is asked for by name.
    clf.dtype = "float32"
    np.testing.assert_array_equal(clf.transform(X), Z)


def test_float32_never_autocasts(tiny_model, few):
    X, y = few
    clf = make(tiny_model, dtype="float32")
    assert linear_output_dtypes(clf, X, y) == {torch.float32}
    assert clf.dtype_ == "float32"


def test_auto_picks_bf16_exactly_where_native(tiny_model, few, monkeypatch):
    import fewshot.setfit._precision as precision

    for native, expected in ((True, "bfloat16"), (False, "float32")):
        monkeypatch.setattr(precision, "bf16_native", lambda device, native=native: native)
        assert resolve_compute_dtype("auto", CPU) == expected
    monkeypatch.setattr(precision, "bf16_native", lambda device: False)
    with pytest.warns(UserWarning, match="no native bfloat16"):
        assert resolve_compute_dtype("bfloat16", CPU) == "bfloat16"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_compute_dtype("float32", CPU) == "float32"


def test_float16_is_refused_with_the_choices(tiny_model, few):
    X, y = few
    with pytest.raises(ValueError, match="dtype"):
        make(tiny_model, dtype="float16").fit(X, y)


@needs_bf16
def test_bfloat16_model_saves_float32_and_loads_identically(tiny_model, few, tmp_path):
    X, y = few
    clf = make(tiny_model, dtype="bfloat16").fit(X, y)
    clf.save(tmp_path / "m")
    from safetensors import safe_open

    with safe_open(str(tmp_path / "m" / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float32}
    loaded = load_model(tmp_path / "m", device="cpu")
    assert loaded.dtype == "bfloat16" and loaded.dtype_ == "bfloat16"
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


@needs_bf16
def test_bfloat16_with_frozen_lower_blocks(tiny_model, few):
    X, y = few
    clf = make(tiny_model, dtype="bfloat16", train_layers=2).fit(X, y)
    assert clf.predict(X).shape == (12,)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_bfloat16_on_cuda(tiny_model, few):
    X, y = few
    clf = make(tiny_model, dtype="auto", device="cuda").fit(X, y)
    assert clf.dtype_ == "float32"  # measured no faster on a GPU at few-shot batch sizes
    assert clf.predict(X).shape == (12,)
    forced = make(tiny_model, dtype="bfloat16", device="cuda")
    if bf16_native(torch.device("cuda")):
        assert linear_output_dtypes(forced, X, y) == {torch.bfloat16}
        assert forced.predict(X).shape == (12,)


@needs_bf16
def test_bfloat16_classifier_exports_what_float32_torch_computes(
    tiny_model, few, tmp_path, monkeypatch
):
    """The file computes in float32; its check compares with float32, and needs no peft."""
    pytest.importorskip("onnxruntime")
    import sys

    from fewshot.export import to_onnx
    from fewshot.runtime import OnnxClassifier

    monkeypatch.setitem(sys.modules, "peft", None)  # a plain classifier never imports it
    X, y = few
    clf = make(tiny_model, dtype="bfloat16").fit(X, y)
    report = to_onnx(clf, tmp_path / "m.onnx", verbose=False)
    assert report.manifest["checks"]["float32"]["label_agreement"] == 1.0
    clf.dtype_ = "float32"
    expected = clf.predict_proba(X)
    np.testing.assert_allclose(OnnxClassifier(report.path).predict_proba(X), expected, atol=1e-5)


ONEDNN_VARIABLES = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY")


@pytest.fixture
def no_onednn_setting(monkeypatch):
    """Neither variable set; whatever the test sets is undone after it."""
    for name in ONEDNN_VARIABLES:
        monkeypatch.setenv(name, "recorded")  # so that monkeypatch restores the original
        monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_bfloat16_on_cpu_bounds_onednn_kernel_cache(no_onednn_setting, dtype):
    # oneDNN's default cache of 1024 bf16 kernels grew a fit's peak memory by ~220 MiB.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bfloat16 on a CPU without it warns; not tested here
        resolve_compute_dtype(dtype, CPU)
    expected = str(ONEDNN_CACHE_CAPACITY) if dtype == "bfloat16" else None
    assert os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY") == expected


@pytest.mark.parametrize("name", ONEDNN_VARIABLES)
def test_users_own_onednn_cache_capacity_wins(no_onednn_setting, name):
    no_onednn_setting.setenv(name, "1024")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        resolve_compute_dtype("bfloat16", CPU)
    assert os.environ[name] == "1024"
    assert set(ONEDNN_VARIABLES) & set(os.environ) == {name}
