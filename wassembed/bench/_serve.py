"""Serving benchmark: learned distances against exact OT, Sinkhorn and sliced Wasserstein, side by side.

:func:`run_serve_benchmark` measures, in one run on the same image pairs,

* **exact** ``ot.emd2`` per pair (:class:`~wassembed.exact.ExactSolver`, nonzero bins only) — the reference;
* **Sinkhorn** ``ot.sinkhorn2`` per pair on the same nonzero-bin sub-problem and pixel² cost (``reg``
  reported; the value is the transport cost of the entropic plan, biased upward);
* **sliced** ``ot.sliced_wasserstein_distance`` on the weighted point clouds of nonzero pixels, squared
  to compare with W2² (no rescaling: it estimates a different quantity, expect a large relative error);
* **LOT** and **sliced regression** (:mod:`wassembed.bench._lot_sliced`): fitted on ``baseline_fit_pairs``
  exact pairs among training-side images (the trained models' training images, else images outside the
  accuracy block), then served on the accuracy pairs;
* **wassembed distance** (independent pairs: both inputs of every pair are validated, normalised and
  encoded) and **wassembed cdist** (``m × m`` matrix from raw images: embed once, then matrix products);

each with pairs/s, the exact solves it spent (a trained model: its training, validation and calibration pairs
and distilled images, from its training record), and MSE, Pearson r and mean relative error against the exact
values (errors only for trained models: untrained models are for speed). A scaling table compares exact and
approximate pairs/s at several grid sizes (MNIST resampled with ``scipy.ndimage.zoom``, negatives clipped),
with untrained models of the right input size. CPU figures use ``torch.set_num_threads(threads)`` (default 1).
"""


from __future__ import annotations

import os
import platform
import warnings
from typing import NamedTuple

import numpy as np

from ..data import HISTOGRAMS, DataSet, as_dataset, as_weights, make_ground_cost
from ..errors import InputError, explain
from ._baselines import exact_values, grid_coords, sinkhorn_values, sliced_values, timed
from ._lot_sliced import lot_sliced_rows
from ._serve_sections import coverage_section, rerank_section, scaling_section
from ._serve_sections import row as _row

__all__ = ["format_serve_benchmark", "run_serve_benchmark"]


def _as_images(images) -> np.ndarray:
    if isinstance(images, DataSet):
        return as_dataset(images, "images", kind=HISTOGRAMS).images()
    arr = np.asarray(images)
    if arr.ndim != 3:
        raise InputError(explain("the benchmark needs images", expected="an array (n, H, W) or a HistogramSet "
                                 "with a grid", received=f"shape {arr.shape}", fix="load MNIST with load_dataset"))
    return arr


def _models(model, grid, device):
    """[(name, WassersteinEmbedding, trained)] from a model, a path, a preset name, a list, or None."""
    from ..nn import ModelConfig, build_decoder, build_encoder
    from ..serve import WassersteinEmbedding, load

    items = ["paper", "fast"] if model is None else model if isinstance(model, (list, tuple)) else [model]
    out = []
    for m in items:
        if isinstance(m, WassersteinEmbedding):
            out.append((getattr(m.config, "name", "model"), m.to(device), True))
        elif isinstance(m, str) and m in ("paper", "fast", "mlp"):
            cfg = ModelConfig.preset(m, grid=grid)
            emb = WassersteinEmbedding(build_encoder(cfg, seed=0), build_decoder(cfg, seed=0), config=cfg, p=2,
                                       grid=grid, device=device)
            out.append((f"{m} (untrained)", emb, False))
        else:
            emb = load(m, device=device)
            out.append((f"{getattr(emb.config, 'name', 'model')} ({os.path.basename(str(m).rstrip('/'))})", emb, True))
    return out


class _Draw(NamedTuple):
    """The images of one run: accuracy pairs ``(i, j) = (Ap[ai], Bp[bj])`` inside the ``mp × mp`` block
    ``Ap × Bp`` of allowed images (``pool``, shuffled), and the timed ``m × m`` matrix ``A × B`` (any images)."""
    pool: np.ndarray
    mp: int
    Ap: np.ndarray
    Bp: np.ndarray
    ai: np.ndarray
    bj: np.ndarray
    i: np.ndarray
    j: np.ndarray
    m: int
    A: np.ndarray
    B: np.ndarray


def _banned(n: int, models, exclude) -> np.ndarray:
    """Images never drawn: the trained models' ``calibration["train_images"]`` ("auto") or ``exclude``."""
    banned = np.zeros(n, dtype=bool)
    if isinstance(exclude, str) and exclude == "auto":
        for _, emb, trained in models:
            ti = (emb.calibration or {}).get("train_images") if trained else None
            if ti is not None:
                banned[np.asarray(ti, dtype=np.int64)[np.asarray(ti) < n]] = True
    elif exclude is not None:
        banned[np.asarray(exclude, dtype=np.int64)] = True
    return banned


def _draw(n: int, banned: np.ndarray, matrix_size: int, n_pairs: int, rng) -> _Draw:
    """The accuracy pairs and the timed matrix (see :class:`_Draw`)."""
    pool = rng.permutation(np.flatnonzero(~banned))
    mp = int(min(matrix_size, pool.size // 2))
    Ap, Bp = pool[:mp], pool[mp:2 * mp]
    ai, bj = rng.integers(0, mp, n_pairs), rng.integers(0, mp, n_pairs)
    m = int(min(matrix_size, n // 2))
    perm = rng.permutation(n)
    return _Draw(pool, mp, Ap, Bp, ai, bj, Ap[ai], Bp[bj], m, perm[:m], perm[m:2 * m])


def _baseline_rows(w, d: _Draw, M, grid, *, sinkhorn_reg, sinkhorn_iter, n_projections, seed, say):
    """``(rows, exact values)`` of exact OT, Sinkhorn and sliced Wasserstein on the accuracy pairs."""
    n = d.i.size
    say(f"exact: {n} pairs")
    exact, t = exact_values(w, d.i, d.j, M, None)
    rows = [_row("exact POT emd2", "per pair", n, t, note="reference", exact_solves=n)]
    say("sinkhorn")
    sk, t, bad = sinkhorn_values(w, d.i, d.j, M, sinkhorn_reg, sinkhorn_iter)
    rows.append(_row(f"POT sinkhorn2 reg={sinkhorn_reg:g}", "per pair", n, t, sk, exact,
                     note=f"{bad} of {n} not converged in {sinkhorn_iter} iterations", exact_solves=0))
    say("sliced")
    sw, t = sliced_values(w, d.i, d.j, grid_coords(grid), n_projections, seed)
    rows.append(_row(f"POT sliced ({n_projections} proj.)²", "per pair", n, t, sw, exact,
                     note="SW2² (not rescaled)", exact_solves=0))
    return rows, exact


def _training_side(banned: np.ndarray, d: _Draw) -> np.ndarray:
    """Images the fitted baselines may use: the excluded (training) images, else those outside the accuracy
    block ``Ap ∪ Bp``."""
    return np.flatnonzero(banned) if banned.sum() >= 2 else d.pool[2 * d.mp:]


def _model_solves(emb) -> int | None:
    """Exact solves behind a trained model, from its training record: the pairs of its train, validation and
    calibration splits, plus one LOT solve per distilled image (None when not recorded)."""
    tr = (getattr(emb, "info", None) or {}).get("training") or {}
    split = tr.get("split") or {}
    if not all(k in split for k in ("train", "validation", "calibration")):
        return None
    distill = tr.get("distillation") or {}
    return int(split["train"] + split["validation"] + split["calibration"]
               + (distill.get("images", 0) if distill.get("used") else 0))


def _model_rows(name, emb, trained: bool, X, d: _Draw, exact, si, sj, say) -> list:
    """Rows of one learned model: paired distances on ``(si, sj)`` (with the OOD check when the model has
    its reference) and the ``m × m`` cdist; errors on the accuracy pairs for trained models."""
    say(f"wassembed {name}")
    emb.distance(X[d.i[:8]], X[d.j[:8]], warn_ood=False)  # warm-up
    pred = emb.distance(X[d.i], X[d.j], warn_ood=False)
    XI, XJ = X[si], X[sj]
    _, t = timed(emb.distance, XI, XJ, warn_ood=False)
    note = "" if trained else "untrained: speed only"
    solves = _model_solves(emb) if trained else None
    rows = [_row(f"wassembed distance [{name}]", "independent", si.size, t,
                 pred if trained else None, exact if trained else None, note=note, exact_solves=solves)]
    if trained and (emb.calibration or {}).get("train_recon") is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, t = timed(emb.distance, XI, XJ)
        rows.append(_row(f"wassembed distance [{name}]", "independent + OOD check", si.size, t,
                         note="default warn_ood=True: the model's default OOD score per input"))
    _, t = timed(emb.cdist, X[d.A], X[d.B])
    acc = emb.cdist(X[d.Ap], X[d.Bp])[d.ai, d.bj] if trained else None
    rows.append(_row(f"wassembed cdist [{name}]", f"{d.m}×{d.m} from images", d.m * d.m, t,
                     acc, exact if trained else None, note=note, exact_solves=solves))
    return rows


def _environment(threads, device: str) -> dict:
    import ot
    import torch

    return {"python": platform.python_version(), "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "torch": torch.__version__, "pot": ot.__version__, "torch_threads": threads, "device": device,
            "cuda": torch.cuda.get_device_name(0) if device.startswith("cuda") else None,
            "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}


def run_serve_benchmark(images, model=None, *, n_pairs: int = 200, n_speed_pairs: int = 10_000,
                        matrix_size: int = 2000, sinkhorn_reg: float = 1.0, sinkhorn_iter: int = 1000,
                        n_projections: int = 50, threads: int | None = 1, device: str = "cpu",
                        scaling_sizes=(14, 28, 56), scaling_images: int = 600, scaling_exact_pairs: int = 40,
                        scaling_speed_pairs: int = 2000, max_exact_seconds: float | None = 120.0,
                        exclude="auto", test_cache=None, levels=(0.8, 0.9, 0.95, 0.99), rerank_queries: int = 0,
                        rerank_refs: int = 1000, rerank_k: int = 10, rerank_levels=(0.9, 0.99, 0.999), seed: int = 0,
                        baseline_fit_pairs: int = 1000, baseline_fit_images: int = 200, log=None) -> dict:
    """Measure exact, Sinkhorn, sliced and learned distances on the same pairs (see the module docstring).

    Parameters
    ----------
    images : ndarray (n, H, W) or HistogramSet
        Raw images (e.g. MNIST); pairs are drawn among them.
    model : WassersteinEmbedding, model path, preset name ("paper", "fast"), a list of those, or None
        None: untrained "paper" and "fast" models (speed only).
    n_pairs : int
        Pairs with exact values (the accuracy set; also timed for exact/Sinkhorn/sliced).
    n_speed_pairs : int
        Independent pairs timed for the learned paired distance.
    matrix_size : int
        ``cdist`` of ``matrix_size × matrix_size`` raw images (timed); its accuracy is scored on a block of
        held-out images holding the accuracy pairs.
    sinkhorn_reg, sinkhorn_iter : Sinkhorn regularisation (pixel² units) and iteration limit.
    n_projections : int
        Projections of the sliced distance (and directions of the sliced regression).
    threads : int or None
        ``torch.set_num_threads`` during the run (restored after); None leaves it.
    device : "cpu" or "cuda"
        Where the learned models run.
    scaling_sizes : tuple of int
        Grid sizes of the scaling table (empty: skip it).
    max_exact_seconds : float, optional
        Stop timing exact solves (scaling table) after this long.
    exclude : "auto", array of int or None
        Image indices never drawn: "auto" excludes ``calibration["train_images"]`` of trained models.
    test_cache : path, optional
        A distance cache of pairs the models did not train on: for each trained model, accuracy on all its
        pairs and the coverage of ``interval(X, Y, level)`` at each of ``levels``.
    rerank_queries, rerank_refs, rerank_k, rerank_levels
        If ``rerank_queries > 0``: adaptive exact re-ranking (at each coverage level) of that many queries
        against ``rerank_refs`` references, compared with brute-force exact kNN
        (``rerank_queries × rerank_refs`` exact solves).
    baseline_fit_pairs, baseline_fit_images : int
        Exact training pairs of the LOT correction and the sliced regression, and the training-side images
        they are drawn among (0 pairs, or fewer than 2 such images: no LOT or sliced-regression row).
    log : callable, optional
        Progress messages (e.g. ``print``).

    Returns
    -------
    dict with ``environment``, ``settings``, ``rows`` (one per method), ``scaling``, ``coverage`` and
    ``rerank``.
    """
    import ot  # noqa: F401  (imported before any timing: POT's import, with its backends, is not a solve)
    import torch

    say = log or (lambda msg: None)
    X = _as_images(images)
    grid = (int(X.shape[1]), int(X.shape[2]))
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        models = _models(model, grid, device)
        rng = np.random.default_rng(seed)
        banned = _banned(X.shape[0], models, exclude)
        d = _draw(X.shape[0], banned, matrix_size, n_pairs, rng)
        M = make_ground_cost(grid=grid, p=2)
        w = as_weights(X, what="images")[0]
        rows, exact = _baseline_rows(w, d, M, grid, sinkhorn_reg=sinkhorn_reg,
                                     sinkhorn_iter=sinkhorn_iter, n_projections=n_projections, seed=seed, say=say)
        train = _training_side(banned, d)
        if baseline_fit_pairs > 0 and train.size >= 2:
            rows += lot_sliced_rows(w, grid_coords(grid), M, train, d.i, d.j, exact,
                                    fit_pairs=baseline_fit_pairs, fit_images=baseline_fit_images,
                                    n_projections=n_projections, seed=seed, say=say)
        si, sj = rng.choice(d.pool, n_speed_pairs), rng.choice(d.pool, n_speed_pairs)
        for name, emb, trained in models:
            rows += _model_rows(name, emb, trained, X, d, exact, si, sj, say)
        trained = [(n, e) for n, e, tr in models if tr]
        coverage = [] if test_cache is None else [coverage_section(n, e, test_cache, levels, say) for n, e in trained]
        rerank_pool = d.pool[2 * d.mp:] if d.pool.size > 2 * d.mp + rerank_queries else d.pool
        rerank = [] if not rerank_queries else [
            row for n, e in trained for row in rerank_section(n, e, X, rerank_pool, rerank_queries, rerank_refs,
                                                              rerank_k, M, rng, say, rerank_levels)]
        scaling = [] if not scaling_sizes else scaling_section(
            X[d.pool[:scaling_images]], scaling_sizes, scaling_exact_pairs, scaling_speed_pairs, max_exact_seconds,
            rng, say, lambda g: _models(["paper", "fast"], g, device))
    finally:
        torch.set_num_threads(old_threads)
    settings = {"n_pairs": n_pairs, "n_speed_pairs": n_speed_pairs, "matrix_size": d.m, "sinkhorn_reg": sinkhorn_reg,
                "sinkhorn_iter": sinkhorn_iter, "n_projections": n_projections, "seed": seed, "grid": grid,
                "excluded_images": int(banned.sum()), "exact_mean": float(exact.mean()),
                "baseline_fit_pairs": baseline_fit_pairs, "baseline_fit_images": baseline_fit_images,
                "models": [{"name": n, "trained": tr, "config": getattr(getattr(e, "config", None), "name", None)}
                           for n, e, tr in models]}
    return {"environment": _environment(threads, device), "settings": settings, "rows": rows, "scaling": scaling,
            "coverage": coverage, "rerank": rerank}


def _fmt(v, spec):
    return "–" if v is None else format(v, spec)


def format_serve_benchmark(result: dict) -> str:
    """Markdown tables of a :func:`run_serve_benchmark` result."""
    env, st = result["environment"], result["settings"]
    lines = [f"Hardware: {env['cpu_count']} CPU cores, torch threads {env['torch_threads']}, device {env['device']}"
             + (f" ({env['cuda']})" if env.get("cuda") else "") + f"; torch {env['torch']}, POT {env['pot']}"
             + (f"; load average at the end {env['load_average_1min']:.1f}" if env.get("load_average_1min") else ""),
             f"Accuracy pairs: {st['n_pairs']} random image pairs ({st['grid'][0]}×{st['grid'][1]}), exact W2² mean "
             f"{st['exact_mean']:.2f} pixel²; {st['excluded_images']} training images excluded", "",
             "| method | mode | pairs/s | exact solves | MSE | Pearson r | mean rel. err | note |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['method']} | {r['mode']} | {r['pairs_per_s']:,.0f} | {_fmt(r.get('exact_solves'), ',')} | "
                     f"{_fmt(r['mse'], '.3g')} | {_fmt(r['pearson'], '.4f')} | {_fmt(r['mean_relative_error'], '.1%')} "
                     f"| {r['note']} |")
    if result.get("scaling"):
        s0 = result["scaling"][0]
        lines += ["", f"Scaling (pairs/s; untrained models of the right input size; distance: {s0['distance_pairs']} "
                      f"independent pairs; cdist: {s0['cdist_size']}×{s0['cdist_size']} from images):", "",
                  "| grid | nonzero bins | exact pairs/s | paper distance | paper cdist | fast distance | "
                  "fast cdist |", "|---|---:|---:|---:|---:|---:|---:|"]
        for r in result["scaling"]:
            lines.append(f"| {r['grid']} | {r['nonzero_bins_mean']:.0f} | {r['exact_pairs_per_s']:,.1f} | "
                         f"{r['paper_distance_pairs_per_s']:,.0f} | {r['paper_cdist_pairs_per_s']:,.0f} | "
                         f"{r['fast_distance_pairs_per_s']:,.0f} | {r['fast_cdist_pairs_per_s']:,.0f} |")
    for c in result.get("coverage") or []:
        lv = [k[9:] for k in c if k.startswith("coverage_") and "smallest" not in k]
        lines += ["", f"Error bars of {c['model']} on {c['pairs']} unseen pairs of {c['cache']} (exact mean "
                      f"{c['exact_mean']:.2f}; MSE {c['mse']:.3g}, Pearson {c['pearson']:.4f}, mean rel. err "
                      f"{c['mean_relative_error']:.1%}):", "",
                  "| nominal | " + " | ".join(lv) + " |", "|---|" + "---:|" * len(lv),
                  "| coverage | " + " | ".join(f"{c['coverage_' + x]:.3f}" for x in lv) + " |",
                  "| mean width | " + " | ".join(f"{c['width_' + x]:.2f}" for x in lv) + " |",
                  "", f"At 0.9 on the quarter of smallest distances: coverage "
                      f"{c['coverage_0.9_smallest_quarter']:.3f}, mean width {c['width_0.9_smallest_quarter']:.2f}"
                      + (f"; inputs flagged out of distribution: {c['ood_fraction']:.1%}"
                         if c.get("ood_fraction") is not None else "")]
    if result.get("rerank"):
        r0 = result["rerank"][0]
        lines += ["", f"Exact re-ranking, k={r0['k']}, {r0['queries']} queries × {r0['references']} references "
                      f"(brute force: {r0['references']} exact solves per query, {r0['seconds_brute_force']:.1f} s):",
                  "", "| model | level | exact solves / query | same set as brute force | recall | seconds |",
                  "|---|---:|---:|---:|---:|---:|"]
        for r in result["rerank"]:
            lines.append(f"| {r['model']} | {r['level']:g} | {r['exact_per_query']:.1f} | {r['exact_sets_equal']:.0%} "
                         f"| {r['recall']:.3f} | {r['seconds_rerank']:.1f} |")
    return "\n".join(lines)
