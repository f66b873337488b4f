"""Issue 31: a rewritten head.skops never runs code, on any path that reads a folder.

The attack that worked: one extra node in the head's state naming
``numpy.testing._private.utils.runstring`` (``exec``) with the loader
``ConstructorFromReduceNode`` ran code on ``SetFitClassifier.load``, ``fewshot predict``,
``fewshot export`` and the skops load helper, because every ``numpy.*`` type was trusted.
Each test here makes the injected code write a marker file and checks it never appears.
"""

import io
import json
import shutil
import warnings
import zipfile

import numpy as np
import pytest
import skops.io
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.calibration import CalibratedClassifierCV
from sklearn.decomposition import PCA
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import (
    LogisticRegression,
    LogisticRegressionCV,
    RidgeClassifier,
    SGDClassifier,
)
from sklearn.multiclass import OneVsRestClassifier
from sklearn.multioutput import ClassifierChain, MultiOutputClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, Normalizer, StandardScaler
from sklearn.svm import SVC, LinearSVC

from fewshot import DistilEmbedder, SetFitClassifier, load_model, save_model
from fewshot._folder.format import dump_head, load_head
from fewshot._folder.trust import (
    HEAD_TYPES,
    REDUCE_TYPES,
    UntrustedTypeError,
    audit_head,
    load_trusted_head,
)
from fewshot.cli import cli
from fewshot.distill import StaticStudentClassifier

X = ["love it", "great value", "works well", "broke fast", "awful", "hate it"]
Y = ["pos", "pos", "pos", "neg", "neg", "neg"]


# -- building the attack ------------------------------------------------------------------


def _node_of(value):
    """The schema node skops writes for ``value`` (ids moved out of the way of the head's)."""
    schema = json.loads(zipfile.ZipFile(io.BytesIO(skops.io.dumps(value))).read("schema.json"))
    schema.pop("protocol", None)
    schema.pop("_skops_version", None)

    def shift(node):
        if isinstance(node, dict):
            for key, item in node.items():
                if key == "__id__" and isinstance(item, int):
                    node[key] = item + 100_000
                else:
                    shift(item)
        elif isinstance(node, list):
            for item in node:
                shift(item)

    shift(schema)
    return schema


def _call_node(module, name, args, loader="ConstructorFromReduceNode"):
    """A node that makes skops call ``module.name(*args)`` when it builds the head."""
    return {
        "__module__": module,
        "__class__": name,
        "__loader__": loader,
        "content": _node_of(args),
    }


def _attacks(marker):
    code = f"open({str(marker)!r}, 'w').write('pwned')"
    return {
        "runstring": _call_node("numpy.testing._private.utils", "runstring", (code, {})),
        "eval": _call_node("builtins", "eval", (code,)),
        "exec": _call_node("builtins", "exec", (code,)),
        "os.system": _call_node("os", "system", (f"touch {marker}",)),
        "numpy.load": _call_node("numpy", "load", (str(marker) + ".npy", None, True)),
        "function": {"__module__": "os", "__class__": "system", "__loader__": "FunctionNode"},
        "reduce": _call_node("os", "system", (f"touch {marker}",), loader="ReduceNode"),
        "object": {
            "__module__": "subprocess",
            "__class__": "Popen",
            "__loader__": "ObjectNode",
            "content": _node_of({"args": ["touch", str(marker)]}),
        },
    }


def _tamper(file, node):
    """Rewrite a head.skops so the head's own state holds ``node`` under an extra key."""
    with zipfile.ZipFile(file) as source:
        members = {name: source.read(name) for name in source.namelist()}
    schema = json.loads(members["schema.json"])
    state = schema
    while state.get("__loader__") != "ObjectNode":  # the first estimator in the head
        state = state["content"]["content"][0] if "content" in state else state
    state["content"]["content"]["evil"] = node
    key_type = {"__class__": "str", "__module__": "builtins", "__loader__": "TypeNode"}
    state["content"]["key_types"]["content"].append(key_type)  # else skops skips the key
    members["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(file, "w") as target:
        for name, data in members.items():
            target.writestr(name, data)


@pytest.fixture(scope="module")
def setfit_folder(tiny_model, tmp_path_factory):
    clf = SetFitClassifier(model=tiny_model, n_iterations=1, random_state=0).fit(X, Y)
    return clf.save(tmp_path_factory.mktemp("trust") / "setfit")


@pytest.fixture(scope="module")
def pipeline_folder(tiny_model, tmp_path_factory):
    clf = Pipeline(
        [("embed", DistilEmbedder(model=tiny_model, layers=2)), ("lr", LogisticRegression())]
    ).fit(X, Y)
    return save_model(clf, tmp_path_factory.mktemp("trust") / "pipeline")


@pytest.fixture
def marker(tmp_path):
    return tmp_path / "code-ran"


def _tampered(folder, tmp_path, node):
    copy = tmp_path / f"tampered-{folder.name}"
    shutil.copytree(folder, copy)
    _tamper(copy / "head.skops", node)
    return copy


# -- the exact attack, on every path --------------------------------------------------------


def test_the_attack_as_filed_ran_exec_under_a_prefix_rule(setfit_folder, tmp_path, marker):
    """The node really is ``exec``: skops trusting it (as a prefix rule did) runs the code."""
    folder = _tampered(setfit_folder, tmp_path, _attacks(marker)["runstring"])
    untrusted = skops.io.get_untrusted_types(file=folder / "head.skops")
    assert "numpy.testing._private.utils.runstring" in untrusted
    assert all(t.startswith(("sklearn.", "numpy.")) for t in untrusted)  # the old rule's test
    skops.io.load(folder / "head.skops", trusted=untrusted)
    assert marker.exists()


@pytest.mark.parametrize("attack", sorted(_attacks("m")))
def test_load_model_and_setfit_load_refuse_every_attack(setfit_folder, tmp_path, marker, attack):
    folder = _tampered(setfit_folder, tmp_path, _attacks(marker)[attack])
    with pytest.raises(UntrustedTypeError, match="refused and nothing from it ran"):
        load_model(folder)
    with pytest.raises(UntrustedTypeError, match="trusted="):
        SetFitClassifier.load(folder)
    with pytest.raises(UntrustedTypeError):
        load_head(folder)  # the helper the loaders share
    assert not marker.exists()


def test_the_error_names_the_type_the_file_and_the_way_out(setfit_folder, tmp_path, marker):
    folder = _tampered(setfit_folder, tmp_path, _attacks(marker)["runstring"])
    with pytest.raises(UntrustedTypeError) as error:
        load_model(folder)
    message = str(error.value)
    assert "numpy.testing._private.utils.runstring" in message
    assert "a class called with stored arguments" in message
    assert "head.skops" in message and "trusted=[...]" in message and "--trust-type" in message


def test_a_pipeline_folder_refuses_the_attack(pipeline_folder, tmp_path, marker):
    folder = _tampered(pipeline_folder, tmp_path, _attacks(marker)["runstring"])
    with pytest.raises(UntrustedTypeError):
        load_model(folder)
    assert not marker.exists()


def test_an_adapter_folder_refuses_the_attack(tiny_model, tmp_path, marker):
    pytest.importorskip("peft")
    clf = SetFitClassifier(model=tiny_model, adapter="lora", n_iterations=1, random_state=0)
    folder = clf.fit(X, Y).save(tmp_path / "adapter")
    _tamper(folder / "head.skops", _attacks(marker)["runstring"])
    with pytest.raises(UntrustedTypeError):
        load_model(folder, model=tiny_model)
    with pytest.raises(UntrustedTypeError):
        SetFitClassifier.load(folder, model=tiny_model)
    assert not marker.exists()


@pytest.fixture(scope="module")
def student_folder(setfit_folder, tmp_path_factory):
    teacher = SetFitClassifier.load(setfit_folder)
    pool = [f"{a} and {b}, take {i}" for a in X for b in X for i in range(3)]  # 108 texts
    student = StaticStudentClassifier(teacher=teacher, pca_dims=8, random_state=0).fit(pool)
    return student.save(tmp_path_factory.mktemp("trust") / "student")


@pytest.mark.parametrize("attack", ["runstring", "os.system", "reduce", "function"])
def test_a_student_folder_refuses_the_attack(student_folder, tmp_path, marker, attack):
    """The edge student's folder keeps a head.skops too: the same check, on both readers."""
    folder = _tampered(student_folder, tmp_path, _attacks(marker)[attack])
    with pytest.raises(UntrustedTypeError, match="refused and nothing from it ran"):
        load_model(folder)
    with pytest.raises(UntrustedTypeError, match="trusted="):
        StaticStudentClassifier.load(folder)
    assert not marker.exists()


@pytest.mark.parametrize("command", ["predict", "export"])
def test_the_cli_refuses_the_attack(setfit_folder, tmp_path, marker, command):
    folder = _tampered(setfit_folder, tmp_path, _attacks(marker)["runstring"])
    texts = tmp_path / "texts.csv"
    texts.write_text("text\nlate again\n")
    if command == "predict":
        args = ["predict", str(folder), str(texts), "--out", str(tmp_path / "p.csv")]
    else:
        pytest.importorskip("onnxruntime")
        args = ["export", str(folder), str(tmp_path / "m.onnx"), "--quiet"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert "runstring" in result.output and "--trust-type" in result.output
    assert not marker.exists()
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "m.onnx").exists()


def test_info_reports_a_tampered_head_without_building_it(setfit_folder, tmp_path, marker):
    folder = _tampered(setfit_folder, tmp_path, _attacks(marker)["runstring"])
    result = CliRunner().invoke(cli, ["info", str(folder)])
    assert result.exit_code == 0, result.output
    assert "head_file: REFUSED" in result.output and "runstring" in result.output
    assert not marker.exists()
    clean = CliRunner().invoke(cli, ["info", str(setfit_folder)])
    assert "head_file: loads" in clean.output


def test_trusted_at_the_call_allows_a_custom_head_and_is_never_stored(tiny_model, tmp_path, marker):
    """A head the user wrote (an SVC) loads once named at the call; the folder stays closed."""
    clf = SetFitClassifier(model=tiny_model, head=SVC(probability=True), n_iterations=1)
    clf.fit(X * 3, Y * 3)
    with pytest.warns(UserWarning, match=r"sklearn\.svm\._classes\.SVC .*trusted="):
        folder = clf.save(tmp_path / "svc")
    with pytest.raises(UntrustedTypeError, match="SVC"):
        load_model(folder)
    loaded = load_model(folder, trusted=["sklearn.svm._classes.SVC"])
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), atol=1e-6)
    assert (
        SetFitClassifier.load(folder, trusted=[SVC]).predict(X).tolist() == clf.predict(X).tolist()
    )
    result = CliRunner().invoke(
        cli,
        ["predict", str(folder), _csv(tmp_path), "--out", str(tmp_path / "p.csv"),
         "--trust-type", "sklearn.svm._classes.SVC"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "SVC" not in (folder / "fewshot.json").read_text().split('"head"')[0]
    # Trusting one type does not open the door to another.
    _tamper(folder / "head.skops", _attacks(marker)["runstring"])
    with pytest.raises(UntrustedTypeError, match="runstring"):
        load_model(folder, trusted=["sklearn.svm._classes.SVC"])
    assert not marker.exists()


def _csv(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("text\nlove it\nawful\n")
    return str(path)


def test_trusted_takes_names_or_classes_only():
    with pytest.raises(TypeError, match="full type names"):
        audit_head(skops.io.dumps(LogisticRegression()), trusted=[3])


# -- every head fewshot writes or documents still loads ------------------------------------


def _heads():
    rng = np.random.RandomState(0)
    features = rng.randn(60, 6).astype(np.float32)
    y = np.array(["a", "b", "c"] * 20)
    multi = (rng.rand(60, 3) > 0.5).astype(int)
    frozen = FrozenEstimator(LogisticRegression().fit(features, y))
    return {
        "default": (LogisticRegression(max_iter=1000), y),
        "binary": (LogisticRegression(), (features[:, 0] > 0).astype(int)),
        "lr-cv": (LogisticRegressionCV(max_iter=300), y),
        "ridge": (RidgeClassifier(), y),
        "sgd": (SGDClassifier(loss="log_loss", random_state=0), y),
        "linear-svc": (LinearSVC(), y),
        "calibrated-sigmoid": (CalibratedClassifierCV(LinearSVC(), method="sigmoid"), y),
        "calibrated-isotonic": (CalibratedClassifierCV(LogisticRegression(), method="isotonic"), y),
        "calibrated-temperature": (CalibratedClassifierCV(frozen, method="temperature"), y),
        "one-vs-rest": (OneVsRestClassifier(LogisticRegression()), multi),
        "multi-output": (MultiOutputClassifier(LogisticRegression()), multi),
        "chain": (ClassifierChain(LogisticRegression(), random_state=0), multi),
        "pipeline": (
            make_pipeline(StandardScaler(), Normalizer(), PCA(4), LogisticRegression()),
            y,
        ),
        "mlp": (MLPClassifier(hidden_layer_sizes=(4,), max_iter=20, random_state=0), y),
    }, features


@pytest.mark.parametrize("name", sorted(_heads()[0]))
def test_every_documented_head_round_trips(name, tmp_path):
    heads, features = _heads()
    head, y = heads[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        head.fit(features, y)
        warnings.simplefilter("error", UserWarning)  # no "will need trusted=" warning
        dump_head(head, tmp_path / "head.skops")
    loaded = load_trusted_head(tmp_path / "head.skops")
    np.testing.assert_array_equal(loaded.predict(features), head.predict(features))


def test_a_function_in_a_head_is_refused_even_from_sklearn(tmp_path):
    head = make_pipeline(FunctionTransformer(np.log1p), LogisticRegression())
    head.fit(np.abs(np.random.RandomState(0).randn(20, 3)), [0, 1] * 10)
    with pytest.warns(UserWarning, match="numpy.log1p"):
        dump_head(head, tmp_path / "head.skops")
    with pytest.raises(UntrustedTypeError, match="FunctionTransformer"):
        load_trusted_head(tmp_path / "head.skops")


# -- fuzz: any node the list does not name is refused, and nothing runs -----------------------

_LOADERS = [
    "ObjectNode",
    "ConstructorFromReduceNode",
    "ReduceNode",
    "FunctionNode",
    "MethodNode",
    "TypeNode",
    "PartialNode",
    "OperatorFuncNode",
    "DictNode",
    "NdArrayNode",
    "JsonNode",
]
_NAMES = st.sampled_from(
    [
        ("numpy.testing._private.utils", "runstring"),
        ("builtins", "eval"),
        ("builtins", "exec"),
        ("builtins", "open"),
        ("os", "system"),
        ("numpy", "load"),
        ("numpy.lib.npyio", "load"),
        ("sklearn.utils", "_safe_indexing"),
        ("pickle", "loads"),
        ("shutil", "rmtree"),
    ]
) | st.tuples(
    st.from_regex(r"[a-z_][a-z0-9_]{0,8}(\.[a-z_][a-z0-9_]{0,8}){0,3}", fullmatch=True),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=_NAMES, loader=st.sampled_from(_LOADERS))
def test_fuzz_schema_nodes_are_refused_or_plain_data(name, loader, tmp_path_factory):
    module, cls = name
    folder = tmp_path_factory.mktemp("fuzz")
    marker = folder / "code-ran"
    head = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    file = folder / "head.skops"
    skops.io.dump(head, file)
    _tamper(file, _call_node(module, cls, (f"touch {marker}",), loader=loader))
    if f"{module}.{cls}" in HEAD_TYPES | REDUCE_TYPES:
        return  # a listed class: covered by the round trips above
    with pytest.raises(UntrustedTypeError):
        load_trusted_head(file)
    assert not marker.exists()


# -- exported ONNX files: read as data, run only standard ops and the tokenizer ---------------


@pytest.fixture(scope="module")
def onnx_file(setfit_folder, tmp_path_factory):
    pytest.importorskip("onnxruntime")
    from fewshot.export import to_onnx

    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    to_onnx(load_model(setfit_folder), path, verbose=False)
    return path


def _rewrite_onnx(source, target, change):
    onnx = pytest.importorskip("onnx")
    model = onnx.load(source)
    change(onnx, model)
    target.write_bytes(model.SerializeToString())  # onnx.save would follow external data
    return target


def _py_op(onnx, model):
    """A node of the extensions' PyOp (a Python callback) on the graph's first input."""
    node = onnx.helper.make_node(
        "PyOp", [model.graph.input[0].name], ["evil"], domain="ai.onnx.contrib"
    )
    model.graph.node.insert(0, node)


def _foreign_domain_in_a_subgraph(onnx, model):
    loop = next(n for n in model.graph.node if n.op_type == "Loop")
    body = loop.attribute[0].g
    body.node.append(onnx.helper.make_node("Anything", [], ["x"], domain="com.example.evil"))


def _external_data(onnx, model):
    tensor = model.graph.initializer[0]
    tensor.data_location = onnx.TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "../../../../etc/passwd"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (_py_op, "ai.onnx.contrib::PyOp"),
        (_foreign_domain_in_a_subgraph, "com.example.evil::Anything"),
        (_external_data, "external data"),
    ],
    ids=["pyop", "subgraph-domain", "external-data"],
)
def test_a_tampered_onnx_file_is_refused_on_every_path(onnx_file, tmp_path, change, named):
    from fewshot.runtime import OnnxClassifier, read_manifest
    from fewshot.runtime._audit import UntrustedGraphError
    from fewshot.serve import create_app

    bad = _rewrite_onnx(onnx_file, tmp_path / "bad.onnx", change)
    with pytest.raises(UntrustedGraphError, match=named):
        OnnxClassifier(bad)
    with pytest.raises(UntrustedGraphError):
        read_manifest(bad)
    with pytest.raises(UntrustedGraphError):
        create_app(bad)
    result = CliRunner().invoke(cli, ["info", str(bad)])
    assert result.exit_code == 1 and named in result.output


def test_a_clean_export_passes_and_reads_its_manifest_without_a_session(onnx_file):
    from fewshot.runtime import MANIFEST_KEY, OnnxClassifier, read_manifest
    from fewshot.runtime._audit import audit_onnx

    audit = audit_onnx(onnx_file.read_bytes())
    assert audit.refused == () and MANIFEST_KEY in audit.metadata
    assert read_manifest(onnx_file)["kind"] == "setfit"
    assert OnnxClassifier(onnx_file).predict(X).shape == (len(X),)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_are_an_error_never_a_crash(data):
    from fewshot.runtime._audit import audit_onnx

    try:
        audit_onnx(data)
    except ValueError:
        pass
