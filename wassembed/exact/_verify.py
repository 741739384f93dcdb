"""``verify``: check every part of a cache, say which one is wrong, and repair what can be recomputed."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import numpy as np

from ._cache import DistanceCache
from ._inspect import inspect_cache
from ._precompute import precompute

__all__ = ["verify"]


def _keys(tables, n: int) -> np.ndarray:
    keys = [t.i * n + t.j for t in tables]
    return np.unique(np.concatenate(keys)) if keys else np.empty(0, dtype=np.int64)


def _missing(report: dict) -> np.ndarray | None:
    """Mask over the planned pairs (readable plans, first occurrence) that no intact shard holds."""
    m = report["manifest"]
    if m is None:
        return None
    n = int(m["dataset"]["n"])
    if not report["plans"]:
        return np.zeros(0, dtype=bool)
    planned = np.unique(np.concatenate([i * n + j for i, j in report["plans"]]))
    return ~np.isin(planned, _keys(report["shards"].values(), n))


def _remove(path: Path) -> int:
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        return 1
    return 0


def verify(path: str | os.PathLike, *, repair: bool = False, workers: int | None = None,
           progress: bool = False) -> dict:
    """Check a cache: the manifest against the stored data, the plans, every shard, the claims, and which
    planned pairs are missing.

    With ``repair=True``, corrupt shards, damaged plans and claims and stale temporary files are removed and
    only the planned pairs that are now missing are recomputed (every plan ever requested is recorded in the
    cache). A damaged ``manifest.json`` or ``data.npz`` cannot be repaired from the cache itself: nothing is
    changed and its message says what to do.

    Returns
    -------
    dict
        ``shards_ok``, ``corrupt`` (names of corrupt shards), ``damaged`` (every damaged part found, as dicts
        ``part``, ``file``, ``problem``), ``damaged_left`` (what is still damaged), ``temp_files`` (stray
        temporary files found), ``temp_files_left``, ``missing`` (planned pairs not cached; None when the
        manifest is unreadable), ``removed``, ``recomputed``, ``ok``.

    Raises
    ------
    CacheError
        If ``path`` is not a cache at all.
    """
    root = Path(path)
    report = inspect_cache(root)
    found, shards_ok, temps = report["damaged"], len(report["shards"]), report["temp_files"]
    removed = recomputed = 0
    if repair and not any(d.part in ("manifest", "data") for d in found):
        removed += sum(_remove(Path(d.file)) for d in found)
        cache = DistanceCache.open(root)  # removes the temporary files no live writer holds
        removed += len(cache.removed_temp_files)
        pi, pj = cache.planned()  # in plan order: a recomputed chunk gets its shard's name back
        lost = ~np.isin(pi * cache.data.n + pj, cache.pair_keys())
        if lost.any():
            recomputed = precompute(cache.data, root, (pi[lost], pj[lost]), workers=workers, p=cache.p,
                                    progress=progress).computed
        report = inspect_cache(root)
    missing = _missing(report)
    left = report["damaged"]
    return {"cache": str(root), "shards_ok": shards_ok, "corrupt": [Path(d.file).name for d in found
                                                                     if d.part == "shard"],
            "damaged": [d.as_dict() for d in found], "damaged_left": [d.as_dict() for d in left],
            "temp_files": len(temps), "temp_files_left": len(report["temp_files"]),
            "missing": None if missing is None else int(missing.sum()), "removed": removed,
            "recomputed": recomputed, "ok": not left and missing is not None and not missing.any()}
