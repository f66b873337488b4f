"""The one forward pass: run an encoder once and capture the hidden states of chosen layers.

Used with and without gradients by the PyTorch inference path, by SetFit training and,
unchanged, inside the graph that :mod:`fewshot._core.onnx_backend` exports to ONNX. Layer ``0`` is
the embedding output (the input of the first block) and layer ``i`` the output of block
``i``. Layers are captured with forward hooks rather than ``output_hidden_states``, so
the forward can stop right after the deepest layer that is needed.
"""

from __future__ import annotations

import contextlib

import torch

__all__ = ["capture_layers", "forward_layers", "only_blocks", "replace_block_input"]


class _StopForward(Exception):
    """Raised from a hook once the deepest requested layer has run."""


def _layer_input(args, kwargs) -> torch.Tensor:
    if args:
        return args[0]
    for key in ("hidden_states", "x", "hidden_state"):
        if key in kwargs:
            return kwargs[key]
    return next(v for v in kwargs.values() if torch.is_tensor(v))


def capture_layers(network, blocks, input_ids, attention_mask, layers, *, stop_early):
    """Run ``network`` once; return ``({layer: hidden states}, model output or None)``.

    With ``stop_early`` the forward ends right after the deepest requested layer (the
    model output is then None); otherwise it runs to the end.
    """
    layers = sorted(set(layers))
    captured: dict[int, torch.Tensor] = {}
    stop_at = (layers[-1] if layers else 0) if stop_early else None
    handles = []

    if 0 in layers:

        def grab_input(module, args, kwargs):
            captured[0] = _layer_input(args, kwargs)
            if stop_at == 0:
                raise _StopForward

        handles.append(blocks[0].register_forward_pre_hook(grab_input, with_kwargs=True))

    for layer in layers:
        if layer == 0:
            continue

        def grab_output(module, args, output, layer=layer):
            captured[layer] = output[0] if isinstance(output, (tuple, list)) else output
            if layer == stop_at:
                raise _StopForward

        handles.append(blocks[layer - 1].register_forward_hook(grab_output))

    output = None
    try:
        output = network(input_ids=input_ids, attention_mask=attention_mask)
    except _StopForward:
        pass
    finally:
        for handle in handles:
            handle.remove()
    return captured, output


def forward_layers(loaded, input_ids, attention_mask, layers, *, head: bool = False):
    """Run a loaded model once and return ``({layer: hidden states}, logits or None)``.

    Without ``head`` the forward stops right after the deepest requested layer, so the
    blocks above it cost nothing. Runs with or without gradients, in whatever mode the
    model is in.
    """
    network = loaded.model if head else loaded.body
    captured, output = capture_layers(
        network, loaded.blocks, input_ids, attention_mask, layers, stop_early=not head
    )
    return captured, (output.logits if head else None)


def _parent_of(root: torch.nn.Module, target: torch.nn.Module):
    for module in root.modules():
        for attribute, child in module.named_children():
            if child is target:
                return module, attribute
    raise ValueError("could not find the module holding the transformer layers")


@contextlib.contextmanager
def only_blocks(loaded, start: int, stop: int):
    """Run the encoder with only ``blocks[start:stop]`` in place (restored afterwards).

    ``stop`` cuts the top (the ONNX export stops at the deepest layer it needs);
    ``start`` skips the bottom, whose output :func:`replace_block_input` then supplies.
    """
    parent, attribute = _parent_of(loaded.body, loaded.blocks)
    setattr(parent, attribute, torch.nn.ModuleList(list(loaded.blocks)[start:stop]))
    try:
        yield
    finally:
        setattr(parent, attribute, loaded.blocks)


@contextlib.contextmanager
def replace_block_input(block: torch.nn.Module, hidden_states: torch.Tensor):
    """Feed ``hidden_states`` to ``block`` in place of what the layers below it computed."""

    def swap(module, args, kwargs):
        if args:
            return (hidden_states, *args[1:]), kwargs
        for key in ("hidden_states", "x", "hidden_state"):
            if key in kwargs:
                return args, {**kwargs, key: hidden_states}
        raise ValueError(f"cannot find the hidden-state input of {type(module).__name__}")

    handle = block.register_forward_pre_hook(swap, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()
