"""Where a SetFitClassifier training step spends its time: torch's profiler over one fit.

One fit of all-MiniLM-L6-v2 with the defaults (bfloat16 where the CPU has it, unit-length
head input), N per class from a shared dataset's training split (seed 0), the pairs
capped at ``--steps`` steps of 16, under ``torch.profiler``. Prints the fit time and the
operators with the most self CPU time, and the shares of what they are for (matrix
products, dropout masks, the token embedding table's gradient, the optimiser).

    python benchmarks/step_profile.py                                  # SST-2, N = 64, 100 steps
    python benchmarks/step_profile.py --train-token-embeddings         # setfit's choice
    python benchmarks/step_profile.py --dataset sst5 --steps 50

Run it alone on the machine; the profiler adds its own overhead, so compare its shares,
not its times, with a plain fit (``--no-profile`` times one without it).
"""

from __future__ import annotations

import argparse
import sys
import time

from _common import DATA, load_average, machine, minilm_path

# What a step's time goes to: (which time, operator names or name prefixes). "self"
# counts an operator's own time; "total" includes what it calls (the embedding backward's
# zero-filled gradient, the optimiser's kernels). The parts do not overlap.
PARTS = {
    "matrix products": ("self", ("aten::mm", "aten::addmm", "aten::bmm")),
    "dropout masks": ("self", ("aten::bernoulli_",)),
    "token embedding gradient": (
        "total",
        ("autograd::engine::evaluate_function: EmbeddingBackward",),
    ),
    "optimiser step and zeroing": (
        "total",
        ("Optimizer.step#AdamW.step", "Optimizer.zero_grad#AdamW.zero_grad"),
    ),
}


def main(argv=None):
    from fewshot import SetFitClassifier
    from fewshot.data import read_split, sample_per_class

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="sst2")
    parser.add_argument("--n", type=int, default=64, help="texts per class")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--train-token-embeddings", action="store_true")
    parser.add_argument("--no-profile", action="store_true", help="time a plain fit only")
    args = parser.parse_args(argv)

    print(f"# {machine()}; {load_average()} at start")
    train = read_split(DATA / args.dataset, "train")
    X, y = sample_per_class(list(train["text"]), train["label"].to_numpy(), args.n, random_state=0)
    clf = SetFitClassifier(
        model=minilm_path(),
        max_pairs=16 * args.steps,
        train_token_embeddings=args.train_token_embeddings,
        random_state=0,
    )
    if args.no_profile:
        start = time.perf_counter()
        clf.fit(X, y)
        print(f"fit {time.perf_counter() - start:.1f} s; {load_average()}")
        return
    from torch.profiler import ProfilerActivity, profile

    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        clf.fit(X, y)
    seconds = time.perf_counter() - start
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    shares = {
        part: sum(
            e.self_cpu_time_total if which == "self" else e.cpu_time_total
            for e in events
            if e.key.startswith(names)
        )
        for part, (which, names) in PARTS.items()
    }
    shares["everything else"] = total - sum(shares.values())
    print(
        f"{args.dataset}, N = {args.n}, {args.steps} steps, train_token_embeddings="
        f"{args.train_token_embeddings}: fit {seconds:.1f} s under the profiler; {load_average()}"
    )
    print("\n| what | self CPU s | share |\n|---|---:|---:|")
    for part, micros in shares.items():
        print(f"| {part} | {micros / 1e6:.1f} | {micros / total:.1%} |")
    print("\n| operator | calls | self CPU s | share |\n|---|---:|---:|---:|")
    for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:12]:
        print(
            f"| `{e.key}` | {e.count} | {e.self_cpu_time_total / 1e6:.2f} | "
            f"{e.self_cpu_time_total / total:.1%} |"
        )


if __name__ == "__main__":
    sys.exit(main())
