"""Accuracy against time (``wassembed bench accuracy``): unseen MSE against the wall seconds a recipe costs.

For each budget of exact training pairs, on the same training images and the same unseen test pairs:

- **defaults**: ``precompute`` (pairs, then one LOT solve per image of the plan) + ``train``, both with their
  defaults; the seconds are the two calls' wall time;
- **pairs only**: the same pairs, ``train(distill_epochs=0)``; the seconds are the pair solves' share of the
  precompute (the LOT solves excluded) + its training;
- **LOT itself**: the cached per-image LOT embeddings with a·d + b fitted on the training pairs
  (``wassembed.exact.LinearOT``); the seconds are the precompute's (its pairs fit the correction); it needs
  one more exact solve per new input, timed and reported per image;
- any extra recipe: ``train`` keyword overrides (e.g. a preset), and ``precompute`` ones (``lot_copies``,
  ``sampling``, ``lot_images``, ``block_size``: then the recipe has a cache of its own, timed as well).

Test pairs are exact W2² between images never used in training (another range, or another file).
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import numpy as np

from ..data import HistogramSet
from ..exact import DistanceCache, LinearOT, precompute
from ..exact._teacher import read_lot_targets
from ..metrics import regression_metrics
from ._hardware import hardware

__all__ = ["PRECOMPUTE_OPTIONS", "format_accuracy_benchmark", "run_accuracy_benchmark"]

#: recipe options that go to ``precompute`` (a recipe with any of them gets a cache of its own)
PRECOMPUTE_OPTIONS = ("lot_copies", "sampling", "lot_images", "block_size")


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
        Extra recipes: name -> keyword overrides of :func:`wassembed.train` (e.g. ``{"mlp": {"model": "mlp"}}``)
        and of :func:`wassembed.precompute` (:data:`PRECOMPUTE_OPTIONS`, e.g. ``{"no copies": {"lot_copies":
        0}}``).
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
        caches: dict = {}

        def cache_for(pre_kw: dict, n=n, caches=caches):
            """The cache of this budget for these precompute options (made once, timed once)."""
            key = tuple(sorted(pre_kw.items()))
            if key not in caches:
                out = work / ("train-" + "-".join([str(n)] + [f"{k}={v}" for k, v in key]))
                log(f"bench accuracy: {n} pairs: precompute {dict(key) or 'defaults'}")
                t0 = time.perf_counter()
                r = precompute(train_data, out, n, images=train_images, seed=seed, progress=False, workers=workers,
                               **pre_kw)
                caches[key] = (DistanceCache.open(out), r, time.perf_counter() - t0)
            return caches[key]

        for name, kw in {"defaults": {}, "pairs only": {"distill_epochs": 0, "lot": False}, **extra}.items():
            pre_kw = {k: v for k, v in kw.items() if k in PRECOMPUTE_OPTIONS}
            train_kw = {k: v for k, v in kw.items() if k not in PRECOMPUTE_OPTIONS and k != "lot"}
            cache, r, pre = cache_for(pre_kw)
            if kw.get("lot") is False:  # the pairs' share of the precompute: no LOT solve is needed
                pre = r.seconds
            log(f"bench accuracy: {n} pairs: train {name}")
            t0 = time.perf_counter()
            model = train(cache, progress=False, seed=seed, **train_kw)
            seconds = time.perf_counter() - t0
            rows.append({"pairs": n, "lot_images": r.lot_requested, "lot_copies": r.lot_copies_computed,
                         "fresh_cache": r.computed == n, "recipe": name, "precompute_s": pre, "train_s": seconds,
                         "total_s": pre + seconds, **_metrics(model, test)})
        log(f"bench accuracy: {n} pairs: LOT itself")
        cache, r, pre = cache_for({})
        # LOT needs the pairs (its a·d + b) and the originals' solves, not the copies': their share of the time
        pre = r.seconds + r.lot_seconds * (r.lot_computed - r.lot_copies_computed) / max(r.lot_computed, 1)
        rows.append({"pairs": n, "lot_images": r.lot_requested, "lot_copies": 0, "fresh_cache": r.computed == n,
                     "recipe": "LOT itself", "precompute_s": pre, "train_s": 0.0, "total_s": pre,
                     **_lot_row(cache, test)})
    return {"rows": rows, "test_pairs": test.read().i.size, "train_images": train_images,
            "test_images": test_images, "hardware": hardware(), "load_average": list(os.getloadavg())}


def format_accuracy_benchmark(res: dict) -> str:
    """A Markdown table of :func:`run_accuracy_benchmark`'s result."""
    lines = [f"Unseen accuracy against wall seconds ({res['test_pairs']} test pairs among images "
             f"{res['test_images']}; training images {res['train_images']}); {res['hardware']}; load average "
             f"{', '.join(f'{x:.1f}' for x in res['load_average'])} at the end", "",
             "| pairs | recipe | images with targets (+ copies) | precompute s | training s | total s | Pearson r "
             "| MSE | mean rel. err |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in res["rows"]:
        extra = (f" (+ {1e3 * r['seconds_per_new_input']:.1f} ms per new input)"
                 if "seconds_per_new_input" in r else "")
        cached = "" if r["fresh_cache"] else " (cache reused: not timed)"
        targets = "–" if r["recipe"] == "pairs only" else f"{r['lot_images']:,}" + (
            f" + {r['lot_copies']:,}" if r["lot_copies"] else "")
        lines.append(f"| {r['pairs']} | {r['recipe']}{extra} | {targets} | {r['precompute_s']:.0f}{cached} | "
                     f"{r['train_s']:.0f} | "
                     f"{r['total_s']:.0f} | {r['pearson']:.4f} | {r['mse']:.3f} | "
                     f"{100 * r['mean_relative_error']:.1f} % |")
    return "\n".join(lines)
