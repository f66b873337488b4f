"""Edge students (issue 30): a static student against its SetFit teacher — accuracy, size, speed.

Accuracy, SetFit protocol (see ../shared/REFERENCE.md): N labelled texts per class drawn
from the train split with seeds 0..S-1, every model scored on the full test split
(Amazon-CF: Matthews correlation x100, the others accuracy x100). Per draw:

  teacher          SetFitClassifier(all-MiniLM-L6-v2) with the current defaults
                   (benchmarks/_common.protocol_classifier), fitted on the N per class
  static           StaticStudentClassifier(teacher), fitted on the pool = the whole train
                   split, unlabelled, with the N labelled texts mixed in (their labels)
  static_notune    the same with epochs=0: model2vec's distillation of the fine-tuned body
                   and a head on the teacher's soft labels, no tuning of the table
  m2v_pretrained   a static model without distillation: model2vec's potion models live on
                   the hub, which this machine cannot reach, so the offline stand-in is
                   model2vec-style distillation of the *pretrained* MiniLM (256 dims, int8)
                   + LogisticRegression on the N labelled texts only

Each finished row is appended to ``benchmarks/results/distill.csv`` (resumable; --report
prints the tables again). The table printed says, per N, the 4-dataset average of each
method and its ratio to the teacher's (targets: static >= 0.97 at N = 64, >= 0.93 at
N = 8).

Speed (``benchmarks/results/distill_speed.csv``): one student and its teacher (SST-2,
first draw) exported to one ONNX file each (the student with fewshot.distill's export,
the teacher as the int8 transformer file of ``to_onnx(quantize="int8")``), run by
``fewshot.runtime.OnnxClassifier`` on one thread: throughput (texts/s) at batch 1 and
batch 256 on short texts, p50/p99 latency of one call with one short (~20 tokens) and
one long (~200 tokens) text, and file sizes (targets: >= 20,000 short texts/s at batch
256, p99 < 1 ms short at batch 1, file <= 10 MB). The numpy student is timed too.

It must run alone on the machine (timings). Hours for the full run:

    python benchmarks/distill.py                       # 4 datasets x N 8, 64 x 5 seeds + speed
    python benchmarks/distill.py --quick               # smoke run: SST-2, N = 8, 1 seed, subsets
    python benchmarks/distill.py --report              # tables from the CSVs
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DATA, load_average, machine, minilm_path, protocol_classifier  # noqa: E402

DATASETS = {  # name: metric
    "sst2": "accuracy",
    "sst5": "accuracy",
    "ag_news": "accuracy",
    "amazon_counterfactual_en": "matthews",
}
METHODS = ("teacher", "static", "static_notune", "m2v_pretrained")
FIELDS = [
    "dataset",
    "n_per_class",
    "seed",
    "method",
    "metric",
    "score",
    "agreement_with_teacher",
    "fit_seconds",
    "predict_seconds",
    "n_pool",
    "file_mb",
]
SPEED_FIELDS = ["model", "measure", "value", "unit", "file_mb", "load_average", "machine"]
RESULTS = Path("benchmarks/results")


def load(name, quick):
    from fewshot.data import read_split

    train, test = read_split(DATA / name, "train"), read_split(DATA / name, "test")
    if quick:
        train, test = train.iloc[:1000], test.iloc[:500]
    return (
        list(train["text"]),
        train["label"].to_numpy(),
        list(test["text"]),
        test["label"].to_numpy(),
    )


def score(metric, y_true, y_pred):
    from fewshot.evaluation import METRICS

    return float(METRICS[metric](y_true, y_pred))


def done_runs(path):
    if not path.is_file():
        return set()
    with open(path) as f:
        return {
            (r["dataset"], int(r["n_per_class"]), int(r["seed"]), r["method"])
            for r in csv.DictReader(f)
        }


def append(path, row, fields=FIELDS):
    new = not path.is_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        if new:
            writer.writeheader()
        writer.writerow(row)


class PretrainedTable:
    """model2vec-style distillation of the pretrained body, computed once per process."""

    def __init__(self, model, dims=256):
        from fewshot import DistilEmbedder
        from fewshot.distill._static import initial_table, quantize_rows, truncating_tokenizer
        from fewshot.distill._teacher import token_vectors

        plan = DistilEmbedder(model=model)._encoding_plan()
        tokenizer = plan.loaded.tokenizer
        self.tokenizer = truncating_tokenizer(tokenizer.backend_tokenizer.to_str(), 512)
        n = self.tokenizer.get_vocab_size(with_added_tokens=True)
        left_out = np.zeros(n, dtype=bool)
        left_out[[i for i in tokenizer.all_special_ids if i < n]] = True
        vectors = token_vectors(plan, np.arange(n), batch_size=256, progress=False)
        table = initial_table(vectors, left_out, dims=dims, sif_coefficient=1e-4, random_state=0)
        self.table, self.scales = quantize_rows(table, left_out)

    def features(self, texts):
        from fewshot.distill._static import bag_features

        ids = [np.asarray(e.ids) for e in self.tokenizer.encode_batch(list(texts))]
        return bag_features(ids, self.table, self.scales, normalize=True)


def onnx_mb(student) -> float:
    from fewshot.distill import export_student

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "student.onnx")
        export_student(student, path, check_texts=["a text", ""], verbose=False)
        return os.path.getsize(path) / 2**20


def run_key(name, n, seed, data, methods, finished, results, pretrained, args):
    from sklearn.linear_model import LogisticRegression

    from fewshot.data import sample_per_class
    from fewshot.distill import StaticStudentClassifier

    metric = DATASETS[name]
    X_train, y_train, X_test, y_test = data
    X_s, y_s = sample_per_class(X_train, y_train, n, random_state=seed)
    todo = [m for m in methods if (name, n, seed, m) not in finished]
    if not todo:
        return None
    start = time.perf_counter()
    teacher = protocol_classifier(minilm_path(), seed).fit(X_s, y_s)
    teacher_fit = time.perf_counter() - start
    start = time.perf_counter()
    teacher_pred = teacher.predict(X_test)
    teacher_predict = time.perf_counter() - start
    # The pool: the train split unlabelled, the N drawn texts with their labels.
    labelled = {text: label for text, label in zip(X_s, y_s)}
    pool_labels = [labelled.get(text) for text in X_train]

    def row(method, predicted, fit_s, predict_s, file_mb=""):
        values = {
            "dataset": name,
            "n_per_class": n,
            "seed": seed,
            "method": method,
            "metric": metric,
            "score": round(score(metric, y_test, predicted), 5),
            "agreement_with_teacher": round(float(np.mean(predicted == teacher_pred)), 5),
            "fit_seconds": round(fit_s, 2),
            "predict_seconds": round(predict_s, 3),
            "n_pool": len(X_train) if method.startswith("static") else len(X_s),
            "file_mb": round(file_mb, 3) if file_mb != "" else "",
        }
        append(results, values)
        print(
            f"{name:>26} N={n:<3} seed={seed} {method:>15}: {values['score']:.4f} "
            f"(agree {values['agreement_with_teacher']:.3f}, fit {values['fit_seconds']} s)",
            flush=True,
        )

    if "teacher" in todo:
        row("teacher", teacher_pred, teacher_fit, teacher_predict)
    first = None
    for method, epochs in (("static", None), ("static_notune", 0)):
        if method not in todo:
            continue
        params = {"random_state": seed}
        if epochs is not None:
            params["epochs"] = epochs
        start = time.perf_counter()
        student = StaticStudentClassifier(teacher=teacher, **params).fit(X_train, pool_labels)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        predicted = student.predict(X_test)
        row(method, predicted, fit_s, time.perf_counter() - start, onnx_mb(student))
        first = first or student
    if "m2v_pretrained" in todo:
        start = time.perf_counter()
        head = LogisticRegression(max_iter=1000).fit(pretrained.features(X_s), y_s)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        predicted = head.predict(pretrained.features(X_test))
        row("m2v_pretrained", predicted, fit_s, time.perf_counter() - start)
    return teacher, first


# -- speed -----------------------------------------------------------------------------


def pick_texts(tokenizer, pool, low, high, n):
    """``n`` texts of ``low..high`` tokens: pool sentences, joined when they are short."""
    picked, current = [], ""
    for sentence in pool:
        candidate = f"{current} {sentence}".strip() if current else sentence
        count = len(tokenizer.encode(candidate).ids)
        if low <= count <= high:
            picked.append(candidate)
            current = ""
        elif count < low:
            current = candidate
        else:
            current = ""
        if len(picked) == n:
            break
    if len(picked) < n:
        picked = (picked * (n // max(len(picked), 1) + 1))[:n]
    return picked


def speed(teacher, student, repeats, path):
    from fewshot.distill import export_student
    from fewshot.export import to_onnx
    from fewshot.runtime import OnnxClassifier

    texts, _, _, _ = load("sst2", quick=False)
    tokenizer = student.tokenizer_
    short = pick_texts(tokenizer, texts, 12, 28, repeats)
    long = pick_texts(tokenizer, texts, 180, 230, repeats)
    bulk = (short * (2560 // len(short) + 1))[:2560]
    where = f"{load_average()}"
    print(f"\n{machine()}; {where}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        files = {
            "static student (ONNX)": os.path.join(tmp, "student.onnx"),
            "teacher, int8 transformer (ONNX)": os.path.join(tmp, "teacher.int8.onnx"),
        }
        export_student(student, files["static student (ONNX)"], verbose=False)
        to_onnx(teacher, files["teacher, int8 transformer (ONNX)"], quantize="int8", verbose=False)
        results = {}
        for name, file in files.items():
            mb = os.path.getsize(file) / 2**20
            one = OnnxClassifier(file, n_threads=1, batch_size=1)
            many = OnnxClassifier(file, n_threads=1, batch_size=256)
            results[name] = measure(one.predict, many.predict, short, long, bulk) + (mb,)
        python = lambda X: student.predict(X)  # noqa: E731
        results["static student (numpy)"] = measure(python, python, short, long, bulk) + ("",)
    print(
        "\n| model | batch 1 texts/s | batch 256 texts/s | short p50 / p99 ms | long p50 / p99 ms | file MB |"
    )
    print("|---|---|---|---|---|---|")
    teacher_row = results["teacher, int8 transformer (ONNX)"]
    for name, (t1, t256, sp50, sp99, lp50, lp99, mb) in results.items():
        ratio = "" if name.startswith("teacher") else f" ({t256 / teacher_row[1]:.0f}x)"
        print(
            f"| {name} | {t1:,.0f} | {t256:,.0f}{ratio} | {sp50:.3f} / {sp99:.3f} | "
            f"{lp50:.3f} / {lp99:.3f} | {mb if mb == '' else f'{mb:.1f}'} |"
        )
        for measure_name, value, unit in (
            ("throughput_batch1_short", t1, "texts/s"),
            ("throughput_batch256_short", t256, "texts/s"),
            ("latency_p50_short", sp50, "ms"),
            ("latency_p99_short", sp99, "ms"),
            ("latency_p50_long", lp50, "ms"),
            ("latency_p99_long", lp99, "ms"),
        ):
            append(
                path,
                {
                    "model": name,
                    "measure": measure_name,
                    "value": round(value, 4),
                    "unit": unit,
                    "file_mb": mb if mb == "" else round(mb, 3),
                    "load_average": where,
                    "machine": machine(),
                },
                SPEED_FIELDS,
            )
    print(f"\n{load_average()} after the speed runs", flush=True)


def measure(predict_one, predict_many, short, long, bulk):
    """(texts/s at batch 1, texts/s at batch 256, short p50, p99, long p50, p99 in ms)."""

    def calls(texts):
        for text in texts[:5]:
            predict_one([text])
        seconds = []
        for text in texts:
            start = time.perf_counter()
            predict_one([text])
            seconds.append(time.perf_counter() - start)
        return np.asarray(seconds) * 1000

    short_ms, long_ms = calls(short), calls(long)
    predict_many(bulk[:256])
    start = time.perf_counter()
    predict_many(bulk)
    many = len(bulk) / (time.perf_counter() - start)
    return (
        1000 / short_ms.mean(),
        many,
        float(np.percentile(short_ms, 50)),
        float(np.percentile(short_ms, 99)),
        float(np.percentile(long_ms, 50)),
        float(np.percentile(long_ms, 99)),
    )


# -- report ----------------------------------------------------------------------------


def report(path):
    import pandas as pd

    if not path.is_file():
        raise SystemExit(f"{path} does not exist; run the benchmark first.")
    runs = pd.read_csv(path)
    for n, part in runs.groupby("n_per_class"):
        datasets = [d for d in DATASETS if d in set(part["dataset"])]
        print(f"\n### N = {n} per class (mean ± std over seeds, x100; Amazon-CF: MCC)\n")
        print(
            "| method | " + " | ".join(datasets) + " | average | vs teacher | agreement | file MB |"
        )
        print("|---|" + "---|" * (len(datasets) + 4))
        teacher_avg = None
        for method in METHODS:
            rows = part[part["method"] == method]
            if rows.empty:
                continue
            means = []
            cells = []
            for d in datasets:
                s = rows[rows["dataset"] == d]["score"]
                means.append(s.mean())
                cells.append(
                    f"{100 * s.mean():.1f} ± {100 * np.std(s):.1f} ({len(s)})" if len(s) else "–"
                )
            average = float(np.mean(means))
            if method == "teacher":
                teacher_avg = average
            ratio = (
                "" if teacher_avg is None or method == "teacher" else f"{average / teacher_avg:.3f}"
            )
            size = (
                rows["file_mb"].mean()
                if "file_mb" in rows and rows["file_mb"].notna().any()
                else None
            )
            print(
                f"| {method} | " + " | ".join(cells) + f" | {100 * average:.1f} | {ratio} | "
                f"{rows['agreement_with_teacher'].mean():.3f} | {'' if size is None else f'{size:.1f}'} |"
            )
        target = 0.97 if n >= 64 else 0.93
        print(f"\nTarget: static >= {target:.2f} x the teacher's 4-dataset average at N = {n}.")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--n", nargs="+", type=int, default=[8, 64])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--repeats", type=int, default=300, help="timed calls per latency measure")
    parser.add_argument("--no-speed", action="store_true", help="skip the speed measurements")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: SST-2, N = 8, 1 seed, subsets"
    )
    parser.add_argument("--results", type=Path, default=None)
    parser.add_argument("--report", action="store_true", help="print the tables from --results")
    args = parser.parse_args(argv)
    if args.quick:
        args.datasets, args.n, args.seeds, args.repeats = ["sst2"], [8], 1, 30
    results = args.results or RESULTS / ("distill_quick.csv" if args.quick else "distill.csv")
    speed_path = results.with_name(results.stem + "_speed.csv")
    if args.report:
        report(results)
        return
    import torch

    print(f"{machine()}; torch threads {torch.get_num_threads()}; {load_average()}", flush=True)
    print(f"results -> {results}", flush=True)
    finished = done_runs(results)
    pretrained = PretrainedTable(minilm_path()) if "m2v_pretrained" in args.methods else None
    data = {name: load(name, args.quick) for name in args.datasets}
    speed_pair = None
    # Seeds outermost: a benchmark stopped early still covers every dataset equally.
    for n in args.n:
        for seed in range(args.seeds):
            for name in args.datasets:
                fitted = run_key(
                    name, n, seed, data[name], args.methods, finished, results, pretrained, args
                )
                if speed_pair is None and fitted is not None and fitted[1] is not None:
                    speed_pair = fitted
    report(results)
    if args.no_speed or (speed_path.is_file() and not args.quick):
        return
    if speed_pair is None:  # everything was done already: fit one pair for the timings
        from fewshot.data import sample_per_class
        from fewshot.distill import StaticStudentClassifier

        X_train, y_train, _, _ = load("sst2", args.quick)
        X_s, y_s = sample_per_class(X_train, y_train, 8, random_state=0)
        teacher = protocol_classifier(minilm_path(), 0).fit(X_s, y_s)
        speed_pair = (
            teacher,
            StaticStudentClassifier(teacher=teacher, random_state=0).fit(X_train),
        )
    torch.set_num_threads(1)
    speed(*speed_pair, args.repeats, speed_path)


if __name__ == "__main__":
    main()
