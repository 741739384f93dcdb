"""Shared pieces of the command line: the error-to-exit-code policy, the learning-stack check, JSON output."""

from __future__ import annotations

import functools
import json
import sys
import warnings
from collections.abc import Callable, Mapping
from typing import TypeVar

import click

from .._deps import check_learning_stack
from .._validation import check_pos_int
from ..errors import InputError, WassembedError, WassembedWarning

__all__ = ["cli_name", "echo_json", "handle_errors", "needs_learning_stack"]

F = TypeVar("F", bound=Callable)
C = TypeVar("C", bound=click.Command)


def handle_errors(fn: F | None = None, *, words: Mapping[str, str] | None = None):
    """Turn wassembed errors into one-line messages and exit codes (2 for bad input, 1 otherwise).

    The library's messages name the Python API (``val_fraction``, ``cdist(X, Y)``, ``X``), each name marked
    (:func:`wassembed.errors.param`); the command line writes each as the command calls it
    (:meth:`~wassembed.errors.WassembedError.render`, no parsing of the text), by :func:`cli_name`:

    - ``words``: what this command calls names of the API (``{"n_pairs": "--pairs", "cdist(X, Y)": "--matrix",
      "warn_ood=False": "--no-ood-warning", "X": "{a}"}``); ``{name}`` in a value is the value the command
      received for its parameter ``name`` (the file name the user typed);
    - else the command's own option of that Python name, found on the running Click command
      (``val_fraction`` → ``--val-fraction``, ``workers=2`` → ``--workers 2``, an on/off flag ``resume=True``
      → ``--resume``, ``lot=False`` → ``--no-lot``);
    - any other name as Python writes it.

    Warnings of wassembed raised while the command runs are printed the same way, as one line
    (``warning: ...``) on stderr. Use as ``@handle_errors`` or ``@handle_errors(words={...})`` under
    ``@click.command``, or call ``handle_errors(fn)(...)`` inside a command.
    """
    if fn is None:
        return lambda f: handle_errors(f, words=words)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        rename = functools.partial(cli_name, _with_values(words or {}, kwargs), _command_options())
        with warnings.catch_warnings():
            warnings.showwarning = functools.partial(_show_warning, rename, warnings.showwarning)
            try:
                return fn(*args, **kwargs)
            except WassembedError as exc:
                click.echo(f"Error: {exc.render(rename)}", err=True)
                sys.exit(2 if isinstance(exc, InputError) else 1)
            except KeyboardInterrupt:
                click.echo("Interrupted: finished shards are kept; rerun the same command to resume.", err=True)
                sys.exit(130)

    return wrapper  # type: ignore[return-value]


def _show_warning(rename, show, message, category, filename, lineno, file=None, line=None) -> None:
    """Print a wassembed warning as one line (``warning: ...``) in the command's words on stderr; others as
    Python does."""
    if isinstance(message, WassembedWarning):
        click.echo(f"warning: {message.render(rename)}", err=True)
    elif category.__module__.split(".")[0] == "wassembed":
        click.echo(f"warning: {message}", err=True)
    else:
        show(message, category, filename, lineno, file, line)


def cli_name(words: Mapping[str, str], options: Mapping[str, click.Option], name: str, value: str | None) -> str:
    """How the command line writes the Python name ``name`` (the setting ``name=value`` when ``value`` is not
    None) of a library message: ``words[name=value]``, ``words[name]`` (then `` value``), the flag of the
    command's option ``name`` (``options``: Python name → option), or Python's own words.

    Examples
    --------
    >>> opts = {o.name: o for o in (click.Option(["--val-fraction"]), click.Option(["--resume"], is_flag=True),
    ...                             click.Option(["--lot/--no-lot"], default=True))}
    >>> words = {"n_pairs": "--pairs", "X": "a.npy", "warn_ood=False": "--no-ood-warning"}
    >>> [cli_name(words, opts, *nv) for nv in [("n_pairs", "2"), ("X", None), ("warn_ood", "False"),
    ...  ("val_fraction", None), ("resume", "True"), ("lot", "False"), ("patience", "0")]]
    ['--pairs 2', 'a.npy', '--no-ood-warning', '--val-fraction', '--resume', '--no-lot', 'patience=0']
    """
    setting = name if value is None else f"{name}={value}"
    if setting in words:
        return words[setting]
    if name in words:
        return words[name] if value is None else f"{words[name]} {value}"
    opt = options.get(name)
    if opt is None:
        return setting
    if not opt.is_flag:
        return max(opt.opts, key=len) + ("" if value is None else f" {value}")
    if value in (None, "True"):
        return max(opt.opts, key=len)
    if value == "False" and opt.secondary_opts:
        return max(opt.secondary_opts, key=len)
    return setting


class _Fill(dict):
    """Values of a command's parameters for ``str.format_map``: an unknown or unset one stays ``{name}``."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _with_values(words: Mapping[str, str], values: Mapping) -> dict[str, str]:
    """``words`` with ``{name}`` replaced by ``values[name]`` (the command's arguments)."""
    fill = _Fill({k: str(v) for k, v in values.items() if v is not None})
    return {k: v.format_map(fill) for k, v in words.items()}


def _command_options() -> dict[str, click.Option]:
    """Python name -> option of the running Click command (empty outside a command)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return {}
    return {p.name: p for p in ctx.command.params if isinstance(p, click.Option) and p.name}


def needs_learning_stack(cmd: C) -> C:
    """Make ``cmd`` (a command that trains or serves models) exit 1 with a one-line install hint
    (``pip install "wassembed[learn]"``) before it runs when torch or safetensors is missing.

    The check runs when the command is invoked, after its options are parsed: ``--help`` works without
    torch. Changes ``cmd`` in place (so it also works on a command already added to a group) and returns it.
    """
    if getattr(cmd, "_needs_learning_stack", False):
        return cmd
    run = cmd.invoke

    def invoke(ctx: click.Context):
        handle_errors(check_learning_stack)(f"`{ctx.command_path}`")
        return run(ctx)

    cmd.invoke = invoke  # type: ignore[method-assign]
    cmd._needs_learning_stack = True  # type: ignore[attr-defined]
    return cmd


def echo_json(obj) -> None:
    """Print one JSON object to stdout."""
    click.echo(json.dumps(obj, indent=2, default=_json_default))


def _json_default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _pairs_option(value: str | None) -> int | str | None:
    """``--pairs``: None, ``'all'`` or a positive int (``20_000`` and ``20,000`` read as 20000).

    A bad value raises :class:`~wassembed.errors.InputError` (exit code 2 under :func:`handle_errors`).
    """
    if value is None or value == "all":
        return value
    try:
        n: int | str = int(value.replace("_", "").replace(",", ""))
    except ValueError:
        n = value
    return check_pos_int("--pairs", n, example=20000)
