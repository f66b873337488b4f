"""``to_onnx``: assemble the parts an estimator names into one file, measure it, write it.

The design and the file's layout are described in :mod:`fewshot.export`.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
import warnings
from collections.abc import Sequence

from .._core.choices import QUANTIZE
from .._core.prompt import apply_prompt

# The steps live in private modules, one per part of the graph; this module runs them.
from ._checks import compare, default_check_texts, tokenizer_agreement
from ._encoder import int8_embeddings
from ._file import assemble_model, onnx_session, opset_of, write_model
from ._head import SUPPORTED_HEADS, head_nodes
from ._manifest import build_manifest, set_metadata
from ._resolve import resolve
from ._tokenizer import SUPPORTED_TOKENIZERS, tokenizer_nodes, wordpiece_settings

__all__ = [
    "INPUTS",
    "QUANTIZE",
    "SUPPORTED_HEADS",
    "SUPPORTED_TOKENIZERS",
    "ExportReport",
    "ExportWarning",
    "to_onnx",
]

INPUTS = ("text", "token_ids")
# Probabilities (or features) of the float32 file must match the Python estimator this
# closely; a larger difference is reported with an ExportWarning.
FP32_TOLERANCE = 1e-4


class ExportWarning(UserWarning):
    """The exported file does not match the Python estimator as closely as expected."""


@dataclasses.dataclass
class ExportReport:
    """What :func:`to_onnx` wrote and how closely the file matches the estimator.

    Attributes
    ----------
    path : str
        The ONNX file.
    size_bytes : int
        Its size.
    manifest : dict
        The manifest stored in the file (``checks`` holds the measurements).
    seconds : float
        Time the export took, checks included.
    """

    path: str
    size_bytes: int
    manifest: dict
    seconds: float

    @property
    def checks(self) -> dict:
        """The agreement measured at export (also in the file's manifest)."""
        return self.manifest.get("checks", {})

    def summary(self) -> str:
        """A few lines for people: file, size, and the measured agreement."""
        m = self.manifest
        lines = [
            f"Wrote {self.path} ({self.size_bytes / 2**20:.1f} MiB, {m['kind']}, "
            f"{m['inputs']} input, {m['quantize'] or 'float32'}) in {self.seconds:.1f} s"
        ]
        checks = self.checks
        n = checks.get("n_texts", 0)
        if checks.get("tokenizer_agreement") is not None:
            lines.append(
                f"  tokenizer: identical token ids for {checks['tokenizer_agreement']:.1%} of "
                f"{n} check texts"
            )
        for name in ("float32", "int8"):
            result = checks.get(name)
            if not result:
                continue
            what = "probability" if "label_agreement" in result else "feature"
            diff = result["max_abs_diff"]
            line = f"  {name} vs the Python estimator: max {what} difference {diff:.2e}"
            if "label_agreement" in result:
                line += f", labels agree on {result['label_agreement']:.1%} of {n} texts"
            if "min_cosine" in result:
                line += f", min cosine {result['min_cosine']:.6f}"
            lines.append(line)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


# -- the public function ---------------------------------------------------------------


def to_onnx(
    estimator,
    path,
    *,
    quantize: str | None = None,
    inputs: str = "text",
    check_texts: Sequence[str] | None = None,
    verbose: bool = True,
) -> ExportReport:
    """Write a fitted fewshot model as one ONNX file: text in, label and probabilities out.

    Parameters
    ----------
    estimator : DistilEmbedder, SetFitClassifier, HeadClassifier or Pipeline
        A fitted :class:`~fewshot.SetFitClassifier` (single-label), a fitted
        :class:`~fewshot.HeadClassifier`, a fitted
        ``Pipeline([("embed", DistilEmbedder(...)), ..., (name, classifier)])``, or a
        :class:`~fewshot.DistilEmbedder` (the file then outputs its features only).
        It must use ``long_text="truncate"``. The graph is exported from a float32 copy
        of the model on the CPU, whatever device the estimator runs on; a
        SetFitClassifier's fine-tuned body must be there already
        (``fewshot.load_model(folder, device="cpu")``).
    path : str or path-like
        The ``.onnx`` file to write (replaced atomically).
    quantize : {None, "int8"}, default=None
        ``"int8"``: int8 encoder weights (see the module notes); the file is about four
        times smaller and faster on CPUs with int8 kernels. Its agreement with the
        Python estimator is measured and stored.
    inputs : {"text", "token_ids"}, default="text"
        ``"text"``: the graph tokenises (onnxruntime-extensions needed at run time; the
        tokenizer must be one of ``SUPPORTED_TOKENIZERS``). ``"token_ids"``: the graph
        takes ``input_ids`` and ``attention_mask`` (int64, batch x tokens), for runtimes
        without the extensions; the tokenizer.json is stored in the file's metadata.
    check_texts : sequence of str, optional
        Texts to compare the file with the estimator on (default: the 80 demo texts
        of :func:`fewshot.data.load_customer_feedback` and a few edge cases).
    verbose : bool, default=True
        Print :meth:`ExportReport.summary` (file, size and measured agreement).

    Returns
    -------
    ExportReport
        The path, size, manifest and the measured agreement (``report.checks``).

    Examples
    --------
    >>> import tempfile, os
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import Pipeline
    >>> from fewshot import DistilEmbedder
    >>> from fewshot.export import to_onnx
    >>> from fewshot.runtime import OnnxClassifier
    >>> from fewshot.testing import make_tiny_distilbert
    >>> model = str(make_tiny_distilbert(tempfile.mkdtemp()))
    >>> clf = Pipeline([("embed", DistilEmbedder(model=model)), ("lr", LogisticRegression())])
    >>> clf = clf.fit(["good", "bad", "great", "awful"], [1, 0, 1, 0])
    >>> path = os.path.join(tempfile.mkdtemp(), "model.onnx")
    >>> report = to_onnx(clf, path, check_texts=["good", "bad"], verbose=False)
    >>> report.checks["float32"]["label_agreement"]
    1.0
    >>> OnnxClassifier(path).predict(["good"]).tolist() == clf.predict(["good"]).tolist()
    True
    """
    start = time.perf_counter()
    path = _check_request(path, quantize, inputs)
    parts = resolve(estimator)
    if parts.prompt is not None and inputs == "token_ids":
        raise ValueError(
            f"This model applies prompt={parts.prompt!r} to every text, which a file that "
            "takes token ids cannot do for its callers; export it with inputs='text' "
            "(OnnxClassifier then applies the prompt), or without a prompt."
        )
    texts = default_check_texts() if check_texts is None else _check_texts(check_texts)
    with tempfile.TemporaryDirectory(prefix="fewshot-export-") as tmp:
        final, checks, graph = _build_and_measure(parts, inputs, quantize, texts, tmp)
    checks["texts"] = "default" if check_texts is None else "given"
    manifest = build_manifest(
        parts,
        inputs=inputs,
        quantize=quantize,
        tokenizer_settings=graph.settings,
        class_type=graph.class_type,
        checks=checks,
    )
    set_metadata(final, manifest, parts.tokenizer if inputs == "token_ids" else None)
    _check_fp32(checks["float32"])
    write_model(final, path)
    report = ExportReport(
        path=path,
        size_bytes=os.path.getsize(path),
        manifest=manifest,
        seconds=time.perf_counter() - start,
    )
    if verbose:
        print(report.summary())
    return report


def _check_request(path, quantize, inputs) -> str:
    """The request's options and extras, checked before any work is done."""
    if quantize not in QUANTIZE:
        raise ValueError(f"quantize={quantize!r} is not valid; choose one of {list(QUANTIZE)}.")
    if inputs not in INPUTS:
        raise ValueError(f"inputs={inputs!r} is not valid; choose one of {list(INPUTS)}.")
    from .._core.optional import require

    require("onnx", "onnxscript", "onnxruntime", extra="onnx", feature="to_onnx")
    if inputs == "text":
        require("onnxruntime_extensions", extra="runtime", feature="to_onnx(inputs='text')")
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{path!r} is a folder; give the path of the .onnx file to write.")
    return path


@dataclasses.dataclass
class _Graph:
    """The pieces around the features graph: tokenizer and head nodes, padding id."""

    settings: dict | None  # the WordPiece settings, for a graph that tokenises
    tokenizer_parts: tuple | None
    head_parts: tuple | None
    pad_id: int

    @property
    def class_type(self) -> str | None:
        return None if self.head_parts is None else self.head_parts[3]

    def assemble(self, features, parts, inputs):
        n_classes = None if parts.classes is None else len(parts.classes)
        return assemble_model(
            features,
            inputs=inputs,
            tokenizer_parts=self.tokenizer_parts,
            head_parts=self.head_parts,
            n_features=parts.n_features,
            n_classes=n_classes,
        )


def _build_and_measure(parts, inputs, quantize, texts, tmp):
    """The float32 file (and the int8 one when asked), each compared with the estimator."""
    import onnx

    tokenizer = parts.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    settings = wordpiece_settings(tokenizer) if inputs == "text" else None
    tokenizer_parts = (
        tokenizer_nodes(settings, parts.max_length, pad_id) if settings is not None else None
    )
    expected = parts.reference(texts)
    ids = parts.token_ids(texts)
    # The graph tokenises what OnnxClassifier feeds it: texts with the prompt applied.
    graph_texts = apply_prompt(parts.prompt, texts)
    fp32_file = os.path.join(tmp, "features.onnx")
    parts.write_features(fp32_file)
    features = onnx.load(fp32_file)
    opset = opset_of(features, "")
    head_parts = (
        head_nodes(parts.head, parts.n_features, parts.classes, opset)
        if parts.head is not None
        else None
    )
    graph = _Graph(settings, tokenizer_parts, head_parts, pad_id)
    fp32 = graph.assemble(features, parts, inputs)
    checks: dict = {"n_texts": len(texts)}
    if tokenizer_parts is not None:
        checks["tokenizer_agreement"] = tokenizer_agreement(
            tokenizer_parts, graph_texts, ids, opset
        )
    measure = (parts, graph_texts, ids, inputs, expected, pad_id)
    checks["float32"] = compare(onnx_session(fp32), *measure)
    if quantize != "int8":
        return fp32, checks, graph
    if parts.quantize is None:
        raise ValueError(f"A {parts.kind} file has no int8 form; export it with quantize=None.")
    int8_file = os.path.join(tmp, "features.int8.onnx")
    parts.quantize(fp32_file, int8_file)
    features8 = onnx.load(int8_file)
    checks["int8_embedding_tables"] = int8_embeddings(features8)
    final = graph.assemble(features8, parts, inputs)
    checks["int8"] = compare(onnx_session(final), *measure)
    return final, checks, graph


def _check_texts(texts) -> list[str]:
    from .._estimator.validation import check_texts

    texts = check_texts(texts, allow_empty=False)
    return list(texts)


def _check_fp32(result: dict) -> None:
    ok = result["max_abs_diff"] <= FP32_TOLERANCE and result.get("label_agreement", 1.0) == 1.0
    if not ok:
        warnings.warn(
            f"The float32 file differs from the Python estimator by up to "
            f"{result['max_abs_diff']:.2e} (tolerance {FP32_TOLERANCE:g})"
            + (
                f", labels agree on {result['label_agreement']:.1%}"
                if "label_agreement" in result
                else ""
            )
            + "; check the tokenizer agreement in the report.",
            ExportWarning,
            stacklevel=3,
        )
