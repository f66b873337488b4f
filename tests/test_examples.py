"""The examples run end to end (on the tiny model, so they cannot rot)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_runs_and_prints_every_layer(tiny_model):
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "quickstart.py"),
            "--model",
            tiny_model,
            "--folds",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert (
        "Zero-shot sentiment from the model's classification head" in out
    )  # tiny model has a head
    layers = re.findall(r"^  (\d)[ (].*?(\d\.\d{3}) ± (\d\.\d{3})$", out, flags=re.M)
    assert [int(layer) for layer, _, _ in layers] == list(range(7))
    assert all(0.0 <= float(acc) <= 1.0 for _, acc, _ in layers)


def test_explore_layers_prints_the_probe_and_saves_both_pictures(tiny_model, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "explore_layers.py"),
            "--model",
            tiny_model,
            "--out-dir",
            str(tmp_path),
            "--dpi",
            "40",
            "--method",
            "pca",
        ],  # UMAP: test_viz
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"^best: layer \d, pooling '(mean|cls|max)'", result.stdout, flags=re.M)
    assert "Use it: DistilEmbedder(model=..., layers=" in result.stdout
    for name in ("probe.png", "layers.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_every_example_has_its_own_test():
    tested = {"quickstart.py", "explore_layers.py"}  # the tests above
    assert {p.name for p in (ROOT / "examples").glob("*.py")} == tested
