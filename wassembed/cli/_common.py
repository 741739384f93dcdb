"""Shared pieces of the command line: the error-to-exit-code policy and JSON output."""

from __future__ import annotations

import functools
import json
import sys

import click

from ..errors import InputError, WassembedError


def handle_errors(fn):
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

    return wrapper


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


def _pairs_option(value: str | None):
    if value is None or value == "all":
        return value
    try:
        n = int(value.replace("_", "").replace(",", ""))
    except ValueError:
        raise click.BadParameter(f"expected a positive integer or 'all', received {value!r}") from None
    if n < 1:
        raise click.BadParameter(f"expected a positive integer or 'all', received {value!r}")
    return n


