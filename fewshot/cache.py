"""The embedding cache: vectors on disk, keyed by the text and everything that makes them.

Storage is one SQLite database in WAL mode (``embeddings.sqlite`` in the cache folder).
SQLite ships with Python, commits atomically, lets readers work while one process
writes and serialises writers with a lock and a timeout, which is exactly what
``GridSearchCV(n_jobs=2)`` workers sharing a cache need; one file per vector would
mean many thousands of small files and no cheap way to bound their total size.
(WAL needs a local file system: do not put the cache on NFS.)

Each row holds a key (a hash of the text and of the *namespace*: the model's
fingerprint, a hash of its weights, config and tokenizer files, plus every setting that
changes the vector), the float32 vector, a checksum of both, and when it was last used.
A row whose checksum does not match, or a database file that SQLite cannot read, is
reported with a :class:`CacheWarning`, dropped and recomputed; it is never returned.
When the vectors stored exceed ``max_bytes`` the least recently used ones go.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import threading
import time
import warnings

import numpy as np

__all__ = ["CacheWarning", "EmbeddingCache"]

_FILE = "embeddings.sqlite"
_ROW_OVERHEAD = 64  # bytes counted per row besides the vector (key, checksum, index)
_QUERY_CHUNK = 500  # keys per SELECT ... IN (...)


class CacheWarning(UserWarning):
    """A cache problem that was worked around.

    Corrupt entries, an unreadable file, or a model without an identity on disk.
    """


def check_cache_path(path) -> str:
    """The cache folder as an absolute path; an empty path is refused."""
    path = os.fspath(path)
    if not path.strip():
        raise ValueError(
            "cache='' is an empty path (it would write into the working folder); pass a "
            "folder such as cache='~/.cache/fewshot-embeddings', or cache=None for no cache."
        )
    return os.path.abspath(os.path.expanduser(path))


@contextlib.contextmanager
def _transaction(connection):
    """One write transaction: committed on success, rolled back on any error."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def _checksum(key: bytes, vector: bytes) -> bytes:
    return hashlib.blake2b(key + vector, digest_size=8).digest()


class EmbeddingCache:
    """A folder of cached embeddings, shared by processes and kept under a size bound.

    Pass it (or just the folder path) as ``DistilEmbedder(cache=...)``. The object
    holds only its parameters, so estimators holding it clone and pickle as plain
    data; the database connection is opened lazily in each process.

    Parameters
    ----------
    path : str or path-like
        Folder of the cache; created on first use.
    max_bytes : int, default=2 GiB
        Bound on the stored vectors (plus a small per-row overhead). Past it, the least
        recently used vectors are evicted until 90% of the bound is free again.

    Examples
    --------
    >>> import tempfile
    >>> from fewshot import DistilEmbedder, EmbeddingCache
    >>> from fewshot.testing import make_tiny_distilbert
    >>> model = str(make_tiny_distilbert(tempfile.mkdtemp()))
    >>> cache = EmbeddingCache(tempfile.mkdtemp(), max_bytes=10_000_000)
    >>> embedder = DistilEmbedder(model=model, layers=3, cache=cache)
    >>> X = embedder.fit_transform(["good", "bad", "good"])  # "good" embedded once
    >>> X2 = embedder.transform(["bad", "good"])               # served from the cache
    >>> stats = cache.stats()
    >>> stats["entries"], stats["hits"], stats["misses"]
    (2, 2, 2)
    """

    def __init__(self, path, *, max_bytes: int = 2 * 1024**3):
        self.path = os.fspath(path)
        self.max_bytes = max_bytes
        self._local = threading.local()

    # -- plain data ------------------------------------------------------------------

    def __getstate__(self):
        return {"path": self.path, "max_bytes": self.max_bytes}

    def __setstate__(self, state):
        self.__init__(state["path"], max_bytes=state["max_bytes"])

    def __repr__(self):
        return f"EmbeddingCache({self.path!r}, max_bytes={self.max_bytes})"

    def __eq__(self, other):
        return isinstance(other, EmbeddingCache) and (self.path, self.max_bytes) == (
            other.path,
            other.max_bytes,
        )

    def __hash__(self):
        return hash((self.path, self.max_bytes))

    # -- connection --------------------------------------------------------------

    @property
    def file(self) -> str:
        """The SQLite database file inside the cache folder."""
        return os.path.join(check_cache_path(self.path), _FILE)

    def _connection(self) -> sqlite3.Connection:
        # One connection per thread and process: sqlite3 connections must not cross
        # threads, and a forked child must not reuse its parent's.
        local = self._local
        if getattr(local, "connection", None) is not None and local.pid == os.getpid():
            return local.connection
        check_cache_path(self.path)
        if not isinstance(self.max_bytes, int) or self.max_bytes < 0:
            raise ValueError(f"max_bytes must be an int >= 0, got {self.max_bytes!r}.")
        os.makedirs(os.path.dirname(self.file), exist_ok=True)
        try:
            connection = self._open()
        except sqlite3.DatabaseError as exc:
            self._set_aside(exc)
            connection = self._open()
        local.connection, local.pid = connection, os.getpid()
        return connection

    def _open(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.file, timeout=60, isolation_level=None)
        try:
            connection.execute("PRAGMA busy_timeout = 60000")
            if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                connection.execute("PRAGMA auto_vacuum = INCREMENTAL")
                connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.execute(
                "CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB "
                "NOT NULL, checksum BLOB NOT NULL, used REAL NOT NULL) WITHOUT ROWID"
            )
            connection.execute("CREATE INDEX IF NOT EXISTS vectors_used ON vectors(used)")
            connection.execute(
                "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER)"
            )
            connection.execute(
                "INSERT OR IGNORE INTO counters VALUES ('bytes', 0), ('hits', 0), ('misses', 0)"
            )
        except sqlite3.DatabaseError:
            connection.close()
            raise
        return connection

    def _set_aside(self, exc: Exception) -> None:
        """Move an unreadable database out of the way (kept for inspection) and start over."""
        self._close()
        broken = f"{self.file}.corrupt-{int(time.time())}-{os.getpid()}"
        warnings.warn(
            f"Embedding cache {self.file} is unreadable ({exc}); moved it to {broken} "
            "and starting an empty cache. Affected vectors are recomputed.",
            CacheWarning,
            stacklevel=4,
        )
        for suffix in ("", "-wal", "-shm"):
            try:
                os.replace(self.file + suffix, broken + suffix)
            except FileNotFoundError:  # absent, or another process moved it first
                pass

    def _close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            try:
                connection.close()
            except sqlite3.Error:
                pass
        self._local.connection = None

    def _run(self, operation, *args):
        """Run ``operation(connection, ...)``; on a corrupt database, start over once."""
        try:
            return operation(self._connection(), *args)
        except sqlite3.OperationalError:
            raise  # locked, disk full, permissions: the file itself is fine
        except sqlite3.DatabaseError as exc:
            self._set_aside(exc)
            return operation(self._connection(), *args)

    # -- reading and writing ---------------------------------------------------------

    def get(self, keys: list[bytes], n_features: int) -> dict[int, np.ndarray]:
        """Vectors found for ``keys``, as ``{position in keys: vector}``.

        Entries that fail their checksum or have the wrong length are reported,
        deleted and left out, so the caller recomputes them.
        """
        return self._run(self._get, keys, n_features)

    def _get(self, connection, keys, n_features):
        found: dict[int, np.ndarray] = {}
        position = {key: i for i, key in enumerate(keys)}
        bad = []
        for start in range(0, len(keys), _QUERY_CHUNK):
            chunk = keys[start : start + _QUERY_CHUNK]
            rows = connection.execute(
                f"SELECT key, vector, checksum FROM vectors WHERE key IN "
                f"({','.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
            for key, vector, checksum in rows:
                key, vector = bytes(key), bytes(vector)
                if len(vector) != 4 * n_features or _checksum(key, vector) != checksum:
                    bad.append(key)
                    continue
                found[position[key]] = np.frombuffer(vector, dtype=np.float32)
        now = time.time()
        with _transaction(connection):
            if bad:
                self._delete(connection, bad)
            hits = list(found)
            for start in range(0, len(hits), _QUERY_CHUNK):
                chunk = [keys[i] for i in hits[start : start + _QUERY_CHUNK]]
                connection.execute(
                    f"UPDATE vectors SET used = ? WHERE key IN ({','.join('?' * len(chunk))})",
                    [now, *chunk],
                )
            connection.execute(
                "UPDATE counters SET value = value + ? WHERE name = 'hits'", (len(found),)
            )
            connection.execute(
                "UPDATE counters SET value = value + ? WHERE name = 'misses'",
                (len(keys) - len(found),),
            )
        if bad:
            warnings.warn(
                f"{len(bad)} corrupt entries in the embedding cache {self.file} "
                "(checksum mismatch); they were dropped and are recomputed.",
                CacheWarning,
                stacklevel=3,
            )
        return found

    def _delete(self, connection, keys) -> None:
        for start in range(0, len(keys), _QUERY_CHUNK):
            chunk = keys[start : start + _QUERY_CHUNK]
            marks = ",".join("?" * len(chunk))
            freed = connection.execute(
                f"SELECT COALESCE(SUM(length(vector)), 0) + {_ROW_OVERHEAD} * COUNT(*) "
                f"FROM vectors WHERE key IN ({marks})",
                chunk,
            ).fetchone()[0]
            connection.execute(f"DELETE FROM vectors WHERE key IN ({marks})", chunk)
            connection.execute(
                "UPDATE counters SET value = value - ? WHERE name = 'bytes'", (freed,)
            )

    def put(self, keys: list[bytes], vectors: np.ndarray) -> None:
        """Store ``vectors[i]`` under ``keys[i]``, then evict down to the size bound."""
        self._run(self._put, keys, np.ascontiguousarray(vectors, dtype=np.float32))

    def _put(self, connection, keys, vectors):
        now = time.time()
        rows = []
        for key, vector in zip(keys, vectors):
            blob = vector.tobytes()
            rows.append((key, blob, _checksum(key, blob), now))
        with _transaction(connection):
            added = 0
            for row in rows:
                # Same key, same vector: a row another process just wrote is kept.
                cursor = connection.execute(
                    "INSERT OR IGNORE INTO vectors VALUES (?, ?, ?, ?)", row
                )
                if cursor.rowcount > 0:
                    added += len(row[1]) + _ROW_OVERHEAD
            connection.execute(
                "UPDATE counters SET value = value + ? WHERE name = 'bytes'", (added,)
            )
            evicted = self._evict(connection)
        if evicted:
            connection.execute("PRAGMA incremental_vacuum")  # give the space back

    def _evict(self, connection) -> int:
        total = connection.execute("SELECT value FROM counters WHERE name = 'bytes'").fetchone()[0]
        if total <= self.max_bytes:
            return 0
        target = int(self.max_bytes * 0.9)
        evicted = 0
        while total > target:
            oldest = [
                bytes(key)
                for (key,) in connection.execute(
                    "SELECT key FROM vectors ORDER BY used LIMIT ?", (_QUERY_CHUNK,)
                )
            ]
            if not oldest:
                break
            for key in oldest:
                size = connection.execute(
                    "SELECT length(vector) FROM vectors WHERE key = ?", (key,)
                ).fetchone()[0]
                connection.execute("DELETE FROM vectors WHERE key = ?", (key,))
                total -= size + _ROW_OVERHEAD
                evicted += 1
                if total <= target:
                    break
        if not connection.execute("SELECT 1 FROM vectors LIMIT 1").fetchone():
            total = 0
        connection.execute("UPDATE counters SET value = ? WHERE name = 'bytes'", (total,))
        return evicted

    # -- housekeeping ----------------------------------------------------------------

    def stats(self) -> dict:
        """``entries``, ``bytes`` (counted toward ``max_bytes``), ``hits`` and ``misses``.

        Hits and misses count distinct texts looked up, by every process that used
        the cache since it was created or cleared.
        """

        def read(connection):
            counters = dict(connection.execute("SELECT name, value FROM counters"))
            entries = connection.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
            return {"entries": entries, **counters}

        return self._run(read)

    def clear(self) -> None:
        """Delete every vector and reset the counters."""

        def wipe(connection):
            with _transaction(connection):
                connection.execute("DELETE FROM vectors")
                connection.execute("UPDATE counters SET value = 0")
            connection.execute("PRAGMA incremental_vacuum")

        self._run(wipe)

    def __len__(self) -> int:
        return self.stats()["entries"]
