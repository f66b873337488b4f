"""What every strategy returns: the chosen pool rows, in the order to label them, with reasons."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Selection", "SelectionWarning"]


class SelectionWarning(UserWarning):
    """A pool problem that was worked around: texts already labelled, repeated texts."""


@dataclass(frozen=True, eq=False)
class Selection:
    """The texts a strategy chose, most useful first.

    Attributes
    ----------
    positions : ndarray of int
        Rows of the pool (0-based positions, pandas index ignored), in the order to label
        them: the first ``m`` rows are the strategy's best choice of ``m`` texts.
    texts : list of str
        ``texts[i]`` is the pool text at ``positions[i]``.
    scores : ndarray of float
        The strategy's score of each chosen text: cosine similarity to its cluster's
        centre ("kmeans"), typicality ("density"), uncertainty in [0, 1] ("margin",
        "entropy", "least-confident"), NaN ("random").
    reasons : list of str
        Why each text was chosen, in words.
    clusters : ndarray of int
        The cluster each text was chosen from (-1 where the strategy has no clusters).
    strategy : str
        The strategy that chose them.
    seconds : dict
        Time spent: ``"features"`` (embedding, predicting) and ``"select"`` (the rest).

    Examples
    --------
    >>> import numpy as np
    >>> selection = Selection(
    ...     positions=np.array([4, 1]), texts=["b", "a"], scores=np.array([0.9, 0.2]),
    ...     reasons=["x", "y"], clusters=np.array([-1, -1]), strategy="margin")
    >>> len(selection), selection.to_frame().columns.tolist()
    (2, ['rank', 'position', 'text', 'score', 'cluster', 'reason'])
    """

    positions: np.ndarray
    texts: list
    scores: np.ndarray
    reasons: list
    clusters: np.ndarray
    strategy: str
    seconds: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.positions)

    def to_frame(self):
        """The selection as a DataFrame: rank (1 = label first), position, text, score, ...

        Returns
        -------
        pandas.DataFrame
        """
        import pandas as pd

        return pd.DataFrame(
            {
                "rank": np.arange(1, len(self) + 1),
                "position": np.asarray(self.positions, dtype=np.int64),
                "text": list(self.texts),
                "score": np.asarray(self.scores, dtype=float),
                "cluster": np.asarray(self.clusters, dtype=np.int64),
                "reason": list(self.reasons),
            }
        )

    def __repr__(self) -> str:
        return f"Selection({self.strategy!r}, {len(self)} texts, positions={self.positions[:8]!r})"
