"""Inspection of a whole cache: every damaged part named, and stale temporary files found and removed.

:func:`inspect_cache` is what ``wassembed cache info`` and ``verify`` report from: it never stops at the
first damaged file, and it works on a cache whose manifest is unreadable. Plans are content-addressed (a
plan's file name is the hash of its pairs), so a plan is checked against its own name; shards against
their checksum; claims (``locks/``) must be regular files that can be opened for writing.

Stale temporary files
---------------------
Every file is written as ``.tmp-*.part`` and renamed, so a kill leaves at most a temporary file, never a
damaged one. Which temporary files are stale is decided with the locks that writers already hold, not
with their age (a slow writer on a loaded machine can hold a temporary file for minutes, and clocks of
machines sharing a filesystem differ): ``manifest.json``, ``data.npz`` and plans are only written under
the cache lock (``CACHE/.lock``), and a shard only under the claim of its chunk (``locks/<key>.lock``).
A lock that can be taken has no live writer (an ``flock`` dies with its process, even after ``kill -9``),
so the temporary files it covers can be removed; those of a live writer are left alone.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import CacheError, CorruptShardError, explain
from ._integrity import Damage, check_data, manifest_consistency, parse_manifest
from ._shards import PairTable, chunk_key, read_shard_file

__all__ = ["check_claims", "check_plans", "inspect_cache", "lock_file", "read_plan", "remove_stale_temps",
           "shard_temp_key", "temp_files"]

_REPAIR = "`wassembed cache verify CACHE --repair`"


# -- locks --------------------------------------------------------------------------------------------
def _lock_problem(path: Path, exc: OSError) -> CacheError:
    return CacheError(explain(f"damaged claim {path}", expected="a lock file that can be opened for writing",
                              received=f"{exc.strerror or exc} (errno {exc.errno})",
                              fix=f"remove it ({_REPAIR} does; claims are recreated when needed)"))


@contextlib.contextmanager
def lock_file(path: Path, *, block: bool = True) -> Iterator[int | None]:
    """Hold an exclusive ``flock`` on ``path`` (created if needed); yields the descriptor, or None if another
    process holds it (``block=False``). A lock path that is a directory raises :class:`CacheError`."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    except IsADirectoryError as exc:  # other errors (read-only, full disk) are the caller's to word
        raise _lock_problem(path, exc) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                yield None
                return
            raise
        yield fd
    finally:
        os.close(fd)


# -- temporary files ----------------------------------------------------------------------------------
def temp_files(root: Path) -> list[Path]:
    """Every temporary file of the cache (root, ``plans/``, ``shards/``), sorted."""
    return sorted(f for d in (root, root / "plans", root / "shards") if d.is_dir() for f in d.glob(".tmp-*"))


def shard_temp_key(tmp: Path) -> str:
    """The chunk key of a shard's temporary file ``shards/.tmp-<key>-…``."""
    return tmp.name[len(".tmp-"):].split("-")[0]


def remove_stale_temps(root: Path, claim, *, have_cache_lock: bool = False) -> list[str]:
    """Remove temporary files that no live writer holds; returns their names (see the module docstring).

    ``claim(key, block=False)`` is the cache's chunk claim (it removes its chunk's temporary files when
    taken). Nothing is raised: a cache on a read-only filesystem is simply left as it is.
    """
    removed: list[str] = []
    with contextlib.ExitStack() as stack:
        try:
            held = have_cache_lock or stack.enter_context(lock_file(root / ".lock", block=False)) is not None
        except (OSError, CacheError):
            held = False
        if held:
            for tmp in [f for d in (root, root / "plans") if d.is_dir() for f in d.glob(".tmp-*")]:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                    removed.append(tmp.name)
    shards = root / "shards"
    for key in sorted({shard_temp_key(f) for f in shards.glob(".tmp-*")} if shards.is_dir() else ()):
        before = set(shards.glob(f".tmp-{key}-*"))
        with contextlib.suppress(OSError, CacheError), claim(key, block=False):
            pass
        removed += sorted(f.name for f in before if not f.exists())
    return removed


# -- plans and claims ---------------------------------------------------------------------------------
def read_plan(f: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Read one plan and check it against its name and ``n``; :class:`CacheError` names the file."""
    try:
        with np.load(f, allow_pickle=False) as z:
            i, j = np.asarray(z["i"]), np.asarray(z["j"])
        ok = (i.ndim == 1 and i.shape == j.shape and i.dtype == np.int64 and j.dtype == np.int64
              and chunk_key(i, j) == f.stem)
        received = "content that does not match its name (the hash of its pairs)"
    except Exception as exc:  # zip/npy parse errors come in many types
        ok, received = False, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    if ok and i.size and (i.min() < 0 or (j <= i).any() or j.max() >= n):
        ok, received = False, f"pairs outside 0 <= i < j < n={n}"
    if not ok:
        raise CacheError(explain(f"damaged plan {f}", expected="the pairs whose hash is its name", received=received,
                                 fix=f"remove it ({_REPAIR} does) and rerun the precompute command that requested "
                                     "it, to record it again"))
    return i, j


def check_plans(root: Path, n: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[Damage]]:
    """Every readable plan (in file-name order) and the damage of the others."""
    plans, damage = [], []
    d = root / "plans"
    for f in sorted(d.glob("*.npz")) if d.is_dir() else []:
        try:
            plans.append(read_plan(f, n))
        except CacheError as exc:
            damage.append(Damage("plan", str(f), str(exc)))
    return plans, damage


def check_claims(root: Path) -> list[Damage]:
    """Claims that would stop a writer: ``locks`` not a directory, a lock that is not a writable file."""
    fix = f"remove it ({_REPAIR} does; claims are recreated when needed)"
    d = root / "locks"
    found = [root / ".lock"] if (root / ".lock").exists() or (root / ".lock").is_symlink() else []
    if d.exists() and not d.is_dir():
        return [Damage("claim", str(d), explain(f"damaged claims folder {d}", expected="a directory",
                                                received="a file", fix=fix))]
    found += sorted(d.iterdir()) if d.is_dir() else []
    damage = []
    for f in found:
        try:
            mode = f.lstat().st_mode
        except OSError:
            continue  # released meanwhile
        if not stat.S_ISREG(mode) or not os.access(f, os.W_OK):
            what = "not a regular file" if not stat.S_ISREG(mode) else "a file this user cannot write"
            damage.append(Damage("claim", str(f), explain(f"damaged claim {f}", expected="a writable lock file",
                                                          received=what, fix=fix)))
    return damage


# -- the whole cache ----------------------------------------------------------------------------------
def _shards(root: Path, n: int) -> tuple[dict[str, PairTable], list[Damage]]:
    tables, damage = {}, []
    d = root / "shards"
    names = sorted(x.name for x in d.iterdir() if x.suffix == ".npz" and not x.name.startswith(".")) \
        if d.is_dir() else []
    for name in names:
        try:
            t = read_shard_file(d / name)
            if len(t) and (t.i.min() < 0 or (t.j <= t.i).any() or t.j.max() >= n):
                raise CorruptShardError(explain(f"corrupt shard {d / name}", expected=f"pairs 0 <= i < j < n={n}",
                                                received="pairs out of range (a shard of another cache?)",
                                                fix=f"run {_REPAIR}"))
            tables[name] = t
        except CorruptShardError as exc:
            damage.append(Damage("shard", str(d / name), str(exc)))
    return tables, damage


def inspect_cache(path: str | os.PathLike) -> dict:
    """Check every part of a cache without stopping at the first damaged one.

    Returns
    -------
    dict
        ``manifest`` (dict or None if unreadable), ``data`` (HistogramSet, PointCloudSet or None), ``plans`` (list of
        ``(i, j)``), ``shards`` (name → PairTable, intact ones), ``temp_files`` (names) and ``damaged``
        (list of :class:`Damage`: manifest, data, plans, shards, claims, in that order).
    """
    root = Path(path)
    if not (root / "manifest.json").exists() and not (root / "data.npz").exists() and not (root / "shards").is_dir():
        parse_manifest(root)  # "not a wassembed cache": wrong input, not damage
    damaged: list[Damage] = []
    try:
        manifest = parse_manifest(root)
    except CacheError as exc:
        manifest = None
        damaged.append(Damage("manifest", str(root / "manifest.json"), str(exc)))
    data = None
    if manifest is not None:
        data, damage = check_data(root, manifest)
        damaged += damage + (manifest_consistency(root, manifest) if data is None else [])
    n = data.n if data is not None else int(manifest["dataset"]["n"]) if manifest is not None \
        else np.iinfo(np.int64).max  # the data's own n: an edited manifest must not make shards look corrupt
    plans, damage = check_plans(root, n)
    tables, shard_damage = _shards(root, n)
    damaged += damage + shard_damage + check_claims(root)
    return {"manifest": manifest, "data": data, "plans": plans, "shards": tables,
            "temp_files": [f.name for f in temp_files(root)], "damaged": damaged}
