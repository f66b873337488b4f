"""``python -m fewshot`` runs the command line (same as the ``fewshot`` script)."""

from .cli._main import main

main()
