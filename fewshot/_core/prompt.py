"""Input templates: the text a model sees is the caller's text inside a ``prompt``.

A prompt is either a template with exactly one ``{text}`` field (``"Review: {text}"``,
``"{text} [END]"``) or, without that field, a prefix (``"query: "`` becomes
``"query: " + text``). Braces that are not the field are written ``{{`` and ``}}`` in
both forms, as in :meth:`str.format`. Imports the standard library only, so the
torch-free :mod:`fewshot.runtime` applies prompts exactly as the encoding path does.
"""

from __future__ import annotations

import string

__all__ = ["apply_prompt", "escape_prefix", "prompt_parts"]


def prompt_parts(prompt: str) -> tuple[str, str]:
    """The literal text before and after ``{text}`` (braces unescaped), or a clear error.

    Examples
    --------
    >>> prompt_parts("Review: {text}")
    ('Review: ', '')
    >>> prompt_parts("query: ")
    ('query: ', '')
    >>> prompt_parts("{{label}} {text} .")
    ('{label} ', ' .')
    """
    if not isinstance(prompt, str):
        raise TypeError(
            f"prompt must be a str (a template with one {{text}} field, or a prefix) or "
            f"None, got {type(prompt).__name__}."
        )
    try:
        pieces = list(string.Formatter().parse(prompt))
    except ValueError as exc:
        raise ValueError(
            f"prompt={prompt!r} is not a valid template ({exc}); write literal braces as "
            "'{{' and '}}', and the text as '{text}'."
        ) from None
    fields = [(name, spec, conversion) for _, name, spec, conversion in pieces if name is not None]
    wrong = [name for name, _, _ in fields if name != "text"]
    if wrong:
        raise ValueError(
            f"prompt={prompt!r} has the field {{{wrong[0]}}}; a template has exactly one "
            "field, {text}. Write literal braces as '{{' and '}}'."
        )
    if len(fields) > 1:
        raise ValueError(
            f"prompt={prompt!r} has {{text}} {len(fields)} times; a template has it exactly once."
        )
    if fields and (fields[0][1] or fields[0][2]):
        raise ValueError(
            f"prompt={prompt!r} formats the text ({{text!...}} or {{text:...}}); write the "
            "field as plain '{text}'."
        )
    before, after, seen = [], [], False
    for literal, name, _, _ in pieces:
        (after if seen else before).append(literal)
        seen = seen or name is not None
    return "".join(before), "".join(after)


def apply_prompt(prompt: str | None, texts: list[str]) -> list[str]:
    """``texts`` as the model sees them: each inside ``prompt`` (unchanged for None).

    Examples
    --------
    >>> apply_prompt("Review: {text}", ["great", "awful"])
    ['Review: great', 'Review: awful']
    >>> apply_prompt("query: ", ["how late?"])
    ['query: how late?']
    """
    if not prompt:
        return list(texts)
    before, after = prompt_parts(prompt)
    return [before + text + after for text in texts]


def escape_prefix(prefix: str) -> str:
    """A literal prefix (a sentence-transformers prompt) written as a fewshot prompt.

    Examples
    --------
    >>> escape_prefix("{query}: ")
    '{{query}}: '
    """
    return prefix.replace("{", "{{").replace("}", "}}")
