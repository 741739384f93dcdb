"""Two baselines fitted on a few exact training pairs: linear OT and a regression on sliced bounds.

Both are fitted on the same ``P`` exact training pairs :math:`(a_t, b_t)`, drawn among at most ``F``
training-side images (images a learned model trained on, never an accuracy image), with
:math:`y_t = W_2^2(\\mu_{a_t}, \\mu_{b_t})` from :class:`~wassembed.exact.ExactSolver`; both are then served on
the benchmark's unseen accuracy pairs.

**LOT** (:class:`~wassembed.exact.LinearOT`): the reference :math:`\\sigma` is the mean of the training-side
histograms; each image :math:`\\mu` gets one exact solve :math:`\\sigma \\to \\mu` and the embedding
:math:`e = (\\sqrt{r_k}\\, T(y_k))_k`; then

.. math:: \\widehat{W}_2^2(\\mu_a, \\mu_b) = \\alpha \\|e_a - e_b\\|^2 + \\beta ,

with :math:`(\\alpha, \\beta)` fitted by least squares on the training pairs. A new pair costs two exact LOT
solves (one per input) and a dot product; fitting costs :math:`F + P` exact solves (the ``F`` images' LOT
solves and the ``P`` pair solves).

**Sliced regression.** For ``L`` random unit directions :math:`\\theta_l` (seeded) and a pair of histograms
:math:`\\mu = \\sum_i a_i \\delta_{x_i}`, :math:`\\nu = \\sum_j b_j \\delta_{z_j}` (nonzero bins only), the 1-D
optimal plan :math:`\\pi_l` between the projections :math:`\\theta_l^\\top x` and :math:`\\theta_l^\\top z` is the
monotone (quantile) coupling, computed exactly by merging the two cumulative weight sequences in sorted
order. Four features follow:

.. math:: \\mathrm{SW}^2 = \\frac{1}{L} \\sum_l c_l, \\quad \\mathrm{MaxSW}^2 = \\max_l c_l, \\quad
          \\mathrm{LSW}^2 = \\frac{1}{L} \\sum_l C_l, \\quad \\mathrm{minSWGG}^2 = \\min_l C_l,

with :math:`c_l = \\sum \\pi_l(x, z)\\, (\\theta_l^\\top (x - z))^2` (the 1-D :math:`W_2^2`) and
:math:`C_l = \\sum \\pi_l(x, z)\\, \\|x - z\\|^2` (the lifted plan evaluated with the full squared Euclidean
cost). A projection is 1-Lipschitz, so :math:`\\mathrm{SW}^2 \\le \\mathrm{MaxSW}^2 \\le W_2^2`; every
:math:`\\pi_l` is a coupling of :math:`\\mu` and :math:`\\nu`, so :math:`W_2^2 \\le \\mathrm{minSWGG}^2 \\le
\\mathrm{LSW}^2`. The estimate is the unconstrained linear regression

.. math:: \\widehat{W}_2^2 = \\beta_0 + \\beta_1 \\mathrm{SW}^2 + \\beta_2 \\mathrm{MaxSW}^2
          + \\beta_3 \\mathrm{LSW}^2 + \\beta_4 \\mathrm{minSWGG}^2 ,

fitted by ordinary least squares (free intercept, coefficients of any sign) on the ``P`` exact training
pairs. This follows the idea of Nguyen, Nguyen & Ho, "Fast Estimation of Wasserstein Distances via
Regression on Sliced Wasserstein Distances" (ICLR 2026): regress the Wasserstein distance on sliced lower
bounds and lifted upper bounds; it is an implementation written for this benchmark, not the authors' code
(their models, slicing distributions and powers may differ). A new pair needs no exact solve: ``L`` sorts of
each input's projections and one merge per direction.
"""

from __future__ import annotations

import time

import numpy as np

from ._serve_sections import row

__all__ = ["directions", "fit_regression", "lot_sliced_rows", "predict_regression", "sliced_features",
           "training_pairs"]

#: the feature names of :func:`sliced_features`, in column order
FEATURES = ("SW2^2", "MaxSW2^2", "LSW2^2", "minSWGG2^2")


def directions(n: int, dim: int, seed: int) -> np.ndarray:
    """``n`` random unit vectors ``(n, dim)`` (uniform on the sphere; seeded)."""
    g = np.random.default_rng(seed).standard_normal((n, dim))
    return g / np.linalg.norm(g, axis=1, keepdims=True)


def _pair_features(xa, wa, xb, wb, thetas) -> np.ndarray:
    """``(SW², MaxSW², LSW², minSWGG²)`` of one pair (points ``(k, d)`` with weights ``(k,)``, nonzero)."""
    pa, pb = thetas @ xa.T, thetas @ xb.T  # (L, ka), (L, kb)
    oa, ob = np.argsort(pa, axis=1), np.argsort(pb, axis=1)
    ca, cb = np.cumsum(wa[oa], axis=1), np.cumsum(wb[ob], axis=1)
    ca /= ca[:, -1:]
    cb /= cb[:, -1:]
    ka, kb = ca.shape[1], cb.shape[1]
    cat = np.concatenate([ca, cb], axis=1)
    merged = np.argsort(cat, axis=1, kind="stable")  # two sorted runs: a linear-time merge
    mass = np.diff(np.take_along_axis(cat, merged, axis=1), axis=1, prepend=0.0)
    # the merged interval r (mass > 0) couples a's point of rank (a-breakpoints before r) with b's likewise
    from_a = merged < ka
    ra = np.cumsum(from_a, axis=1) - from_a
    rb = np.arange(ka + kb) - ra
    ia = np.take_along_axis(oa, np.minimum(ra, ka - 1), axis=1)
    ib = np.take_along_axis(ob, np.minimum(rb, kb - 1), axis=1)
    diff = xa[ia] - xb[ib]  # (L, ka + kb, d): the coupled points' differences
    one_d = (mass * np.einsum("lmd,ld->lm", diff, thetas) ** 2).sum(1)
    lifted = (mass * np.einsum("lmd,lmd->lm", diff, diff)).sum(1)
    return np.array([one_d.mean(), one_d.max(), lifted.mean(), lifted.min()])


def sliced_features(w: np.ndarray, i, j, coords: np.ndarray, thetas: np.ndarray) -> np.ndarray:
    """Sliced lower and lifted upper bounds of :math:`W_2^2` for the pairs ``(w[i[t]], w[j[t]])``.

    Parameters
    ----------
    w : ndarray, shape (n, k)
        Histograms (rows sum to 1).
    i, j : array-like of int, shape (m,)
        The pairs.
    coords : ndarray, shape (k, d)
        Bin coordinates (e.g. :func:`~wassembed.bench._baselines.grid_coords`).
    thetas : ndarray, shape (L, d)
        Unit directions (:func:`directions`).

    Returns
    -------
    ndarray, shape (m, 4)
        Columns ``SW², MaxSW², LSW², minSWGG²`` (see the module docstring): the first two are lower bounds,
        the last two upper bounds of :math:`W_2^2`.
    """
    out = np.empty((len(i), len(FEATURES)), dtype=np.float64)
    for t, (a, b) in enumerate(zip(i, j)):
        ia, ib = np.flatnonzero(w[a]), np.flatnonzero(w[b])
        out[t] = _pair_features(coords[ia], w[a][ia], coords[ib], w[b][ib], thetas)
    return out


def fit_regression(F: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares coefficients ``(β0, β1, ...)`` of :math:`y \\approx \\beta_0 + F \\beta`."""
    A = np.column_stack([np.ones(len(F)), F])
    coef, *_ = np.linalg.lstsq(A, np.asarray(y, dtype=np.float64), rcond=None)
    return coef


def predict_regression(F: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """:math:`\\beta_0 + F \\beta` for features ``F (m, p)`` and coefficients ``(p + 1,)``."""
    return coef[0] + F @ coef[1:]


def training_pairs(train: np.ndarray, n_pairs: int, n_images: int, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(images, a, b)``: at most ``max(n_images, 2)`` of ``train`` (at least 2 images) and ``n_pairs`` pairs
    ``(images[a], images[b])`` of distinct images among them."""
    images = rng.choice(np.asarray(train, dtype=np.int64), size=min(max(int(n_images), 2), len(train)),
                        replace=False)
    a = rng.integers(0, images.size, n_pairs)
    b = (a + rng.integers(1, images.size, n_pairs)) % images.size
    return images, a, b


def _lot_row(w, coords, train, images, a, b, y, i, j, exact, solve_seconds: float):
    """The LOT row: fit (reference, correction), then serve the accuracy pairs (2 LOT solves per pair)."""
    from ..exact import LinearOT

    t0 = time.perf_counter()
    lot = LinearOT(coords).fit(w[train])
    E = lot.transform(w[images])
    lot.fit_correction(E, a, b, y)
    fit_seconds = solve_seconds + time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = lot.distance(lot.transform(w[i]), lot.transform(w[j]))
    t = time.perf_counter() - t0
    r = row(f"LOT, reference = mean of {len(train)} training images", "independent", len(i), t, pred, exact,
            note=f"2 exact LOT solves per new pair ({2 * len(i) / t:,.0f} solves/s, reference "
                 f"{lot.reference_.size} bins); linear correction a·d + b on {len(a)} training pairs",
            exact_solves=images.size + len(a))
    r.update(fit_seconds=fit_seconds, correction=list(lot.correction_))
    return r


def _regression_row(w, coords, images, a, b, y, i, j, exact, n_projections, seed, solve_seconds: float):
    """The sliced-regression row: features of the training pairs, least squares, then the accuracy pairs."""
    thetas = directions(n_projections, coords.shape[1], seed)
    t0 = time.perf_counter()
    coef = fit_regression(sliced_features(w, images[a], images[b], coords, thetas), y)
    fit_seconds = solve_seconds + time.perf_counter() - t0
    sliced_features(w, i[:2], j[:2], coords, thetas)  # warm-up
    t0 = time.perf_counter()
    pred = predict_regression(sliced_features(w, i, j, coords, thetas), coef)
    t = time.perf_counter() - t0
    r = row(f"sliced regression ({n_projections} dir.)", "independent", len(i), t, pred, exact,
            note=f"β0 + β·(SW², MaxSW², LSW², minSWGG²) least squares on {len(a)} training pairs; "
                 "no solve for new pairs", exact_solves=len(a))
    r.update(fit_seconds=fit_seconds, coefficients=dict(zip(("intercept",) + FEATURES, map(float, coef))))
    return r


def lot_sliced_rows(w, coords, M, train, i, j, exact, *, fit_pairs: int = 1000, fit_images: int = 200,
                    n_projections: int = 100, seed: int = 0, say=lambda msg: None) -> list:
    """The LOT and sliced-regression rows of the serving benchmark (see the module docstring).

    Parameters
    ----------
    w : ndarray, shape (n, k)
        Histograms of every image.
    coords : ndarray, shape (k, d)
        Bin coordinates; ``M`` is their squared Euclidean cost ``(k, k)``.
    train : ndarray of int
        Training-side images (at least 2): the LOT reference is their mean; the fitting pairs are drawn
        among ``fit_images`` of them.
    i, j, exact : ndarray, shape (m,)
        The unseen accuracy pairs and their exact values.
    fit_pairs, fit_images, n_projections, seed
        Exact training pairs, images they are drawn among, sliced directions, seed.

    Returns
    -------
    list of dict
        Two rows (``method, mode, pairs, seconds, pairs_per_s, mse, pearson, mean_relative_error, note,
        exact_solves``) with ``fit_seconds`` (exact pair solves included) and the fitted coefficients.
    """
    from ..exact import ExactSolver

    rng = np.random.default_rng(seed + 7)
    images, a, b = training_pairs(train, fit_pairs, fit_images, rng)
    say(f"baselines: {len(a)} exact training pairs among {images.size} training images")
    t0 = time.perf_counter()
    y = ExactSolver(M, 2).solve_pairs(w, images[a], images[b])
    solve_seconds = time.perf_counter() - t0
    say("baselines: LOT")
    rows = [_lot_row(w, coords, train, images, a, b, y, i, j, exact, solve_seconds)]
    say("baselines: sliced regression")
    rows.append(_regression_row(w, coords, images, a, b, y, i, j, exact, n_projections, seed, solve_seconds))
    return rows
