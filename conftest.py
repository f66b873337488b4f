"""Shared by the tests and the doctests: figures render off-screen with Agg."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
