"""What a saved head may hold: an explicit allow-list, checked before skops builds anything.

A ``head.skops`` file is a zip whose ``schema.json`` names, for every object, a module,
a class and a *loader* (how skops rebuilds it). Some loaders only fill in data (dicts,
lists, arrays); others import a name and call it (``ConstructorFromReduceNode`` calls
``module.class(*args)``, ``FunctionNode`` and ``MethodNode`` hand back callables). A rule
by module prefix ("anything under ``numpy.``") lets a rewritten file name
``numpy.testing._private.utils.runstring`` -- ``exec`` -- and run code on load.

So every node of the schema is read here first, as data, and must be one of:

- plain data (dict, list, tuple, set, str, int, float, bool, bytes, slice, numpy arrays,
  numpy scalars and dtypes) through a data loader;
- a type object among those same plain types (``TypeNode``: ``dtype=np.float32``);
- one of the scikit-learn classes listed in :data:`HEAD_TYPES`, rebuilt from its
  attributes (``ObjectNode``) -- the heads fewshot writes and the documented head
  types with what they hold once fitted;
- one of the loss objects in :data:`REDUCE_TYPES` (``LossNode``, for ``SGDClassifier``).

Anything else -- a function, a method, a ``functools.partial``, a class called with
arguments, any type not listed -- is refused with its name, before skops reads the
file, unless the caller names it in ``trusted=`` at that call. Nothing in a folder can
extend the list. skops' own audit then runs too, with exactly the listed types trusted.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "HEAD_TYPES",
    "REDUCE_TYPES",
    "HeadAudit",
    "UntrustedTypeError",
    "audit_head",
    "check_trusted",
    "load_trusted_head",
]

# Plain data: what a fitted linear head's attributes are made of.
_NUMPY_SCALARS = tuple(
    f"numpy.{name}"
    for name in (
        "bool_ bool int8 int16 int32 int64 uint8 uint16 uint32 uint64 float16 float32 "
        "float64 longdouble complex64 complex128 str_ bytes_ intc uintc"
    ).split()
)
_DATA_TYPES = frozenset(
    {
        "builtins.dict",
        "builtins.list",
        "builtins.tuple",
        "builtins.set",
        "builtins.str",
        "builtins.int",
        "builtins.float",
        "builtins.bool",
        "builtins.bytes",
        "builtins.bytearray",
        "builtins.slice",
        "builtins.NoneType",
        "numpy.ndarray",
        "numpy.dtype",
        "numpy.random.mtrand.RandomState",
        *_NUMPY_SCALARS,
    }
)
# Types a TypeNode may name: importing them runs nothing.
_TYPE_OBJECTS = frozenset(
    {
        "builtins.str",
        "builtins.int",
        "builtins.float",
        "builtins.bool",
        "builtins.bytes",
        "builtins.list",
        "builtins.tuple",
        "builtins.dict",
        "builtins.set",
        *_NUMPY_SCALARS,
    }
)
# Loaders that only fill in data (no import of a stored name, no call).
_DATA_LOADERS = frozenset(
    {
        "DictNode",
        "ListNode",
        "TupleNode",
        "SetNode",
        "JsonNode",
        "NdArrayNode",
        "DTypeNode",
        "SliceNode",
        "BytesNode",
        "BytearrayNode",
        "RandomStateNode",
    }
)

#: The scikit-learn classes a head (or a pipeline's steps after the embedder) may be.
#: What fewshot writes (LogisticRegression; OneVsRest / MultiOutput / ClassifierChain for
#: multi-label y; Pipeline), the head types the docs show (linear classifiers, linear SVM,
#: calibration, scaling and PCA in a pipeline), and the objects they hold once fitted.
HEAD_TYPES = frozenset(
    {
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.linear_model._logistic.LogisticRegressionCV",
        "sklearn.linear_model._ridge.RidgeClassifier",
        "sklearn.linear_model._ridge.RidgeClassifierCV",
        "sklearn.linear_model._ridge.Ridge",
        "sklearn.linear_model._stochastic_gradient.SGDClassifier",
        "sklearn.linear_model._perceptron.Perceptron",
        "sklearn.svm._classes.LinearSVC",
        "sklearn.naive_bayes.GaussianNB",
        "sklearn.neighbors._nearest_centroid.NearestCentroid",
        "sklearn.discriminant_analysis.LinearDiscriminantAnalysis",
        "sklearn.neural_network._multilayer_perceptron.MLPClassifier",
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
        "sklearn.calibration.CalibratedClassifierCV",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.calibration._TemperatureScaling",
        "sklearn.isotonic.IsotonicRegression",
        "sklearn.frozen._frozen.FrozenEstimator",
        "sklearn.multiclass.OneVsRestClassifier",
        "sklearn.multioutput.MultiOutputClassifier",
        "sklearn.multioutput.ClassifierChain",
        "sklearn.pipeline.Pipeline",
        "sklearn.preprocessing._data.StandardScaler",
        "sklearn.preprocessing._data.MinMaxScaler",
        "sklearn.preprocessing._data.MaxAbsScaler",
        "sklearn.preprocessing._data.Normalizer",
        "sklearn.preprocessing._label.LabelBinarizer",
        "sklearn.preprocessing._label.LabelEncoder",
        "sklearn.decomposition._pca.PCA",
    }
)
#: Classes rebuilt by calling them with stored arguments (skops' LossNode): the loss
#: objects of SGDClassifier, which take numbers only.
REDUCE_TYPES = frozenset(
    {
        "sklearn._loss._loss.CyHalfBinomialLoss",
        "sklearn._loss._loss.CyHalfMultinomialLoss",
        "sklearn._loss._loss.CyHalfSquaredError",
        "sklearn._loss._loss.CyHingeLoss",
        "sklearn._loss._loss.CySquaredHinge",
        "sklearn._loss._loss.CyModifiedHuber",
        "sklearn._loss._loss.CyHuberLoss",
        "sklearn.linear_model._sgd_fast.Hinge",
        "sklearn.linear_model._sgd_fast.Log",
        "sklearn.linear_model._sgd_fast.ModifiedHuber",
        "sklearn.linear_model._sgd_fast.SquaredHinge",
    }
)
_REDUCE_LOADERS = frozenset({"LossNode", "ReduceNode"})
_CALLABLE_LOADERS = {
    "FunctionNode": "a function",
    "MethodNode": "a bound method",
    "PartialNode": "a functools.partial",
    "OperatorFuncNode": "an operator function",
    "ConstructorFromReduceNode": "a class called with stored arguments",
    "TypeNode": "a type object",
    "ReduceNode": "a class called with stored arguments",
    "LossNode": "a class called with stored arguments",
}


class UntrustedTypeError(ValueError):
    """A saved head names a type fewshot does not load without the caller's say-so."""


@dataclass(frozen=True)
class HeadAudit:
    """What a ``head.skops`` file names, read as data (nothing imported or built).

    Attributes
    ----------
    types : tuple of str
        Every ``module.class`` the schema names, sorted.
    refused : tuple of str
        ``"module.class (what it is)"`` for each node outside the allow-list and the
        caller's ``trusted``; empty when the head may be loaded.
    """

    types: tuple[str, ...]
    refused: tuple[str, ...]


def check_trusted(trusted) -> frozenset[str]:
    """The caller's ``trusted`` as a set of ``"module.Class"`` names, or a clear error."""
    if trusted is None:
        return frozenset()
    if isinstance(trusted, str):
        trusted = [trusted]
    names = []
    for item in trusted:
        if isinstance(item, type):
            item = f"{item.__module__}.{item.__qualname__}"
        if not isinstance(item, str) or "." not in item:
            raise TypeError(
                f"trusted takes full type names such as 'sklearn.svm._classes.SVC' (or the "
                f"classes themselves), got {item!r}."
            )
        names.append(item)
    return frozenset(names)


def audit_head(file, *, trusted=None) -> HeadAudit:
    """Read a skops file's schema as data and say which of its nodes would be refused.

    Parameters
    ----------
    file : path-like or bytes
        The ``head.skops`` file, or its bytes.
    trusted : iterable of str or type, optional
        Extra ``module.Class`` names the caller allows at this call.

    Returns
    -------
    HeadAudit
    """
    allowed = check_trusted(trusted)
    schema = _read_schema(file)
    types, refused = set(), []
    for module, name, loader in _nodes(schema):
        full = f"{module}.{name}"
        types.add(full)
        reason = _refusal(full, loader)
        if reason and full not in allowed:
            refused.append(f"{full} ({reason})")
    return HeadAudit(tuple(sorted(types)), tuple(dict.fromkeys(refused)))


def load_trusted_head(file, *, trusted=None, where: str | None = None):
    """Load a ``head.skops`` file if every node it names is allowed; else refuse it.

    Parameters
    ----------
    file : path-like
    trusted : iterable of str or type, optional
        Extra ``module.Class`` names the caller allows at this call (never stored).
    where : str, optional
        How to name the file in an error (defaults to its path).

    Raises
    ------
    UntrustedTypeError
        The file names a type outside :data:`HEAD_TYPES`, plain data and ``trusted``;
        nothing from it was imported or run.
    """
    import skops.io

    file = Path(file)
    where = where or repr(str(file))
    audit = audit_head(file, trusted=trusted)
    if audit.refused:
        raise _refused(where, audit.refused)
    # skops' own audit as a second lock: its untrusted types must all be ours or the caller's.
    try:
        untrusted = skops.io.get_untrusted_types(file=file)
    except Exception as exc:  # a malformed schema: skops raises many types
        raise ValueError(f"{where} is not a readable skops file ({exc}).") from exc
    extra = check_trusted(trusted)
    foreign = [f"{t} (not on the list)" for t in untrusted if t not in _ALLOWED | extra]
    if foreign:
        raise _refused(where, foreign)
    return skops.io.load(file, trusted=list(untrusted))


_ALLOWED = _DATA_TYPES | HEAD_TYPES | REDUCE_TYPES


def _refused(where: str, refused) -> UntrustedTypeError:
    return UntrustedTypeError(
        f"The head in {where} names {', '.join(dict.fromkeys(refused))}: a fewshot head "
        "holds scikit-learn estimators and numpy data only, so it is refused and nothing "
        "from it ran. If you wrote this head yourself and trust it, allow those types at "
        "this call: load_model(folder, trusted=[...]) (--trust-type on the command line)."
    )


def _refusal(full: str, loader: str) -> str | None:
    """Why a node is refused, or None if the allow-list admits it."""
    if loader in _DATA_LOADERS:
        return None if full in _DATA_TYPES else "data of a type not on the list"
    if loader == "CachedNode":  # a second reference to an object built earlier
        return None
    if loader == "TypeNode":
        return None if full in _TYPE_OBJECTS else _CALLABLE_LOADERS[loader]
    if loader == "ObjectNode":
        return None if full in HEAD_TYPES else "a class not on the list"
    if loader in _REDUCE_LOADERS:
        return None if full in REDUCE_TYPES else _CALLABLE_LOADERS[loader]
    return _CALLABLE_LOADERS.get(loader, f"loader {loader!r}")


def _read_schema(file):
    try:
        data = file if isinstance(file, bytes) else Path(file).read_bytes()
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return json.loads(archive.read("schema.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"the head file is not a readable skops file ({exc}).") from exc


def _nodes(value):
    """Every ``(module, class, loader)`` in a schema, nested nodes included."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "__loader__" in item:
                yield (
                    str(item.get("__module__")),
                    str(item.get("__class__")),
                    str(item.get("__loader__")),
                )
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
