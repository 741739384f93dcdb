"""Deterministic pair plans: which exact distances to compute.

Every plan is a pair of int64 arrays ``(i, j)`` of unordered pairs stored canonically (``i < j``), without
self-pairs or duplicates, in a deterministic order given the seed. Random plans are *prefix-stable*: asking
for more pairs with the same seed extends the smaller plan, so a cache grown from 100k to 300k pairs
reuses the first 100k.

Samplers
--------
- :func:`random_pairs`: ``N`` distinct pairs drawn uniformly among a set of images;
- :func:`block_pairs`: all pairs inside random groups of ``block_size`` images, over several random
  partitions. The same number of exact pairs touches far fewer distinct images per group, so a trainer can
  embed each image once for many pairs (see :mod:`wassembed.train`);
- :func:`sparse_pairs`: inside random groups, each image with a few random partners (sparse blocks: shared
  images for the trainer, as many distinct images as random pairs);
- :func:`cross_pairs`: pairs between two index sets (e.g. queries against references);
- :func:`all_pairs`: every pair of a small set;
- :func:`read_pairs_file`: an explicit list (``.npy`` ``(m, 2)``, ``.npz`` with ``i``/``j``, or text).

Train/test separation is by image index ranges (:func:`parse_range`): pairs sampled among images
``0:6000`` never touch images ``6000:8000``.
"""


from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from .._validation import check_int, check_pos_int
from ..data import DAMAGED_FILE_ERRORS
from ..errors import InputError, explain, param

__all__ = ["all_pairs", "block_pairs", "canonical", "cross_pairs", "n_distinct_pairs", "parse_range", "random_pairs",
           "read_pairs_file"]


def parse_range(spec: str | ArrayLike | None, n: int, *, what: str = "images") -> np.ndarray:
    """Parse an index range ``"A:B"`` (Python slice semantics, ``B`` exclusive) into indices.

    Parameters
    ----------
    spec : str, slice, array-like or None
        ``"0:6000"``, ``":100"``, ``"6000:"``; a ``slice``; explicit indices; ``None`` for all ``n``.
    n : int
        Number of histograms in the dataset.
    what : str
        The parameter that holds ``spec`` (``images``, ``against``), named in errors.

    Returns
    -------
    ndarray of int64

    Examples
    --------
    >>> parse_range("2:5", 10).tolist()
    [2, 3, 4]
    """
    if spec is None:
        return np.arange(n, dtype=np.int64)
    what = param(what)
    if isinstance(spec, slice):
        spec = f"{'' if spec.start is None else spec.start}:{'' if spec.stop is None else spec.stop}"
    if isinstance(spec, str):
        parts = spec.split(":")
        try:
            if len(parts) != 2:
                raise ValueError
            a = int(parts[0]) if parts[0].strip() else 0
            b = int(parts[1]) if parts[1].strip() else n
        except ValueError:
            raise InputError(explain(f"bad index range for {what}", expected="A:B with integers (B exclusive)",
                                     received=repr(spec), fix=f"e.g. {param(what, repr('0:6000'))}")) from None
        if not (0 <= a < b <= n):
            raise InputError(explain(f"index range {spec!r} for {what} is out of bounds",
                                     expected=f"0 <= A < B <= {n} (the dataset has {n} histograms)",
                                     received=f"A={a}, B={b}", fix=f"pick a range inside 0:{n}"))
        return np.arange(a, b, dtype=np.int64)
    idx = np.asarray(spec)
    if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
        raise InputError(explain(f"bad indices for {what}", expected="a non-empty 1-D integer array",
                                 received=f"dtype {idx.dtype}, shape {idx.shape}", fix="pass integer indices"))
    if idx.min() < 0 or idx.max() >= n:
        raise InputError(explain(f"indices for {what} out of bounds", expected=f"values in 0..{n - 1}",
                                 received=f"min {idx.min()}, max {idx.max()}", fix="check the indices"))
    return np.unique(idx.astype(np.int64))


def n_distinct_pairs(m: int) -> int:
    """Number of unordered pairs without self-pairs among ``m`` items: ``m (m − 1) / 2``."""
    return m * (m - 1) // 2


def canonical(i: ArrayLike, j: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Order each pair as ``(min, max)``."""
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    return np.minimum(i, j), np.maximum(i, j)


def _first_new(i, j, seen: set, n_max: int, out_i: list, out_j: list) -> None:
    for a, b in zip(i.tolist(), j.tolist()):
        key = (a, b)
        if a != b and key not in seen:
            seen.add(key)
            out_i.append(a)
            out_j.append(b)
            if len(out_i) >= n_max:
                return


def _check_count(n_pairs: int, available: int, m: int) -> None:
    check_pos_int("pairs", n_pairs, example=100000)
    if n_pairs > available:
        raise InputError(explain(f"{param('pairs')} is larger than the number of distinct pairs",
                                 expected=f"at most {available} distinct pairs among {m} images",
                                 received=f"{n_pairs}", fix=f"ask for at most {available} pairs or use more images"))


def random_pairs(indices: ArrayLike, n_pairs: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n_pairs`` distinct unordered pairs drawn uniformly among ``indices`` (prefix-stable in ``n_pairs``).

    Examples
    --------
    >>> i, j = random_pairs(np.arange(10), 5, seed=1)
    >>> bool((i < j).all()), len(set(zip(i, j)))
    (True, 5)
    """
    idx = np.asarray(indices, dtype=np.int64)
    m = idx.size
    _check_count(n_pairs, n_distinct_pairs(m), m)
    rng = np.random.default_rng(seed)
    seen: set = set()
    out_i: list = []
    out_j: list = []
    # a fixed number of draws per round, whatever n_pairs: the stream, hence the order of first appearance,
    # is the same for every n_pairs (a batch that grew with n_pairs broke prefix stability above 853 pairs)
    batch = 1024
    while len(out_i) < n_pairs:
        a = idx[rng.integers(0, m, size=batch)]
        b = idx[rng.integers(0, m, size=batch)]
        a, b = canonical(a, b)
        _first_new(a, b, seen, n_pairs, out_i, out_j)
    return np.asarray(out_i, dtype=np.int64), np.asarray(out_j, dtype=np.int64)


def block_pairs(indices: ArrayLike, n_pairs: int, block_size: int = 64,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """All pairs inside random groups of ``block_size`` images, over successive random partitions.

    Pairs come group by group, so consecutive pairs share images; a plan of ``N`` pairs costs as many exact
    solves as :func:`random_pairs` but lets a trainer embed ``block_size`` images for up to
    ``block_size (block_size − 1) / 2`` pair terms.

    Examples
    --------
    >>> i, j = block_pairs(np.arange(8), 6, block_size=4, seed=0)
    >>> len(np.unique(np.r_[i, j]))  # the first 6 pairs are one whole group of 4
    4
    """
    idx = np.asarray(indices, dtype=np.int64)
    m = idx.size
    _check_count(n_pairs, n_distinct_pairs(m), m)
    block_size = check_int("block_size", block_size, minimum=2, example=64)
    bs = min(block_size, m)
    tri_a, tri_b = np.triu_indices(bs, k=1)
    return _group_rounds(idx, n_pairs, bs, seed, lambda group, rng: (group[tri_a], group[tri_b]))


def sparse_pairs(indices: ArrayLike, n_pairs: int, block_size: int = 64, partners: int = 2,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sparse blocks: inside random groups of ``block_size`` images, each image paired with ``partners``
    others of its group drawn at random, over successive random partitions.

    Consecutive pairs share images, as in :func:`block_pairs`, so a trainer embeds each image of a group once
    for its pairs; but each image meets only a few partners per round, so a plan of ``N`` pairs touches as
    many images as :func:`random_pairs` (measured on MNIST: as accurate per exact solve as random pairs, with
    training 1.8× faster; docs/benchmarks.md).

    Examples
    --------
    >>> i, j = sparse_pairs(np.arange(8), 8, block_size=4, partners=2, seed=0)
    >>> bool((i < j).all()), len(set(zip(i.tolist(), j.tolist()))), len(np.unique(np.r_[i, j]))
    (True, 8, 8)
    """
    idx = np.asarray(indices, dtype=np.int64)
    m = idx.size
    _check_count(n_pairs, n_distinct_pairs(m), m)
    block_size = check_int("block_size", block_size, minimum=2, example=64)
    bs = min(block_size, m)
    k = min(check_int("partners", partners, minimum=1, example=2), bs - 1)

    def partners_of(group, rng):
        picks = [rng.choice(bs - 1, k, replace=False) for _ in range(bs)]  # among the others of the group
        return np.repeat(group, k), np.concatenate([group[q + (q >= p)] for p, q in enumerate(picks)])

    return _group_rounds(idx, n_pairs, bs, seed, partners_of)


def _group_rounds(idx: np.ndarray, n_pairs: int, bs: int, seed: int, group_pairs) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n_pairs`` distinct pairs that ``group_pairs(group, rng) -> (a, b)`` draws inside the groups of
    ``bs`` images of successive random partitions of ``idx`` (topped up uniformly if rounds stop adding)."""
    rng = np.random.default_rng(seed)
    seen: set = set()
    out_i: list = []
    out_j: list = []
    stale_rounds = 0
    while len(out_i) < n_pairs:
        before = len(out_i)
        perm = idx[rng.permutation(idx.size)]
        for start in range(0, idx.size - bs + 1, bs):
            a, b = canonical(*group_pairs(perm[start:start + bs], rng))
            _first_new(a, b, seen, n_pairs, out_i, out_j)
            if len(out_i) >= n_pairs:
                break
        stale_rounds = stale_rounds + 1 if len(out_i) == before else 0
        if stale_rounds > 50:  # rounds keep repeating pairs already drawn: top up uniformly
            ri, rj = random_pairs(idx, n_pairs, seed=seed + 1)
            _first_new(ri, rj, seen, n_pairs, out_i, out_j)
    return np.asarray(out_i, dtype=np.int64), np.asarray(out_j, dtype=np.int64)


def cross_pairs(a_indices: ArrayLike, b_indices: ArrayLike, n_pairs: int | None = None,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pairs with one image in ``a_indices`` and the other in ``b_indices`` (all of them, or ``n_pairs``)."""
    A = np.unique(np.asarray(a_indices, dtype=np.int64))
    B = np.unique(np.asarray(b_indices, dtype=np.int64))
    if n_pairs is None:
        aa, bb = np.meshgrid(A, B, indexing="ij")
        i, j = canonical(aa.ravel(), bb.ravel())
        keep = i != j
        key = np.unique(np.stack([i[keep], j[keep]], 1), axis=0)
        return key[:, 0].copy(), key[:, 1].copy()
    overlap = np.intersect1d(A, B).size
    available = A.size * B.size - overlap - n_distinct_pairs(overlap)
    _check_count(n_pairs, available, A.size + B.size)
    rng = np.random.default_rng(seed)
    seen: set = set()
    out_i: list = []
    out_j: list = []
    while len(out_i) < n_pairs:
        x = A[rng.integers(0, A.size, size=max(1024, n_pairs))]
        y = B[rng.integers(0, B.size, size=max(1024, n_pairs))]
        x, y = canonical(x, y)
        _first_new(x, y, seen, n_pairs, out_i, out_j)
    return np.asarray(out_i, dtype=np.int64), np.asarray(out_j, dtype=np.int64)


def all_pairs(indices: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Every unordered pair (no self-pairs) of ``indices``, in lexicographic order."""
    idx = np.unique(np.asarray(indices, dtype=np.int64))
    a, b = np.triu_indices(idx.size, k=1)
    return idx[a], idx[b]


def read_pairs_file(path: str | os.PathLike, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Read an explicit pair list: ``.npy`` ``(m, 2)``, ``.npz`` with ``i`` and ``j``, or text with two
    integer columns (comma or whitespace separated). Pairs are canonicalised and de-duplicated (first
    occurrence kept); self-pairs and out-of-range indices are errors."""
    path = Path(path)
    if not path.exists():
        raise InputError(explain(f"no such pairs file: {path}", expected="an existing file",
                                 received=str(path), fix="check the path"))
    try:
        if path.suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                arr = np.stack([z["i"], z["j"]], axis=1)
        else:
            text = path.read_text().replace(",", " ")
            arr = np.array([[int(x) for x in line.split()] for line in text.splitlines()
                            if line.strip() and not line.lstrip().startswith("#")])
    except DAMAGED_FILE_ERRORS as exc:
        raise InputError(explain(f"cannot read pairs file {path}",
                                 expected=".npy (m, 2), .npz with arrays i and j, or two integer columns",
                                 received=str(exc).split("\n")[0],
                                 fix="re-save the pairs in one of those forms")) from None
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise InputError(explain(f"bad pairs in {path}", expected="a non-empty integer array of shape (m, 2)",
                                 received=f"dtype {arr.dtype}, shape {arr.shape}", fix="one pair i j per row"))
    i, j = canonical(arr[:, 0], arr[:, 1])
    if i.min() < 0 or j.max() >= n:
        bad = int(np.flatnonzero((i < 0) | (j >= n))[0])
        raise InputError(explain(f"pair index out of range in {path}", expected=f"indices in 0..{n - 1}",
                                 received=f"({arr[bad, 0]}, {arr[bad, 1]}) at row {bad}", fix="check the indices"))
    if (i == j).any():
        bad = int(np.flatnonzero(i == j)[0])
        raise InputError(explain(f"self-pair in {path}", expected="pairs of two different images",
                                 received=f"({i[bad]}, {j[bad]}) at row {bad}", fix="drop it: W(a, a) = 0"))
    seen: set = set()
    out_i: list = []
    out_j: list = []
    _first_new(i, j, seen, i.size, out_i, out_j)
    return np.asarray(out_i, dtype=np.int64), np.asarray(out_j, dtype=np.int64)
