"""Benchmark of the exact stage (``wassembed bench exact``).

Measures, in one run on the same pairs: the naive loop (``ot.emd2`` per pair on the full ``k × k`` cost,
one process), the precompute stage with 1 worker and with all workers (wall time of the whole call: pool
start, solves, checksummed shard writes), and the largest difference between their values.
"""


from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from ..data import HistogramSet
from ..exact import precompute
from ..exact._executors import default_workers
from ..exact._pairs import random_pairs
from ._hardware import hardware

__all__ = ["format_exact_benchmark", "run_exact_benchmark"]


def run_exact_benchmark(data: HistogramSet, n_pairs: int = 2000, *, workers: int | None = None, seed: int = 0,
                        p: int = 2, chunk_size: int = 256, repeats: int = 3) -> dict:
    """Time the naive loop and the precompute stage on the same ``n_pairs`` pairs of ``data``.

    The three methods run in turn, ``repeats`` rounds, and each keeps its best round: on a shared machine the
    best round is the least disturbed one, and alternating keeps slow phases of the machine from favouring
    one method. Each precompute round fills a fresh cache (created before the timer starts: its one-off cost,
    writing the dataset into the cache, is reported as ``cache_setup_s``) and is timed as a whole call: plan,
    pool start, solves, checksummed atomic shard writes; the pairs alone (``lot=False``, as ``precompute
    --no-lot``: no per-image LOT targets), the work the naive loop does.

    Returns
    -------
    dict
        ``pairs``, ``naive_pairs_per_s``, ``one_worker_pairs_per_s``, ``all_workers_pairs_per_s``,
        ``workers``, ``speedup_one_worker`` (vs naive), ``parallel_efficiency``
        (all-workers rate / (workers × one-worker rate)), ``max_abs_diff``, ``mean_value``, ``hardware``.
    """
    import ot

    from ..exact import DistanceCache

    workers = workers or default_workers()
    i, j = random_pairs(np.arange(data.n), n_pairs, seed=seed)
    order = np.lexsort((j, i))  # cache rows are sorted by (i, j)
    M = np.array(data.ground_cost(p))
    w = data.weights
    best = {"naive": np.inf, "one": np.inf, "all": np.inf}
    diffs, setup = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            t0 = time.perf_counter()
            naive = np.array([ot.emd2(w[a], w[b], M) for a, b in zip(i, j)])
            best["naive"] = min(best["naive"], time.perf_counter() - t0)
            for label, nw in (("one", 1), ("all", workers)):
                out = Path(tmp) / f"{label}-{r}"
                t0 = time.perf_counter()
                DistanceCache.create(out, data, p)
                setup.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                precompute(data, out, (i, j), workers=nw, p=p, progress=False, chunk_size=chunk_size,
                           lot=False)  # the pairs alone, as the naive loop (precompute --no-lot)
                best[label] = min(best[label], time.perf_counter() - t0)
                t = DistanceCache.open(out).read()
                if not (np.array_equal(t.i, i[order]) and np.array_equal(t.j, j[order])):
                    raise AssertionError("the cache does not hold the requested pairs")
                diffs.append(float(np.max(np.abs(t.value - naive[order]))))
    r_naive, r_one, r_all = (n_pairs / best[k] for k in ("naive", "one", "all"))
    return {"pairs": int(n_pairs), "k": data.k, "p": p, "repeats": repeats, "naive_pairs_per_s": r_naive,
            "one_worker_pairs_per_s": r_one, "all_workers_pairs_per_s": r_all, "workers": int(workers),
            "speedup_one_worker": r_one / r_naive, "parallel_efficiency": r_all / (workers * r_one),
            "max_abs_diff": max(diffs), "mean_value": float(naive.mean()), "cache_setup_s": float(np.median(setup)),
            "load_average": list(os.getloadavg()), "hardware": hardware()}


def format_exact_benchmark(r: dict) -> str:
    """A Markdown table of :func:`run_exact_benchmark`'s result, with the targets."""
    ok = lambda b: "yes" if b else "NO"
    return "\n".join([
        f"Exact stage, {r['pairs']} pairs, k = {r['k']} bins, p = {r['p']} (mean value {r['mean_value']:.3f}); "
        f"{r['hardware']}; best of {r['repeats']} alternating rounds; load average "
        f"{', '.join(f'{x:.1f}' for x in r['load_average'])} at the end",
        "",
        "| method | pairs/s | vs naive | target met |",
        "|---|---:|---:|---|",
        f"| naive loop: `ot.emd2` on the full cost, 1 process | {r['naive_pairs_per_s']:.0f} | 1.00× | |",
        f"| precompute, 1 worker | {r['one_worker_pairs_per_s']:.0f} | {r['speedup_one_worker']:.2f}× | "
        f"≥ 2.0×: {ok(r['speedup_one_worker'] >= 2.0)} |",
        f"| precompute, {r['workers']} workers | {r['all_workers_pairs_per_s']:.0f} | "
        f"{r['all_workers_pairs_per_s'] / r['naive_pairs_per_s']:.2f}× | parallel efficiency "
        f"{r['parallel_efficiency']:.2f} (≥ 0.85: {ok(r['parallel_efficiency'] >= 0.85)}) |",
        "",
        f"max |difference| between the three: {r['max_abs_diff']:.2e} (≤ 1e-9: {ok(r['max_abs_diff'] <= 1e-9)}); "
        f"one-off cache set-up (dataset written into the cache, not timed above): {r['cache_setup_s']:.2f} s",
    ])
