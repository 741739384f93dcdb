"""Exceptions raised by wassembed.

Every error raised for bad user input says what was expected, what was received and how to fix it
(see :func:`explain`). All exceptions derive from :class:`WassembedError`, so callers can catch one type.

Messages name the Python API: a parameter, an argument or a call is written by :func:`param`, which marks it.
``str(error)`` reads as Python callers write it (``bad n_pairs: ...; fix: pass e.g. n_pairs=2``); the error
(or warning) keeps the names it marked (:attr:`WassembedError.params`), and :meth:`WassembedError.render`
writes them otherwise: the command line writes each as its own flag or file (``bad --pairs: ...; fix: pass
e.g. --pairs 2``), from its Click options, without parsing the text.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = [
    "WassembedError",
    "InputError",
    "SolverError",
    "CacheError",
    "CacheMismatchError",
    "CorruptShardError",
    "ModelFileError",
    "TrainingError",
    "ClusterError",
    "MissingDependencyError",
    "WassembedWarning",
    "explain",
    "param",
]

#: the two characters around a name marked by :func:`param` inside a message (ASCII STX and ETX, which no
#: message holds otherwise); ``str()`` of an error or a warning never shows them
_OPEN, _CLOSE = "\x02", "\x03"

#: how a message writes one marked name: ``rename(name, value)`` (``value``: the text after ``=``, or None)
Rename = Callable[[str, "str | None"], str]


def param(name: str, value: object = None) -> str:
    """A name of the Python API in a message: ``name``, or the setting ``name=value`` when ``value`` is given.

    ``name`` is a parameter (``"n_pairs"``), an argument (``"X"``) or a call (``"cdist(X, Y)"``). The text
    reads ``name`` (``name=value``) once the message is an error's or a warning's; the command line writes the
    flag or file it maps ``name`` to instead (:meth:`WassembedError.render`). ``name`` may be marked already.

    Examples
    --------
    >>> str(InputError(explain(f"bad {param('n_pairs')}", fix=f"pass e.g. {param('n_pairs', 2)}")))
    'bad n_pairs; fix: pass e.g. n_pairs=2'
    """
    if name.startswith(_OPEN) and name.endswith(_CLOSE):  # marked already
        name = name[1:-1]
    return f"{_OPEN}{name if value is None else f'{name}={value}'}{_CLOSE}"


def render(message: str, rename: Rename | None = None) -> str:
    """``message`` with each name marked by :func:`param` written by ``rename(name, value)`` (None: as marked).

    Examples
    --------
    >>> msg = f"bad {param('workers')}: received 0; fix: pass e.g. {param('workers', 2)}"
    >>> render(msg)
    'bad workers: received 0; fix: pass e.g. workers=2'
    >>> render(msg, lambda name, value: f"--{name}" + (f" {value}" if value is not None else ""))
    'bad --workers: received 0; fix: pass e.g. --workers 2'
    """
    head, *parts = str(message).split(_OPEN)
    out = [head]
    for part in parts:
        ref, _, rest = part.partition(_CLOSE)
        name, eq, value = ref.partition("=")
        out += [ref if rename is None else rename(name, value if eq else None), rest]
    return "".join(out)


def marked(message: str) -> tuple[str, ...]:
    """The names marked by :func:`param` in ``message``, in order (each once)."""
    names = (part.partition(_CLOSE)[0].partition("=")[0] for part in str(message).split(_OPEN)[1:])
    return tuple(dict.fromkeys(names))


class _Named:
    """Keeps the message as written (``template``, with its marked names) and reads as Python's words."""

    def __init__(self, message: object = "", *args) -> None:
        self.template = str(message)
        super().__init__(render(self.template), *args)

    def __reduce__(self):
        return type(self), (self.template, *self.args[1:]), self.__dict__

    @property
    def params(self) -> tuple[str, ...]:
        """The names of the Python API the message names (marked by :func:`param`), in order."""
        return marked(self.template)

    @property
    def param(self) -> str | None:
        """The first name the message names (the parameter it is about, for a bad value), or None."""
        return next(iter(self.params), None)

    def render(self, rename: Rename) -> str:
        """The message with each marked name written by ``rename(name, value)`` (see :func:`render`)."""
        return render(self.template, rename)


class WassembedError(_Named, Exception):
    """Base class of every error raised by wassembed.

    Attributes
    ----------
    params : tuple of str
        The Python names (parameters, arguments, calls) its message names, in order; ``param``: the first.
    """


class WassembedWarning(_Named, UserWarning):
    """Base class of every warning of wassembed (its messages name parameters as its errors do)."""


class InputError(WassembedError, ValueError):
    """A user-supplied array, file, option or range is invalid."""


class SolverError(WassembedError, RuntimeError):
    """An exact optimal-transport solve did not reach optimality (never cached)."""


class CacheError(WassembedError):
    """A distance cache cannot be used as asked."""


class CacheMismatchError(CacheError, InputError):
    """A cache was built from other data or other settings than those given."""


class CorruptShardError(CacheError):
    """A cache shard failed its checksum or could not be parsed."""


class ModelFileError(WassembedError):
    """A model file is missing, truncated, tampered with or incompatible."""


class ClusterError(WassembedError, RuntimeError):
    """A Dask cluster cannot be reached or used (no workers, lost connection, mismatched versions)."""


class TrainingError(WassembedError, RuntimeError):
    """Training cannot continue (for example the loss became NaN)."""


class MissingDependencyError(WassembedError, ImportError):
    """An optional dependency (torch, matplotlib, dask) is needed and not installed; says what to install."""


def explain(problem: str, *, expected: str | None = None, received: str | None = None,
            fix: str | None = None) -> str:
    """Format a one-line error message: ``problem: expected ..., received ...; fix: ...``.

    Examples
    --------
    >>> explain("bad weights", expected="nonnegative values", received="-1.0 at row 3",
    ...         fix="clip or drop the row")
    'bad weights: expected nonnegative values, received -1.0 at row 3; fix: clip or drop the row'
    """
    detail = []
    if expected is not None:
        detail.append(f"expected {expected}")
    if received is not None:
        detail.append(f"received {received}")
    msg = problem + (": " + ", ".join(detail) if detail else "")
    if fix is not None:
        msg += f"; fix: {fix}"
    return msg
