"""The fewshot command line, driven with click's test runner on small files."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from fewshot import DistilEmbedder, load_model
from fewshot.cli import cli
from fewshot.cli._tables import atomic_file
from fewshot.data import load_customer_feedback
from fewshot.model_folder import MANIFEST

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def frame():
    data = load_customer_feedback()
    table = pd.DataFrame({"text": data.text, "label": data.target})
    return table.iloc[::2].reset_index(drop=True)  # 40 rows, 10 per topic


@pytest.fixture
def files(tmp_path, frame):
    """The same 40 rows as CSV, TSV, JSONL and Parquet."""
    paths = {
        suffix: tmp_path / f"feedback{suffix}" for suffix in (".csv", ".tsv", ".jsonl", ".parquet")
    }
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
    run(
        "embed",
        files[".csv"],
        "--model",
        tiny_model,
        "--layers",
        "2,4",
        "-q",
        "--out",
        tmp_path / "a.npy",
    )
    result = run(
        "embed",
        files[suffix],
        "--model",
        tiny_model,
        "--layers",
        "2,4",
        "-q",
        "--out",
        tmp_path / "b.npy",
    )
    assert result.exit_code == 0 and result.stderr == ""  # --quiet
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))


def test_embed_parquet_has_feature_names_and_head_columns(tiny_model, files, tmp_path):
    out = tmp_path / "emb.parquet"
    result = run(
        "embed",
        files[".jsonl"],
        "--model",
        tiny_model,
        "--layers",
        "all",
        "--pooling",
        "max",
        "--head",
        "proba",
        "--out",
        out,
        "-q",
    )
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
    assert "self-contained" in result.stderr
    meta = json.loads((tmp_path / "clf" / MANIFEST).read_text())
    assert meta["kind"] == "pipeline"
    assert meta["base_model"]["model"] == os.path.abspath(tiny_model)
    assert meta["classes"] == ["billing", "delivery", "product", "service"]
    assert meta["metadata"]["text_col"] == "text" and meta["metadata"]["n_train"] == 40
    # The folder is self-contained: the encoder's weights travel with the linear head
    # (and the model card made from the manifest).
    assert sorted(p.name for p in (tmp_path / "clf").iterdir()) == sorted(
        [MANIFEST, "README.md", "encoder", "head.skops"]
    )
    assert (tmp_path / "clf" / "head.skops").stat().st_size < 50_000

    monkeypatch.chdir(ROOT)
    out = tmp_path / "predictions.csv"
    result = run("predict", tmp_path / "clf", files[".jsonl"], "--out", out, "-q")
    assert result.exit_code == 0, result.output
    predictions = pd.read_csv(out)
    assert list(predictions.columns) == ["label"] + [f"proba_{c}" for c in meta["classes"]]
    assert len(predictions) == 40
    np.testing.assert_allclose(predictions.filter(like="proba_").sum(axis=1), 1, atol=1e-5)
    pipeline = load_model(tmp_path / "clf")
    texts = frame["text"].tolist()
    assert predictions["label"].tolist() == pipeline.predict(texts).tolist()  # same order
    np.testing.assert_allclose(
        predictions.filter(like="proba_").to_numpy(), pipeline.predict_proba(texts), atol=1e-6
    )
    # The same pipeline fitted in Python predicts the same.
    reference = Pipeline(
        [
            ("embed", DistilEmbedder(model=tiny_model, layers=3)),
            ("classify", LogisticRegression(max_iter=1000)),
        ]
    )
    reference.fit(frame["text"].tolist(), frame["label"].to_numpy())
    np.testing.assert_allclose(
        reference.predict_proba(texts), pipeline.predict_proba(texts), atol=1e-6
    )


def test_train_few_shot_sample_and_replacing_an_earlier_model(tiny_model, files, tmp_path):
    out = tmp_path / "clf"
    assert run("train", files[".csv"], "--model", tiny_model, "--out", out, "-q").exit_code == 0
    result = run(
        "train", files[".parquet"], "--model", tiny_model, "--out", out, "--n-per-class", "3", "-q"
    )
    assert result.exit_code == 0, result.output
    assert json.loads((out / MANIFEST).read_text())["metadata"]["n_train"] == 12
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no leftovers
    error = one_line_error(
        run(
            "train", files[".csv"], "--model", tiny_model, "--out", out, "--n-per-class", "11", "-q"
        ),
        1,
    )
    assert "has only 10 rows but --n-per-class is 11" in error
    assert (
        json.loads((out / MANIFEST).read_text())["metadata"]["n_train"] == 12
    )  # the old model stays


def test_train_refuses_to_overwrite_a_folder_that_is_not_a_model(tiny_model, files, tmp_path):
    precious = tmp_path / "notes"
    precious.mkdir()
    (precious / "thesis.txt").write_text("do not delete")
    error = one_line_error(run("train", files[".csv"], "--model", tiny_model, "--out", precious), 2)
    assert "holds other files and no fewshot model" in error
    assert (precious / "thesis.txt").read_text() == "do not delete"


def test_train_setfit_saves_and_predict_loads_it(tiny_model, files, frame, tmp_path):
    result = run(
        "train",
        files[".csv"],
        "--model",
        tiny_model,
        "--setfit",
        "--layers",
        "-2",
        "--pooling",
        "cls",
        "--n-iterations",
        "1",
        "--n-per-class",
        "4",
        "--random-state",
        "7",
        "--out",
        tmp_path / "sf",
        "-q",
    )
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "sf" / MANIFEST).read_text())
    assert meta["kind"] == "setfit" and meta["metadata"]["n_train"] == 16
    params = meta["params"]
    assert (params["layer"], params["pooling"], params["random_state"], params["n_iterations"]) == (
        -2,
        "cls",
        7,
        1,
    )
    assert params["progress"] is False  # the saved model stays quiet
    # The CLI's folder is the one format: SetFitClassifier.load reads it as well.
    from fewshot import SetFitClassifier

    clf = SetFitClassifier.load(tmp_path / "sf")
    result = run("predict", tmp_path / "sf", files[".csv"], "--out", tmp_path / "p.jsonl", "-q")
    assert result.exit_code == 0, result.output
    predictions = pd.read_json(tmp_path / "p.jsonl", lines=True)
    texts = frame["text"].tolist()
    assert predictions["label"].tolist() == clf.predict(texts).tolist()
    np.testing.assert_allclose(
        predictions.filter(like="proba_").to_numpy(), clf.predict_proba(texts), atol=1e-6
    )


def test_train_setfit_shows_progress_unless_quiet(tiny_model, files, tmp_path):
    result = run(
        "train",
        files[".csv"],
        "--model",
        tiny_model,
        "--setfit",
        "--n-per-class",
        "2",
        "--n-iterations",
        "1",
        "--out",
        tmp_path / "sf",
    )
    assert result.exit_code == 0, result.output
    assert "Fine-tuning" in result.stderr


def test_train_setfit_takes_one_layer(files, tmp_path):
    result = run("train", files[".csv"], "--setfit", "--layers", "all", "--out", tmp_path / "sf")
    assert result.exit_code == 2 and "give a single number" in result.stderr


def test_empty_files_and_empty_labels_fail_with_one_line(tiny_model, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "is empty" in one_line_error(run("embed", empty, "--out", tmp_path / "e.npy"), 1)
    header = tmp_path / "header.csv"
    header.write_text("text,label\n")
    assert "has no rows" in one_line_error(run("embed", header, "--out", tmp_path / "e.npy"), 1)
    gaps = tmp_path / "gaps.csv"
    pd.DataFrame({"text": ["a", "b", "c", "d"], "label": ["x", "", "y", " "]}).to_csv(
        gaps, index=False
    )
    error = one_line_error(run("train", gaps, "--model", tiny_model, "--out", tmp_path / "m"), 1)
    assert "2 rows of" in error and "with an empty label in column 'label' (rows 2, 4," in error
    nulls = tmp_path / "nulls.jsonl"
    nulls.write_text('{"text": "a", "label": 1}\n{"text": null, "label": 2}\n')
    error = one_line_error(
        run("embed", nulls, "--model", tiny_model, "--out", tmp_path / "e.npy"), 1
    )
    assert "1 row of" in error and "without text in column 'text' (row 2," in error
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    assert "cannot read" in one_line_error(run("embed", broken, "--out", tmp_path / "e.npy"), 1)


def test_unreadable_model_folders_fail_with_one_line(tiny_model, files, tmp_path):
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    error = one_line_error(run("predict", folder, files[".csv"], "--out", tmp_path / "p.csv"), 1)
    assert "is not a fewshot model folder saved by fewshot" in error
    (folder / MANIFEST).write_text(
        json.dumps({"format": "fewshot-model", "format_version": 2, "kind": "pipeline"})
    )
    (folder / "head.skops").write_bytes(b"garbage")
    error = one_line_error(run("predict", folder, files[".csv"], "--out", tmp_path / "p.csv"), 1)
    assert "cannot load the model" in error
    error = one_line_error(
        run(
            "embed",
            files[".csv"],
            "--model",
            str(tmp_path / "no-such-model"),
            "--out",
            tmp_path / "e.npy",
        ),
        1,
    )
    assert "Could not load model" in error
    assert "Could not load model" in one_line_error(
        run("embed", files[".csv"], "--model", str(folder), "--out", tmp_path / "e.npy"), 1
    )
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
    result = subprocess.run(
        [sys.executable, "-m", "fewshot", "--version"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "fewshot, version 0.1.0"


# -- one text rule for the CLI and the library (issue 10) -----------------------------


def test_empty_cells_and_numbers_are_refused_by_row_unless_skipped(tiny_model, tmp_path):
    gaps = tmp_path / "gaps.csv"
    gaps.write_text("text,label\ngood,1\n,0\nbad,0\n")
    error = one_line_error(
        run("embed", gaps, "--model", tiny_model, "--out", tmp_path / "e.npy"), 1
    )
    assert "without text in column 'text' (row 2," in error and "--skip-bad-rows" in error
    numbers = tmp_path / "numbers.jsonl"
    numbers.write_text('{"text": "fine"}\n{"text": 42}\n{"text": "ok"}\n')
    error = one_line_error(
        run("embed", numbers, "--model", tiny_model, "--out", tmp_path / "e.npy"), 1
    )
    assert "non-text value in column 'text' (row 2" in error and "int 42" in error
    result = run(
        "embed", numbers, "--model", tiny_model, "--out", tmp_path / "e.npy", "--skip-bad-rows"
    )
    assert result.exit_code == 0, result.output
    assert "Skipped 1 of 3 rows" in result.stderr
    embedded = np.load(tmp_path / "e.npy")  # rows still line up: the skipped one is NaN
    assert (
        embedded.shape[0] == 3
        and np.isnan(embedded[1]).all()
        and np.isfinite(embedded[[0, 2]]).all()
    )
    # The library says the same of the same cell.
    with pytest.raises(TypeError, match=r"X\[1\] is int 42"):
        DistilEmbedder(model=tiny_model).transform(["fine", 42, "ok"])


def test_predict_keeps_row_order_with_skipped_rows_and_plain_class_names(
    tiny_model, files, tmp_path
):
    assert (
        run(
            "train", files[".csv"], "--model", tiny_model, "--out", tmp_path / "clf", "-q"
        ).exit_code
        == 0
    )
    new = tmp_path / "new.jsonl"
    new.write_text('{"text": "late again"}\n{"text": null}\n{"text": "refund please"}\n')
    result = run("predict", tmp_path / "clf", new, "--out", tmp_path / "p.csv", "--skip-bad-rows")
    assert result.exit_code == 0, result.output
    predictions = pd.read_csv(tmp_path / "p.csv")
    assert len(predictions) == 3 and predictions["label"].isna().tolist() == [False, True, False]
    assert "np.str_" not in (tmp_path / "p.csv").read_text()
    # --model points predict at a moved copy of the same encoder.
    moved = tmp_path / "moved"
    import shutil

    shutil.copytree(tiny_model, moved)
    result = run(
        "predict",
        tmp_path / "clf",
        new,
        "--model",
        moved,
        "--skip-bad-rows",
        "--out",
        tmp_path / "q.csv",
        "-q",
    )
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "q.csv"), predictions)


def test_class_names_print_plainly(tiny_model, tmp_path):
    data = tmp_path / "few.csv"
    data.write_text("text,label\na,billing\nb,billing\nc,billing\nd,delivery\n")
    error = one_line_error(
        run("train", data, "--model", tiny_model, "--n-per-class", "2", "--out", tmp_path / "m"), 1
    )
    assert "class 'delivery' has only 1 rows" in error and "np.str_" not in error
