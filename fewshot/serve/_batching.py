"""Micro-batching of the server: concurrent requests run together, one call at a time.

:class:`MicroBatcher` queues each request's rows and runs what is waiting as one ONNX
Runtime call (in one worker thread), waiting briefly for requests still arriving.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses

from ..runtime._classifier import OnnxClassifier
from ._requests import ClientError

__all__ = ["MicroBatcher"]


@dataclasses.dataclass
class _Job:
    rows: list
    future: asyncio.Future


class MicroBatcher:
    """Runs concurrent requests together: one ONNX Runtime call per batch, one at a time.

    The worker takes the first waiting request and every request already queued behind
    it (those that arrived while the previous call ran). It waits for more only while
    other requests are still arriving (their bodies being read), so a lone request
    never waits, and at most ``max_wait_ms`` or the time one call takes, whichever is
    shorter.

    Parameters
    ----------
    model : OnnxClassifier
    max_batch : int, default=64
        Most texts in one call (a single larger request runs alone).
    max_wait_ms : float, default=5.0
        Longest wait for arriving requests to join a batch.
    batching : bool, default=True
        False: one request per call (for comparison).
    """

    def __init__(
        self,
        model: OnnxClassifier,
        *,
        max_batch: int = 64,
        max_wait_ms: float = 5.0,
        batching: bool = True,
    ):
        self.model = model
        self.max_batch = int(max_batch)
        self.max_wait = max(float(max_wait_ms), 0.0) / 1000.0
        self.batching = bool(batching)
        self.outputs = [
            o
            for o in ("label", "probabilities", "features")
            if o in model.manifest.get("outputs", ["features"])
        ]
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="fewshot-onnx"
        )
        self.closing = False
        self.arriving = 0  # requests being read and checked, not queued yet
        self._call_time: float | None = None  # moving average of one call's duration
        self.stats = {"requests": 0, "texts": 0, "batches": 0, "largest_batch": 0}

    async def start(self) -> None:
        """Start the worker (inside the server's event loop)."""
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._work())

    async def stop(self) -> None:
        """Finish every queued request, then stop the worker and its thread."""
        self.closing = True
        if self._queue is not None and self._worker is not None:
            self._queue.put_nowait(None)
            await self._worker
        self._executor.shutdown(wait=True)

    @contextlib.contextmanager
    def incoming(self):
        """Mark a request as arriving while its body is read and checked."""
        self.arriving += 1
        try:
            yield
        finally:
            self.arriving -= 1

    def enqueue(self, rows: list) -> asyncio.Future:
        """Queue one request's rows; the future gives ``{output name: rows' array}``."""
        if self.closing or self._queue is None:
            raise ClientError(503, "the server is shutting down.")
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(rows, future))
        return future

    async def submit(self, rows: list) -> dict:
        """Queue one request's rows and wait for their results."""
        return await self.enqueue(rows)

    def _wait(self) -> float:
        """How long a batch may wait for arriving requests.

        ``max_wait_ms``, but never longer than a call takes: beyond that, a late request
        is served sooner by the next call than by delaying this one.
        """
        if self._call_time is None:
            return self.max_wait
        return min(self.max_wait, self._call_time)

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            job = await self._queue.get()
            if job is None:
                break
            jobs, n_rows = [job], len(job.rows)
            deadline = loop.time() + self._wait()
            while self.batching and n_rows < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    if self.arriving == 0 or loop.time() >= deadline:
                        break
                    await asyncio.sleep(0.0005)  # let the arriving requests be queued
                    continue
                if nxt is None:
                    stopping = True
                    break
                if n_rows + len(nxt.rows) > self.max_batch:
                    # Too big to join: it starts the next batch.
                    await self._run(loop, jobs)
                    jobs, n_rows = [nxt], len(nxt.rows)
                    deadline = loop.time() + self._wait()
                    continue
                jobs.append(nxt)
                n_rows += len(nxt.rows)
            await self._run(loop, jobs)
        # Anything still queued after the stop marker is refused, not dropped silently.
        while self._queue is not None and not self._queue.empty():
            job = self._queue.get_nowait()
            if job is not None and not job.future.done():
                job.future.set_exception(ClientError(503, "the server is shutting down."))

    async def _run(self, loop, jobs: list[_Job]) -> None:
        rows = [row for job in jobs for row in job.rows]
        self.stats["batches"] += 1
        self.stats["requests"] += len(jobs)
        self.stats["texts"] += len(rows)
        self.stats["largest_batch"] = max(self.stats["largest_batch"], len(rows))
        started = loop.time()
        try:
            results = await loop.run_in_executor(self._executor, self.model.run, self.outputs, rows)
            took = loop.time() - started
            self._call_time = (
                took if self._call_time is None else 0.8 * self._call_time + 0.2 * took
            )
        except Exception as exc:  # noqa: BLE001 - every waiting request must hear of it
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        start = 0
        for job in jobs:
            stop = start + len(job.rows)
            if not job.future.done():
                job.future.set_result(
                    {name: value[start:stop] for name, value in zip(self.outputs, results)}
                )
            start = stop
