"""``python -m fewshot`` runs the command line (same as the ``fewshot`` script)."""

from .cli import main

main()
