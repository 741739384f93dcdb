"""The optional sections of the serving benchmark: interval coverage, exact re-ranking, scaling with grid size.

Each returns JSON-able rows for :func:`~wassembed.bench.run_serve_benchmark`'s result (``coverage``,
``rerank``, ``scaling``).
"""

from __future__ import annotations

import time

import numpy as np

from ..data import as_weights, make_ground_cost
from ._baselines import exact_values, timed

__all__ = ["coverage_section", "errors", "rerank_section", "row", "scaling_section"]


def errors(pred, exact) -> dict:
    """MSE, Pearson r and mean relative error of ``pred`` against ``exact``."""
    from ..metrics import regression_metrics

    m = regression_metrics(pred, exact)
    return {"mse": m["mse"], "pearson": m["pearson"], "mean_relative_error": m["mean_relative_error"]}


def row(method, mode, n, seconds, pred=None, exact=None, note="", exact_solves=None) -> dict:
    """One row of the main table: ``n`` pairs in ``seconds``, errors of ``pred`` against ``exact`` (when both
    are given) and the exact solves the method spent (None: not counted here)."""
    r = {"method": method, "mode": mode, "pairs": int(n), "seconds": float(seconds),
         "pairs_per_s": float(n / seconds) if seconds > 0 else float("inf"),
         "mse": None, "pearson": None, "mean_relative_error": None, "note": note,
         "exact_solves": None if exact_solves is None else int(exact_solves)}
    if pred is not None and exact is not None:
        r.update(errors(pred, exact))
    return r


def coverage_section(name, emb, cache_path, levels, say) -> dict:
    """Accuracy and interval coverage of ``emb`` on every pair of the cache at ``cache_path``."""
    from ..exact import DistanceCache

    say(f"coverage of {name} on {cache_path}")
    cache = DistanceCache.open(cache_path)
    t = cache.read()
    w = cache.data.weights
    out = {"model": name, "cache": str(cache_path), "pairs": int(t.value.size)}
    est = None
    for level in levels:
        r = emb.interval(w[t.i], w[t.j], level, warn_ood=False)
        est = r.estimate
        inside = (t.value >= r.lower) & (t.value <= r.upper)
        out[f"coverage_{level:g}"] = float(inside.mean())
        out[f"width_{level:g}"] = float(np.mean(r.upper - r.lower))
    small = t.value <= np.quantile(t.value, 0.25)
    r = emb.interval(w[t.i[small]], w[t.j[small]], 0.9, warn_ood=False)
    out["width_0.9_smallest_quarter"] = float(np.mean(r.upper - r.lower))
    out["coverage_0.9_smallest_quarter"] = float(np.mean((t.value[small] >= r.lower) & (t.value[small] <= r.upper)))
    out.update(errors(est, t.value))
    out["exact_mean"] = float(t.value.mean())
    out["ood_fraction"] = float(emb.is_ood(w[np.unique(np.concatenate([t.i, t.j]))]).mean()) \
        if (emb.calibration or {}).get("train_recon") is not None else None
    return out


def rerank_section(name, emb, X, pool, nq, nr, k, M, rng, say, levels) -> list:
    """Adaptive exact re-ranking of ``nq`` queries against ``nr`` references, against brute force."""
    from ..exact import ExactSolver

    sel = rng.permutation(pool)
    q, r = sel[:nq], sel[nq:nq + nr]
    say(f"re-ranking {name}: {nq} queries × {len(r)} references, brute force first")
    solver = ExactSolver(M, 2)
    w = as_weights(X[np.concatenate([q, r])])[0]
    t0 = time.perf_counter()
    E = np.array([[solver.solve(w[a], w[nq + b]) for b in range(len(r))] for a in range(nq)])
    t_brute = time.perf_counter() - t0
    truth = np.argsort(E, axis=1, kind="stable")[:, :k]
    out = []
    for level in levels:
        res, t_re = timed(emb.kneighbors, X[q], X[r], k=k, exact_rerank=True, level=level)
        same = [set(a) == set(b) for a, b in zip(truth, res.indices)]
        recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(truth, res.indices)])
        out.append({"model": name, "queries": nq, "references": int(len(r)), "k": k, "level": level,
                    "exact_per_query": float(res.n_exact / nq), "exact_sets_equal": float(np.mean(same)),
                    "recall": float(recall), "seconds_rerank": t_re, "seconds_brute_force": t_brute})
    return out


def scaling_section(X28, sizes, n_exact, n_speed, max_exact_seconds, rng, say, models) -> list:
    """Exact and learned pairs/s at each grid size of ``sizes`` (images resampled; ``models(grid)`` gives
    the untrained ``[(name, model, trained)]`` of that input size)."""
    from scipy.ndimage import zoom

    out = []
    for s in sizes:
        f = s / X28.shape[1]
        Xs = np.clip(zoom(X28.astype(np.float64), (1, f, f), order=1), 0, None)
        Xs = Xs[Xs.reshape(len(Xs), -1).sum(1) > 0]
        grid = (int(Xs.shape[1]), int(Xs.shape[2]))
        w = as_weights(Xs)[0]
        i, j = rng.integers(0, len(Xs), n_exact), rng.integers(0, len(Xs), n_exact)
        say(f"scaling {grid}: exact")
        vals, t = exact_values(w, i, j, make_ground_cost(grid=grid, p=2), max_exact_seconds)
        row = {"grid": f"{grid[0]}×{grid[1]}", "bins": grid[0] * grid[1],
               "nonzero_bins_mean": float((w > 0).sum(1).mean()), "exact_pairs_per_s": len(vals) / t,
               "exact_pairs_timed": len(vals)}
        si, sj = rng.integers(0, len(Xs), n_speed), rng.integers(0, len(Xs), n_speed)
        mm = min(len(Xs), 500)
        row["cdist_size"] = mm
        row["distance_pairs"] = n_speed
        for name, emb, _ in models(grid):
            key = name.split()[0]
            say(f"scaling {grid}: {key}")
            emb.distance(Xs[:4], Xs[4:8], warn_ood=False)
            _, t = timed(emb.distance, Xs[si], Xs[sj], warn_ood=False)
            row[f"{key}_distance_pairs_per_s"] = n_speed / t
            _, t = timed(emb.cdist, Xs[:mm], Xs[-mm:])
            row[f"{key}_cdist_pairs_per_s"] = mm * mm / t
        out.append(row)
    return out
