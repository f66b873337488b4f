"""``python -m fewshot.serve``: a real server process on 127.0.0.1, good and bad requests.

One file is exported from the tiny model; one server process serves it on a free port
for the whole module (start, requests, bad requests, concurrent clients), and the last
test stops it with SIGTERM and checks that it shut down cleanly.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from fewshot import DistilEmbedder

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxruntime_extensions")
pytest.importorskip("onnxscript")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from fewshot.export import to_onnx  # noqa: E402
from fewshot.runtime import OnnxClassifier  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TEXTS = ["great value", "love it", "works well", "broke fast", "awful", "hate it"]
LABELS = ["pos", "pos", "pos", "neg", "neg", "neg"]
MAX_TEXTS, MAX_CHARS, MAX_BODY = 8, 200, 4096


@pytest.fixture(scope="module")
def onnx_file(tiny_model, tmp_path_factory):
    clf = Pipeline(
        [
            ("embed", DistilEmbedder(model=tiny_model, layers=2)),
            ("lr", LogisticRegression()),
        ]
    ).fit(TEXTS, LABELS)
    path = tmp_path_factory.mktemp("serve") / "model.onnx"
    to_onnx(clf, path, check_texts=TEXTS, verbose=False)
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_BLOCKED_SERVE = """
import importlib.abc, sys

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "transformers", "sklearn"}:
            raise ImportError(name + " is blocked in this test")

sys.meta_path.insert(0, Refuse())
from fewshot.serve import main

main(sys.argv[1:])
"""


class Server:
    def __init__(self, process, port, log):
        self.process, self.port, self.log = process, port, log

    def request(self, method, path, body=None, headers=None, timeout=60):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            data = response.read()
            return response.status, json.loads(data) if data else None
        finally:
            connection.close()


@pytest.fixture(scope="module")
def server(onnx_file, tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("serve-log") / "server.log"
    options = (
        f"--host 127.0.0.1 --port {port} --max-texts {MAX_TEXTS} --max-text-chars {MAX_CHARS} "
        f"--max-body-bytes {MAX_BODY} --max-wait-ms 50 --threads 1"
    )
    # The server runs where torch, transformers and scikit-learn cannot even be imported.
    command = [sys.executable, "-c", _BLOCKED_SERVE, str(onnx_file), *options.split()]
    with open(log, "w") as handle:
        process = subprocess.Popen(
            command,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    server = Server(process, port, log)
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            pytest.fail(f"the server exited early:\n{log.read_text()}")
        try:
            status, _ = server.request("GET", "/health", timeout=2)
            if status == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the server did not start:\n{log.read_text()}")
        time.sleep(0.2)
    yield server
    if process.poll() is None:
        process.kill()
        process.wait()


def test_health(server):
    status, body = server.request("GET", "/health")
    assert status == 200 and body["status"] == "ok"
    assert body["kind"] == "pipeline" and body["classes"] == ["neg", "pos"]
    assert body["limits"]["max_texts"] == MAX_TEXTS
    assert body["batching"] == {"enabled": True, "max_batch": 64, "max_wait_ms": 50.0}


def test_predict_matches_the_runtime(server, onnx_file):
    texts = ["late again", "", "love it"]
    status, body = server.request("POST", "/predict", {"texts": texts})
    assert status == 200, body
    expected_labels, expected_proba = OnnxClassifier(onnx_file).predict_with_proba(texts)
    assert body["labels"] == expected_labels.tolist() and body["classes"] == ["neg", "pos"]
    np.testing.assert_allclose(body["probabilities"], expected_proba, atol=1e-6)
    status, body = server.request("POST", "/embed", {"texts": texts})
    assert status == 200 and np.asarray(body["features"]).shape == (3, 32)
    status, body = server.request("POST", "/predict", {"texts": []})
    assert status == 200 and body["labels"] == [] and body["probabilities"] == []


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"", 400, "no body"),
        ([1, 2], 422, '"texts" list'),
        ({"text": ["a"]}, 422, '"texts" list'),
        ({"texts": "a"}, 422, "must be a list of strings"),
        ({"texts": ["a", 3]}, 422, "texts[1] is a number"),
        ({"texts": ["a", None]}, 422, "texts[1] is null"),
        ({"texts": ["a"] * (MAX_TEXTS + 1)}, 422, f"at most {MAX_TEXTS}"),
        ({"texts": ["a" * (MAX_CHARS + 1)]}, 422, f"at most {MAX_CHARS}"),
        ({"texts": ["a" * 100] * 50}, 413, f"larger than {MAX_BODY} bytes"),
    ],
)
def test_bad_requests_get_a_4xx_json_error(server, body, status, message):
    got, payload = server.request(
        "POST", "/predict", body, headers={"Content-Type": "application/json"}
    )
    assert got == status and message in payload["error"], payload


def test_body_over_the_limit_without_content_length_is_refused(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        connection.putrequest("POST", "/predict")
        connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        chunk = b'{"texts": [' + b'"aaaaaaaa", ' * 500 + b'"a"]}'
        connection.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunk), chunk))
        response = connection.getresponse()
        assert response.status == 413 and "larger than" in json.loads(response.read())["error"]
    finally:
        connection.close()


def test_unknown_routes_and_methods_are_json_too(server):
    status, body = server.request("GET", "/nothing")
    assert status == 404 and "error" in body
    status, body = server.request("GET", "/predict")
    assert status == 405 and "error" in body


def test_concurrent_clients_get_their_own_answers_in_shared_batches(server, onnx_file):
    before = server.request("GET", "/health")[1]["stats"]
    runtime = OnnxClassifier(onnx_file)
    n_clients = 16
    results, errors = [None] * n_clients, []
    barrier = threading.Barrier(n_clients)

    def client(i):
        texts = [TEXTS[i % len(TEXTS)], f"text number {i}"][: 1 + i % 2]
        try:
            barrier.wait(timeout=30)
            results[i] = (texts, server.request("POST", "/predict", {"texts": texts}))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n_clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    for texts, (status, body) in results:
        assert status == 200, body
        labels, proba = runtime.predict_with_proba(texts)
        assert body["labels"] == labels.tolist()
        np.testing.assert_allclose(body["probabilities"], proba, atol=1e-6)
    after = server.request("GET", "/health")[1]["stats"]
    requests = after["requests"] - before["requests"]
    batches = after["batches"] - before["batches"]
    assert requests == n_clients
    assert batches < requests  # some requests shared one ONNX Runtime call
    assert after["largest_batch"] > 2


def test_shutdown_finishes_the_requests_already_queued(onnx_file):
    import asyncio

    from fewshot.serve import MicroBatcher

    runtime = OnnxClassifier(onnx_file)
    slow_calls = []

    def slow_run(outputs, rows):  # a busy model: later requests queue behind this call
        slow_calls.append(len(rows))
        time.sleep(0.3)
        return runtime.run(outputs, rows)

    async def scenario():
        batcher = MicroBatcher(runtime, max_wait_ms=1)
        batcher.model = type("Slow", (), {"run": staticmethod(slow_run)})()
        await batcher.start()
        first = asyncio.create_task(batcher.submit([TEXTS[0]]))
        await asyncio.sleep(0.05)  # the first call is running
        queued = [asyncio.create_task(batcher.submit([text])) for text in TEXTS[1:4]]
        await asyncio.sleep(0)
        await batcher.stop()  # must finish the running and the queued requests
        results = [task.result() for task in [first, *queued]]
        refused = None
        try:
            await batcher.submit(["late"])
        except Exception as exc:  # noqa: BLE001
            refused = exc
        return results, refused, dict(batcher.stats)

    results, refused, stats = asyncio.run(scenario())
    expected = runtime.predict(TEXTS[:4]).tolist()
    assert [r["label"].tolist() for r in results] == [[label] for label in expected]
    assert slow_calls == [1, 3]  # the three queued requests shared one call
    assert stats["requests"] == 4 and stats["batches"] == 2
    assert refused is not None and "shutting down" in str(refused)


def test_sigterm_shuts_down_gracefully(server):
    server.process.send_signal(signal.SIGTERM)
    # Uvicorn finishes open requests and the app's shutdown, then exits by re-raising
    # the signal (older versions exit with 0).
    assert server.process.wait(timeout=60) in (0, -signal.SIGTERM)
    log = server.log.read_text()
    assert "Shutting down" in log and "Finished server process" in log
    with pytest.raises(OSError):
        server.request("GET", "/health", timeout=2)
