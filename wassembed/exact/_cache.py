"""The on-disk cache of exact distances: crash-safe, resumable, shareable between processes.

Layout of a cache directory::

    CACHE/
      manifest.json       format version, dataset fingerprint, p, ground cost, solver, versions, counts
      data.npz            the data the distances were computed on: histograms (and support, labels), or
                          point clouds (points, weights, offsets, labels, and p)
      plans/<key>.npz     every pair plan ever requested (pairs i < j), so lost pairs can be recomputed
      shards/<key>.npz    append-only results: int64 i, int64 j, float64 value (W_p^p) and a sha256
      locks/<key>.lock    claims held (flock) by the process computing that chunk

Guarantees
----------
- Every file is written to a temporary name in the same directory, flushed, fsync'ed, then renamed
  (atomic on POSIX): a ``kill -9`` at any moment loses at most the chunks in flight and never leaves a
  corrupt file under a final name.
- A shard's checksum is verified on every read; a mismatch raises :class:`CorruptShardError` naming the
  file (``wassembed cache verify --repair`` removes it and recomputes only its pairs).
- A chunk is claimed with an exclusive ``flock`` before it is computed and its shard is looked for again
  after the claim: two processes filling one cache never compute or store the same chunk twice, and a
  claim dies with its process (no stale locks after a crash).
- A cache is bound to one dataset fingerprint and one ``p``; other data or settings are refused before
  anything is written. The data is a :class:`~wassembed.data.HistogramSet` or a
  :class:`~wassembed.data.PointCloudSet` (``dataset.kind`` in the manifest; see :mod:`._datakind`): every
  guarantee holds for both.
- A damaged part (manifest, stored data, plan, shard, claim) raises :class:`CacheError` (or
  :class:`CorruptShardError`) naming the file and what to do; :meth:`DistanceCache.info` and
  :func:`~wassembed.exact.verify` list every damaged part instead of stopping at the first.
- Temporary files left by a killed writer are removed when the cache is next opened, once no live writer
  holds them (see :mod:`wassembed.exact._inspect`).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from .._io import atomic_write, file_sha256
from .._version import __version__
from ..data import DataSet, as_dataset, kind_class, parse_p, quantity_name
from ..errors import CacheError, CacheMismatchError, explain, param
from ._datakind import exact_kind, manifest_kind
from ._inspect import inspect_cache, lock_file, read_plan, remove_stale_temps
from ._integrity import FORMAT, FORMAT_VERSION, load_data, parse_manifest, read_manifest
from ._shards import PairTable, chunk_key, encode_shard, read_shard_file

__all__ = ["DistanceCache", "FORMAT_VERSION", "describe_cache", "quantity_name"]


def _versions() -> dict:
    import ot
    import scipy

    from ._grid import lemon

    pylmcf = lemon()
    return {"wassembed": __version__, "pot": ot.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "pylmcf": None if pylmcf is None else pylmcf.__version__, "python": platform.python_version()}


class DistanceCache:
    """A directory of exact pairwise values for one dataset (histograms or point clouds) and one ``p``.

    Use :meth:`create` to start or reopen a cache for given data (refuses other data or settings) and
    :meth:`open` to read one.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from wassembed.data import HistogramSet
    >>> hs = HistogramSet.from_images(np.eye(3)[None].repeat(2, 0) + np.arange(2)[:, None, None])
    >>> with tempfile.TemporaryDirectory() as d:
    ...     c = DistanceCache.create(d + "/c", hs, p=2)
    ...     _ = c.write_shard(np.array([0]), np.array([1]), np.array([0.5]))
    ...     t = DistanceCache.open(d + "/c").read()
    ...     (t.i.tolist(), t.j.tolist(), t.value.tolist())
    ([0], [1], [0.5])
    """

    def __init__(self, path: str | os.PathLike, manifest: dict):
        self.path = Path(path)
        self.manifest = manifest
        self._data: DataSet | None = None
        #: names of the stale temporary files removed when the cache was opened
        self.removed_temp_files: list[str] = []

    # -- opening ------------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike) -> DistanceCache:
        """Open an existing cache (read side).

        Checks the manifest (format, version, fields) and removes temporary files left by killed writers.

        Raises
        ------
        CacheError
            If ``path`` is not a cache or its manifest is damaged (the message names the file and the field).
        """
        return cls._open(Path(path), have_lock=False)

    @classmethod
    def _open(cls, path: Path, *, have_lock: bool) -> DistanceCache:
        cache = cls(path, read_manifest(path))
        cache.removed_temp_files = remove_stale_temps(path, cache.claim, have_cache_lock=have_lock)
        return cache

    @classmethod
    def create(cls, path: str | os.PathLike, data: DataSet, p: int = 2, *,
               num_iter_max: int | None = None) -> DistanceCache:
        """Create a cache for ``data`` and ``p``, or reopen it if it exists with the same fingerprint.

        Parameters
        ----------
        path : str or path
            The cache directory (new, empty, or a cache of the same data and ``p``).
        data : HistogramSet or PointCloudSet
            Histograms on one support, or weighted point clouds (W2² with the squared Euclidean ground cost
            between points for ``p = 2``, W1 with the Euclidean one for ``p = 1``).
        p : {1, 2}
        num_iter_max : int, optional
            Recorded in the manifest (the solver's iteration limit).

        Raises
        ------
        CacheMismatchError
            If ``path`` holds a cache of other data or other settings (nothing is written).
        InputError
            If ``data`` is neither a HistogramSet nor a PointCloudSet.
        """
        from ._solver import DEFAULT_NUM_ITER_MAX

        p = parse_p(p)
        as_dataset(data)  # InputError for anything else, before anything is written
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise CacheError(explain(f"{path} is a file", expected="a cache directory (existing or new)",
                                     received="a regular file", fix=f"choose another {param('out')} path"))
        if path.is_dir() and not (path / "manifest.json").exists() and not (path / ".lock").exists() \
                and any(path.iterdir()):
            raise CacheError(explain(f"{path} is a non-empty directory that is not a cache",
                                     expected="a new or empty directory, or an existing cache",
                                     received=f"{len(list(path.iterdir()))} unrelated entries",
                                     fix=f"choose another {param('out')} path"))
        fingerprint = data.fingerprint(p)
        path.mkdir(parents=True, exist_ok=True)
        with cls._locked(path):
            if (path / "manifest.json").exists():
                cache = cls._open(path, have_lock=True)
                cache._check_same(data, p, fingerprint)
                return cache
            for sub in ("shards", "plans", "locks"):
                (path / sub).mkdir(exist_ok=True)
            arrays = data.stored_arrays(p)
            atomic_write(path / "data.npz", lambda fh: np.savez(fh, **arrays))
            quantity, ground_cost = data.cost_names(p)
            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "quantity": quantity,
                "p": p,
                "ground_cost": ground_cost,
                "dataset": {**data.record(p), "file": "data.npz",
                            "sha256": file_sha256(path / "data.npz")},
                "solver": {"name": exact_kind(data.kind).solver,
                           "num_iter_max": int(num_iter_max or DEFAULT_NUM_ITER_MAX),
                           "not_optimal": "error (never cached)"},
                "versions": _versions(),
                "counts": {"pairs": 0, "shards": 0},
            }
            atomic_write(path / "manifest.json", lambda fh: fh.write(json.dumps(manifest, indent=2).encode()))
            return cls(path, manifest)

    @staticmethod
    @contextlib.contextmanager
    def _locked(path: Path):
        with lock_file(path / ".lock"):
            yield

    def _check_same(self, data: DataSet, p: int, fingerprint: str) -> None:
        m = self.manifest
        if m["p"] != p:
            raise CacheMismatchError(explain(f"cache {self.path} was built for other settings",
                                             expected=f"{param('p', m['p'])} ({m['quantity']}, this cache's "
                                                      "setting)",
                                             received=param("p", p),
                                             fix=f"use another {param('out')} directory for other settings"))
        if m["dataset"]["fingerprint"] != fingerprint:
            ds = m["dataset"]
            kind = kind_class(manifest_kind(m)).noun
            raise CacheMismatchError(explain(f"cache {self.path} was built from other data",
                                             expected=f"dataset fingerprint {ds['fingerprint'][:12]}… "
                                                      f"({ds['name']}: {ds['n']} {kind})",
                                             received=f"{fingerprint[:12]}… ({data.describe()})",
                                             fix=f"use another {param('out')} directory for other data"))

    # -- properties ---------------------------------------------------------------------------------
    @property
    def p(self) -> int:
        """Transport exponent the values are for."""
        return int(self.manifest["p"])

    @property
    def fingerprint(self) -> str:
        """Dataset fingerprint (histograms: weights, support, p, ground cost; point clouds: points, weights,
        offsets)."""
        return self.manifest["dataset"]["fingerprint"]

    @property
    def data(self) -> DataSet:
        """The data the cache was built on: a HistogramSet or a PointCloudSet (loaded once, checked against the
        manifest).

        Raises
        ------
        CacheError
            ``data.npz`` missing, unreadable or altered, or the manifest edited (``p``, fingerprint, ``n``,
            ``k`` or ``d``, ground cost): the message names the file that is wrong and what to do.
        """
        if self._data is None:
            self._data = load_data(self.path, self.manifest)
        return self._data

    # -- shards -------------------------------------------------------------------------------------
    def shard_path(self, key: str) -> Path:
        return self.path / "shards" / f"{key}.npz"

    def shard_names(self) -> list[str]:
        """Names of the complete shard files, sorted."""
        d = self.path / "shards"
        return sorted(x.name for x in d.iterdir() if x.suffix == ".npz" and not x.name.startswith(".")) \
            if d.exists() else []

    def write_shard(self, i: ArrayLike, j: ArrayLike, value: ArrayLike, *, key: str | None = None) -> Path:
        """Atomically write one shard of results (``i < j``); returns its path."""
        arrays = encode_shard(i, j, value)
        key = key or chunk_key(arrays["i"], arrays["j"])
        target = self.shard_path(key)
        atomic_write(target, lambda fh: np.savez(fh, **arrays), prefix=f".tmp-{key}-")
        return target

    def read_shard(self, name: str) -> PairTable:
        """Read and verify one shard; :class:`CorruptShardError` names the file on any problem."""
        return read_shard_file(self.path / "shards" / name)

    def read_shards(self) -> list[PairTable]:
        """Every shard, verified, in name order (pairs computed together stay together)."""
        return [self.read_shard(n) for n in self.shard_names()]

    def read(self) -> PairTable:
        """All cached pairs, verified, unique, sorted by ``(i, j)``."""
        return PairTable.merge(self.read_shards())

    def pair_keys(self) -> np.ndarray:
        """Sorted int64 keys ``i * n + j`` of the cached pairs (for set operations)."""
        t = self.read()
        return t.i * int(self.manifest["dataset"]["n"]) + t.j

    # -- plans --------------------------------------------------------------------------------------
    def add_plan(self, i: ArrayLike, j: ArrayLike) -> str:
        """Record a requested pair plan (idempotent); returns its key."""
        key = chunk_key(i, j)
        f = self.path / "plans" / f"{key}.npz"
        if not f.exists():
            with self._locked(self.path):  # plans' temporary files are covered by the cache lock
                atomic_write(f, lambda fh: np.savez(fh, i=np.asarray(i, np.int64), j=np.asarray(j, np.int64)))
        return key

    def planned(self) -> tuple[np.ndarray, np.ndarray]:
        """Union of all recorded plans, in recording-file order with duplicates removed."""
        d = self.path / "plans"
        parts_i, parts_j = [], []
        n = int(self.manifest["dataset"]["n"])
        for f in sorted(d.glob("*.npz")) if d.exists() else []:
            i, j = read_plan(f, n)  # CacheError naming a damaged plan
            parts_i.append(i)
            parts_j.append(j)
        if not parts_i:
            e = np.empty(0, dtype=np.int64)
            return e, e.copy()
        i = np.concatenate(parts_i)
        j = np.concatenate(parts_j)
        _, first = np.unique(i * n + j, return_index=True)
        first.sort()
        return i[first], j[first]

    # -- claims -------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def claim(self, key: str, *, block: bool = False) -> Iterator[bool]:
        """Hold an exclusive claim on chunk ``key``; yields True if acquired, False if another process has it.

        Stale temporary files of that chunk are removed once the claim is held (their writer is gone).
        """
        lock = self.path / "locks" / f"{key}.lock"
        try:
            lock.parent.mkdir(exist_ok=True)  # a cache copied without its (empty) locks/ folder
        except FileExistsError:
            raise CacheError(explain(f"damaged claims folder {lock.parent}", expected="a directory",
                                     received="a file", fix="remove it (`wassembed cache verify CACHE --repair` "
                                                            "does; claims are recreated when needed)")) from None
        while True:
            with lock_file(lock, block=block) as fd:
                if fd is None:
                    yield False
                    return
                if not _is_file(fd, lock):  # its holder released and removed it meanwhile: claim the new one
                    continue
                try:  # held and ours from here: removed whatever happens next (a Ctrl-C included)
                    for tmp in (self.path / "shards").glob(f".tmp-{key}-*"):
                        with contextlib.suppress(OSError):
                            tmp.unlink()
                    yield True
                finally:
                    with contextlib.suppress(OSError):
                        lock.unlink()
                return

    # -- bookkeeping --------------------------------------------------------------------------------
    def update_counts(self) -> dict:
        """Recount pairs and shards into the manifest (atomic, under the cache lock)."""
        with self._locked(self.path):
            manifest = parse_manifest(self.path)
            t = self.read()
            manifest["counts"] = {"pairs": len(t), "shards": len(self.shard_names()),
                                  "updated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
            atomic_write(self.path / "manifest.json", lambda fh: fh.write(json.dumps(manifest, indent=2).encode()))
            self.manifest = manifest
        return manifest["counts"]

    def info(self) -> dict:
        """Summary: counts, fingerprint, settings, value statistics, and every damaged part.

        Every part is checked (manifest against the stored data, plans, every shard's checksum, claims); a
        damaged part is listed under ``damaged`` (``part``, ``file``, ``problem``: one line naming the file
        and the fix) and left out of the counts, instead of stopping the summary. ``ok`` is False when
        anything is damaged.
        """
        return describe_cache(self.path)

    def export(self, out: str | os.PathLike) -> int:
        """Write ``i``, ``j`` (int64) and ``value`` (float64, W_p^p) to an ``.npz``; returns the pair count."""
        t = self.read()
        atomic_write(Path(out), lambda fh: np.savez(fh, i=t.i, j=t.j, value=t.value))
        return len(t)


def _is_file(fd: int, path: Path) -> bool:
    """Whether the open descriptor ``fd`` is still the file at ``path`` (not removed or replaced)."""
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_ino, a.st_dev) == (b.st_ino, b.st_dev)


def describe_cache(path: str | os.PathLike) -> dict:
    """What :meth:`DistanceCache.info` returns, also for a cache whose manifest is damaged (then listed under
    ``damaged``, with the settings left as None).

    Raises
    ------
    CacheError
        If ``path`` is not a cache at all.
    """
    report = inspect_cache(path)
    m = report["manifest"] or {}
    tables = list(report["shards"].values())
    t = PairTable.merge(tables)
    v = t.value
    stats = {}
    if len(v):
        q = np.quantile(v, [0.0, 0.5, 1.0])
        stats = {"mean": float(v.mean()), "std": float(v.std()), "min": float(q[0]), "median": float(q[1]),
                 "max": float(q[2])}
    images = np.unique(np.r_[t.i, t.j])
    return {"path": str(Path(path)), "quantity": m.get("quantity"), "p": m.get("p"),
            "ground_cost": m.get("ground_cost"), "dataset": m.get("dataset"), "pairs": len(t),
            "shards": len(tables), "images_used": int(images.size),
            "image_range": [int(images.min()), int(images.max())] if images.size else None,
            "values": stats, "solver": m.get("solver"), "versions": m.get("versions"),
            "temp_files": report["temp_files"], "damaged": [d.as_dict() for d in report["damaged"]],
            "ok": not report["damaged"]}
