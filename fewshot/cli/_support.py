"""What every ``fewshot`` command shares: one-line errors, notes, text columns, options."""

from __future__ import annotations

import functools

import click

from .._core.choices import DEFAULT_MODEL, POOLINGS
from .._core.errors import ModelNotFoundError, first_line
from ._tables import TableInputError, atomic_file, read_texts

__all__ = [
    "INPUT",
    "LAYERS",
    "CommandError",
    "InputError",
    "first_line",
    "model_option",
    "names",
    "note",
    "pooling_option",
    "prompt_option",
    "quiet_option",
    "reported",
    "save_figure",
    "skip_option",
    "text_col_option",
    "texts_of",
    "trust_options",
]


class CommandError(click.ClickException):
    """A failure reported as one ``Error: ...`` line, exit code 1."""

    exit_code = 1


class InputError(CommandError):
    """The user pointed at something that is not there (file, column): exit code 2."""

    exit_code = 2


def reported(command):
    """Turn the errors a user can cause into one-line messages instead of tracebacks."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except click.ClickException:
            raise
        except TableInputError as exc:
            raise InputError(first_line(exc)) from exc
        except (ModelNotFoundError, ValueError, TypeError, OSError, ImportError) as exc:
            raise CommandError(first_line(exc)) from exc

    return wrapper


def note(quiet: bool, message: str) -> None:
    if not quiet:
        click.echo(message, err=True)


def texts_of(frame, column, path, skip_bad, quiet):
    texts, keep = read_texts(frame, column, path, skip_bad=skip_bad)
    if len(keep) < len(frame):
        note(
            quiet,
            f"Skipped {len(frame) - len(keep)} of {len(frame)} rows of '{path}' "
            f"with no text in column '{column}'.",
        )
    if not texts:
        raise CommandError(f"no row of '{path}' has text in column '{column}'.")
    return texts, keep


# -- option types ---------------------------------------------------------------------


class LayersType(click.ParamType):
    """``all``, one layer (``4``, ``-1``) or a comma-separated list (``2,4,6``)."""

    name = "LAYERS"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, list, tuple)):
            return value
        text = str(value).strip().lower()
        if text == "all":
            return "all"
        try:
            numbers = [int(part) for part in text.split(",")]
        except ValueError:
            self.fail(
                f"{value!r} is not 'all', a layer number or a list such as 2,4,6.", param, ctx
            )
        return numbers[0] if len(numbers) == 1 else numbers


LAYERS = LayersType()


def names(value, choices, option):
    names = [part.strip() for part in value.split(",") if part.strip()]
    for name in names:
        if name not in choices:
            raise click.BadParameter(
                f"{name!r} is not one of {', '.join(choices)}.", param_hint=option
            )
    return tuple(names)


def model_option(command):
    return click.option(
        "--model",
        default=DEFAULT_MODEL,
        show_default=True,
        help="Hugging Face model id or local model folder.",
    )(command)


pooling_option = click.option(
    "--pooling",
    type=click.Choice(POOLINGS),
    default=None,
    help="[default: the model's own if it is a sentence-transformers folder, else mean]",
)


def _check_prompt(ctx, param, value):
    """A bad template is a usage error (exit code 2), caught before any model loads."""
    from .._core.prompt import prompt_parts

    if value is not None:
        try:
            prompt_parts(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    return value


prompt_option = click.option(
    "--prompt",
    default=None,
    callback=_check_prompt,
    help="Input template such as 'Review: {text}' (one {text} field; other braces as "
    "{{ }}) or a prefix such as 'query: ', applied to every text [default: the "
    "folder's default_prompt_name prompt if it is a sentence-transformers model, else "
    "none; '' for none].",
)


def quiet_option(command):
    return click.option("--quiet", "-q", is_flag=True, help="No progress bars or notes.")(command)


def text_col_option(command):
    return click.option(
        "--text-col", default="text", show_default=True, help="Column holding the texts."
    )(command)


INPUT = click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))


def skip_option(command):
    return click.option(
        "--skip-bad-rows",
        is_flag=True,
        help="Skip rows whose text is missing or not text (default: refuse, naming them).",
    )(command)


def trust_options(command):
    """``--trust-remote-code`` and ``--trust-type``: what a folder may do, said at the call."""
    command = click.option(
        "--trust-type",
        "trusted",
        multiple=True,
        metavar="MODULE.CLASS",
        help="Allow this type in the folder's head beyond fewshot's allow-list (repeat for "
        "several). Only for a head you wrote yourself: the type is imported when loading.",
    )(command)
    return click.option(
        "--trust-remote-code",
        is_flag=True,
        help="Allow a folder saved with trust_remote_code=True (runs its model code).",
    )(command)


def save_figure(figure, path, dpi):
    import matplotlib.pyplot as plt

    try:
        with atomic_file(path) as temporary:
            figure.savefig(temporary, dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(figure)
