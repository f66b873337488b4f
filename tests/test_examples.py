"""The examples run end to end (on the tiny model, so they cannot rot)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_runs_and_prints_every_layer(tiny_model):
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py"), "--model", tiny_model, "--folds", "3"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Zero-shot sentiment from the model's classification head" in out  # tiny model has a head
    layers = re.findall(r"^  (\d)[ (].*?(\d\.\d{3}) ± (\d\.\d{3})$", out, flags=re.M)
    assert [int(layer) for layer, _, _ in layers] == list(range(7))
    assert all(0.0 <= float(acc) <= 1.0 for _, acc, _ in layers)
