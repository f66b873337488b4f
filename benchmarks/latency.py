"""Deployment: the exported ONNX file against the Python estimator (size, latency, server, start).

For one model (``--model anchor``: random DistilBERT with the anchor's shapes; ``minilm``:
real all-MiniLM-L6-v2; ``tiny``: the tests' tiny random model, for a smoke run) this
fits ``Pipeline([DistilEmbedder(layers=-1), LogisticRegression])`` on SST-2 train
sentences, exports it to ONNX in float32 and int8 with ``fewshot.export.to_onnx``, and
measures:

1. **equality** on ``--n-check`` SST-2 test sentences (1,000 by default): the float32
   file's max probability difference to the Python estimator (target <= 1e-4) and label
   agreement (target 100%), the in-graph tokenizer's agreement with Hugging Face's, and
   int8's agreement rate and max probability difference;
2. **file size** (target: anchor-shaped int8 whole-pipeline file < 100 MB);
3. **single-text latency** on one thread, p50/p99 over ``--repeats`` calls of
   ``predict([text])``, short (about 20 tokens) and long (about 200 tokens) texts: the
   Python estimator (PyTorch) against the float32 and int8 files in ONNX Runtime
   (targets: int8 short p99 < 20 ms, and >= 3x faster than the Python estimator at p50);
4. **server throughput** and p50/p99 request latency of ``python -m fewshot.serve`` on
   loopback under 1, 8 and 32 concurrent closed-loop clients (each sends one short text,
   waits for the answer, sends the next) for ``--duration`` seconds each, with and
   without micro-batching;
5. **cold start**: a fresh process from start to its first prediction, with
   ``fewshot.runtime`` against the full stack (``fewshot.load_model`` of the saved
   folder), with peak RSS; and the import time of each.

CUDA rows are added when ONNX Runtime offers the CUDA execution provider (an
onnxruntime-gpu install on a GPU machine); otherwise the script says so. Run from the
repository root:

    python benchmarks/latency.py --model anchor
    python benchmarks/latency.py --model minilm
    python benchmarks/latency.py --model tiny --quick    # smoke run, seconds
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
from _common import ROOT, load_average, load_texts, make_anchor_model, minilm_path

CLIENTS = (1, 8, 32)


def percentiles(seconds):
    values = np.asarray(seconds) * 1000.0
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def model_path(name: str, workdir: str) -> str:
    if name == "anchor":
        return make_anchor_model(os.path.join(tempfile.gettempdir(), "fewshot-anchor-random"))
    if name == "minilm":
        return minilm_path()
    from fewshot.testing import make_tiny_distilbert

    return str(make_tiny_distilbert(os.path.join(workdir, "tiny")))


def pick_texts(tokenizer, pool, low, high, n):
    """``n`` texts of ``low..high`` tokens: pool sentences, joined when they are short."""
    picked, current = [], ""
    for sentence in pool:
        candidate = f"{current} {sentence}".strip() if current else sentence
        count = len(tokenizer(candidate)["input_ids"])
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
        raise SystemExit(f"found only {len(picked)} texts of {low}-{high} tokens; lower --repeats")
    return picked


def time_calls(function, texts, warmup=3):
    for text in texts[:warmup]:
        function([text])
    durations = []
    for text in texts:
        start = time.perf_counter()
        function([text])
        durations.append(time.perf_counter() - start)
    return durations


# -- server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(path, *, batching: bool, threads: int):
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "fewshot.serve",
        path,
        "--port",
        str(port),
        "--threads",
        str(threads),
        "--log-level",
        "warning",
    ] + ([] if batching else ["--no-batching"])
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return process, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not start")


def load_test(port, texts, n_clients: int, duration: float):
    latencies, errors = [], [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + duration

    def client(offset):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine, i = [], offset
        while time.perf_counter() < stop_at:
            body = json.dumps({"texts": [texts[i % len(texts)]]})
            start = time.perf_counter()
            try:
                connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                ok = False
            if ok:
                mine.append(time.perf_counter() - start)
            else:
                with lock:
                    errors[0] += 1
            i += n_clients
        connection.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(n_clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    return len(latencies) / elapsed, latencies, errors[0]


# -- cold start --------------------------------------------------------------------------

_STANDALONE = (
    "import importlib.util, sys; "
    "spec = importlib.util.spec_from_file_location('fewshot_runtime', {file!r}); "
    "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
    "OnnxClassifier = m.OnnxClassifier"
)
COLD = {
    "fewshot.runtime (as it imports today)": "from fewshot.runtime import OnnxClassifier",
    "runtime.py alone (torch-free import)": _STANDALONE,
    "full stack: fewshot.load_model": "from fewshot import load_model",
}


def cold_start(kind: str, import_line: str, onnx_path: str, folder: str):
    use = (
        f"OnnxClassifier({onnx_path!r}).predict(['late again'])"
        if "OnnxClassifier" in import_line
        else f"load_model({folder!r}, device='cpu').predict(['late again'])"
    )
    code = (
        "import time, sys; t0 = time.perf_counter()\n"
        f"{import_line}\n"
        "t1 = time.perf_counter()\n"
        f"{use}\n"
        "t2 = time.perf_counter()\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', "
        "'sklearn'})\n"
        # VmHWM, not ru_maxrss: getrusage keeps the forking parent's peak across exec.
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print(t1 - t0, t2 - t0, int(hwm) / 1024, ','.join(heavy) or '-')\n"
    )
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    total = time.perf_counter() - start
    if result.returncode != 0:
        return kind, None, None, total, None, result.stderr.strip().splitlines()[-1]
    import_s, first_s, rss, heavy = result.stdout.split()
    return kind, float(import_s), float(first_s), total, float(rss), heavy


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["anchor", "minilm", "tiny"], default="anchor")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 100 check sentences, 20 repeats, 2 s per load level",
    )
    parser.add_argument("--n-train", type=int, default=256)
    parser.add_argument("--n-check", type=int, default=None, help="default 1000 (quick: 100)")
    parser.add_argument("--repeats", type=int, default=None, help="default 200 (quick: 20)")
    parser.add_argument("--duration", type=float, default=None, help="default 30 (quick: 2)")
    parser.add_argument("--server-threads", type=int, default=1)
    parser.add_argument("--skip", default="", help="comma list of: latency,server,cold")
    parser.add_argument("--workdir", default=None, help="where the files go (default: temp)")
    args = parser.parse_args()
    n_check = args.n_check or (100 if args.quick else 1000)
    repeats = args.repeats or (20 if args.quick else 200)
    duration = args.duration or (2.0 if args.quick else 30.0)
    skip = set(filter(None, args.skip.split(",")))
    workdir = args.workdir or tempfile.mkdtemp(prefix="fewshot-latency-")
    os.makedirs(workdir, exist_ok=True)

    import onnxruntime as ort
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from fewshot import DistilEmbedder, save_model
    from fewshot.export import to_onnx
    from fewshot.runtime import OnnxClassifier

    path = model_path(args.model, workdir)
    train, y_train = load_texts("sst2", "train", args.n_train)
    check, _ = load_texts("sst2", "test", n_check)
    print(f"# model {args.model} ({path}); {load_average()} at start")
    print(f"# onnxruntime {ort.__version__}; providers {ort.get_available_providers()}")
    clf = Pipeline(
        [
            ("embed", DistilEmbedder(model=path, n_threads=1)),
            ("lr", LogisticRegression(max_iter=2000)),
        ]
    ).fit(train, y_train)
    folder = os.path.join(workdir, "model-folder")
    save_model(clf, folder)

    files, reports = {}, {}
    for quantize in (None, "int8"):
        name = quantize or "fp32"
        files[name] = os.path.join(workdir, f"model.{name}.onnx")
        reports[name] = to_onnx(
            clf, files[name], quantize=quantize, check_texts=check, verbose=False
        )
    checks32, checks8 = reports["fp32"].checks, reports["int8"].checks
    print(f"\n## Equality on {n_check} SST-2 test sentences\n")
    print("| file | max abs probability difference | label agreement | tokenizer agreement |")
    print("|---|---:|---:|---:|")
    print(
        f"| float32 | {checks32['float32']['max_abs_diff']:.2e} | "
        f"{checks32['float32']['label_agreement']:.2%} | {checks32['tokenizer_agreement']:.2%} |"
    )
    print(
        f"| int8 | {checks8['int8']['max_abs_diff']:.2e} | "
        f"{checks8['int8']['label_agreement']:.2%} | {checks8['tokenizer_agreement']:.2%} |"
    )
    ok = checks32["float32"]["max_abs_diff"] <= 1e-4 and checks32["float32"]["label_agreement"] == 1
    print(f"\n> target float32 within 1e-4 and identical labels: {'met' if ok else 'NOT met'}")

    print("\n## File size\n")
    print("| file | MiB | MB |")
    print("|---|---:|---:|")
    for name, report in reports.items():
        print(f"| {name} | {report.size_bytes / 2**20:.1f} | {report.size_bytes / 1e6:.1f} |")
    if args.model == "anchor":
        size = reports["int8"].size_bytes / 1e6
        print(
            f"\n> target anchor int8 file < 100 MB: {size:.1f} MB -> "
            f"{'met' if size < 100 else 'NOT met'}"
        )

    if "latency" not in skip:
        import warnings

        from transformers import AutoTokenizer

        from fewshot._core.encoding import TruncationWarning

        warnings.simplefilter("ignore", TruncationWarning)  # long texts of the tiny model

        tokenizer = AutoTokenizer.from_pretrained(path)
        pool, _ = load_texts("sst2", "test")
        short = pick_texts(tokenizer, pool, 18, 22, repeats)
        long = pick_texts(tokenizer, pool, 190, 210, repeats)
        runners = {"Python estimator (PyTorch fp32)": clf.predict}
        for name in ("fp32", "int8"):
            runners[f"ONNX Runtime {name} file"] = OnnxClassifier(files[name], n_threads=1).predict
        if "CUDAExecutionProvider" in ort.get_available_providers():
            for name in ("fp32", "int8"):
                cuda = OnnxClassifier(
                    files[name], providers=["CUDAExecutionProvider", "CPUExecutionProvider"]
                )
                runners[f"ONNX Runtime {name} file, CUDA"] = cuda.predict
        else:
            print("\n> no CUDA execution provider in this ONNX Runtime: CUDA rows not measured")
        print(f"\n## Single-text latency, 1 thread, {repeats} calls of predict([text])\n")
        print("| runner | short p50 ms | short p99 ms | long p50 ms | long p99 ms |")
        print("|---|---:|---:|---:|---:|")
        table = {}
        for name, run in runners.items():
            table[name] = percentiles(time_calls(run, short)) + percentiles(time_calls(run, long))
            print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in table[name]) + " |", flush=True)
        python_p50 = table["Python estimator (PyTorch fp32)"][0]
        int8 = table["ONNX Runtime int8 file"]
        print(
            f"\n> target int8 short p99 < 20 ms: {int8[1]:.2f} ms -> "
            f"{'met' if int8[1] < 20 else 'NOT met'}"
        )
        print(
            f"> target int8 >= 3x faster than the Python estimator (short p50): "
            f"{python_p50 / int8[0]:.1f}x -> {'met' if python_p50 / int8[0] >= 3 else 'NOT met'}"
        )

    if "server" not in skip:
        pool, _ = load_texts("sst2", "test", 500)
        print(
            f"\n## Server (int8 file, {args.server_threads} ONNX Runtime thread(s), loopback, "
            f"{duration:g} s per row, one short text per request)\n"
        )
        print("| micro-batching | clients | requests/s | p50 ms | p99 ms | errors |")
        print("|---|---:|---:|---:|---:|---:|")
        for batching in (True, False):
            process, port = start_server(
                files["int8"], batching=batching, threads=args.server_threads
            )
            try:
                for n_clients in CLIENTS:
                    rate, latencies, errors = load_test(port, pool, n_clients, duration)
                    p50, p99 = percentiles(latencies) if latencies else (float("nan"),) * 2
                    print(
                        f"| {'on' if batching else 'off'} | {n_clients} | {rate:.1f} | "
                        f"{p50:.1f} | {p99:.1f} | {errors} |",
                        flush=True,
                    )
            finally:
                process.terminate()
                process.wait(timeout=60)

    if "cold" not in skip:
        print("\n## Cold start: a fresh process to its first prediction (int8 file)\n")
        print(
            "| how | import s | to first prediction s | process wall s | peak RSS MiB | "
            "torch/transformers/sklearn loaded |"
        )
        print("|---|---:|---:|---:|---:|---|")
        runtime_file = str(ROOT / "fewshot" / "runtime.py")
        for kind, line in COLD.items():
            line = line.format(file=runtime_file)
            row = cold_start(kind, line, files["int8"], folder)
            if row[1] is None:
                print(f"| {kind} | failed: {row[5]} | | | | |")
                continue
            print(
                f"| {row[0]} | {row[1]:.2f} | {row[2]:.2f} | {row[3]:.2f} | {row[4]:.0f} | "
                f"{row[5]} |",
                flush=True,
            )
    print(f"\n# {load_average()} at end; files in {workdir}")


if __name__ == "__main__":
    main()
