"""ONNX Runtime float32 and int8 against PyTorch, exports on disk, threads, clear errors.

Tolerances on the tiny random model: float32 ONNX within 1e-4 absolute of PyTorch
(observed ~4e-7); dynamic int8 per-text cosine >= 0.99 to PyTorch (observed ~0.9999) and
head probabilities within 0.05. The fidelity on real weights is measured by
``benchmarks/fidelity.py``, not here.
"""

import os
import sys

import numpy as np
import pytest
import torch

from fewshot import DistilEmbedder, EmbeddingCache
from fewshot._core import onnx_backend as _backends


def cosines(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture
def reference(tiny_model, texts):
    return DistilEmbedder(model=tiny_model, layers="all", head="logits").fit_transform(texts)


def test_onnx_float32_matches_torch(tiny_model, texts, reference):
    X = DistilEmbedder(model=tiny_model, layers="all", head="logits", backend="onnx").fit_transform(
        texts
    )
    np.testing.assert_allclose(X, reference, atol=1e-4, rtol=0)


def test_onnx_int8_is_close_to_torch(tiny_model, texts, reference):
    X = DistilEmbedder(
        model=tiny_model, layers="all", head="logits", backend="onnx", quantize="int8"
    ).fit_transform(texts)
    hidden = 7 * 32
    assert cosines(X[:, :hidden], reference[:, :hidden]).min() >= 0.99
    proba = DistilEmbedder(
        model=tiny_model, layers=[], head="proba", backend="onnx", quantize="int8"
    ).fit_transform(texts)
    logits = reference[:, hidden:]
    expected = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(proba, expected, atol=0.05)


def test_one_export_per_depth_reused_for_layer_subsets(tiny_model, texts, reference):
    home = os.path.join(_backends.fewshot_home(), "onnx")
    shallow = DistilEmbedder(model=tiny_model, layers=[1, 3], backend="onnx").fit_transform(texts)
    np.testing.assert_allclose(shallow, reference[:, np.r_[32:64, 96:128]], atol=1e-4)
    exports = set(os.listdir(home))
    DistilEmbedder(model=tiny_model, layers=[3, 0], backend="onnx").fit_transform(texts)
    DistilEmbedder(model=tiny_model, layers=2, backend="onnx").fit_transform(texts)  # depth 2: new
    assert len(set(os.listdir(home)) - exports) == 1

    import onnx

    from fewshot._core.loading import get_model

    folder = _backends.export_folder(get_model(tiny_model, device="cpu"), (0, 1, 2, 3), False)
    graph = onnx.load(os.path.join(folder, "model.onnx")).graph
    assert [o.name for o in graph.output] == ["layer0", "layer1", "layer2", "layer3"]


def test_onnx_goes_through_the_cache_with_its_own_keys(tiny_model, texts, tmp_path):
    cache = EmbeddingCache(tmp_path)
    for backend, quantize in [("torch", None), ("onnx", None), ("onnx", "int8")]:
        DistilEmbedder(
            model=tiny_model, backend=backend, quantize=quantize, cache=cache
        ).fit_transform(texts)
    assert cache.stats()["hits"] == 0 and cache.stats()["entries"] == 3 * len(texts)
    DistilEmbedder(model=tiny_model, backend="onnx", quantize="int8", cache=cache).fit_transform(
        texts
    )
    assert cache.stats()["hits"] == len(texts)


def test_threads_default_to_torch_and_explicit_count_is_restored(tiny_model, texts):
    before = torch.get_num_threads()
    seen = []
    from fewshot._core.loading import get_model

    loaded = get_model(tiny_model, device="cpu")
    handle = loaded.blocks[0].register_forward_hook(lambda *a: seen.append(torch.get_num_threads()))
    try:
        DistilEmbedder(model=tiny_model, n_threads=1).fit_transform(texts)
        DistilEmbedder(model=tiny_model).fit_transform(texts)
    finally:
        handle.remove()
    assert seen == [1, before]
    assert torch.get_num_threads() == before
    DistilEmbedder(model=tiny_model, backend="onnx", n_threads=1).fit_transform(texts)
    assert any(key[1] == 1 for key in _backends._SESSIONS)  # ONNX Runtime pool sized too


def _threads_in_worker():
    return torch.get_num_threads(), _backends.resolve_threads(None)


def test_parallel_workers_get_a_share_of_the_cores():
    """joblib limits each loky worker's threads, and fewshot's default follows torch's."""
    from joblib import Parallel, delayed

    results = Parallel(n_jobs=2, backend="loky")(delayed(_threads_in_worker)() for _ in range(2))
    share = max(1, (os.cpu_count() or 1) // 2)
    assert all(torch_threads == ours <= share for torch_threads, ours in results)


def test_int8_without_onnx_backend_names_the_fix(tiny_model):
    with pytest.raises(ValueError, match="backend='onnx', quantize='int8'"):
        DistilEmbedder(model=tiny_model, quantize="int8").fit()


def test_onnx_needs_float32_and_the_cpu(tiny_model):
    with pytest.raises(ValueError, match="dtype='float32'"):
        DistilEmbedder(model=tiny_model, backend="onnx", dtype="bfloat16").fit()
    # Without a GPU the missing CUDA device is named first; with one, the CPU-only rule.
    with pytest.raises(ValueError, match="device='cpu'|no such CUDA device"):
        DistilEmbedder(model=tiny_model, backend="onnx", device="cuda").fit()
    with pytest.raises(ValueError, match="backend='gpu' is not valid"):
        DistilEmbedder(model=tiny_model, backend="gpu").fit()


def test_missing_onnxruntime_names_the_extra(tiny_model, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # "not installed"
    with pytest.raises(ImportError, match=r"pip install 'fewshot\[onnx\]'"):
        DistilEmbedder(model=tiny_model, backend="onnx").fit()


def test_setfit_body_runs_on_onnx_and_int8(tiny_model):
    from fewshot import SetFitClassifier

    texts = ["love it", "great value", "works well", "broke fast", "awful", "hate it"]
    labels = [1, 1, 1, 0, 0, 0]
    torch_clf = SetFitClassifier(model=tiny_model, n_iterations=1, random_state=0, device="cpu")
    torch_clf.fit(texts, labels)
    onnx_clf = torch_clf.set_params(backend="onnx")
    # Inference only: the fitted body is exported on first use, training stays PyTorch.
    X_onnx = onnx_clf.transform(texts)
    X_torch = onnx_clf.set_params(backend="torch").transform(texts)
    np.testing.assert_allclose(X_onnx, X_torch, atol=1e-4)
    X_int8 = onnx_clf.set_params(backend="onnx", quantize="int8").transform(texts)
    cosine = (
        (X_int8 * X_torch).sum(1) / np.linalg.norm(X_int8, axis=1) / np.linalg.norm(X_torch, axis=1)
    )
    assert cosine.min() > 0.9
