"""Export a fitted fewshot model to one ONNX file: text in, label and probabilities out.

:func:`to_onnx` writes a single ONNX graph that holds every step between a text and its
label, so the file runs anywhere ONNX Runtime runs (:mod:`fewshot.runtime` in Python,
or ONNX Runtime's C, C++, C#, Java, JavaScript and Rust bindings):

1. **the tokenizer** — onnxruntime-extensions' ``BertTokenizer`` custom op, one text at a
   time inside an ONNX ``Loop``, then truncation at the estimator's ``max_length`` and
   padding with standard ops. Supported: BERT-style WordPiece tokenizers (the
   ``tokenizer.json`` of BERT, DistilBERT, MiniLM, MPNet and their fine-tunes: a
   WordPiece model, ``BertNormalizer``, ``BertPreTokenizer`` and a ``[CLS] text [SEP]``
   template). Other tokenizers (byte-level BPE as in RoBERTa and GPT-2, SentencePiece as
   in XLM-R and T5) are refused for text input: export them with
   ``inputs="token_ids"``, which stores their ``tokenizer.json`` in the file for the
   Hugging Face ``tokenizers`` library (Python, Rust, Node) to tokenise with;
2. **the encoder, cut at the deepest layer used** — the same hook-based capture as
   every other forward pass in fewshot (:func:`fewshot._core.forward.capture_layers`),
   exported with ``torch.onnx.export(dynamo=True)``;
3. **pooling and normalisation** — :func:`fewshot._core.encoding.pooled_features` itself,
   traced into the graph, then the same L2 normalisation as the Python path;
4. **the head** — ``LogisticRegression`` as plain ONNX ops in float64 (MatMul, Add,
   Sigmoid or Softmax, ArgMax, Gather of the class labels); a ``HeadClassifier``'s
   temperature-scaled softmax over its classes' logits likewise; other scikit-learn
   heads (and pipelines of scikit-learn steps after the embedder) through ``skl2onnx``
   where it converts them, else an error listing what is supported.

A model with a ``prompt`` records it in the manifest and :class:`~fewshot.runtime.OnnxClassifier`
applies it to every text before the graph tokenises; such a model exports with
``inputs="text"`` only (a file taking token ids could not apply it for its callers).

Outputs: ``label`` and ``probabilities`` (float64, columns in ``classes_`` order) for
classifiers, and ``features`` (float32) for every file: a ``DistilEmbedder``'s output, or
the embedding a classifier's head sees.

``quantize="int8"`` quantises the encoder: ONNX Runtime's dynamic quantisation of the
weight matrix multiplies (signed int8, one scale per output channel: the recipe of
``backend="onnx", quantize="int8"``) plus the word-embedding table stored as int8 with
one scale per row (so an anchor-sized model fits in well under 100 MB). The head stays
float64.

The file carries its manifest as ONNX metadata (``metadata_props["fewshot.manifest"]``,
JSON): the classes, the inputs and outputs, the tokenizer settings, and the agreement
measured at export between the file and the Python estimator on ``check_texts`` (max
probability or feature difference, label agreement, tokenizer agreement), for float32
and, when quantised, for int8; and under ``provenance`` what a saved folder's manifest
records (versions, base model, training data hash and counts, seeds, parameters,
creation time). ``fewshot info FILE.onnx`` prints it.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
import warnings
from collections.abc import Sequence

from .._core.prompt import apply_prompt

# The steps live in private modules, one per part of the graph; this module runs them.
from ._checks import compare, default_check_texts, tokenized_ids, tokenizer_agreement
from ._encoder import export_encoder, int8_embeddings
from ._file import assemble_model, onnx_session, opset_of, write_model
from ._head import SUPPORTED_HEADS, head_nodes
from ._manifest import build_manifest, provenance, set_metadata
from ._resolve import check_spec, resolve
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
QUANTIZE = (None, "int8")
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

    parts = resolve(estimator)
    loaded, spec = parts.loaded, parts.spec
    check_spec(loaded, spec)
    if spec.prompt is not None and inputs == "token_ids":
        raise ValueError(
            f"This model applies prompt={spec.prompt!r} to every text, which a file that "
            "takes token ids cannot do for its callers; export it with inputs='text' "
            "(OnnxClassifier then applies the prompt), or without a prompt."
        )
    tokenizer = loaded.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    settings = wordpiece_settings(tokenizer) if inputs == "text" else None
    tokenizer_parts = (
        tokenizer_nodes(settings, spec.max_length, pad_id) if settings is not None else None
    )

    texts = default_check_texts() if check_texts is None else _check_texts(check_texts)
    expected = parts.reference(texts)
    ids = tokenized_ids(loaded, spec, texts)
    # The graph tokenises what OnnxClassifier feeds it: texts with the prompt applied.
    graph_texts = apply_prompt(spec.prompt, texts)

    import onnx

    with tempfile.TemporaryDirectory(prefix="fewshot-export-") as tmp:
        fp32_file = os.path.join(tmp, "encoder.onnx")
        export_encoder(loaded, spec, fp32_file)
        encoder = onnx.load(fp32_file)
        opset = opset_of(encoder, "")
        n_features = spec.n_features(loaded)
        head_parts = (
            head_nodes(parts.head, n_features, parts.classes, opset)
            if parts.head is not None
            else None
        )
        n_classes = None if parts.classes is None else len(parts.classes)
        assemble = dict(
            inputs=inputs,
            tokenizer_parts=tokenizer_parts,
            head_parts=head_parts,
            n_features=n_features,
            n_classes=n_classes,
        )
        fp32 = assemble_model(encoder, **assemble)
        checks: dict = {
            "n_texts": len(texts),
            "texts": "default" if check_texts is None else "given",
        }
        if tokenizer_parts is not None:
            checks["tokenizer_agreement"] = tokenizer_agreement(
                tokenizer_parts, graph_texts, ids, opset
            )
        checks["float32"] = compare(
            onnx_session(fp32), parts, graph_texts, ids, inputs, expected, pad_id
        )
        final = fp32
        if quantize == "int8":
            from .._core.onnx_backend import quantize_int8

            int8_file = os.path.join(tmp, "encoder.int8.onnx")
            quantize_int8(fp32_file, int8_file)
            encoder8 = onnx.load(int8_file)
            checks["int8_embedding_tables"] = int8_embeddings(encoder8)
            final = assemble_model(encoder8, **assemble)
            checks["int8"] = compare(
                onnx_session(final), parts, graph_texts, ids, inputs, expected, pad_id
            )

    manifest = build_manifest(
        parts,
        spec,
        inputs,
        quantize,
        pad_id,
        settings,
        head_parts,
        checks,
        n_features,
        provenance(estimator, loaded),
    )
    set_metadata(final, manifest, tokenizer if inputs == "token_ids" else None)
    _check_fp32(checks["float32"], parts)
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


def _check_texts(texts) -> list[str]:
    from .._estimator.validation import check_texts

    texts = check_texts(texts, allow_empty=False)
    return list(texts)


def _check_fp32(result: dict, parts) -> None:
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
