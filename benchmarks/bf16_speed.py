"""bfloat16 compute vs float32: SetFitClassifier fit and predict time on this machine.

The lever of ``SetFitClassifier(dtype="bfloat16")``: float32 weights, matrix products in
bfloat16 under autocast. Timing only, so the bodies are random-weight models of the real
shapes (all-MiniLM-L6-v2: 6 layers, hidden 384; the anchor DistilBERT: 6 layers,
hidden 768), with all-MiniLM-L6-v2's tokenizer (the uncased BERT vocabulary both use) on
real SST-2 sentences. The accuracy effect is measured with real weights in
``fewshot_accuracy.py`` (variants ``fewshot_bf16``...). Runs alternate float32 and
bfloat16, each repeated, and the table gives medians and the ratio.

    python benchmarks/bf16_speed.py                      # CPU
    python benchmarks/bf16_speed.py --device cuda        # GPU
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load_average, load_texts, machine, minilm_path  # noqa: E402

SHAPES = {
    "minilm": dict(
        model_type="bert",
        hidden_size=384,
        num_hidden_layers=6,
        num_attention_heads=12,
        intermediate_size=1536,
    ),
    "distilbert": dict(model_type="distilbert"),
}


def random_folder(shape: str, tokenizer_dir: str, root: Path) -> str:
    """A random-weight model of ``shape`` saved with the given tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    folder = root / shape
    if (folder / "model.safetensors").exists():
        return str(folder)
    settings = dict(SHAPES[shape])
    config = AutoConfig.for_model(settings.pop("model_type"), **settings)
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    tokenizer.model_max_length = 512
    tokenizer.save_pretrained(folder)
    return str(folder)


def one_run(model, dtype, device, X, y, X_test):
    import torch

    from fewshot import SetFitClassifier

    clf = SetFitClassifier(
        model=model,
        dtype=dtype,
        device=device,
        n_iterations=20,
        pairs_per_step=16,
        max_length=256,
        batch_size=64,
        random_state=0,
    )
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    start = time.perf_counter()
    clf.fit(X, y)
    sync()
    fit = time.perf_counter() - start
    start = time.perf_counter()
    clf.predict(X_test)
    sync()
    return fit, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES))
    parser.add_argument("--n", nargs="+", type=int, default=[8])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--tokenizer", default=None, help="default: all-MiniLM-L6-v2's")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np
    import torch

    from fewshot.data import sample_per_class
    from fewshot.setfit._precision import bf16_native

    print(f"# {machine()}; {load_average()} at start")
    print(f"# device {args.device}; native bfloat16: {bf16_native(torch.device(args.device))}")
    texts, labels = load_texts("sst2", "train")
    X_test = load_texts("sst2", "test", args.n_test)[0]
    root = Path(tempfile.mkdtemp(prefix="bf16-speed-"))
    print(
        "| body | N | fit fp32 s | fit bf16 s | fit ratio | predict fp32 s | predict bf16 s "
        "| predict ratio |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for shape in args.shapes:
        model = random_folder(shape, args.tokenizer or minilm_path(), root)
        for n in args.n:
            X, y = sample_per_class(texts, np.asarray(labels), n, random_state=0)
            one_run(model, "float32", args.device, X, y, X_test[:8])  # warm-up
            times = {"float32": [], "bfloat16": []}
            for _ in range(args.repeats):
                for dtype in times:
                    times[dtype].append(one_run(model, dtype, args.device, X, y, X_test))
            fit = {d: statistics.median(t[0] for t in v) for d, v in times.items()}
            pred = {d: statistics.median(t[1] for t in v) for d, v in times.items()}
            print(
                f"| {shape} | {n} | {fit['float32']:.2f} | {fit['bfloat16']:.2f} | "
                f"{fit['float32'] / fit['bfloat16']:.2f}x | {pred['float32']:.2f} | "
                f"{pred['bfloat16']:.2f} | {pred['float32'] / pred['bfloat16']:.2f}x |",
                flush=True,
            )
    print(f"# {load_average()} at end; medians of {args.repeats} alternating runs")


if __name__ == "__main__":
    main()
