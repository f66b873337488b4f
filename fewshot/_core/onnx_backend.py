"""Where the forward pass runs: PyTorch, or ONNX Runtime in float32 or dynamic int8.

The encoding path asks :func:`onnx_runner` for a callable with the same contract as its
own PyTorch forward: ``(input_ids, attention_mask) -> ({layer: hidden states}, logits)``,
so tokenising, batching, pooling and caching are shared by every backend.

ONNX models are exported by fewshot itself on first use (``torch.onnx.export``, the
``torch.export`` based exporter) and kept under :func:`fewshot_home` in a folder named
after the model's fingerprint (a hash of its files), its depth (the graph returns every
layer up to the deepest one asked for) and whether it returns the head, so an export is
reused across processes and calls and can never belong to other weights.

``quantize="int8"`` is ONNX Runtime's dynamic quantisation of that export: int8 weights
(per output channel) for the weight matrix multiplies, activations quantised on the fly
per batch, run by ONNX Runtime's int8 CPU kernels (VNNI where the CPU has it). Why this
path: ``torch.ao.quantization`` (eager dynamic quantisation) is deprecated; its successor
torchao gets its CPU int8 speed through ``torch.compile`` (a compile per shape and a
close coupling to the torch version), whereas ONNX Runtime's quantiser and kernels are a
stable, widely deployed tool that needs nothing beyond the ONNX export we already make.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
import warnings
import weakref

import numpy as np
import torch

from .forward import capture_layers, only_blocks
from .loading import LoadedModel, quiet_transformers
from .optional import require

__all__ = [
    "check_onnx_installed",
    "clear_sessions",
    "export_encoder_module",
    "export_folder",
    "fewshot_home",
    "onnx_file",
    "onnx_runner",
    "quantize_int8",
    "quiet_export",
    "resolve_threads",
    "torch_threads",
]

# Bump when the exported graph changes, so old exports are not reused.
_EXPORT_FORMAT = 1
_INT8_RECIPE = 1


def fewshot_home() -> str:
    """Folder for fewshot's files on disk: ``$FEWSHOT_HOME``, else ``~/.cache/fewshot``."""
    home = os.environ.get("FEWSHOT_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "fewshot"
    )
    return os.path.abspath(os.path.expanduser(home))


def resolve_threads(n_threads) -> int:
    """``None`` -> ``torch.get_num_threads()``, which joblib/loky workers already limit."""
    return int(n_threads) if n_threads is not None else torch.get_num_threads()


@contextlib.contextmanager
def torch_threads(n_threads: int):
    """Run torch with ``n_threads`` intra-op threads, then restore the previous setting."""
    before = torch.get_num_threads()
    if n_threads == before:
        yield
        return
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def check_onnx_installed() -> None:
    """Raise an ImportError naming the extra to install if ONNX Runtime is missing."""
    require(
        "onnxruntime",
        "onnx",
        "onnxscript",
        extra="onnx",
        feature="backend='onnx' (and quantize='int8'; or use backend='torch')",
    )


# -- export -----------------------------------------------------------------------


class _LayerOutputs(torch.nn.Module):
    """The model as one function: token ids and mask -> chosen hidden states (+ logits).

    The same hook-based capture as the PyTorch path (:func:`fewshot._core.forward.capture_layers`);
    ``output_hidden_states`` would make transformers install its own recording hooks on
    the truncated model.
    """

    def __init__(self, network, blocks, layers, head):
        super().__init__()
        self.network = network
        self.blocks = blocks
        self.layers = tuple(layers)
        self.head = head

    def forward(self, input_ids, attention_mask):
        captured, output = capture_layers(
            self.network, self.blocks, input_ids, attention_mask, self.layers, stop_early=False
        )
        results = tuple(captured[layer] for layer in self.layers)
        if self.head:
            results += (output.logits,)
        return results


@contextlib.contextmanager
def quiet_export():
    """Silence the exporter's and quantiser's prints, warnings and log lines.

    (Missing torchvision, pre-processing advice): export is fewshot's business.
    """
    loggers = [logging.getLogger(), logging.getLogger("torch.onnx")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(None):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _export(loaded: LoadedModel, layers, head: bool, path: str) -> None:
    """Write the float32 ONNX graph for ``layers`` (and the head) to ``path`` atomically."""
    if loaded.dtype != torch.float32:
        raise ValueError("backend='onnx' exports float32 weights; use dtype='float32'.")
    if loaded.device.type != "cpu":
        raise ValueError("backend='onnx' runs on the CPU; use device='cpu'.")
    network = loaded.model if head else loaded.body
    wrapper = _LayerOutputs(network, loaded.blocks, layers, head).eval()
    # A graph up to the deepest requested layer only; with the head, the whole model.
    # (At least one block: transformers records layer 0 as the first block's input.)
    depth = loaded.n_layers if head else max(1, max(layers))
    names = [f"layer{layer}" for layer in layers] + (["logits"] if head else [])
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    export_encoder_module(loaded, wrapper, tmp, output_names=names, depth=depth)
    os.replace(tmp, path)  # readers never see a half-written file


def export_encoder_module(loaded, module, path: str, *, output_names, depth: int) -> None:
    """Export ``module(input_ids, attention_mask)`` to ONNX with dynamic batch and length.

    The encoder is cut at ``depth`` blocks; shared by the backend and ``fewshot.export``.
    """
    batch, tokens = torch.export.Dim("batch"), torch.export.Dim("tokens")
    sample = torch.tensor([[1, 2, 3, 4], [1, 2, 3, 0]], dtype=torch.long)
    mask = (sample != 0).long()
    with loaded.lock, only_blocks(loaded, 0, depth), quiet_transformers(), quiet_export():
        torch.onnx.export(
            module,
            (sample, mask),
            path,
            input_names=["input_ids", "attention_mask"],
            output_names=list(output_names),
            dynamic_shapes={
                "input_ids": {0: batch, 1: tokens},
                "attention_mask": {0: batch, 1: tokens},
            },
            dynamo=True,
            external_data=False,
            verbose=False,
        )


def quantize_int8(source: str, path: str) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    with quiet_export():
        # Weight matrix multiplies only, signed int8 weights with one scale per output
        # channel. On all-MiniLM-L6-v2 per-tensor scales drop the median cosine to
        # 0.96; quantising the embedding table (Gather) or the activation-by-activation
        # attention products as well costs accuracy for little speed.
        quantize_dynamic(
            source,
            tmp,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
            extra_options={"MatMulConstBOnly": True},
        )
    os.replace(tmp, path)


def export_folder(loaded: LoadedModel, layers, head: bool) -> str:
    """Folder for this model's exports, named by everything that changes the graph."""
    fingerprint = loaded.fingerprint()
    if fingerprint is None:
        # A fine-tuned copy has no identity on disk: export for this process only.
        return _private_folder(loaded.model)
    identity = {
        "format": _EXPORT_FORMAT,
        "model": fingerprint,
        "layers": list(layers),
        "head": bool(head),
        "torch": torch.__version__.split("+")[0],
    }
    name = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]
    return os.path.join(fewshot_home(), "onnx", name)


# Keyed by the module itself, weakly: an id() could be reused by the next fine-tuned
# copy and hand it this one's export. The folder goes when its model does.
_PRIVATE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _private_folder(model: torch.nn.Module) -> str:
    if model not in _PRIVATE:
        _PRIVATE[model] = tempfile.TemporaryDirectory(prefix="fewshot-onnx-")
    return _PRIVATE[model].name


def onnx_file(loaded: LoadedModel, layers, head: bool, quantize) -> str:
    """Path of the ONNX model, exporting (and quantising) it first if needed."""
    folder = export_folder(loaded, layers, head)
    os.makedirs(folder, exist_ok=True)
    fp32 = os.path.join(folder, "model.onnx")
    if not os.path.exists(fp32):
        _export(loaded, layers, head, fp32)
    if quantize is None:
        return fp32
    int8 = os.path.join(folder, f"model.int8-v{_INT8_RECIPE}.onnx")
    if not os.path.exists(int8):
        quantize_int8(fp32, int8)
    return int8


# -- runtime ----------------------------------------------------------------------

_SESSIONS: dict[tuple, object] = {}
_SESSIONS_LOCK = threading.Lock()


def _session(path: str, n_threads: int):
    import onnxruntime as ort

    key = (path, n_threads)
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(key)
        if session is None:
            options = ort.SessionOptions()
            # ONNX Runtime would otherwise start one thread per core whatever joblib
            # or the caller allowed; one pool per session, sized like torch's.
            options.intra_op_num_threads = n_threads
            options.inter_op_num_threads = 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            _SESSIONS[key] = session
    return session


def onnx_runner(loaded: LoadedModel, layers, head: bool, quantize, n_threads: int):
    """A forward function backed by ONNX Runtime, same contract as the torch forward.

    One export serves every set of layers with the same deepest layer: it returns all
    layers up to that one (a copy per layer, small next to the compute), so a search
    over layers exports once per depth, not once per combination.
    """
    check_onnx_installed()
    depth = loaded.n_layers if head else max(1, max(layers))
    # A graph of the whole model also returns the head (it costs next to nothing), so
    # layers=-1 with and without head share one export.
    with_head = head or (loaded.has_head and depth == loaded.n_layers)
    exported = tuple(range(depth + 1))
    session = _session(onnx_file(loaded, exported, with_head, quantize), n_threads)
    wanted = sorted(set(layers))

    def run(input_ids: torch.Tensor, attention_mask: torch.Tensor):
        feeds = {
            "input_ids": input_ids.cpu().numpy().astype(np.int64, copy=False),
            "attention_mask": attention_mask.cpu().numpy().astype(np.int64, copy=False),
        }
        names = [f"layer{layer}" for layer in wanted] + (["logits"] if head else [])
        outputs = session.run(names, feeds)
        captured = {layer: torch.from_numpy(outputs[i]) for i, layer in enumerate(wanted)}
        logits = torch.from_numpy(outputs[-1]) if head else None
        return captured, logits

    return run


def clear_sessions() -> None:
    """Forget this process's ONNX Runtime sessions and private exports (see ``clear_caches``)."""
    with _SESSIONS_LOCK:
        _SESSIONS.clear()
        for folder in list(_PRIVATE.values()):
            folder.cleanup()
        _PRIVATE.clear()
