"""Validators of user options shared by every stage (messages: expected / received / fix).

One helper per kind of option, so that every stage words the same mistake the same way:

- :func:`check_int` / :func:`check_pos_int`: counts and sizes (``pairs``, ``workers``, ``batch_size``);
- :func:`check_number`: real numbers in an interval (timeouts, fractions, coverage levels).

An error names the parameter (marked, :func:`wassembed.errors.param`: the command line names its flag
instead), and carries it: ``error.param``.

Examples
--------
>>> check_pos_int("workers", 4)
4
>>> try:
...     check_pos_int("workers", 0, example=2)
... except InputError as e:
...     print(e.param, "|", e)
workers | bad workers: expected a positive number (an integer >= 1), received 0; fix: pass e.g. workers=2
>>> check_number("timeout", 2, low=0, low_open=True)
2.0
"""

from __future__ import annotations

import math
import numbers

from .errors import InputError, explain, param

__all__ = ["check_int", "check_number", "check_pos_int"]


def _name(name: str) -> str:
    """A Python parameter, marked; a command-line flag (``--pairs``, the command line's own checks) as it is."""
    return name if name.startswith("-") else param(name)


def _example(name: str, value) -> str:
    return f"{name} {value}" if name.startswith("-") else param(name, value)


def check_int(name: str, value, *, minimum: int = 1, example: int | None = None, fix: str | None = None) -> int:
    """Validate an integer option ``>= minimum`` (bools, floats and strings are refused); returns an int.

    Parameters
    ----------
    name : str
        The Python parameter (``"batch_size"``); a command-line flag (``"--pairs"``) in the command line's own
        checks.
    value : object
        What was received.
    minimum : int
        Smallest allowed value.
    example : int, optional
        A good value to suggest in the fix (default: ``minimum``).
    fix : str, optional
        The whole fix, when a suggested value alone does not say it.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        expected = "a positive number (an integer >= 1)" if minimum == 1 else f"an integer >= {minimum}"
        raise InputError(explain(f"bad {_name(name)}", expected=expected, received=repr(value),
                                 fix=fix or f"pass e.g. {_example(name, minimum if example is None else example)}"))
    return int(value)


def check_pos_int(name: str, value, *, example: int | None = None, fix: str | None = None) -> int:
    """Validate a positive int option (see :func:`check_int`)."""
    return check_int(name, value, minimum=1, example=example, fix=fix)


def check_number(name: str, value, *, low: float | None = None, high: float | None = None, low_open: bool = False,
                 high_open: bool = False, example: float | None = None, fix: str | None = None) -> float:
    """Validate a finite real number in an interval (``low``/``high`` of None: unbounded); returns a float.

    Examples
    --------
    >>> check_number("level", 0.9, low=0, high=1, low_open=True, high_open=True)
    0.9
    >>> check_number("level", 1, low=0, high=1, low_open=True, high_open=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    wassembed.errors.InputError: bad level: expected a number strictly between 0 and 1, received 1; fix: ...
    """
    ok = (not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
          and (low is None or (value > low if low_open else value >= low))
          and (high is None or (value < high if high_open else value <= high)))
    if not ok:
        if low is not None and high is not None and low_open and high_open:
            expected = f"a number strictly between {low:g} and {high:g}"
        elif low is not None and high is not None:
            expected = f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        elif low is not None:
            expected = f"a finite number {'>' if low_open else '>='} {low:g}"
        elif high is not None:
            expected = f"a finite number {'<' if high_open else '<='} {high:g}"
        else:
            expected = "a finite number"
        if example is None:
            example = (low + high) / 2 if low is not None and high is not None else \
                (low + 1 if low is not None else (high - 1 if high is not None else 1))
        raise InputError(explain(f"bad {_name(name)}", expected=expected, received=repr(value),
                                 fix=fix or f"pass e.g. {_example(name, f'{example:g}')}"))
    return float(value)
