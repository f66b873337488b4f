"""A static student's folder, in the one model-folder format (kind ``"static-student"``).

::

    my-student/
      fewshot.json          the manifest: parameters, classes, provenance, and ``teacher``
                            (the teacher's class, base model and training-data record)
      README.md             the model card made from it
      head.skops            the fitted head (skops, read through the trust allow-list)
      student.safetensors   ``embeddings`` (int8, one row per token id) and ``scales``
      tokenizer.json        the teacher's tokenizer, as data (Hugging Face tokenizers)

No weight is pickled and nothing in the folder is followed: the teacher is named for
provenance only, and loading needs neither it nor its model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._folder.format import (
    HEAD_FILE,
    dump_head,
    load_head,
    new_manifest,
    read_manifest,
    write_manifest,
)
from .._folder.provenance import check_versions, restore_provenance

__all__ = ["KIND", "read_student_folder", "restore_student", "write_student_folder"]

KIND = "static-student"
TABLE_FILE = "student.safetensors"
TOKENIZER_FILE = "tokenizer.json"


def write_student_folder(student, folder: Path, *, metadata=None, metrics=None) -> None:
    """Write a fitted student's files into the existing ``folder``."""
    from safetensors.numpy import save_file

    check_is_fitted(student, "head_")
    save_file(
        {
            "embeddings": np.ascontiguousarray(student.embeddings_),
            "scales": np.ascontiguousarray(student.scales_),
        },
        str(folder / TABLE_FILE),
    )
    (folder / TOKENIZER_FILE).write_text(student.tokenizer_.to_str(), encoding="utf-8")
    params = {
        k: v for k, v in student.get_params(deep=False).items() if k not in ("teacher", "head")
    }
    manifest = new_manifest(
        KIND,
        metadata,
        estimator=student,
        metrics=metrics,
        params=params,
        default_head=student.head is None,
        fitted={
            "n_tokens": int(student.embeddings_.shape[0]),
            "n_dims": int(student.embeddings_.shape[1]),
            "n_pool": int(student.n_pool_),
            "n_labelled": int(student.n_labelled_),
            "special_tokens": dict(student.special_tokens_),
        },
        classes=np.asarray(student.classes_).tolist(),
        teacher=student.teacher_,
    )
    dump_head(student.head_, folder / HEAD_FILE)
    write_manifest(folder, manifest)


def read_student_folder(cls, directory, *, trusted=None):
    """A fitted ``cls`` from a folder; see ``StaticStudentClassifier.load``."""
    folder = Path(directory)
    manifest = read_manifest(folder, what=cls.__name__)
    if manifest.get("kind") != KIND:
        raise ValueError(
            f"{str(folder)!r} is not a {cls.__name__} folder: it holds a "
            f"{manifest.get('kind')!r} model; load it with fewshot.load_model."
        )
    check_versions(manifest, repr(str(folder)))
    return restore_student(cls, folder, manifest, trusted=trusted)


def restore_student(cls, folder: Path, manifest: dict, *, trusted=None):
    """A fitted ``cls`` from a folder's files (manifest already read and checked)."""
    from safetensors.numpy import load_file

    from ._static import truncating_tokenizer

    head = load_head(folder, trusted)
    for name in (TABLE_FILE, TOKENIZER_FILE):
        if not (folder / name).is_file():
            raise ValueError(f"{str(folder)!r} has no {name}; the folder is incomplete.")
    arrays = load_file(str(folder / TABLE_FILE))
    embeddings, scales = arrays.get("embeddings"), arrays.get("scales")
    if (
        embeddings is None
        or scales is None
        or embeddings.dtype != np.int8
        or embeddings.ndim != 2
        or scales.shape != (embeddings.shape[0],)
    ):
        raise ValueError(
            f"{str(folder / TABLE_FILE)!r} does not hold an int8 table and one scale per "
            "row; the folder is damaged."
        )
    known = cls().get_params(deep=False)
    params = {k: v for k, v in (manifest.get("params") or {}).items() if k in known}
    params["progress"] = False
    student = cls(**params)
    fitted = manifest["fitted"]
    student.tokenizer_ = truncating_tokenizer(
        (folder / TOKENIZER_FILE).read_text(encoding="utf-8"), student.max_length
    )
    if student.tokenizer_.get_vocab_size(with_added_tokens=True) != embeddings.shape[0]:
        raise ValueError(
            f"{str(folder)!r}: the tokenizer and the table do not have the same number of "
            "tokens; the folder is damaged."
        )
    student.embeddings_ = embeddings
    student.scales_ = scales.astype(np.float32, copy=False)
    student.special_tokens_ = dict(fitted.get("special_tokens") or {})
    student.n_pool_ = int(fitted["n_pool"])
    student.n_labelled_ = int(fitted.get("n_labelled", 0))
    student.classes_ = np.asarray(manifest["classes"])
    student.head_ = head
    if not manifest.get("default_head", True):
        from sklearn.base import clone

        student.head = clone(head)
    student.teacher_ = manifest.get("teacher")
    restore_provenance(student, manifest)
    return student
