"""Exceptions raised by wassembed.

Every error raised for bad user input says what was expected, what was received and how to fix it
(see :func:`explain`). All exceptions derive from :class:`WassembedError`, so callers can catch one type.
"""

from __future__ import annotations

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
    "explain",
]


class WassembedError(Exception):
    """Base class of every error raised by wassembed."""


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
