"""What a student asks its teacher: a check, soft labels, and a vector per vocabulary token.

The teacher is any fitted fewshot classifier (a ``SetFitClassifier``, a
``HeadClassifier``, a ``Pipeline([DistilEmbedder, ..., classifier])``): it is asked,
never type-tested, for ``predict_proba`` (the soft labels a student's head learns) and
for its encoding plan (``_encoding_plan``, on itself or on a pipeline's first step),
whose body embeds each vocabulary token on its own (:func:`token_vectors`, model2vec's
distillation, here through the teacher's own body, layer and pooling, so a fine-tuned
body gives fine-tuned token vectors). The teacher is only read: nothing here trains,
moves or changes it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["Teacher", "check_teacher", "teacher_plan", "teacher_record", "token_vectors"]


def check_teacher(teacher) -> None:
    """Refuse a missing, unfitted or multi-label teacher with a message saying what to pass."""
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    if teacher is None:
        raise ValueError(
            "teacher is None; pass a fitted fewshot classifier (a SetFitClassifier, "
            "HeadClassifier or Pipeline([DistilEmbedder, ..., classifier])) to distil from."
        )
    if not (hasattr(teacher, "predict_proba") and hasattr(teacher, "fit")):
        raise TypeError(
            f"teacher must be a fitted fewshot classifier with predict_proba, got "
            f"{type(teacher).__name__}."
        )
    try:
        check_is_fitted(teacher)
    except NotFittedError:
        raise ValueError(
            f"the teacher {type(teacher).__name__} is not fitted; fit it on labelled texts "
            "first (a student learns the fitted teacher's probabilities)."
        ) from None
    if getattr(teacher, "multilabel_", False):
        raise ValueError(
            "the teacher was fitted on multi-label targets; a static student learns "
            "single-label probabilities."
        )


def teacher_plan(teacher):
    """The encoding plan of the teacher's body (CPU or wherever it runs), or a clear error."""
    for candidate in (teacher, *[step for _, step in (getattr(teacher, "steps", None) or [])[:1]]):
        ask = getattr(candidate, "_encoding_plan", None)
        if ask is not None:
            return ask()
    raise TypeError(
        f"cannot reach the encoder of the teacher {type(teacher).__name__}: a static "
        "student distils a fewshot classifier that embeds with a transformer (a "
        "SetFitClassifier, HeadClassifier or Pipeline([DistilEmbedder, ..., classifier]))."
    )


def token_vectors(plan, token_ids, *, batch_size: int, progress: bool):
    """The teacher's vector of each token alone: ``[CLS] token [SEP]`` through its body.

    model2vec's distillation (one forward pass per vocabulary token, pooled), run by the
    teacher's own encoding path: its layer and pooling, without normalisation (the
    table is reduced by PCA afterwards) and without a head's outputs. Returns float32
    ``(len(token_ids), hidden_size)``.
    """
    import torch
    from tqdm.auto import tqdm

    from .._core.encoding import make_runner, pooled_features

    loaded, spec = plan.loaded, plan.spec
    spec = dataclasses.replace(
        spec,
        head=None,
        layers=spec.layers or (loaded.n_layers,),
        normalize=False,
        backend="torch",
        quantize=None,
    )
    template, at = _single_token_template(loaded.tokenizer)
    ids = torch.as_tensor(np.asarray(token_ids, dtype=np.int64))
    run = make_runner(loaded, spec)
    out = np.empty((len(ids), spec.n_body_features(loaded.hidden_size)), dtype=np.float32)
    with tqdm(total=len(ids), disable=not progress, unit="token", desc="Token vectors") as bar:
        for start in range(0, len(ids), batch_size):
            batch = ids[start : start + batch_size]
            input_ids = torch.as_tensor(template, dtype=torch.long).repeat(len(batch), 1)
            input_ids[:, at] = batch
            input_ids = input_ids.to(loaded.device)
            mask = torch.ones_like(input_ids)
            outputs = run(input_ids, mask)
            with torch.inference_mode():
                features = pooled_features(loaded, input_ids, mask, spec, outputs=outputs)
            out[start : start + len(batch)] = features.float().cpu().numpy()
            bar.update(len(batch))
    return out


def _single_token_template(tokenizer) -> tuple[list[int], int]:
    """The ids of a one-token text with the tokenizer's specials, and where the token goes."""
    with_specials = tokenizer("a", add_special_tokens=True)["input_ids"]
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    for at in range(len(with_specials) - len(plain) + 1):
        if with_specials[at : at + len(plain)] == plain:
            return with_specials[:at] + [0] + with_specials[at + len(plain) :], at
    return [0], 0  # a template that rewrites the text: the token alone


def teacher_record(teacher) -> dict:
    """What a student's manifest says of its teacher: class, base model, training data."""
    from .._folder.provenance import public_module

    kind = type(teacher)
    source = teacher
    steps = getattr(teacher, "steps", None)
    if steps:
        source = steps[0][1]
    return {
        "estimator": f"{public_module(kind.__module__)}.{kind.__qualname__}",
        "base_model": getattr(source, "base_model_", None),
        "training_data": getattr(source, "training_data_", None),
        "seeds": getattr(teacher, "seeds_", None),
        "classes": np.asarray(teacher.classes_).tolist(),
    }


class Teacher:
    """None (refused in ``fit`` with what to pass) or an estimator with ``predict_proba``."""

    def check(self, name, value):
        if value is not None and not hasattr(value, "predict_proba"):
            raise TypeError(
                f"{name} must be a fitted fewshot classifier with predict_proba, got "
                f"{type(value).__name__}."
            )

    def invalid(self):
        return "a teacher"
