"""Where SetFitClassifier's peak RSS at N = 64 comes from: RSS every 5 ms, phases marked.

One fit of all-MiniLM-L6-v2 on SST-2 (or another shared dataset), N = 64 per class, seed 0
(5,120 pairs, 320 steps on SST-2), in this process; prints the RSS at the start and end of
loading, copying and training, the peak and when it happened, and quantiles over the fit.
Modes (first argument):

  fewshot          SetFitClassifier as it is (the model loaded for this fit, trained in place)
  fewshot_shared   the model already kept in the process first, so the fit copies it
                   (what every fit did before the copy was removed)
  fewshot_mmap     glibc's mmap threshold fixed at 128 KiB first (no dynamic raise), so
                   freed large buffers go back to the system at once
  fewshot_bf16     dtype="bfloat16" (oneDNN's kernel cache bounded, as SetFitClassifier does)
  fewshot_bf16_cache1024
                   dtype="bfloat16" with oneDNN's own default cache of 1024 kernels (set
                   first, so it wins), which is what every bfloat16 fit had before the bound
                   (any _cacheK sets K kernels)
  fewshot_bf16_pad1
                   training batches padded to the longest text only, as before they were
                   rounded up to a multiple of 8 tokens (any _padK rounds to K)
  fewshot_bf16_arena1
                   glibc limited to one malloc arena for all threads
  setfit           the setfit library's Trainer

The second argument is the dataset (default sst2), the third N per class (default 64).

    python benchmarks/memory_phases.py fewshot sst2
    python benchmarks/memory_phases.py fewshot_bf16_cache1024 sst5 8

Run it alone on the machine (the times it prints are fit times).
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (  # noqa: E402
    DATA,
    load_average,
    machine,
    minilm_path,
    protocol_classifier,
    rss_bytes,
    setfit_trainer,
)

MARKS: list[tuple[float, str, int]] = []
SAMPLES: list[tuple[float, int]] = []


def mark(name: str) -> None:
    MARKS.append((time.perf_counter(), name, rss_bytes()))


def watch(stop: threading.Event) -> None:
    while not stop.wait(0.005):
        SAMPLES.append((time.perf_counter(), rss_bytes()))


def marked(module, name: str) -> None:
    """Wrap ``module.name`` so its start and end are marked."""
    original = getattr(module, name)

    def wrapped(*args, **kwargs):
        mark(f"start {name}")
        result = original(*args, **kwargs)
        mark(f"end {name}")
        return result

    setattr(module, name, wrapped)


def fit_fewshot(mode, X, y):
    import fewshot.setfit as setfit_module

    for name in ("load_model_for", "trainable_copy", "train_body"):
        marked(setfit_module, name)
    if "shared" in mode:
        from fewshot._core.loading import get_model

        get_model(minilm_path())
    if "mmap" in mode:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
    if "arena1" in mode:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-8, 1)  # M_ARENA_MAX: every thread shares one heap
    if "_pad" in mode:  # training batches padded to a multiple of K tokens (1: not rounded)
        import fewshot.setfit._training as contrastive

        contrastive.TRAINING_PAD_MULTIPLE = int(mode.split("_pad")[1].split("_")[0])
    if "_cache" in mode:  # the user's setting wins over fewshot's bound
        os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = mode.split("_cache")[1].split("_")[0]
    # Explicit: the default dtype became "auto" (bfloat16 training on CPUs that have it).
    clf = protocol_classifier(minilm_path(), 0, dtype="bfloat16" if "bf16" in mode else "float32")
    mark("baseline")
    clf.fit(X, y)


def fit_setfit(X, y):
    from setfit import SetFitModel

    mark("baseline")
    with tempfile.TemporaryDirectory() as tmp:
        body = SetFitModel.from_pretrained(minilm_path(), device="cpu")
        mark("loaded")
        trainer = setfit_trainer(body, X, y, 0, tmp)
        mark("trainer")
        trainer.train()


def main():
    from fewshot.data import read_split, sample_per_class

    mode = sys.argv[1] if len(sys.argv) > 1 else "fewshot"
    dataset = sys.argv[2] if len(sys.argv) > 2 else "sst2"
    n_per_class = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    print(f"# {machine()}; {load_average()} at start")
    train = read_split(DATA / dataset, "train")
    X, y = sample_per_class(
        list(train["text"]), train["label"].to_numpy(), n_per_class, random_state=0
    )
    stop = threading.Event()
    thread = threading.Thread(target=watch, args=(stop,), daemon=True)
    thread.start()
    if mode.startswith("fewshot"):
        fit_fewshot(mode, X, y)
    else:
        fit_setfit(X, y)
    mark("fit done")
    stop.set()
    thread.join()
    start = next(t for t, name, _ in MARKS if name == "baseline")
    peak_time, peak = max(SAMPLES, key=lambda s: s[1])
    print(
        f"{mode} {dataset} N={n_per_class}: fit {MARKS[-1][0] - start:.1f} s, peak {peak / 2**20:.0f} MiB "
        f"at {peak_time - start:.1f} s"
    )
    for moment, name, rss in MARKS:
        print(f"  {moment - start:7.1f} s {name:>22} {rss / 2**20:7.0f} MiB")
    quantiles = np.percentile([s[1] / 2**20 for s in SAMPLES], [10, 50, 90, 100]).round()
    print("  RSS quantiles 10/50/90/100 % (MiB):", quantiles.tolist())
    print(f"# {load_average()} at end")


if __name__ == "__main__":
    main()
