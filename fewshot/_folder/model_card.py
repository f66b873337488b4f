"""The ``README.md`` model card of a saved folder, generated from its manifest.

The card follows the Hugging Face hub's model-card format: YAML metadata between
``---`` lines (``library_name: fewshot``, tags, ``base_model`` for a hub base,
``license`` when the base's own card states one, ``datasets`` when the caller named
them in ``metadata["datasets"]``), then a summary for people: task, labels, training
data (size, class counts, hash; never the texts), parameters, metrics, versions, and a
snippet that loads the folder. Everything comes from the manifest, so the card says
nothing the manifest does not.
"""

from __future__ import annotations

import json
import os

__all__ = ["card_metadata", "model_card"]

_KIND_TAGS = {
    "setfit": ["setfit", "sentence-transformers", "text-classification"],
    "pipeline": ["scikit-learn", "text-classification"],
    "head": ["text-classification"],
    "setfit-adapter": ["setfit", "peft", "lora", "text-classification"],
    "static-student": ["static-embeddings", "text-classification"],
}
_KIND_TITLES = {
    "setfit": "SetFit classifier (fine-tuned encoder and a scikit-learn head)",
    "pipeline": "Pipeline of a pretrained encoder's features and a scikit-learn classifier",
    "head": "The pretrained model's own classification head, calibrated",
    "setfit-adapter": (
        "SetFit classifier trained as a LoRA adapter (peft) and a scikit-learn head; the "
        "base model's weights are not in the folder, loading takes them from the base below"
    ),
    "static-student": (
        "Static student distilled from a fewshot classifier (int8 token embeddings and a "
        "scikit-learn head; no transformer at prediction time)"
    ),
}


def card_metadata(manifest: dict) -> dict:
    """The card's YAML metadata, from a manifest."""
    kind = str(manifest.get("kind"))
    base = manifest.get("base_model") or {}
    meta: dict = {}
    if base.get("license"):
        meta["license"] = base["license"]
    meta["library_name"] = "fewshot"
    meta["tags"] = ["fewshot", *_KIND_TAGS.get(kind, [kind])]
    model = base.get("model")
    # Only a hub id is a valid base_model there; a local folder stays in the text.
    if model and not os.path.isabs(str(model)):
        meta["base_model"] = str(model)
    datasets = (manifest.get("metadata") or {}).get("datasets")
    if datasets:
        meta["datasets"] = [datasets] if isinstance(datasets, str) else [str(d) for d in datasets]
    if kind in _KIND_TAGS:
        meta["pipeline_tag"] = "text-classification"
    return meta


def model_card(manifest: dict, folder) -> str:
    """The ``README.md`` text of the folder ``folder`` holding ``manifest``."""
    import yaml

    from .._estimator.validation import plain

    kind = str(manifest.get("kind"))
    front = yaml.safe_dump(card_metadata(manifest), sort_keys=False, allow_unicode=True)
    lines = ["---", front.rstrip("\n"), "---", "", f"# {os.path.basename(os.fspath(folder))}", ""]
    lines += [
        f"A fewshot model (kind `{kind}`): {_KIND_TITLES.get(kind, kind)}.",
        f"Saved {manifest.get('created_at')} by fewshot {manifest.get('fewshot_version')}; "
        "the full record is in `fewshot.json` (`fewshot info` prints it).",
        "",
    ]
    classes = manifest.get("classes")
    if classes is not None:
        lines += ["## Labels", "", ", ".join(f"`{plain(c)}`" for c in classes), ""]
    lines += ["## Base model", "", *_base_lines(manifest.get("base_model")), ""]
    lines += ["## Training data", "", *_data_lines(manifest), ""]
    metrics = manifest.get("metrics")
    if metrics:
        lines += ["## Metrics", "", "| metric | value |", "|---|---|"]
        lines += [f"| {name} | {value:.4g} |" for name, value in metrics.items()]
        lines += [""]
    lines += ["## Parameters", "", *_param_lines(manifest), ""]
    versions = manifest.get("versions") or {}
    if versions:
        lines += ["## Versions", "", ", ".join(f"{k} {v}" for k, v in versions.items()), ""]
    lines += [
        "## Usage",
        "",
        "```python",
        "from fewshot import load_model",
        "",
        f"clf = load_model({os.fspath(folder)!r})",
        'clf.predict(["a text to classify"])',
        "```",
        "",
    ]
    return "\n".join(lines)


def _base_lines(base) -> list[str]:
    if not base:
        return ["Not recorded."]
    lines = [f"- model: `{base.get('model')}`"]
    for key, label in (
        ("revision", "revision asked for"),
        ("commit", "commit"),
        ("fingerprint", "fingerprint (SHA-256 of its files)"),
        ("license", "license"),
    ):
        if base.get(key):
            lines.append(f"- {label}: `{base[key]}`")
    return lines


def _data_lines(manifest: dict) -> list[str]:
    data = manifest.get("training_data")
    if not data:
        return ["Not recorded (the estimator was not fitted on texts by this fewshot)."]
    lines = [f"- texts: {data.get('n_samples')}"]
    counts = data.get("class_counts")
    if counts:
        lines.append("- per class: " + ", ".join(f"`{k}` {v}" for k, v in counts.items()))
    lines.append(f"- SHA-256 of the texts and labels: `{data.get('sha256')}`")
    seeds = manifest.get("seeds")
    if seeds:
        lines.append("- seeds: " + ", ".join(f"{k} {v}" for k, v in seeds.items()))
    return lines


def _param_lines(manifest: dict) -> list[str]:
    # The flat parameters the folder loads with, then what only the full record has
    # (a SetFit head, a pipeline's steps).
    params = dict(manifest.get("params") or {})
    record = (manifest.get("estimator") or {}).get("params") or {}
    params.update({k: v for k, v in record.items() if k not in params})
    if not params:
        return ["Not recorded."]
    return [
        f"- `{name}`: `{json.dumps(value, ensure_ascii=False)}`" for name, value in params.items()
    ]
