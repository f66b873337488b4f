"""LoRA adapters for ``SetFitClassifier(adapter="lora")``, built with the ``peft`` library.

Instead of fine-tuning a private copy of the whole body, an adapter classifier trains
low-rank matrices (peft's LoRA layers) next to the attention (and, with
``LoRA(targets="attention+ffn")``, the feed-forward) weights of the pretrained encoder.

How the base is shared. The adapter body is :func:`fewshot._core.loading.shared_copy` of the
process-wide pretrained model: new module objects whose parameters are the shared weight
tensors themselves (new ``Parameter`` objects, ``requires_grad=False``, on the same
storage), with peft's LoRA layers injected into those new modules only
(``peft.inject_adapter_in_model``). So

- the shared :class:`~fewshot._core.loading.LoadedModel` is never modified: other estimators,
  the base's own classification head and every other adapter see the pretrained model
  exactly as loaded (no catastrophic forgetting, nothing to switch on or off);
- five adapter classifiers on one base hold one copy of the base weights plus their
  LoRA matrices (a few hundred KB each);
- each adapter body is its own ``LoadedModel`` with its own lock and its own blocks for
  the encoding path's hooks, so forwards of different classifiers never race on hooks,
  and reading the shared tensors from several threads is safe.

The alternative, peft's named adapters on the one shared model (``set_adapter`` per
forward under the shared lock), would rewrite the shared model's modules for everyone,
serialise every classifier on one lock and break the shared model's ONNX export; it is
not used. ``fewshot.clear_caches()`` forgets the shared model as usual: fitted adapter
classifiers keep the weights they point to alive and keep predicting.

The folder holds the adapter in peft's own format (``adapter_config.json`` and
``adapter_model.safetensors``, readable by ``peft.PeftModel.from_pretrained``), never the
base weights; it loads against a base whose fingerprint matches the one recorded
(the manifest's ``base_model``, :func:`fewshot._folder.provenance.check_base`).
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import torch
from sklearn.base import BaseEstimator

from .._core.loading import LoadedModel, shared_copy, wrap_private
from .._core.optional import require
from .._estimator.constraints import Integer, Options, Real

__all__ = [
    "Adapter",
    "LoRA",
    "lora_settings",
    "ADAPTER_FILES",
    "ADAPTER_KIND",
    "adapter_body",
    "adapter_from_bytes",
    "adapter_parameters",
    "adapter_to_bytes",
    "is_adapter",
    "lora_target_modules",
    "merged_copy",
    "read_adapter",
    "write_adapter",
]

ADAPTER_KIND = "setfit-adapter"  # the model-folder kind: an old fewshot says "upgrade"
CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
ADAPTER_FILES = (CONFIG_FILE, WEIGHTS_FILE)
# ``PeftModel.save_pretrained`` prefixes its keys so; with it ours load there too.
_KEY_PREFIX = "base_model.model."
_ADAPTER_NAME = "default"


class LoRA(BaseEstimator):
    """LoRA adapter settings: ``SetFitClassifier(adapter=LoRA(rank=4))``.

    A small estimator of its own, so a grid search reaches its settings as
    ``adapter__rank`` (``GridSearchCV(clf, {"adapter__rank": [4, 8, 16]})``);
    ``adapter="lora"`` means ``LoRA()``.

    Parameters
    ----------
    rank : int, default=8
        Rank of each LoRA update.
    alpha : float, optional
        LoRA's scale: the update is multiplied by ``alpha / rank``. None means
        ``2 * rank`` (a scale of 2).
    dropout : float, default=0.1
        Dropout on the input of the LoRA layers while training.
    targets : {"attention", "attention+ffn"}, default="attention"
        The weights adapted in each block: the attention's query, key, value and output
        projections, plus the two feed-forward layers with ``"attention+ffn"``.

    Examples
    --------
    >>> from fewshot.setfit import LoRA, SetFitClassifier
    >>> clf = SetFitClassifier(adapter=LoRA(rank=4), body_learning_rate=1e-3)
    >>> clf.get_params()["adapter__rank"]
    4
    """

    _constraints = {
        "rank": Integer(1),
        "alpha": Real(0, low_open=True, optional=True),
        "dropout": Real(0, 1),
        "targets": Options("attention", "attention+ffn"),
    }

    def __init__(self, *, rank=8, alpha=None, dropout=0.1, targets="attention"):
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
        self.targets = targets


class Adapter:
    """``adapter``: None, ``"lora"`` or a :class:`LoRA` with valid settings."""

    def check(self, name, value):
        if value is None or value == "lora":
            return
        if not isinstance(value, LoRA):
            raise ValueError(
                f"{name}={value!r} is not valid; use None (fine-tune the whole body), "
                "'lora' or LoRA(rank=..., alpha=..., dropout=..., targets=...)."
            )
        for setting, setting_value in value.get_params().items():  # named as a grid names them
            LoRA._constraints[setting].check(f"{name}__{setting}", setting_value)

    def invalid(self):
        return "qlora"


def lora_settings(adapter) -> LoRA | None:
    """The :class:`LoRA` an ``adapter`` parameter asks for (None: no adapter)."""
    if adapter is None:
        return None
    return LoRA() if adapter == "lora" else adapter


# Per architecture (config.model_type): the Linear layers of one block, by their name
# inside the block: (attention, feed-forward).
_BERT = (
    (
        "attention.self.query",
        "attention.self.key",
        "attention.self.value",
        "attention.output.dense",
    ),
    ("intermediate.dense", "output.dense"),
)
_LINEAR_LAYERS = {
    "distilbert": (
        ("attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin"),
        ("ffn.lin1", "ffn.lin2"),
    ),
    "bert": _BERT,
    "roberta": _BERT,
    "xlm-roberta": _BERT,
    "camembert": _BERT,
    "electra": _BERT,
    "mpnet": (
        ("attention.attn.q", "attention.attn.k", "attention.attn.v", "attention.attn.o"),
        ("intermediate.dense", "output.dense"),
    ),
}


def _peft():
    return require("peft", extra="peft", feature="adapter='lora' (LoRA fine-tuning)")


def lora_target_modules(body: LoadedModel, targets: str, first_block: int = 0) -> list[str]:
    """Full names of the Linear layers LoRA adapts, in ``blocks[first_block:]``.

    Exact names rather than a pattern: adapters go into the trained blocks only (with
    ``train_layers``), and an architecture whose layers are not where we expect fails
    here, clearly, instead of training nothing.
    """
    model_type = getattr(body.config, "model_type", None)
    layers = _LINEAR_LAYERS.get(model_type)
    if layers is None:
        raise ValueError(
            f"adapter='lora' knows where the attention and feed-forward layers of "
            f"{sorted(_LINEAR_LAYERS)} encoders are, not those of {model_type!r} "
            f"({type(body.body).__name__}); use adapter=None to fine-tune the whole body."
        )
    wanted = layers[0] + (layers[1] if targets == "attention+ffn" else ())
    prefix = next(name for name, module in body.body.named_modules() if module is body.blocks)
    names = []
    for index in range(first_block, body.n_layers):
        modules = dict(body.blocks[index].named_modules())
        for name in wanted:
            if not isinstance(modules.get(name), torch.nn.Linear):
                raise ValueError(
                    f"adapter='lora': block {index} of {type(body.body).__name__} has no "
                    f"Linear layer {name!r} (this transformers version laid it out "
                    "differently); use adapter=None."
                )
            names.append(f"{prefix}.{index}.{name}")
    return names


def _inject(config, body: LoadedModel, seed: int) -> LoadedModel:
    """Inject peft's LoRA layers into ``body``'s own modules, initialised from ``seed``."""
    peft = _peft()
    devices = [body.device.index or 0] if body.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # the caller's torch RNG stays as it was
        torch.manual_seed(seed)
        peft.inject_adapter_in_model(config, body.model, adapter_name=_ADAPTER_NAME)
    body.model.eval()
    return body


def adapter_body(
    pretrained: LoadedModel, layer: int, lora: LoRA, *, first_block: int, seed: int, base: dict
) -> LoadedModel:
    """A fresh LoRA body on ``pretrained`` cut at ``layer``, adapters in ``blocks[first_block:]``.

    ``lora.alpha`` None means ``2 * rank`` (LoRA's update is scaled by ``alpha / rank``).
    ``base`` (:func:`fewshot._folder.provenance.base_record`) goes into the adapter config as a
    record; nothing reads it back.
    """
    peft = _peft()
    body = shared_copy(pretrained, layer)
    rank = int(lora.rank)
    config = peft.LoraConfig(
        r=rank,
        lora_alpha=2 * rank if lora.alpha is None else float(lora.alpha),
        lora_dropout=float(lora.dropout),
        target_modules=lora_target_modules(body, lora.targets, first_block),
        bias="none",
        base_model_name_or_path=base.get("model"),
        revision=base.get("revision"),
    )
    return _inject(config, body, seed)


def adapter_parameters(body: LoadedModel) -> list[torch.nn.Parameter]:
    """The LoRA matrices of an adapter body: the only parameters training may change."""
    return [p for name, p in body.model.named_parameters() if "lora_" in name]


def is_adapter(body: LoadedModel) -> bool:
    """Whether a fitted body is a LoRA adapter body (peft layers injected), not a copy."""
    return hasattr(body.model, "peft_config")


def write_adapter(body: LoadedModel, folder) -> None:
    """The adapter's ``adapter_config.json`` and ``adapter_model.safetensors`` (peft's format)."""
    peft = _peft()
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = peft.get_peft_model_state_dict(
        body.model, adapter_name=_ADAPTER_NAME, save_embedding_layers=False
    )
    tensors = {_KEY_PREFIX + k: v.detach().cpu().contiguous() for k, v in state.items()}
    save_file(tensors, folder / WEIGHTS_FILE, metadata={"format": "pt"})
    config = copy.copy(body.model.peft_config[_ADAPTER_NAME])
    config.inference_mode = True
    config.save_pretrained(str(folder))


def read_adapter(pretrained: LoadedModel, layer: int, folder) -> LoadedModel:
    """The adapter in ``folder`` (written by :func:`write_adapter`) on ``pretrained``.

    The config's ``base_model_name_or_path`` is not followed: the caller chose the base.
    """
    peft = _peft()
    from safetensors.torch import load_file

    folder = Path(folder)
    missing = [name for name in ADAPTER_FILES if not (folder / name).is_file()]
    if missing:
        raise ValueError(f"{str(folder)!r} has no {missing}; the adapter folder is incomplete.")
    config = peft.LoraConfig.from_pretrained(str(folder))  # a local file: no hub access
    if not isinstance(config, peft.LoraConfig):
        raise ValueError(
            f"{str(folder / CONFIG_FILE)!r} holds a {type(config).__name__}, not a LoRA "
            "adapter; fewshot loads LoRA adapters only."
        )
    state = {
        key.removeprefix(_KEY_PREFIX): value
        for key, value in load_file(folder / WEIGHTS_FILE, device="cpu").items()
    }
    body = _inject(config, shared_copy(pretrained, layer), seed=0)
    result = peft.set_peft_model_state_dict(body.model, state, adapter_name=_ADAPTER_NAME)
    unset = [key for key in result.missing_keys if "lora_" in key]
    if result.unexpected_keys or unset:
        raise ValueError(
            f"The adapter weights in {str(folder)!r} do not fit its base model "
            f"(unexpected: {list(result.unexpected_keys)[:3]}, missing: {unset[:3]})."
        )
    return body


def adapter_to_bytes(body: LoadedModel) -> dict[str, bytes]:
    """The adapter files as ``{name: bytes}`` (how a pickle carries an adapter body)."""
    with tempfile.TemporaryDirectory() as tmp:
        write_adapter(body, tmp)
        return {name: (Path(tmp) / name).read_bytes() for name in ADAPTER_FILES}


def adapter_from_bytes(files: dict, pretrained: LoadedModel, layer: int) -> LoadedModel:
    """The adapter body :func:`adapter_to_bytes` wrote, on ``pretrained`` again."""
    with tempfile.TemporaryDirectory() as tmp:
        for name in ADAPTER_FILES:
            (Path(tmp) / name).write_bytes(files[name])
        return read_adapter(pretrained, layer, tmp)


def merged_copy(body: LoadedModel) -> LoadedModel:
    """A private plain encoder with the adapter merged into its weights (for ONNX export).

    A real copy of the base weights: merging writes into them, and the shared ones must
    stay as they are.
    """
    from peft.tuners.lora import LoraLayer

    with body.lock:
        model = copy.deepcopy(body.model)  # new tensors: the shared storage is not copied over
    for name, module in list(model.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge(safe_merge=True)
            parent, _, attribute = name.rpartition(".")
            setattr(model.get_submodule(parent), attribute, module.get_base_layer())
    model.eval()
    return wrap_private(body, model)
