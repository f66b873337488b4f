"""``fewshot info``: what a saved folder (or exported ONNX file) records about itself."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ._support import InputError, reported

__all__ = ["format_manifest", "info"]

# The order a person reads a manifest in; any other keys follow in their own order.
_ORDER = (
    "kind",
    "format",
    "format_version",
    "fewshot_version",
    "created_at",
    "versions",
    "base_model",
    "classes",
    "training_data",
    "seeds",
    "metrics",
    "params",
    "fitted",
    "metadata",
    "estimator",
    "head_file",
)


def format_manifest(manifest: dict, title: str) -> str:
    """A manifest as indented ``key: value`` lines under ``title``, for people."""
    ordered = {key: manifest[key] for key in _ORDER if key in manifest}
    ordered.update({k: v for k, v in manifest.items() if k not in ordered})
    return "\n".join([title, *_lines(ordered, 2)])


def _lines(mapping: dict, indent: int):
    pad = " " * indent
    for key, value in mapping.items():
        if _named_pairs(value):  # a Pipeline's steps: [[name, {...}], ...]
            value = dict(value)
        if isinstance(value, dict) and value:
            yield f"{pad}{key}:"
            yield from _lines(value, indent + 2)
        else:
            yield f"{pad}{key}: {_value(value)}"


def _named_pairs(value) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(
            isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and isinstance(v[1], dict)
            for v in value
        )
        and len({v[0] for v in value}) == len(value)
    )


def _value(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, (str, int, float, bool)) for v in value):
        return ", ".join(str(v) for v in value) if value else "[]"
    return json.dumps(value, ensure_ascii=False)


def _head_check(folder: Path) -> str | None:
    """What the folder's head file names, read as data: it is never built here."""
    from .._folder.format import HEAD_FILE
    from .._folder.trust import audit_head

    file = folder / HEAD_FILE
    if not file.is_file():
        return None
    try:
        refused = audit_head(file).refused
    except ValueError as exc:
        return f"unreadable ({exc})"
    if refused:
        return "REFUSED, would not load: " + "; ".join(refused)
    return "loads (every type on the allow-list)"


@click.command()
@click.argument("path", metavar="PATH", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@reported
def info(path, as_json):
    """Print what the model folder (or exported .onnx file) PATH records about itself.

    Its manifest: kind, package versions, base model (id, revision, resolved commit,
    fingerprint), training data (size, class counts, hash), seeds, metrics, every
    parameter and when it was made; for a folder, whether its head file passes the
    trust check (read as data: nothing in it is loaded or run).
    """
    if not Path(path).exists():
        raise InputError(f"'{path}' does not exist.")
    if Path(path).is_file() and Path(path).suffix.lower() == ".onnx":
        from ..runtime._classifier import read_manifest as read_onnx_manifest

        manifest = read_onnx_manifest(path)
        title = f"fewshot ONNX file '{path}'"
    elif Path(path).is_dir():
        from .._folder.format import read_manifest

        manifest = read_manifest(path)
        title = f"fewshot model folder '{path}'"
    else:
        raise InputError(f"'{path}' is neither a fewshot model folder nor an .onnx file.")
    if as_json:  # exactly what the file holds
        click.echo(json.dumps(manifest, indent=2, ensure_ascii=False))
        return
    if Path(path).is_dir():
        manifest = {**manifest, "head_file": _head_check(Path(path))}
    click.echo(format_manifest(manifest, title))
