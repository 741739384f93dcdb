"""Shards: the unit of results in a cache (pairs ``i < j`` and their values), their content keys and checksums.

A shard is an ``.npz`` with int64 ``i``, int64 ``j``, float64 ``value`` (W_p^p) and ``sha256``, a digest of
the three arrays (lengths included) that is checked on every read. Its file name is :func:`chunk_key`, a
hash of the pairs it holds, so that the same chunk of a plan always lands in the same file.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ..errors import CorruptShardError, InputError, explain

__all__ = ["PairTable", "chunk_key", "encode_shard", "read_shard_file"]


@dataclass(frozen=True)
class PairTable:
    """Exact values of unordered pairs: ``value[t] = W_p^p(x[i[t]], x[j[t]])`` with ``i[t] < j[t]``.

    Attributes
    ----------
    i, j : ndarray, shape (m,), int64
    value : ndarray, shape (m,), float64

    Examples
    --------
    >>> a = PairTable(np.array([0, 2]), np.array([1, 3]), np.array([0.5, 0.7]))
    >>> b = PairTable(np.array([0]), np.array([1]), np.array([0.5]))
    >>> t = PairTable.merge([a, b])
    >>> len(t), t.i.tolist(), t.j.tolist()
    (2, [0, 2], [1, 3])
    """

    i: np.ndarray
    j: np.ndarray
    value: np.ndarray

    def __len__(self) -> int:
        return int(self.i.shape[0])

    @classmethod
    def empty(cls) -> PairTable:
        """A table of no pairs (int64 / float64 arrays of length 0)."""
        e = np.empty(0, dtype=np.int64)
        return cls(e, e.copy(), np.empty(0, dtype=np.float64))

    @classmethod
    def merge(cls, tables: Sequence[PairTable]) -> PairTable:
        """All pairs of ``tables``, unique (the first value of a repeated pair is kept), sorted by ``(i, j)``.

        Examples
        --------
        >>> a = PairTable(np.array([2, 0]), np.array([3, 1]), np.array([5.0, 1.0]))
        >>> t = PairTable.merge([a, PairTable(np.array([0]), np.array([1]), np.array([1.0]))])
        >>> t.i.tolist(), t.j.tolist(), t.value.tolist()
        ([0, 2], [1, 3], [1.0, 5.0])
        """
        if not tables:
            return cls.empty()
        i, j, v = (np.concatenate([getattr(t, f) for t in tables]) for f in ("i", "j", "value"))
        order = np.lexsort((j, i))
        i, j, v = i[order], j[order], v[order]
        keep = np.r_[True, (i[1:] != i[:-1]) | (j[1:] != j[:-1])]
        return cls(i[keep], j[keep], v[keep])


def chunk_key(i: ArrayLike, j: ArrayLike) -> str:
    """Content key of a chunk of pairs (the shard's file name).

    Examples
    --------
    >>> chunk_key(np.array([0, 1]), np.array([2, 3])) == chunk_key([0, 1], [2, 3])
    True
    """
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(i, dtype=np.int64).tobytes())
    h.update(b"|")
    h.update(np.ascontiguousarray(j, dtype=np.int64).tobytes())
    return h.hexdigest()[:32]


def _shard_digest(i: np.ndarray, j: np.ndarray, value: np.ndarray) -> bytes:
    h = hashlib.sha256()
    for arr in (i, j, value):
        h.update(np.int64(arr.shape[0]).tobytes())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.digest()


def encode_shard(i: ArrayLike, j: ArrayLike, value: ArrayLike) -> dict[str, np.ndarray]:
    """The arrays of a shard file (``np.savez(fh, **arrays)``): ``i``, ``j``, ``value`` and their ``sha256``."""
    i = np.ascontiguousarray(i, dtype=np.int64)
    j = np.ascontiguousarray(j, dtype=np.int64)
    value = np.ascontiguousarray(value, dtype=np.float64)
    if not (i.shape == j.shape == value.shape) or i.ndim != 1:
        raise InputError(explain("bad shard arrays", expected="three 1-D arrays of one length",
                                 received=f"{i.shape}, {j.shape}, {value.shape}", fix="internal error"))
    return {"i": i, "j": j, "value": value, "sha256": np.frombuffer(_shard_digest(i, j, value), dtype=np.uint8)}


def read_shard_file(f: str | os.PathLike) -> PairTable:
    """Read and verify one shard file; :class:`CorruptShardError` names the file on any problem."""
    fix = "run `wassembed cache verify CACHE --repair`"
    try:
        with np.load(f, allow_pickle=False) as z:
            i, j, value, digest = z["i"], z["j"], z["value"], z["sha256"]
    except Exception as exc:  # zip/npy parse errors come in many types
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise CorruptShardError(explain(f"corrupt shard {f}", expected="a readable shard",
                                        received=f"{type(exc).__name__}: {first}", fix=fix)) from None
    if digest.tobytes() != _shard_digest(i, j, value):
        raise CorruptShardError(explain(f"corrupt shard {f}", expected="content matching its sha256",
                                        received="a checksum mismatch", fix=fix))
    return PairTable(i, j, value)
