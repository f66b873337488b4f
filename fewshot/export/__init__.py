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

from ._assemble import (
    INPUTS,
    QUANTIZE,
    SUPPORTED_HEADS,
    SUPPORTED_TOKENIZERS,
    ExportReport,
    ExportWarning,
    to_onnx,
)

__all__ = [
    "ExportReport",
    "ExportWarning",
    "INPUTS",
    "QUANTIZE",
    "SUPPORTED_HEADS",
    "SUPPORTED_TOKENIZERS",
    "to_onnx",
]
