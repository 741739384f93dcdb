"""Benchmark: precompute on a Dask ``LocalCluster`` against the local process pool (``wassembed bench dask``).

Both executors compute the same explicit plan of pairs into fresh caches on the same machine, in one run,
alternating (pool, Dask, pool, Dask, ...) when ``repeats > 1`` so that a change of machine load affects both.
The rate is the one ``precompute`` reports (``PrecomputeResult.pairs_per_s``: executor start, solves and
checksummed atomic shard writes). The Dask cluster is started and warmed (POT imported on its workers)
before timing, as a long-lived cluster would be; its start-up time is reported separately. Then the caches
are compared: same shard files, byte for byte, and the same ``(i, j, value)`` table.
"""


from __future__ import annotations

import contextlib
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from .._validation import check_pos_int
from ..data import load_dataset
from ..errors import InputError, explain
from ..exact import DistanceCache, precompute
from ..exact._precompute import plan_pairs

__all__ = ["format_dask_benchmark", "run_dask_benchmark"]


def _warm_worker() -> int:
    import ot  # noqa: F401 - the import is the warm-up

    return os.getpid()


def _shard_bytes(path: Path) -> dict:
    return {f.name: f.read_bytes() for f in sorted((path / "shards").glob("*.npz"))}


def _load() -> list | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not Unix
        return None


@contextlib.contextmanager
def _cache_root(out_dir):
    """The directory the caches go to: ``out_dir`` (created), or a temporary one removed on exit."""
    if out_dir is not None:
        root = Path(out_dir)
        root.mkdir(parents=True, exist_ok=True)
        yield root
        return
    with tempfile.TemporaryDirectory(prefix="wassembed-bench-dask-") as tmp:
        yield Path(tmp)


@contextlib.contextmanager
def _cluster(client, workers: int, dask_config: dict | None):
    """``(client, start-up seconds)``: ``client``, or a fresh LocalCluster of ``workers`` one-thread processes
    (closed on exit), with POT imported on every worker; ``dask_config`` is set meanwhile."""
    import dask
    from distributed import Client, LocalCluster

    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        stack.enter_context(dask.config.set(dask_config or {}))
        if client is None:
            cluster = stack.enter_context(LocalCluster(n_workers=workers, processes=True, threads_per_worker=1,
                                                       host="127.0.0.1", dashboard_address=":0"))
            client = stack.enter_context(Client(cluster, set_as_default=False))
        client.wait_for_workers(workers, timeout=300)
        client.run(_warm_worker)
        yield client, time.perf_counter() - t0


def _alternate(hs, pairs, root: Path, client, *, workers, repeats, p, chunk_size, progress):
    """Precompute ``pairs`` into fresh caches, pool then Dask, ``repeats`` times: ``(runs, caches)`` where
    ``runs[kind]`` lists ``(pairs_per_s, seconds)``."""
    runs: dict = {"pool": [], "dask": []}
    caches: list = []
    for r in range(repeats):
        for kind in ("pool", "dask"):
            out = root / f"{kind}-{r}"
            kw = {"client": client} if kind == "dask" else {"workers": workers}
            res = precompute(hs, out, pairs, p=p, chunk_size=chunk_size, progress=progress, **kw)
            if res.computed != int(pairs[0].size):
                raise InputError(explain(f"benchmark cache {out} was not empty",
                                         expected=f"{pairs[0].size} pairs computed", received=str(res.computed),
                                         fix="pass an empty out_dir"))
            runs[kind].append((res.pairs_per_s, res.seconds))
            caches.append(out)
    return runs, caches


def _compare(caches: list) -> dict:
    """Whether every cache has the first one's shard bytes and table; its shard count and versions."""
    ref_bytes = _shard_bytes(caches[0])
    ref = DistanceCache.open(caches[0]).read()
    identical = True
    for c in caches[1:]:
        t = DistanceCache.open(c).read()
        identical &= _shard_bytes(c) == ref_bytes and all(
            np.array_equal(a, b) for a, b in ((t.i, ref.i), (t.j, ref.j), (t.value, ref.value)))
    return {"identical": bool(identical), "shards": len(ref_bytes),
            "versions": DistanceCache.open(caches[0]).manifest["versions"]}


def _summary(runs: list) -> dict:
    rates = [r for r, _ in runs]
    return {"pairs_per_s": statistics.median(rates), "seconds": statistics.median(s for _, s in runs),
            "runs": [round(x, 1) for x in rates]}


def run_dask_benchmark(data, n_pairs: int = 4000, *, workers: int = 2, chunk_size: int = 256, seed: int = 0,
                       p: int = 2, repeats: int = 1, out_dir=None, progress: bool = False, client=None,
                       dask_config: dict | None = None) -> dict:
    """Time precompute on a Dask LocalCluster and on the local process pool; check both caches are identical.

    Parameters
    ----------
    data : HistogramSet, str or path
        Histograms (e.g. ``load_dataset("mnist-8k-images-idx3-ubyte.gz")``).
    n_pairs : int
        Random pairs (one plan, seeded, used by both executors).
    workers : int
        Local pool processes, and Dask worker processes (one thread each).
    chunk_size : int
        Pairs per shard (and per task).
    repeats : int
        Runs per executor, alternating; medians are reported.
    out_dir : path, optional
        Where the caches are written (default: a temporary directory, removed afterwards).
    client : distributed.Client, optional
        Use this cluster instead of starting a LocalCluster of ``workers`` processes.
    dask_config : dict, optional
        Dask settings for the LocalCluster it starts (``dask.config.set`` keys); default: Dask's defaults.

    Returns
    -------
    dict
        ``pool`` and ``dask``: ``pairs_per_s`` (median), ``seconds`` (median), ``runs`` (every rate);
        ``ratio`` (Dask / pool pairs per second), ``identical`` (every cache has the same shard bytes and
        table), ``shards``, ``cluster_start_s``, ``load_before``/``load_after`` (1, 5, 15 min load averages),
        ``hardware``, ``versions``, and the settings.
    """
    from ..exact._dask import _distributed
    from ._hardware import hardware

    _distributed()  # a clear error, with the install command, when Dask is missing
    import distributed

    hs = load_dataset(data)  # a data set as it is, or a file
    n_pairs, workers, chunk_size, repeats = (check_pos_int(name, v, example=2) for name, v in (
        ("n_pairs", n_pairs), ("workers", workers), ("chunk_size", chunk_size), ("repeats", repeats)))
    i, j = plan_pairs(hs, n_pairs, seed=seed)
    load_before = _load()
    with _cache_root(out_dir) as root:
        with _cluster(client, workers, dask_config) as (client, cluster_start):
            runs, caches = _alternate(hs, (i, j), root, client, workers=workers, repeats=repeats, p=p,
                                      chunk_size=chunk_size, progress=progress)
        same = _compare(caches)
    pool, dask = _summary(runs["pool"]), _summary(runs["dask"])
    return {
        "dataset": f"{hs.name} ({hs.n} histograms × {hs.k} bins)", "pairs": int(i.size), "workers": int(workers),
        "chunk_size": int(chunk_size), "repeats": int(repeats), "p": int(p), "seed": int(seed),
        "pool": pool, "dask": dask, "ratio": dask["pairs_per_s"] / pool["pairs_per_s"],
        "identical": same["identical"], "shards": same["shards"], "caches_compared": len(caches),
        "cluster_start_s": cluster_start, "load_before": load_before, "load_after": _load(),
        "dask_config": dict(dask_config or {}),
        "hardware": hardware(), "versions": {**same["versions"], "dask": distributed.__version__},
        "platform": platform.platform(),
    }


def format_dask_benchmark(r: dict) -> str:
    """A plain-text table of :func:`run_dask_benchmark`'s result."""
    rows = [("local process pool", r["pool"]), ("Dask LocalCluster", r["dask"])]
    lines = [f"precompute throughput: {r['pairs']} pairs of {r['dataset']}, chunk {r['chunk_size']}, "
             f"{r['workers']} workers, {r['repeats']} run(s) each (median)",
             f"{'executor':<22}{'workers':>8}{'seconds':>10}{'pairs/s':>10}{'vs pool':>9}"]
    for name, s in rows:
        lines.append(f"{name:<22}{r['workers']:>8}{s['seconds']:>10.2f}{s['pairs_per_s']:>10.0f}"
                     f"{s['pairs_per_s'] / r['pool']['pairs_per_s']:>8.2f}×")
    lines.append(f"caches identical: {'yes' if r['identical'] else 'NO'} ({r['caches_compared']} caches, "
                 f"{r['shards']} shards each, compared byte for byte)")
    lines.append(f"cluster start + warm-up (not timed above): {r['cluster_start_s']:.1f} s; "
                 f"load average before {r['load_before']}, after {r['load_after']}")
    if r.get("dask_config"):
        lines.append("Dask settings: " + ", ".join(f"{k}={v}" for k, v in r["dask_config"].items()))
    lines.append(f"hardware: {r['hardware']}")
    return "\n".join(lines)
