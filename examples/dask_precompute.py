"""Precompute exact W2² on a Dask cluster (here a LocalCluster) and check it against local processes.

``precompute(..., client=client)`` runs the same chunks as the local process pool on the cluster's
workers: the dataset is scattered once, workers return values, and this process writes the checksummed
shards. The cache is identical whichever executor filled it, and a rerun resumes (nothing is recomputed).

For a real cluster, start ``dask scheduler`` and ``dask worker tcp://HOST:8786`` on the machines, then pass
``--scheduler tcp://HOST:8786`` (or ``wassembed precompute ... --scheduler tcp://HOST:8786`` on the command
line).

Run::

    python examples/dask_precompute.py --tiny
    python examples/dask_precompute.py --pairs 50000 --workers 2
"""

from __future__ import annotations

import argparse
import logging
import shutil
import time
from pathlib import Path

import numpy as np

import wassembed
from wassembed.exact import precompute


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="600 pairs, seconds")
    ap.add_argument("--pairs", type=int, default=None, help="pairs to compute [default: 20000]")
    ap.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    ap.add_argument("--scheduler", default=None, help="address of a running scheduler instead of a LocalCluster")
    ap.add_argument("--work", default="examples-output")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    from distributed import Client, LocalCluster

    hs = wassembed.load_dataset("digits")
    n_pairs = args.pairs or (600 if args.tiny else 20000)
    work = Path(args.work)
    dask_cache, local_cache = work / "cache-dask", work / "cache-local"
    for c in (dask_cache, local_cache):  # start from scratch so that the timings mean something
        shutil.rmtree(c, ignore_errors=True)

    if args.scheduler:
        client, cluster = Client(args.scheduler), None
    else:
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=logging.ERROR)
        client = Client(cluster)
    try:
        n_workers = len(client.scheduler_info()["workers"])
        r = precompute(hs, dask_cache, pairs=n_pairs, seed=args.seed, client=client, progress=False, lot=False)
        print(f"Dask ({n_workers} workers): {r.computed:,} pairs in {r.seconds:.2f} s "
              f"({r.pairs_per_s:,.0f} pairs/s), executor {r.executor!r}")
        again = precompute(hs, dask_cache, pairs=n_pairs, seed=args.seed, client=client, progress=False,
                           lot=False)
        print(f"rerun: {again.already_cached:,} already cached, {again.computed} computed")
    finally:
        client.close()
        if cluster is not None:
            cluster.close()

    t0 = time.perf_counter()
    r2 = precompute(hs, local_cache, pairs=n_pairs, seed=args.seed, workers=args.workers, progress=False,
                    lot=False)
    print(f"local process pool ({r2.workers} workers): {r2.computed:,} pairs in {time.perf_counter() - t0:.2f} s "
          f"({r2.pairs_per_s:,.0f} pairs/s)")
    a, b = wassembed.DistanceCache.open(dask_cache).read(), wassembed.DistanceCache.open(local_cache).read()
    same = np.array_equal(a.i, b.i) and np.array_equal(a.j, b.j)
    print(f"same pairs: {same}; max |difference| of values: {np.max(np.abs(a.value - b.value)):.1e}")
    if not same or not np.array_equal(a.value, b.value):
        raise SystemExit("the Dask and local caches differ")


if __name__ == "__main__":
    main()
