"""Edge students: a fitted fewshot classifier distilled into a model with no transformer.

:class:`StaticStudentClassifier` learns, from a fitted teacher (a ``SetFitClassifier``,
``HeadClassifier`` or ``Pipeline([DistilEmbedder, ..., classifier])``) and a pool of
unlabelled texts, a table of one int8 vector per token of the teacher's tokenizer
(model2vec's distillation of the teacher's own body, then tuned on the pool to the
teacher's probabilities) and a scikit-learn head fitted on the teacher's soft labels.
It predicts with numpy and the tokenizer in Python, or as one ONNX file of a few MB
(:func:`export_student`) that :class:`~fewshot.runtime.OnnxClassifier` and
``fewshot serve`` run. :func:`distill` fits one in a call. See ``docs/distill.md``.
"""

from ._onnx import export_student, write_static_encoder
from ._student import MIN_POOL, StaticStudentClassifier

__all__ = [
    "MIN_POOL",
    "StaticStudentClassifier",
    "distill",
    "export_student",
    "write_static_encoder",
]


def distill(teacher, pool, y=None, **params) -> StaticStudentClassifier:
    """A :class:`StaticStudentClassifier` of ``teacher``, fitted on ``pool``.

    Parameters
    ----------
    teacher : fitted fewshot classifier
        The classifier to distil (only read).
    pool : sequence of str
        Texts of the task, unlabelled (at least :data:`MIN_POOL`).
    y : array-like, optional
        Labels mixed into the pool (None for unlabelled texts); see
        :meth:`StaticStudentClassifier.fit`.
    **params
        Other parameters of :class:`StaticStudentClassifier` (``pca_dims``,
        ``epochs``, ``random_state``, ...).

    Returns
    -------
    StaticStudentClassifier
        Fitted.
    """
    return StaticStudentClassifier(teacher=teacher, **params).fit(pool, y)
