"""Out-of-distribution benchmark: what each score flags, and what the check costs a paired ``distance``.

:func:`run_ood_benchmark` measures, in one run, for a trained model:

* **detection**: the fraction of images each score flags at ``level`` (threshold: the quantile of the images
  held out at training, as served), on unseen images of the training distribution (false alarms), on images
  of another data set, on the unseen images inverted (``max − x``) and on uniform noise; and the AUROC of
  unseen against foreign images. Scores: the served ``"pca"`` (default) and ``"reconstruction"`` (the
  earlier default) with the model's stored thresholds (other candidate scores, latent-space ones and
  ``"pca"`` with other ``q``, are compared by the research script ``benchmarks/ood_candidates.py``);
* **cost**: CPU microseconds per image that each score adds to a ``distance`` (served ``"pca"``:
  :meth:`ood_score` less the input validation; ``"reconstruction"``: less :meth:`embed`, i.e. the decoder
  pass); and pairs per second of ``distance`` on independent
  pairs of unseen images, with the default check, with the reconstruction check and without a check, against
  exact ``ot.emd2`` (on the first pairs), in CPU time (the ratios that hold on a shared machine) and in wall
  time, on ``threads`` torch threads, in alternating rounds (the fastest of each kept);
* **estimate errors**: the mean relative error of ``distance`` against exact values on pairs (foreign image,
  unseen image) whose inputs a score flags or lets through, and on pairs of unseen images.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from ..data import as_weights
from ..errors import InputError, explain, param
from ..exact._pairs import parse_range
from ._baselines import exact_values, timed
from ._hardware import hardware
from ._serve import _as_images

__all__ = ["auroc", "format_ood_benchmark", "run_ood_benchmark"]

SERVED = ("pca", "reconstruction")
#: the timed ``distance`` calls: (label, warn_ood)
CHECKS = (("default (warn_ood=True)", True), ("warn_ood='reconstruction'", "reconstruction"),
          ("warn_ood=False", False))


def auroc(negatives, positives) -> float:
    """Area under the ROC curve of ``positives`` (larger scores) against ``negatives`` (Mann-Whitney, ties 1/2).

    Examples
    --------
    >>> auroc([0, 1, 2], [3, 4]), auroc([0, 1], [0, 1])
    (1.0, 0.5)
    """
    from scipy.stats import rankdata

    neg, pos = np.asarray(negatives, np.float64), np.asarray(positives, np.float64)
    r = rankdata(np.concatenate([neg, pos]))[neg.size:]
    return float((r.sum() - pos.size * (pos.size + 1) / 2) / (neg.size * pos.size))


def _load(model):
    """The model (a path is loaded), on the CPU."""
    from ..serve import WassersteinEmbedding, load

    emb = model if isinstance(model, WassersteinEmbedding) else load(model)
    return emb.to("cpu")


def _sets(X, u, F, ood_name, seed):
    """The scored image sets: unseen, foreign, inverted unseen, uniform noise (normalised by the model)."""
    U = X[u]
    noise = np.random.default_rng(seed).random((min(1000, u.size), *X.shape[1:]))
    return {"unseen (false alarms)": U, ood_name: F, "unseen inverted": U.max(axis=(1, 2), keepdims=True) - U,
            "uniform noise": noise}


def _score_row(name, kind, scores: dict, threshold, seconds, n, ood_name, default=False) -> dict:
    """One row of the detection table: flagged fractions per set, AUROC (first set against ``ood_name``)."""
    names = list(scores)
    return {"name": name, "kind": kind, "default": default, "threshold": float(threshold),
            "flagged": {s: float((v > threshold).mean()) for s, v in scores.items()},
            "auroc": auroc(scores[names[0]], scores[ood_name]), "us_per_image": 1e6 * seconds / n}


def _served_rows(emb, sets, ood_name, level):
    """Rows of the served scores, at the model's stored thresholds."""
    from ..serve._ood import default_score

    rows, unseen = [], next(iter(sets.values()))
    emb.embed(unseen[:8])  # warm-up
    base = {"pca": min(_clocks(emb.histograms, unseen)[2] for _ in range(3)),   # validation only
            "reconstruction": min(_clocks(emb.embed, unseen)[2] for _ in range(3))}  # validation and encoder
    for score in SERVED:
        if not _has(emb, score):
            continue
        thr = emb.ood_threshold(level, score=score)
        emb.ood_score(unseen[:8], score=score)  # warm-up
        t = max(0.0, min(_clocks(emb.ood_score, unseen, score=score)[2] for _ in range(3)) - base[score])
        got = {s: emb.ood_score(v, score=score) for s, v in sets.items()}
        rows.append(_score_row(f"served '{score}'", "served", got, thr, t, len(unseen), ood_name,
                               default=score == default_score(emb.calibration)))
    return rows


def _has(emb, score) -> bool:
    """Whether the model can compute ``score`` and holds its held-out images' scores."""
    from ..serve._ood import has_reference, resolve_score

    try:
        resolve_score(emb.calibration, score)
    except InputError:
        return False
    return has_reference(emb.calibration, score)


def _clocks(fn, *args, **kw):
    """``(fn(*args, **kw), wall seconds, CPU seconds of this process)``."""
    c = time.process_time()
    out, t = timed(fn, *args, **kw)
    return out, t, time.process_time() - c


def _speed(emb, X, u, n_pairs, n_exact, repeats, seed):
    """Pairs/s (wall and CPU time) of exact OT and of ``distance`` with each check, on independent pairs of
    unseen images, in ``repeats`` alternating rounds (each times every method once; the fastest kept)."""
    rng = np.random.default_rng(seed + 1)
    i, j = rng.choice(u, n_pairs), rng.choice(u, n_pairs)
    w = as_weights(X.reshape(X.shape[0], -1))[0]
    XI, XJ = X[i], X[j]
    checks = [(label, warn) for label, warn in CHECKS if not isinstance(warn, str) or _has(emb, warn)]
    wall, cpu = ({label: np.inf for label in ["exact", *dict(checks)]} for _ in range(2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _, warn in checks:
            emb.distance(XI[:8], XJ[:8], warn_ood=warn)  # warm-up
        for _ in range(repeats):
            runs = [("exact", n_exact, _clocks(exact_values, w, i[:n_exact], j[:n_exact], emb.ground_cost(), None))]
            runs += [(label, n_pairs, _clocks(emb.distance, XI, XJ, warn_ood=warn)) for label, warn in checks]
            for label, n, (_, t, c) in runs:
                wall[label], cpu[label] = min(wall[label], t / n), min(cpu[label], c / n)
    exact = runs[0][2][0][0]
    rows = [{"method": "exact POT emd2" if label == "exact" else "wassembed distance",
             "check": "–" if label == "exact" else label, "pairs_per_s": 1 / wall[label],
             "pairs_per_cpu_s": 1 / cpu[label], "speedup": cpu["exact"] / cpu[label],
             "speedup_wall": wall["exact"] / wall[label]} for label in wall]
    pred = emb.distance(XI[:exact.size], XJ[:exact.size], warn_ood=False)
    return rows, float(np.mean(np.abs(pred - exact) / exact)), int(exact.size)


def _errors(emb, X, u, F, n, level, seed):
    """Mean relative errors on (foreign, unseen) pairs that each served score flags or lets through."""
    rng = np.random.default_rng(seed + 2)
    a, b = rng.choice(F.shape[0], n), rng.choice(u, n)
    both = as_weights(np.concatenate([F[a].reshape(n, -1), X[b].reshape(n, -1)]))[0]
    exact, _ = exact_values(both, np.arange(n), n + np.arange(n), emb.ground_cost(), None)
    rel = np.abs(emb.distance(F[a], X[b], warn_ood=False) - exact) / exact
    out = {"pairs": int(n), "mean_relative_error": float(rel.mean()), "by_score": {}}
    for score in SERVED:
        if _has(emb, score):
            thr = emb.ood_threshold(level, score=score)
            flag = (emb.ood_score(F[a], score=score) > thr) | (emb.ood_score(X[b], score=score) > thr)
            out["by_score"][score] = {
                "flagged": int(flag.sum()), "flagged_error": float(rel[flag].mean()) if flag.any() else None,
                "passed": int((~flag).sum()), "passed_error": float(rel[~flag].mean()) if (~flag).any() else None}
    return out


def run_ood_benchmark(images, model, ood_images, *, unseen, ood_name: str = "foreign images",
                      n_pairs: int = 10_000, n_exact: int = 200, n_error_pairs: int = 150,
                      level: float = 0.99, repeats: int = 3, threads: int = 1, seed: int = 0, log=None) -> dict:
    """Detection, cost and estimate errors of the out-of-distribution scores (see the module docstring).

    Parameters
    ----------
    images : HistogramSet or ndarray (n, H, W)
        The training distribution's images (those the model's ``calibration["train_images"]`` index).
    model : WassersteinEmbedding or path
        A trained model.
    ood_images : HistogramSet or ndarray (m, H, W)
        Images of another distribution, on the same grid.
    unseen : str
        Index range ``"A:B"`` of ``images`` the model never saw (neither trained nor held out on).
    ood_name : str
        How the tables name ``ood_images``.
    n_pairs, n_exact, n_error_pairs : int
        Timed independent pairs; the first ``n_exact`` of them timed with exact OT; (foreign, unseen) pairs
        with exact values for the errors (0: skipped).
    level : float
        Quantile of the held-out scores that flags an input.
    repeats : int
        Alternating timed rounds of exact OT and of each ``distance`` (the fastest of each is kept).
    threads : int
        torch threads (restored afterwards).
    seed : int
    log : callable, optional
        Progress messages.

    Returns
    -------
    dict
        ``hardware``, ``threads``, ``level``, ``sets`` (name → count), ``scores`` (rows), ``speed`` (rows),
        ``in_distribution_error``, ``exact_pairs``, ``errors``.
    """
    import torch

    say = log or (lambda msg: None)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        emb, X, F = _load(model), _as_images(images), _as_images(ood_images)
        if F.shape[1:] != X.shape[1:]:
            raise InputError(explain("the foreign images have another shape", expected=f"(m, {X.shape[1]}, "
                                     f"{X.shape[2]})", received=f"{F.shape}", fix="resample them to the grid"))
        u = parse_range(unseen, X.shape[0], what="unseen")
        if np.isin(u, np.asarray((emb.calibration or {}).get("train_images", []))).any():
            raise InputError(explain(f"{param('unseen')} holds training images", expected="images the model never saw",
                                     received=unseen, fix="pass a range outside the training cache's images"))
        sets = _sets(X, u, F, ood_name, seed)
        say("served scores")
        scores = _served_rows(emb, sets, ood_name, level)
        say("speed")
        speed, in_err, n_ex = _speed(emb, X, u, n_pairs, n_exact, repeats, seed)
        say("errors")
        errs = _errors(emb, X, u, F, n_error_pairs, level, seed) if n_error_pairs else None
    finally:
        torch.set_num_threads(old)
    return {"hardware": hardware(), "threads": threads, "level": level,
            "sets": {s: len(v) for s, v in sets.items()}, "scores": scores, "speed": speed,
            "in_distribution_error": in_err, "exact_pairs": n_ex, "errors": errs, "time": time.time()}


def detection_table(sets, scores: list[dict]) -> list[str]:
    """The markdown lines of the detection table: per score, the share flagged in each of ``sets``, AUROC, cost."""
    sets = list(sets)
    lines = ["| score | " + " | ".join(f"flagged: {s}" for s in sets) + " | AUROC | µs/image |",
             "|---|" + "---:|" * (len(sets) + 2)]
    for s in scores:
        name = s["name"] + (" (default)" if s["default"] else "")
        lines.append(f"| {name} | " + " | ".join(f"{100 * s['flagged'][k]:.2f}%" for k in sets)
                     + f" | {s['auroc']:.4f} | {s['us_per_image']:.1f} |")
    return lines


def format_ood_benchmark(r: dict) -> str:
    """Markdown tables of :func:`run_ood_benchmark`'s result."""
    lines = [f"Hardware: {r['hardware']}; torch threads {r['threads']}; level {r['level']}",
             "Images: " + ", ".join(f"{s} {n}" for s, n in r["sets"].items()), "",
             *detection_table(r["sets"], r["scores"])]
    lines += ["", "µs/image: CPU time a score adds per input of `distance` (served 'pca': `ood_score` less input "
              "validation; 'reconstruction': less `embed`, i.e. the decoder pass).", "",
              "| method | OOD check | pairs per CPU second | × exact | pairs/s (wall) | × exact (wall) |",
              "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {s['method']} | {s['check']} | {s['pairs_per_cpu_s']:,.0f} | {s['speedup']:.1f} | "
              f"{s['pairs_per_s']:,.0f} | {s['speedup_wall']:.1f} |" for s in r["speed"]]
    lines.append(f"\nMean relative error of `distance` on {r['exact_pairs']} pairs of unseen images: "
                 f"{100 * r['in_distribution_error']:.1f}%")
    e = r["errors"]
    if e:
        lines += [f"On {e['pairs']} pairs (foreign image, unseen image): {100 * e['mean_relative_error']:.1f}%", "",
                  "| score | pairs flagged | their error | pairs let through | their error |",
                  "|---|---:|---:|---:|---:|"]
        pct = lambda v: "–" if v is None else f"{100 * v:.1f}%"
        lines += [f"| '{k}' | {v['flagged']} | {pct(v['flagged_error'])} | {v['passed']} | {pct(v['passed_error'])} |"
                  for k, v in e["by_score"].items()]
    return "\n".join(lines)
