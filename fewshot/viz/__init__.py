"""Pictures of embeddings: 2-D projections coloured by label, layer grids, before/after.

Every function draws with matplotlib and returns what it drew on (an Axes, or a Figure
for multi-panel pictures), so a notebook shows it and a script can ``savefig`` it. The
same class always gets the same colour in every panel of a figure. Projections are
deterministic for a given ``random_state``.
"""

from ._figures import (
    METHODS,
    plot_before_after,
    plot_calibration,
    plot_embeddings,
    plot_layers,
    plot_probe,
)

__all__ = [
    "METHODS",
    "plot_before_after",
    "plot_calibration",
    "plot_embeddings",
    "plot_layers",
    "plot_probe",
]
