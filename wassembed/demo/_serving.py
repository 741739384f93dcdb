"""Step 4a of the demo: serving speed against exact POT, and kNN with exact re-ranking against brute force.

Each step measures and returns numbers (and the arrays its figure draws); the wording is in
:mod:`wassembed.demo._text`. Only the public API is used.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ._fit import UnseenPairs
from ._setup import DemoSetup, timed
from ._text import speed_notes

__all__ = ["Neighbours", "serving_speed", "knn_search", "knn_accuracy"]


def _emd2_loop(wa, wb, M) -> np.ndarray:
    """Exact W₂² with ``ot.emd2``, one pair at a time."""
    import ot

    return np.array([ot.emd2(a, b, M) for a, b in zip(wa, wb)], dtype=np.float64)


def serving_speed(setup: DemoSetup, model, pairs: UnseenPairs, rng: np.random.Generator) -> dict:
    """Pairs per second of ``model.distance`` and ``model.cdist`` against ``ot.emd2``, measured in this run.

    ``distance`` runs on the test pairs; ``cdist`` on test images × training images, with the exact rate on
    as many random pairs of those (drawn from ``rng``) as the exact timing of ``distance`` uses.

    Returns
    -------
    dict
        Rates, seconds and speed-ups, ``exact_check_max_abs_diff`` (``ot.emd2`` against the cache) and
        ``notes`` (how it was timed).
    """
    import torch

    W, M = setup.weights, np.array(setup.hs.ground_cost(2))
    m_ex = min(setup.sizes["exact_timing_pairs"], pairs.i.size)
    t_ex, ex_vals = timed(_emd2_loop, W[pairs.i[:m_ex]], W[pairs.j[:m_ex]], M)
    exact_rate = m_ex / t_ex
    Xa, Xb = W[pairs.i], W[pairs.j]
    t_dist, _ = timed(lambda: model.distance(Xa, Xb, warn_ood=False), repeat=3)
    dist_rate = pairs.i.size / t_dist
    A, B = W[setup.test_idx], W[:setup.cut]
    t_cd, D = timed(lambda: model.cdist(A, B), repeat=3)
    cd_rate = D.size / t_cd
    ca = rng.integers(0, A.shape[0], m_ex)
    cb = rng.integers(0, B.shape[0], m_ex)
    t_ex2, _ = timed(_emd2_loop, A[ca], B[cb], M)
    exact_rate_cd = m_ex / t_ex2
    return {"exact_pot_pairs_per_s": exact_rate, "exact_timing_pairs": m_ex,
            "exact_check_max_abs_diff": float(np.max(np.abs(ex_vals - pairs.exact[:m_ex]))),
            "distance_pairs": int(pairs.i.size), "distance_seconds": t_dist, "distance_pairs_per_s": dist_rate,
            "distance_speedup": dist_rate / exact_rate,
            "cdist_shape": list(D.shape), "cdist_seconds": t_cd, "cdist_pairs_per_s": cd_rate,
            "exact_pot_cdist_pairs_per_s": exact_rate_cd, "cdist_speedup": cd_rate / exact_rate_cd,
            "cdist_exact_estimated_seconds": D.size / exact_rate_cd,
            "notes": speed_notes(str(model.device), torch.get_num_threads())}


@dataclass(frozen=True)
class Neighbours:
    """kNN of a few test images among training images: by embedding, and after exact re-ranking.

    ``queries`` and ``references`` are image indices; ``approx_*`` and ``exact_*`` are ``(queries, k)``
    positions in ``references`` and values (estimated, resp. exact W₂²); ``numbers`` go to the report.
    """

    queries: np.ndarray
    references: np.ndarray
    approx_idx: np.ndarray
    approx_values: np.ndarray
    exact_idx: np.ndarray
    exact_values: np.ndarray
    numbers: dict

    @property
    def k(self) -> int:
        """Neighbours per query."""
        return int(self.numbers["k"])


def _pick_queries(setup: DemoSetup, rng: np.random.Generator) -> np.ndarray:
    """One random test image per class (classes in order), thinned to ``knn_queries`` of them."""
    labels, test_idx = setup.labels, setup.test_idx
    q_idx = []
    for c in np.unique(labels[test_idx]):
        first = test_idx[labels[test_idx] == c]
        if first.size:
            q_idx.append(int(first[rng.integers(first.size)]))
    n = setup.sizes["knn_queries"]
    return np.array(q_idx[:: max(1, len(q_idx) // n)][:n], dtype=np.int64)


def knn_search(setup: DemoSetup, model, rng: np.random.Generator) -> Neighbours:
    """``model.kneighbors`` with and without exact re-ranking, checked against exact brute force.

    Returns
    -------
    Neighbours
        ``numbers``: queries, references, ``k``, the embedding's recall@k, whether the re-ranked values
        match brute force, the exact solves of each, and the seconds of the three searches.
    """
    import wassembed

    W, k = setup.weights, setup.sizes["knn_k"]
    q_idx = _pick_queries(setup, rng)
    ref = np.arange(min(setup.cut, 1400))  # brute force below solves every (query, reference) pair
    t_knn, approx = timed(lambda: model.kneighbors(W[q_idx], W[ref], k=k))
    t_rr, rer = timed(lambda: model.kneighbors(W[q_idx], W[ref], k=k, exact_rerank=True))
    solver = wassembed.ExactSolver(np.array(setup.hs.ground_cost(2)), 2)
    t0 = time.perf_counter()
    brute = np.stack([solver.solve_pairs(W, np.full(ref.size, q), ref) for q in q_idx])
    t_brute = time.perf_counter() - t0
    true_idx = np.argsort(brute, axis=1, kind="stable")[:, :k]
    a_val, a_idx = (np.asarray(a) for a in approx)
    e_val, e_idx = (np.asarray(a) for a in rer)
    true_vals = np.take_along_axis(brute, true_idx, 1)
    numbers = {"queries": q_idx.tolist(), "references": f"0:{ref.size}", "k": k,
               "approx_recall_at_k": float(np.mean([len(set(a) & set(t)) / k for a, t in zip(a_idx, true_idx)])),
               "reranked_values_match_brute_force": bool(np.allclose(e_val, true_vals, rtol=1e-9, atol=1e-12)),
               "exact_solves_reranking": int(rer.n_exact), "exact_solves_brute_force": int(brute.size),
               "seconds_approx": t_knn, "seconds_reranked": t_rr, "seconds_brute_force": t_brute}
    return Neighbours(queries=q_idx, references=ref, approx_idx=a_idx, approx_values=a_val, exact_idx=e_idx,
                      exact_values=e_val, numbers=numbers)


def knn_accuracy(setup: DemoSetup, model, k: int = 5) -> float:
    """Accuracy of the ``k``-NN vote (embedding distances only) classifying every test image."""
    cut, labels, test_idx = setup.cut, setup.labels, setup.test_idx
    idx_all = np.asarray(model.kneighbors(setup.weights[test_idx], setup.weights[:cut], k=k).indices)
    votes = labels[:cut][idx_all]
    pred_lab = np.array([np.bincount(v).argmax() for v in votes])
    return float(np.mean(pred_lab == labels[test_idx]))
