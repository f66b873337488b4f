"""The package version, alone in its module: nothing imports ``fewshot/__init__`` from below."""

__version__ = "0.1.0"
