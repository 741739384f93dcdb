"""``wassembed bench clouds``: trained point-cloud models against linear optimal transport and the exact solver.

On the pairs of a test cache (clouds never used for training), every row reports accuracy against the exact
values (Pearson r, MSE, mean relative error), the exact solves it cost, and its speed on new pairs:

* **exact**: :class:`~wassembed.exact.CloudSolver` (``ot.emd2``), pairs per CPU second;
* **LOT**: :class:`~wassembed.exact.CloudLOT` (reference fitted on the training cache's clouds, one solve per
  cloud), with the linear correction ``a·d + b`` fitted on :data:`CORRECTION_PAIRS` of the training cache's
  pairs, as a method on a fixed
  set: each new cloud costs one exact solve against the reference, a new pair two;
* each **model**: its held-out metrics (:func:`wassembed.evaluate`), the exact solves of its training cache
  (pairs + per-cloud LOT targets), its training wall time (``info``), and paired ``distance`` per CPU second.

All times are CPU seconds of this process (``time.process_time``), on ``threads`` torch threads.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..exact import CloudLOT, CloudSolver, DistanceCache
from ..exact._teacher import read_lot_targets
from ..metrics import regression_metrics
from ._hardware import hardware

__all__ = ["CORRECTION_PAIRS", "format_clouds_benchmark", "run_clouds_benchmark"]

#: training pairs LOT's two-number correction is fitted on (the first ones of the cache)
CORRECTION_PAIRS = 2000


def _metrics(pred: np.ndarray, y: np.ndarray) -> dict:
    m = regression_metrics(pred, y)
    return {k: float(m[k]) for k in ("pearson", "mse", "mean_relative_error")}


def _lot_row(train, test, lot_points: int, seed: int) -> dict:
    """LOT fitted on the training cache's clouds, corrected on its pairs, scored on the test pairs."""
    data, tr, te = train.data, train.read(), test.read()
    fit_rows = np.unique(np.concatenate([tr.i, tr.j]))
    t = time.process_time()
    lot = CloudLOT(n_points=lot_points, seed=seed).fit(data.subset(fit_rows))
    ref_s = time.process_time() - t
    rows = np.unique(np.concatenate([fit_rows, te.i, te.j]))
    t = time.process_time()
    E = lot.transform(data.subset(rows))
    per_solve = (time.process_time() - t) / rows.size
    pos = lambda a: np.searchsorted(rows, a)
    d = lambda i, j: ((E[pos(i)] - E[pos(j)]) ** 2).sum(1)
    fit = slice(0, min(len(tr), CORRECTION_PAIRS))
    a, b = np.polyfit(d(tr.i[fit], tr.j[fit]), tr.value[fit], 1)
    n_fit = fit.stop
    return {"name": f"LOT (CloudLOT, {lot_points} reference points)", "solves": int(rows.size) + n_fit,
            "solves_note": f"{rows.size} clouds (one each) + {n_fit} training pairs for the correction",
            **_metrics(a * d(te.i, te.j) + b, te.value), "reference_cpu_s": ref_s,
            "pairs_per_cpu_s": 1.0 / (2 * per_solve)}


def _model_row(path: str, test, speed_pairs: np.ndarray) -> dict:
    import wassembed

    model = wassembed.load(path)
    ev = wassembed.evaluate(model, test)
    info = model.info.get("training", {})
    where = model.info.get("cache_path")  # as given at training time (relative to where it ran)
    cache = DistanceCache.open(where) if where and (Path(where) / "manifest.json").exists() else None
    n_lot = len(read_lot_targets(cache) or ()) if cache is not None else 0
    n_pairs = len(cache.read()) if cache is not None else None
    clouds = test.data
    A, B = clouds.subset(speed_pairs[0]), clouds.subset(speed_pairs[1])
    model.distance(A.subset(range(8)), B.subset(range(8)), warn_ood=False)  # warm-up
    t = time.process_time()
    model.distance(A, B, warn_ood=False)
    speed = speed_pairs.shape[1] / (time.process_time() - t)
    note = (f"{n_pairs} pairs + {n_lot} LOT targets" if cache is not None
            else f"training cache {where} not found from here")
    return {"name": str(path), "solves": None if n_pairs is None else n_pairs + n_lot, "solves_note": note,
            **{k: float(ev[k]) for k in ("pearson", "mse", "mean_relative_error")},
            "train_wall_s": info.get("wall_seconds"), "distilled": (info.get("distillation") or {}).get("used"),
            "epochs_run": info.get("epochs_run"), "pairs_per_cpu_s": speed}


def run_clouds_benchmark(train_cache, test_cache, models=(), *, lot_points: int = 64, speed_pairs: int = 1000,
                         threads: int = 1, seed: int = 0) -> dict:
    """Rows of the table (see the module docstring) for the caches and model paths given."""
    import torch

    torch.set_num_threads(threads)
    train, test = DistanceCache.open(train_cache), DistanceCache.open(test_cache)
    te = test.read()
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(te), min(speed_pairs, len(te)), replace=False)
    pairs = np.stack([te.i[pick], te.j[pick]])
    solver, clouds = CloudSolver(2), test.data
    t = time.process_time()
    solver.solve_pairs(clouds, pairs[0], pairs[1])
    exact = {"name": "exact (CloudSolver, ot.emd2)", "pairs_per_cpu_s": pairs.shape[1] / (time.process_time() - t)}
    rows = [_lot_row(train, test, lot_points, seed)] + [_model_row(m, test, pairs) for m in models]
    return {"train_cache": str(train_cache), "test_cache": str(test_cache), "test_pairs": len(te),
            "target_mean": float(te.value.mean()), "target_var": float(te.value.var()), "exact": exact,
            "rows": rows, "threads": threads, "hardware": hardware()}


def format_clouds_benchmark(r: dict) -> str:
    """The table of :func:`run_clouds_benchmark` (markdown)."""
    lines = [f"test pairs: {r['test_pairs']} (mean W2² {r['target_mean']:.3g}, variance {r['target_var']:.3g}); "
             f"CPU seconds, {r['threads']} torch thread(s); {r['hardware']}",
             "", "| method | exact solves | r | MSE | mean rel. err | new pairs / CPU s | notes |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for row in r["rows"]:
        note = row["solves_note"]
        if row.get("train_wall_s") is not None:
            note += f"; trained {row['train_wall_s']:.0f} s wall, {row['epochs_run']} pair epochs" + \
                    (", distilled" if row.get("distilled") else "")
        solves = "–" if row["solves"] is None else f"{row['solves']:,}"
        lines.append(f"| {row['name']} | {solves} | {row['pearson']:.4f} | {row['mse']:.4g} | "
                     f"{row['mean_relative_error']:.3f} | {row['pairs_per_cpu_s']:,.0f} | {note} |")
    lines.append(f"| {r['exact']['name']} | – | 1 | 0 | 0 | {r['exact']['pairs_per_cpu_s']:,.0f} | |")
    return "\n".join(lines)
