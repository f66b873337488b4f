"""``python -m fewshot.serve MODEL.onnx``: the same server as ``fewshot serve``."""

from ._app import main

main()
