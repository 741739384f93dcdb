"""Accuracy against time (``wassembed bench accuracy``): unseen MSE against the wall seconds a recipe costs.

For each budget of exact training pairs, on the same training images and the same unseen test pairs:

- **defaults**: ``precompute`` (pairs, then one LOT solve per image of the plan) + ``train``, both with their
  defaults; the seconds are the two calls' wall time;
- **pairs only**: the same pairs, ``train(distill_epochs=0)``; the seconds are the pair solves' share of the
  precompute (the LOT solves excluded) + its training;
- **LOT itself**: the cached per-image LOT embeddings with a·d + b fitted on the training pairs
  (``wassembed.exact.LinearOT``); the seconds are the precompute's (its pairs fit the correction); it needs
  one more exact solve per new input, timed and reported per image;
- any extra recipe ``name=OPTION=VALUE;...``: ``train`` with those keyword overrides (e.g. a preset).

Test pairs are exact W2² between images never used in training (another range, or another file).
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import numpy as np

from ..data import HistogramSet
from ..exact import DistanceCache, LinearOT, precompute, read_lot_targets
from ..metrics import regression_metrics
from ._hardware import hardware

__all__ = ["format_accuracy_benchmark", "run_accuracy_benchmark"]


def _lot_row(cache: DistanceCache, test: DistanceCache) -> dict:
    t, pairs, tp = read_lot_targets(cache), cache.read(), test.read()
    lot = LinearOT(cache.data, reference=t.reference)
    E = np.zeros((cache.data.n, t.embedding.shape[1]))
    E[t.index] = t.embedding
    fit = np.isin(pairs.i, t.index) & np.isin(pairs.j, t.index)
    lot.fit_correction(E, pairs.i[fit], pairs.j[fit], pairs.value[fit])
    new = np.union1d(tp.i, tp.j)
    F = np.zeros((test.data.n, E.shape[1]))
    t0 = time.perf_counter()
    F[new] = lot.transform(test.data.weights[new])  # one exact solve per unseen image
    per_input = (time.perf_counter() - t0) / new.size
    return {**regression_metrics(lot.distance(F[tp.i], F[tp.j]), tp.value), "seconds_per_new_input": per_input}


def _metrics(model, test: DistanceCache) -> dict:
    from ..serve import EvaluationWarning, evaluate

    with warnings.catch_warnings():  # test images of another file: unseen by construction, nothing to drop
        warnings.simplefilter("ignore", EvaluationWarning)
        return evaluate(model, test)


def run_accuracy_benchmark(train_data: HistogramSet, test_data: HistogramSet, *, train_images: str,
                           test_images: str, budgets=(3000, 6000, 12000), test_pairs: int = 10_000,
                           recipes: dict | None = None, work: str | os.PathLike = "accuracy-work",
                           workers: int | None = None, seed: int = 0, log=lambda msg: None) -> dict:
    """Unseen accuracy against wall seconds for each recipe and budget (see the module docstring).

    Parameters
    ----------
    train_data, test_data : HistogramSet
        Images to train on and images of the unseen test pairs (may be the same set: then ``train_images`` and
        ``test_images`` must not overlap).
    train_images, test_images : str
        Index ranges ``"A:B"``.
    budgets : sequence of int
        Exact training pairs per point of the curve.
    test_pairs : int
        Unseen exact pairs (solved once, kept in ``work``).
    recipes : dict, optional
        Extra recipes: name -> keyword overrides of :func:`wassembed.train` (e.g. ``{"mlp": {"model": "mlp"}}``).
    work : path
        Caches and models of the run (kept: a rerun reuses the caches, and times only what it computes).
    """
    from ..learn import train

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    log("bench accuracy: the unseen test pairs")
    test_out = work / "test"
    precompute(test_data, test_out, test_pairs, images=test_images, seed=seed + 1, lot=False, progress=False,
               workers=workers)
    test = DistanceCache.open(test_out)
    extra = recipes or {}
    rows = []
    for n in budgets:
        out = work / f"train-{n}"
        log(f"bench accuracy: {n} pairs: precompute")
        t0 = time.perf_counter()
        r = precompute(train_data, out, n, images=train_images, seed=seed, progress=False, workers=workers)
        pre = time.perf_counter() - t0
        cache = DistanceCache.open(out)
        fresh = r.computed == n  # a rerun found the cache: its times are not those of a precompute
        base = {"pairs": n, "lot_images": r.lot_requested, "fresh_cache": fresh}
        for name, kw in {"defaults": {}, "pairs only": {"distill_epochs": 0}, **extra}.items():
            log(f"bench accuracy: {n} pairs: train {name}")
            t0 = time.perf_counter()
            model = train(cache, progress=False, seed=seed, **kw)
            seconds = time.perf_counter() - t0
            pre_s = r.seconds if name == "pairs only" else pre
            rows.append({**base, "recipe": name, "precompute_s": pre_s, "train_s": seconds,
                         "total_s": pre_s + seconds, **_metrics(model, test)})
        log(f"bench accuracy: {n} pairs: LOT itself")
        rows.append({**base, "recipe": "LOT itself", "precompute_s": pre, "train_s": 0.0, "total_s": pre,
                     **_lot_row(cache, test)})
    return {"rows": rows, "test_pairs": test.read().i.size, "train_images": train_images,
            "test_images": test_images, "hardware": hardware(), "load_average": list(os.getloadavg())}


def format_accuracy_benchmark(res: dict) -> str:
    """A Markdown table of :func:`run_accuracy_benchmark`'s result."""
    lines = [f"Unseen accuracy against wall seconds ({res['test_pairs']} test pairs among images "
             f"{res['test_images']}; training images {res['train_images']}); {res['hardware']}; load average "
             f"{', '.join(f'{x:.1f}' for x in res['load_average'])} at the end", "",
             "| pairs | recipe | precompute s | training s | total s | Pearson r | MSE | mean rel. err |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in res["rows"]:
        extra = (f" (+ {1e3 * r['seconds_per_new_input']:.1f} ms per new input)"
                 if "seconds_per_new_input" in r else "")
        cached = "" if r["fresh_cache"] else " (cache reused: not timed)"
        lines.append(f"| {r['pairs']} | {r['recipe']}{extra} | {r['precompute_s']:.0f}{cached} | {r['train_s']:.0f} | "
                     f"{r['total_s']:.0f} | {r['pearson']:.4f} | {r['mse']:.3f} | "
                     f"{100 * r['mean_relative_error']:.1f} % |")
    return "\n".join(lines)
