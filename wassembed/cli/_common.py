"""Shared pieces of the command line: the error-to-exit-code policy, the learning-stack check, JSON output."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import TypeVar

import click

from .._deps import check_learning_stack
from .._validation import check_pos_int
from ..errors import InputError, WassembedError

__all__ = ["echo_json", "handle_errors", "needs_learning_stack"]

F = TypeVar("F", bound=Callable)
C = TypeVar("C", bound=click.Command)


def handle_errors(fn: F) -> F:
    """Turn wassembed errors into one-line messages and exit codes (2 for bad input, 1 otherwise)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InputError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)
        except WassembedError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("Interrupted: finished shards are kept; rerun the same command to resume.", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


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
