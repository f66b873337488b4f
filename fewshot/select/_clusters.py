"""Clusters of unit-length embeddings, typicality within them, and picking one text per cluster.

Everything here is linear in the pool: k-means (centres fitted on a sample of a large pool), and
typicality measured against at most ``REFERENCE_SIZE`` members of each cluster, in blocks
of rows, so 100,000 texts never need an n x n matrix.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = [
    "MAX_CLUSTERS",
    "centre_similarity",
    "cluster",
    "pick_per_cluster",
    "typicality",
]

MAX_CLUSTERS = 500  # as TypiClust: beyond this, clusters get several picks each
MIN_CLUSTER_SIZE = 5  # smaller clusters are outliers; picked from only when nothing else is left
FIT_SAMPLE = 20_000  # at most this many rows fit the k-means centres
REFERENCE_SIZE = 1_000  # members per cluster that typicality is measured against
TYPICALITY_NEIGHBORS = 20  # TypiClust's K
BLOCK = 4_096  # rows per distance block


def cluster(Z, n_clusters: int, seed: int, sample_weight=None):
    """``(labels, centres)`` of k-means on the rows of ``Z`` (deterministic per ``seed``).

    On more than ``FIT_SAMPLE`` rows the centres are fitted on a random sample of that
    many and every row then joins its nearest centre: the centres of a large pool barely
    move with more rows, and the cost stays linear.
    """
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    n_clusters = max(1, min(int(n_clusters), len(Z)))
    fit_rows = np.arange(len(Z))
    if len(Z) > FIT_SAMPLE:
        fit_rows = np.sort(np.random.default_rng(seed).choice(len(Z), FIT_SAMPLE, replace=False))
    weight = None if sample_weight is None else np.asarray(sample_weight)[fit_rows]
    model = KMeans(n_clusters=n_clusters, n_init=3, random_state=seed)
    # One thread: k-means++ multiplies one row at a time, where threaded BLAS was 4x
    # slower than one thread on an idle 2-core machine, and on a busy one sklearn's OpenMP
    # threads made a 7,000-text fit 11x slower (11 s against 1 s).
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        # Fewer distinct vectors than clusters (repeated embeddings) leaves some clusters
        # empty; picking simply skips them.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(Z[fit_rows], sample_weight=weight)
    centres = model.cluster_centers_.astype(np.float32)
    if len(fit_rows) == len(Z):
        return model.labels_.astype(np.intp), centres
    return nearest_centre(Z, centres), centres


def nearest_centre(Z, centres) -> np.ndarray:
    """The nearest centre (squared Euclidean distance) of every row, in blocks of rows."""
    offset = 0.5 * (centres**2).sum(axis=1)
    labels = np.empty(len(Z), dtype=np.intp)
    for start in range(0, len(Z), BLOCK):
        block = Z[start : start + BLOCK]
        labels[start : start + BLOCK] = np.argmax(block @ centres.T - offset, axis=1)
    return labels


def centre_similarity(Z, labels, centres) -> np.ndarray:
    """Cosine similarity of each row to its cluster's centre (higher: nearer the centre)."""
    centres = centres / np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
    return np.einsum("ij,ij->i", Z, centres[labels])


def typicality(Z, labels, seed: int, rows=None) -> np.ndarray:
    """TypiClust's typicality: 1 / mean squared distance to the K nearest cluster members.

    Computed for ``rows`` (default all) against a random sample of at most
    ``REFERENCE_SIZE`` members of the row's own cluster, with K = min(20, size // 2);
    a row alone in its cluster has typicality 0. Rows of other clusters get NaN.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # small products: threads only cost (see cluster)
        return _typicality(Z, labels, np.random.default_rng(seed), rows)


def _typicality(Z, labels, rng, rows):
    wanted = np.zeros(len(Z), dtype=bool)
    wanted[np.arange(len(Z)) if rows is None else rows] = True
    result = np.full(len(Z), np.nan, dtype=np.float64)
    for c in np.unique(labels[wanted]):
        members = np.flatnonzero(labels == c)
        targets = members[wanted[members]]
        if len(members) < 2:
            result[targets] = 0.0
            continue
        reference = members
        if len(members) > REFERENCE_SIZE:
            reference = np.sort(rng.choice(members, size=REFERENCE_SIZE, replace=False))
        n_neighbors = max(1, min(TYPICALITY_NEIGHBORS, len(members) // 2, len(reference) - 1))
        R = Z[reference]
        slot = {int(row): j for j, row in enumerate(reference)}
        for start in range(0, len(targets), BLOCK):
            block = targets[start : start + BLOCK]
            distances = np.maximum(2.0 - 2.0 * (Z[block] @ R.T), 0.0)
            for i, row in enumerate(block):  # a text is not its own neighbour
                j = slot.get(int(row))
                if j is not None:
                    distances[i, j] = np.inf
            nearest = np.partition(distances, n_neighbors - 1, axis=1)[:, :n_neighbors]
            result[block] = 1.0 / (nearest.mean(axis=1) + 1e-5)
    return result


def pick_per_cluster(
    labels, scores, candidates, k: int, covered=None, min_size: int = MIN_CLUSTER_SIZE
):
    """Choose ``k`` of ``candidates``: always from the least covered cluster, best score first.

    TypiClust's rule: the next text comes from the cluster holding the fewest labelled or
    already chosen texts, the largest such cluster first (clusters under ``min_size``
    rows only when no other has candidates left), and within it the candidate with the
    highest score (ties: the earlier row). Returns ``(rows, clusters, covered_before)``
    in pick order.
    """
    n_clusters = int(labels.max()) + 1 if len(labels) else 0
    sizes = np.bincount(labels, minlength=n_clusters)
    covered = np.zeros(n_clusters, dtype=np.int64) if covered is None else covered.copy()
    queues = {}
    for c in np.unique(labels[candidates]):
        members = candidates[labels[candidates] == c]
        order = np.lexsort((members, -scores[members]))  # best score, then earlier row
        queues[int(c)] = list(members[order][::-1])  # pop() takes the best
    rows, clusters, before = [], [], []
    for _ in range(k):
        open_ = [c for c, queue in queues.items() if queue]
        big = [c for c in open_ if sizes[c] >= min_size] or open_
        c = min(big, key=lambda c: (covered[c], -sizes[c], c))
        rows.append(int(queues[c].pop()))
        clusters.append(c)
        before.append(int(covered[c]))
        covered[c] += 1
    return np.asarray(rows, dtype=np.intp), np.asarray(clusters, dtype=np.intp), before
