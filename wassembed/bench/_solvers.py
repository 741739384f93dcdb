"""The exact solver's two paths side by side (``wassembed bench exact``, the solver and end-to-end tables).

- **Solver table**: POT (``ot.emd2`` on the two histograms' nonzero bins) against the grid path (the 3-partite
  network simplex, :class:`~wassembed.exact.GridSolver`) on the same pairs, one thread, rounds alternating;
  the same for per-image LOT solves against the data's mean. Each data set is measured at its own size and
  resampled to larger grids (bilinear, then rounded to integer pixels: images as a camera or a resampling tool
  would give them).
- **End-to-end table**: ``precompute`` of pairs and per-image LOT targets (all workers; no elastic copies: the
  same work as before the grid path) with the POT path only (``method="pot"``, what every solve cost before)
  and with the default path, on the same plan; the largest relative difference between the two caches' pair
  values.

Times are CPU seconds of this process for the solver table (the machine may be shared: a ratio measured in
one run, rounds alternating, is what counts) and wall seconds for the end-to-end table.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from ..data import HistogramSet
from ..exact import ExactSolver, LinearOT, precompute
from ..exact._executors import default_workers
from ..exact._pairs import random_pairs
from ..exact._rational import rational_scales
from ._hardware import hardware

__all__ = ["format_solver_benchmark", "resample_images", "run_end_to_end", "run_solver_benchmark"]


def resample_images(images: np.ndarray, size: int) -> np.ndarray:
    """Images ``(n, H, W)`` resampled to ``(n, size, size)``: bilinear, clipped at 0, rounded to integers."""
    from scipy.ndimage import zoom

    x = np.asarray(images, dtype=np.float64)
    if x.shape[1:] == (size, size):
        return np.rint(x).astype(np.int64)
    out = [np.rint(np.clip(zoom(im, (size / im.shape[0], size / im.shape[1]), order=1), 0, None)) for im in x]
    return np.stack(out).astype(np.int64)


def _cpu(fn):
    t0 = time.process_time()
    out = fn()
    return out, time.process_time() - t0


def _solver_row(name: str, images: np.ndarray, n_pairs: int, n_lot: int, rounds: int, seed: int) -> dict:
    keep = images.reshape(len(images), -1).sum(1) > 0
    hs = HistogramSet.from_images(images[keep])
    w = hs.weights
    grid = ExactSolver.for_support(grid=hs.grid)
    pot = ExactSolver.for_support(grid=hs.grid, method="pot")
    scales = rational_scales(w)
    i, j = random_pairs(np.arange(hs.n), n_pairs, seed=seed)
    t = {"pot": 0.0, "grid": 0.0, "lot_pot": 0.0, "lot_grid": 0.0}
    lot_grid, lot_pot = LinearOT(hs).fit(w), LinearOT(hs, method="pot").fit(w)
    rows = np.random.default_rng(seed).choice(hs.n, min(n_lot, hs.n), replace=False)
    pot.solve_pairs(w, i[:2], j[:2])  # warm-up, not timed: imports (POT's is slow), first allocations
    grid.solve_pairs(w, i[:2], j[:2], scales=scales)
    lot_pot.transform(w[rows[:1]]), lot_grid.transform(w[rows[:1]])
    for _ in range(rounds):
        vp, dt = _cpu(lambda: pot.solve_pairs(w, i, j))
        t["pot"] += dt
        vg, dt = _cpu(lambda: grid.solve_pairs(w, i, j, scales=scales))
        t["grid"] += dt
        _, dt = _cpu(lambda: lot_pot.transform(w[rows]))
        t["lot_pot"] += dt
        _, dt = _cpu(lambda: lot_grid.transform(w[rows]))
        t["lot_grid"] += dt
    m, r = rounds * len(i), rounds * len(rows)
    return {"data": name, "grid": f"{hs.grid[0]}×{hs.grid[1]}", "nonzero_bins": float((w > 0).sum(1).mean()),
            "reference_bins": int(lot_grid.reference_.size), "pairs": len(i), "lot_images": len(rows),
            "pot_pairs_per_s": m / t["pot"], "grid_pairs_per_s": m / t["grid"], "pair_speedup": t["pot"] / t["grid"],
            "max_rel_diff": float(np.max(np.abs(vg - vp) / np.maximum(np.abs(vp), 1e-300))),
            "pot_lot_per_s": r / t["lot_pot"], "grid_lot_per_s": r / t["lot_grid"],
            "lot_speedup": t["lot_pot"] / t["lot_grid"],
            # a LOT solve's cost in POT pair solves (the teacher's price)
            "grid_lot_in_pot_pairs": (t["lot_grid"] / r) / (t["pot"] / m),
            "pot_lot_in_pot_pairs": (t["lot_pot"] / r) / (t["pot"] / m)}


def run_solver_benchmark(datasets: dict[str, np.ndarray], *, sizes=(56, 64), n_pairs: int = 300,
                         n_lot: int = 40, images: int = 400, rounds: int = 2, seed: int = 0,
                         log=lambda msg: None) -> dict:
    """The solver table: POT vs the grid path on each data set, at its size and resampled to ``sizes``.

    Parameters
    ----------
    datasets : dict of str to ndarray, shape (n, H, W)
        Integer images by name (the first ``images`` of each are used).
    sizes : tuple of int
        Resampled grid sides.
    n_pairs, n_lot : int
        Pairs (and LOT images) per data set and size; fewer at larger sizes (POT's solves grow fast), at least
        20 pairs and 5 images.
    rounds : int
        Alternating rounds (POT, grid, POT LOT, grid LOT); the times are summed.
    """
    out = []
    for name, imgs in datasets.items():
        imgs = np.asarray(imgs[:images])
        for size in (imgs.shape[1], *sizes):
            shrink = (imgs.shape[1] / size) ** 4  # POT's cost grows roughly with the square of the bins
            pairs, lots = max(20, int(n_pairs * shrink)), max(5, int(n_lot * shrink))
            log(f"bench exact: {name} at {size}×{size}, {pairs} pairs, {lots} LOT solves")
            out.append(_solver_row(name, resample_images(imgs, size), pairs, lots, rounds, seed))
    return {"rows": out, "rounds": rounds, "hardware": hardware(), "load_average": list(os.getloadavg())}


def run_end_to_end(data: HistogramSet, name: str, n_pairs: int, *, images: str | None = None, seed: int = 0,
                   workers: int | None = None) -> dict:
    """The default ``precompute`` (pairs + LOT targets) with POT only and with the default path: wall seconds."""
    from ..exact import DistanceCache
    from ..exact._teacher import read_lot_targets

    workers = workers or default_workers()
    res, caches = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in ("pot", "auto"):
            out = Path(tmp) / method
            DistanceCache.create(out, data)  # the data written into the cache: not timed (the same for both)
            t0 = time.perf_counter()
            r = precompute(data, out, n_pairs, images=images, seed=seed, workers=workers, progress=False,
                           method=method, lot_copies=0)  # the work of a precompute before copies existed
            res[method] = {"seconds": time.perf_counter() - t0, "pair_seconds": r.seconds,
                           "lot_seconds": r.lot_seconds, "pairs": r.computed, "lot_images": r.lot_computed}
            c = DistanceCache.open(out)
            caches[method] = (c.read(), read_lot_targets(c))
    (tp, lp), (tg, lg) = caches["pot"], caches["auto"]
    same = np.array_equal(tp.i, tg.i) and np.array_equal(tp.j, tg.j)
    return {"data": name, "n": data.n, "workers": workers, "pot": res["pot"], "auto": res["auto"],
            "speedup": res["pot"]["seconds"] / res["auto"]["seconds"], "same_pairs": same,
            "max_rel_diff": float(np.max(np.abs(tg.value - tp.value) / np.maximum(tp.value, 1e-300))),
            "same_reference": bool(np.array_equal(lp.reference, lg.reference)),
            "hardware": hardware(), "load_average": list(os.getloadavg())}


def format_solver_benchmark(solvers: dict | None, end_to_end: list[dict]) -> str:
    """Markdown tables of :func:`run_solver_benchmark` and :func:`run_end_to_end`, with the targets."""
    ok = lambda b: "yes" if b else "NO"
    lines = []
    if solvers:
        lines += [f"Exact solves, POT vs the grid path, one thread (CPU s of this process, {solvers['rounds']} "
                  f"alternating rounds); {solvers['hardware']}; load average "
                  f"{', '.join(f'{x:.1f}' for x in solvers['load_average'])} at the end", "",
                  "| data | grid | nonzero bins | POT pairs/s | grid pairs/s | ratio | max rel. diff | POT LOT/s | "
                  "grid LOT/s | ratio | grid LOT in POT pairs |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in solvers["rows"]:
            lines.append(f"| {r['data']} | {r['grid']} | {r['nonzero_bins']:.0f} | {r['pot_pairs_per_s']:.1f} | "
                         f"{r['grid_pairs_per_s']:.1f} | {r['pair_speedup']:.2f}× | {r['max_rel_diff']:.1e} | "
                         f"{r['pot_lot_per_s']:.2f} | {r['grid_lot_per_s']:.2f} | {r['lot_speedup']:.2f}× | "
                         f"{r['grid_lot_in_pot_pairs']:.2f} (POT: {r['pot_lot_in_pot_pairs']:.2f}) |")
        lines.append("")
    if end_to_end:
        lines += ["Default precompute (pairs + per-image LOT targets), end to end, POT only (`method=\"pot\"`) vs "
                  "the default path; wall seconds", "",
                  "| data | pairs | LOT images | workers | POT only | default | speed-up | max rel. diff of pairs |"
                  " same LOT reference |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        for r in end_to_end:
            lines.append(f"| {r['data']} | {r['pot']['pairs']} | {r['pot']['lot_images']} | {r['workers']} | "
                         f"{r['pot']['seconds']:.1f} s | {r['auto']['seconds']:.1f} s | {r['speedup']:.2f}× | "
                         f"{r['max_rel_diff']:.1e} (≤ 1e-12: {ok(r['max_rel_diff'] <= 1e-12)}) | "
                         f"{ok(r['same_reference'])} |")
    return "\n".join(lines)
