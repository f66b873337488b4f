"""The fewshot command line, driven with click's test runner on small files."""

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from fewshot import DistilEmbedder
from fewshot.cli import MODEL_META, atomic_file, cli
from fewshot.data import load_customer_feedback

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def frame():
    data = load_customer_feedback()
    table = pd.DataFrame({"text": data.text, "label": data.target})
    return table.iloc[::2].reset_index(drop=True)  # 40 rows, 10 per topic


@pytest.fixture
def files(tmp_path, frame):
    """The same 40 rows as CSV, TSV, JSONL and Parquet."""
    paths = {suffix: tmp_path / f"feedback{suffix}" for suffix in (".csv", ".tsv", ".jsonl", ".parquet")}
    frame.to_csv(paths[".csv"], index=False)
    frame.to_csv(paths[".tsv"], index=False, sep="\t")
    frame.to_json(paths[".jsonl"], orient="records", lines=True)
    frame.to_parquet(paths[".parquet"], index=False)
    return paths


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def one_line_error(result, code):
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


# -- embed ----------------------------------------------------------------------------


def test_embed_npy_matches_the_embedder_row_for_row(tiny_model, files, frame, tmp_path):
    out = tmp_path / "emb.npy"
    result = run("embed", files[".csv"], "--model", tiny_model, "--layers", "-1", "--out", out)
    assert result.exit_code == 0, result.output
    X = np.load(out)
    expected = DistilEmbedder(model=tiny_model).transform(frame["text"].tolist())
    assert X.dtype == np.float32
    np.testing.assert_allclose(X, expected, atol=1e-6)
    assert "Embedding" in result.stderr and result.stdout == ""  # progress on stderr only
    assert "Wrote 40 x 32 embeddings" in result.stderr


@pytest.mark.parametrize("suffix", [".tsv", ".jsonl", ".parquet"])
def test_every_input_format_gives_the_same_embeddings(tiny_model, files, tmp_path, suffix):
    run("embed", files[".csv"], "--model", tiny_model, "--layers", "2,4", "-q", "--out", tmp_path / "a.npy")
    result = run("embed", files[suffix], "--model", tiny_model, "--layers", "2,4", "-q",
                 "--out", tmp_path / "b.npy")
    assert result.exit_code == 0 and result.stderr == ""  # --quiet
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))


def test_embed_parquet_has_feature_names_and_head_columns(tiny_model, files, tmp_path):
    out = tmp_path / "emb.parquet"
    result = run("embed", files[".jsonl"], "--model", tiny_model, "--layers", "all",
                 "--pooling", "max", "--head", "proba", "--out", out, "-q")
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out)
    assert table.shape == (40, 7 * 32 + 2)
    assert table.columns[0] == "layer0_max_0" and table.columns[-1] == "head_proba_POSITIVE"


# -- train and predict ----------------------------------------------------------------


def test_train_then_predict_round_trip(tiny_model, files, frame, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    relative_model = os.path.relpath(tiny_model, tmp_path)
    result = run("train", files[".csv"], "--model", relative_model, "--layers", "3", "--out", "clf")
    assert result.exit_code == 0, result.output
    assert "Trained a linear probe on 40 texts (4 classes)" in result.stderr
    meta = json.loads((tmp_path / "clf" / MODEL_META).read_text())
    assert meta["kind"] == "pipeline" and meta["model"] == os.path.abspath(tiny_model)
    assert meta["classes"] == ["billing", "delivery", "product", "service"]
    # The saved pipeline holds parameters and the linear head, no encoder weights.
    assert (tmp_path / "clf" / "pipeline.skops").stat().st_size < 50_000
    assert sorted(p.name for p in (tmp_path / "clf").iterdir()) == [MODEL_META, "pipeline.skops"]

    monkeypatch.chdir(ROOT)  # predict reloads the encoder by its absolute path
    out = tmp_path / "predictions.csv"
    result = run("predict", tmp_path / "clf", files[".jsonl"], "--out", out, "-q")
    assert result.exit_code == 0, result.output
    predictions = pd.read_csv(out)
    assert list(predictions.columns) == ["label"] + [f"proba_{c}" for c in meta["classes"]]
    assert len(predictions) == 40
    np.testing.assert_allclose(predictions.filter(like="proba_").sum(axis=1), 1, atol=1e-5)
    import skops.io

    file = tmp_path / "clf" / "pipeline.skops"
    pipeline = skops.io.load(file, trusted=skops.io.get_untrusted_types(file=file))
    texts = frame["text"].tolist()
    assert predictions["label"].tolist() == pipeline.predict(texts).tolist()  # same order
    np.testing.assert_allclose(predictions.filter(like="proba_").to_numpy(),
                               pipeline.predict_proba(texts), atol=1e-6)


def test_train_few_shot_sample_and_replacing_an_earlier_model(tiny_model, files, tmp_path):
    out = tmp_path / "clf"
    assert run("train", files[".csv"], "--model", tiny_model, "--out", out, "-q").exit_code == 0
    result = run("train", files[".parquet"], "--model", tiny_model, "--out", out,
                 "--n-per-class", "3", "-q")
    assert result.exit_code == 0, result.output
    assert json.loads((out / MODEL_META).read_text())["n_train"] == 12
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no leftovers
    error = one_line_error(run("train", files[".csv"], "--model", tiny_model, "--out", out,
                               "--n-per-class", "11", "-q"), 1)
    assert "has only 10 rows but --n-per-class is 11" in error
    assert json.loads((out / MODEL_META).read_text())["n_train"] == 12  # the old model stays


def test_train_refuses_to_overwrite_a_folder_that_is_not_a_model(tiny_model, files, tmp_path):
    precious = tmp_path / "notes"
    precious.mkdir()
    (precious / "thesis.txt").write_text("do not delete")
    error = one_line_error(run("train", files[".csv"], "--model", tiny_model, "--out", precious), 2)
    assert "holds other files and no fewshot model" in error
    assert (precious / "thesis.txt").read_text() == "do not delete"


class _FakeSetFit:
    """Records how the CLI drives SetFitClassifier; predicts the most common class."""

    made = []

    def __init__(self, **params):
        self.params = params
        _FakeSetFit.made.append(self)

    def get_params(self):
        return dict(self.params, progress=False)

    def set_params(self, **params):
        self.params.update(params)
        return self

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.n_fit_ = len(X)
        return self

    def predict_proba(self, X):
        proba = np.zeros((len(X), len(self.classes_)))
        proba[:, 1] = 1.0
        return proba

    def save(self, directory):
        Path(directory).mkdir()
        (Path(directory) / "fake.json").write_text(json.dumps(
            {"classes": self.classes_.tolist(), "params": self.params}))

    @classmethod
    def load(cls, directory):
        saved = json.loads((Path(directory) / "fake.json").read_text())
        clf = cls(**saved["params"])
        clf.classes_ = np.asarray(saved["classes"])
        return clf


def test_train_setfit_saves_and_predict_loads_it(tiny_model, files, tmp_path, monkeypatch):
    fake = types.ModuleType("fewshot.setfit")
    fake.SetFitClassifier = _FakeSetFit
    monkeypatch.setitem(sys.modules, "fewshot.setfit", fake)
    result = run("train", files[".csv"], "--model", tiny_model, "--setfit", "--layers", "-2",
                 "--pooling", "cls", "--n-iterations", "3", "--random-state", "7",
                 "--out", tmp_path / "sf", "-q")
    assert result.exit_code == 0, result.output
    trained = _FakeSetFit.made[-1]
    assert trained.params == {"model": tiny_model, "layer": -2, "pooling": "cls",
                              "random_state": 7, "n_iterations": 3}
    assert json.loads((tmp_path / "sf" / MODEL_META).read_text())["kind"] == "setfit"
    result = run("predict", tmp_path / "sf", files[".csv"], "--out", tmp_path / "p.jsonl", "-q")
    assert result.exit_code == 0, result.output
    predictions = pd.read_json(tmp_path / "p.jsonl", lines=True)
    assert predictions["label"].unique().tolist() == ["delivery"]
    assert predictions["proba_delivery"].tolist() == [1.0] * 40


def test_train_setfit_errors(tiny_model, files, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "fewshot.setfit", None)  # not installed
    error = one_line_error(run("train", files[".csv"], "--model", tiny_model, "--setfit",
                               "--out", tmp_path / "sf", "-q"), 1)
    assert "needs fewshot.SetFitClassifier" in error
    assert not (tmp_path / "sf").exists()
    result = run("train", files[".csv"], "--setfit", "--layers", "all", "--out", tmp_path / "sf")
    assert result.exit_code == 2 and "give a single number" in result.stderr


@pytest.mark.skipif(
    not (ROOT / "fewshot" / "setfit.py").exists(), reason="SetFitClassifier has not landed yet"
)
def test_train_setfit_for_real(tiny_model, files, tmp_path):
    result = run("train", files[".csv"], "--model", tiny_model, "--setfit", "--n-per-class", "4",
                 "--n-iterations", "1", "--out", tmp_path / "sf", "-q")
    assert result.exit_code == 0, result.output
    result = run("predict", tmp_path / "sf", files[".csv"], "--out", tmp_path / "p.csv", "-q")
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(tmp_path / "p.csv")) == 40


# -- probe, plot, demo ----------------------------------------------------------------


def test_probe_prints_the_table_and_saves_plot_and_table(tiny_model, files, tmp_path):
    result = run("probe", files[".csv"], "--model", tiny_model, "--poolings", "mean,cls",
                 "--cv", "3", "--plot", tmp_path / "probe.png", "--out", tmp_path / "probe.csv")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["layer", "mean", "cls"]
    assert [line.split()[0] for line in lines[2:9]] == [str(i) for i in range(7)]
    assert lines[9].startswith("best: layer ")
    assert "Probing" in result.stderr  # progress bar
    assert (tmp_path / "probe.png").read_bytes()[:4] == b"\x89PNG"
    table = pd.read_csv(tmp_path / "probe.csv")
    assert list(table.columns) == ["layer", "pooling", "mean", "std"] and len(table) == 14


def test_plot_one_layer_and_a_layer_grid(tiny_model, files, tmp_path):
    from PIL import Image

    result = run("plot", files[".csv"], "--model", tiny_model, "--label-col", "label",
                 "--method", "pca", "--dpi", "50", "--out", tmp_path / "one.png", "-q")
    assert result.exit_code == 0, result.output
    grid = run("plot", files[".csv"], "--model", tiny_model, "--label-col", "label",
               "--layers", "0,3,6", "--method", "pca", "--dpi", "50", "--out", tmp_path / "grid.png", "-q")
    assert grid.exit_code == 0, grid.output
    one = Image.open(tmp_path / "one.png").size
    three = Image.open(tmp_path / "grid.png").size
    assert three[0] > 1.5 * one[0]  # three panels side by side
    unlabelled = run("plot", files[".csv"], "--model", tiny_model, "--method", "pca",
                     "--out", tmp_path / "plain.svg", "-q")
    assert unlabelled.exit_code == 0 and (tmp_path / "plain.svg").read_text().startswith("<?xml")


def test_demo_prints_every_layer(tiny_model):
    result = run("demo", "--model", tiny_model, "--folds", "2", "-q")
    assert result.exit_code == 0, result.output
    assert "Zero-shot sentiment from the model's classification head" in result.stdout
    assert [line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")
            and line.split()[0].isdigit()] == [str(i) for i in range(7)]


# -- errors, exit codes, atomic writes ------------------------------------------------


def test_missing_file_and_missing_column_are_usage_errors(tiny_model, files, tmp_path):
    error = one_line_error(run("embed", tmp_path / "nope.csv", "--out", tmp_path / "e.npy"), 2)
    assert "nope.csv' does not exist" in error
    error = one_line_error(run("embed", files[".csv"], "--text-col", "body", "--model", tiny_model,
                               "--out", tmp_path / "e.npy"), 2)
    assert "column 'body' not found" in error and "(columns: text, label)" in error
    error = one_line_error(run("train", files[".csv"], "--label-col", "topic", "--model", tiny_model,
                               "--out", tmp_path / "m"), 2)
    assert "column 'topic' not found" in error


def test_empty_files_and_empty_labels_fail_with_one_line(tiny_model, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "is empty" in one_line_error(run("embed", empty, "--out", tmp_path / "e.npy"), 1)
    header = tmp_path / "header.csv"
    header.write_text("text,label\n")
    assert "has no rows" in one_line_error(run("embed", header, "--out", tmp_path / "e.npy"), 1)
    gaps = tmp_path / "gaps.csv"
    pd.DataFrame({"text": ["a", "b", "c", "d"], "label": ["x", "", "y", " "]}).to_csv(gaps, index=False)
    error = one_line_error(run("train", gaps, "--model", tiny_model, "--out", tmp_path / "m"), 1)
    assert "2 rows of" in error and "with an empty label in column 'label' (rows 2, 4," in error
    nulls = tmp_path / "nulls.jsonl"
    nulls.write_text('{"text": "a", "label": 1}\n{"text": null, "label": 2}\n')
    error = one_line_error(run("embed", nulls, "--model", tiny_model, "--out", tmp_path / "e.npy"), 1)
    assert "1 row of" in error and "without text in column 'text' (row 2," in error
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    assert "cannot read" in one_line_error(run("embed", broken, "--out", tmp_path / "e.npy"), 1)


def test_unreadable_model_folders_fail_with_one_line(tiny_model, files, tmp_path):
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    error = one_line_error(run("predict", folder, files[".csv"], "--out", tmp_path / "p.csv"), 1)
    assert "not a readable fewshot model folder" in error
    (folder / MODEL_META).write_text(json.dumps({"kind": "pipeline"}))
    (folder / "pipeline.skops").write_bytes(b"garbage")
    error = one_line_error(run("predict", folder, files[".csv"], "--out", tmp_path / "p.csv"), 1)
    assert "cannot load the model" in error
    error = one_line_error(run("embed", files[".csv"], "--model", str(tmp_path / "no-such-model"),
                               "--out", tmp_path / "e.npy"), 1)
    assert "Could not load model" in error
    assert "Could not load model" in one_line_error(
        run("embed", files[".csv"], "--model", str(folder), "--out", tmp_path / "e.npy"), 1)
    assert not (tmp_path / "e.npy").exists() and not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["embed", "{csv}", "--pooling", "avg", "--out", "e.npy"], "'avg' is not one of"),
        (["embed", "{csv}", "--layers", "top", "--out", "e.npy"], "is not 'all', a layer number"),
        (["embed", "{csv}", "--out", "e.txt"], "must end in one of .npy, .parquet"),
        (["embed", "{csv}"], "Missing option '--out'"),
        (["probe", "{csv}", "--poolings", "mean,avg"], "'avg' is not one of"),
        (["train", "{csv}", "--out", "m", "--n-iterations", "2"], "only used with --setfit"),
        (["nonsense"], "No such command"),
    ],
)
def test_usage_errors_exit_2(files, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = run(*[a.format(csv=files[".csv"]) for a in args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert not (tmp_path / "e.npy").exists()


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "emb.npy"
    target.write_bytes(b"the good old file")
    with pytest.raises(RuntimeError):
        with atomic_file(target) as temporary:
            Path(temporary).write_bytes(b"half a fi")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"the good old file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emb.npy"]
    with atomic_file(target) as temporary:
        Path(temporary).write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert oct(target.stat().st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode


def test_a_failing_predict_keeps_the_previous_predictions(tiny_model, files, tmp_path, monkeypatch):
    run("train", files[".csv"], "--model", tiny_model, "--out", tmp_path / "clf", "-q")
    out = tmp_path / "predictions.csv"
    out.write_text("previous run\n")

    def crash(self, path, **kwargs):
        Path(path).write_text("label,proba_\nhalf")
        raise OSError("No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", crash)
    error = one_line_error(run("predict", tmp_path / "clf", files[".csv"], "--out", out, "-q"), 1)
    assert "No space left on device" in error
    assert out.read_text() == "previous run\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".predictions")]


def test_console_script_is_declared_and_python_m_fewshot_runs():
    pyproject = (ROOT / "pyproject.toml").read_text()
    scripts = pyproject.split("[project.scripts]\n", 1)[1].split("\n\n", 1)[0]
    assert scripts.strip() == 'fewshot = "fewshot.cli:main"'
    from fewshot.cli import main

    assert callable(main)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-m", "fewshot", "--version"], capture_output=True,
                            text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "fewshot, version 0.1.0"
