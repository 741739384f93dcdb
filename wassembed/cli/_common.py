"""Shared pieces of the command line: the error-to-exit-code policy, the learning-stack check, JSON output."""

from __future__ import annotations

import functools
import json
import re
import sys
import warnings
from collections.abc import Callable, Mapping
from typing import TypeVar

import click

from .._deps import check_learning_stack
from .._validation import check_pos_int
from ..errors import InputError, WassembedError

__all__ = ["cli_words", "echo_json", "handle_errors", "needs_learning_stack"]

F = TypeVar("F", bound=Callable)
C = TypeVar("C", bound=click.Command)


def handle_errors(fn: F | None = None, *, words: Mapping[str, str] | None = None):
    """Turn wassembed errors into one-line messages and exit codes (2 for bad input, 1 otherwise).

    The library words its messages (errors and warnings) for Python callers (``val_fraction``,
    ``cdist(X, Y)``, ``X``); on the command line each message is reworded with :func:`cli_words` before it
    is printed, so that it names the command's flags and files instead:

    - the command's own options, found on the running Click command: a parameter name with an underscore
      becomes its flag everywhere (``val_fraction`` → ``--val-fraction``), any other one where it is
      written as a parameter (``workers=2`` → ``--workers 2``, ``bad workers`` → ``bad --workers``); an
      on/off flag where it is written set (``resume=True`` → ``--resume``);
    - ``words``: what this command calls the API's other words (``{"cdist(X, Y)": "--matrix",
      "X": "{a}"}``); ``{name}`` in a value is the value the command received for its parameter ``name``
      (the file name the user typed).

    Warnings of wassembed raised while the command runs are printed the same way, as one line
    (``warning: ...``) on stderr. Use as ``@handle_errors`` or ``@handle_errors(words={...})`` under
    ``@click.command``, or call ``handle_errors(fn)(...)`` inside a command.
    """
    if fn is None:
        return lambda f: handle_errors(f, words=words)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        reword = functools.partial(_reword, _with_values(words or {}, kwargs))
        with warnings.catch_warnings():
            warnings.showwarning = functools.partial(_show_warning, reword, warnings.showwarning)
            try:
                return fn(*args, **kwargs)
            except WassembedError as exc:
                click.echo(f"Error: {reword(str(exc))}", err=True)
                sys.exit(2 if isinstance(exc, InputError) else 1)
            except KeyboardInterrupt:
                click.echo("Interrupted: finished shards are kept; rerun the same command to resume.", err=True)
                sys.exit(130)

    return wrapper  # type: ignore[return-value]


def _reword(words: Mapping[str, str], message: str) -> str:
    return cli_words(message, {**_command_switches(), **words}, _command_flags())


def _show_warning(reword, show, message, category, filename, lineno, file=None, line=None) -> None:
    """Print a wassembed warning as one reworded line (``warning: ...``) on stderr; others as Python does."""
    if category.__module__.split(".")[0] == "wassembed":
        click.echo(f"warning: {reword(str(message))}", err=True)
    else:
        show(message, category, filename, lineno, file, line)


#: words that introduce a parameter by name in the library's messages ("bad workers", "raise val_fraction")
_LEAD_INS = ("bad", "setting", "valid", "raise", "lower")


def cli_words(message: str, words: Mapping[str, str], flags: Mapping[str, str] | None = None) -> str:
    """Reword a message of the Python API for the command line.

    ``words`` maps whole words of the message to what the command calls them (longest first, in one pass, so
    a replacement is never replaced again; a key ``"name="`` only rewrites ``name=value``). ``flags`` maps
    Python parameter names to flags: names with an underscore are replaced everywhere, others only where
    the message writes them as a parameter (``name=value``, or after "bad", "setting", "valid", "raise",
    "lower").

    Examples
    --------
    >>> cli_words("fix: use cdist(X, Y) for all pairs", {"cdist(X, Y)": "--matrix", "X": "a.npy"})
    'fix: use --matrix for all pairs'
    >>> cli_words("X has the wrong image size", {"X": "a.npy"})
    'a.npy has the wrong image size'
    >>> cli_words("bad workers: received 0; fix: pass e.g. workers=2 or raise val_fraction",
    ...           {}, {"workers": "--workers", "val_fraction": "--val-fraction"})
    'bad --workers: received 0; fix: pass e.g. --workers 2 or raise --val-fraction'
    >>> cli_words("bad n_pairs: received 0; fix: pass e.g. n_pairs=2", {"n_pairs": "--pairs"})
    'bad --pairs: received 0; fix: pass e.g. --pairs 2'
    """
    flags = flags or {}
    named = {**flags, **{k.rstrip("="): v for k, v in words.items() if k.rstrip("=").isidentifier()
                         and v.startswith("-")}}
    if named:  # `name=value` -> `--flag value` (`name=` alone -> `--flag`)
        assign = re.compile(r"(?<![\w./\\-])(" + "|".join(map(re.escape, named)) + r")=(\S?)")
        message = assign.sub(lambda m: named[m.group(1)] + (" " + m.group(2) if m.group(2) else ""), message)
    table = {k: v for k, v in words.items() if not k.endswith("=")}
    for name, flag in flags.items():
        if "_" in name:
            table.setdefault(name, flag)
        else:
            table.update({f"{lead} {name}": f"{lead} {flag}" for lead in _LEAD_INS})
    if not table:
        return message
    keys = sorted(table, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w./\\-])(?:" + "|".join(map(re.escape, keys)) + r")(?![\w/\\-])(?!\.\w)")
    return pattern.sub(lambda m: table[m.group(0)], message)


def _with_values(words: Mapping[str, str], values: Mapping) -> dict[str, str]:
    """``words`` with ``{name}`` replaced by ``values[name]`` (the command's arguments)."""
    fill = lambda m: str(values[m.group(1)]) if values.get(m.group(1)) is not None else m.group(0)
    return {k: re.sub(r"\{(\w+)\}", fill, v) for k, v in words.items()}


def _command_flags() -> dict[str, str]:
    """Python name -> flag of each option of the running Click command (empty outside a command)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return {}
    flags = {}
    for param in ctx.command.params:
        if isinstance(param, click.Option) and param.name and not param.is_flag:
            flags[param.name] = max(param.opts, key=len)
    return flags


def _command_switches() -> dict[str, str]:
    """``name=True`` -> flag for each on/off flag of the running Click command (``resume=True`` -> ``--resume``)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return {}
    return {f"{p.name}=True": max(p.opts, key=len) for p in ctx.command.params
            if isinstance(p, click.Option) and p.name and p.is_bool_flag and not p.secondary_opts}


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
