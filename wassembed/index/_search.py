"""Streaming k-nearest-neighbour search of a reference index, with exact re-ranking of the candidates.

**Estimates.** The references' embeddings are read ``references_per_block`` rows at a time. For queries
:math:`a = \\varphi(q) - c` and references :math:`b = \\varphi(r) - c`, each block costs one matrix product,
:math:`\\|a - b\\|^2 = \\|a\\|^2 + \\|b\\|^2 - 2\\, a \\cdot b` clamped at 0, then the model's
:class:`~wassembed.nn.LatentDistance` (the tile of :func:`~wassembed.serve._neighbors.cdist_into`). The centre
:math:`c` is the mean of *all* reference embeddings (computed in float64 at build time, stored in the
manifest), the centre the model's ``cdist`` and ``kneighbors`` subtract (there: the float32 mean of the
references given): distances are translation invariant, and centring keeps the float32 cancellation error
small. A running top-``C`` per query is merged after each block: memory is one tile of
``tile_size × references_per_block`` estimates plus ``(nq, C)`` candidates, never ``nq × n``.

**Re-ranking.** Each query's ``C`` best-estimated references, in order of (estimate, index), go through the
model's rule, :func:`~wassembed.serve._neighbors.exact_rerank` (fixed ``n_candidates``, or the adaptive rule
with conformal lower bounds), with the references' rows read from the memory-mapped file. The adaptive rule
solves candidates in order of estimate until the lower bound of the next one reaches the ``k``-th exact value;
when it would go past the ``C`` kept, the query is searched again with ``4 C`` candidates (exact values
already solved are reused). Every reference left out then has a lower bound at least the ``k``-th exact value,
the rule's own stopping condition; when ``C`` covers all references the answer is the in-memory one.
"""

from __future__ import annotations

import numpy as np
import torch

from ..nn import LatentDistance
from ..serve._neighbors import _tile, exact_rerank
from ._files import read_rows, take_rows

__all__ = ["RERANK_ROWS", "search", "stream_topc"]

#: most candidate rows read from the references at once while re-ranking (e.g. 8192 × 784 float64: 51 MB)
RERANK_ROWS = 8192


def stream_topc(ZQ: torch.Tensor, E: np.ndarray, centre: np.ndarray, C: int, distance: LatentDistance, *,
                references_per_block: int, tile_size: int):
    """:math:`\\operatorname{top}_C\\, \\{ D(\\|a_i - b_j\\|^2) \\}_j` for every query :math:`i`, with
    :math:`a = \\varphi(q) - c`, :math:`b = \\varphi(r) - c` and :math:`D` the model's latent distance: the
    ``C`` smallest estimates of each query over all references, streamed by blocks of references.

    Parameters
    ----------
    ZQ : Tensor, shape (nq, d), float32
        Query embeddings (on the device of the computation).
    E : ndarray or memmap, shape (n, d), float32
        Reference embeddings, read ``references_per_block`` rows at a time.
    centre : ndarray, shape (d,)
        The mean of all rows of ``E`` (subtracted from both sides).
    C : int
        Candidates kept per query, ``1 <= C <= n``.
    distance : LatentDistance
        Squared embedding distances → estimates (the model's).
    references_per_block, tile_size : int
        References per block; queries per tile (one tile is ``tile_size × references_per_block``).

    Returns
    -------
    values : ndarray, shape (nq, C), float32
        Estimates, each row ascending (ties by index).
    indices : ndarray, shape (nq, C), int64
        Rows of ``E``.
    """
    dev, nq, n = ZQ.device, ZQ.shape[0], E.shape[0]
    c = torch.as_tensor(np.asarray(centre, dtype=np.float32), device=dev)
    A = ZQ - c
    sqA = (A * A).sum(1)
    best_v = torch.full((nq, C), float("inf"), dtype=torch.float32, device=dev)  # real estimates are finite
    best_i = torch.full((nq, C), -1, dtype=torch.int64, device=dev)
    for b0 in range(0, n, references_per_block):
        b1 = min(b0 + references_per_block, n)
        B = torch.from_numpy(read_rows(E, b0, b1).astype(np.float32, copy=False)).to(dev) - c
        sqB = (B * B).sum(1)
        for q0 in range(0, nq, tile_size):
            q1 = min(q0 + tile_size, nq)
            d = _tile(A[q0:q1], sqA[q0:q1], B, sqB, distance)  # one GEMM: (q1 - q0) × (b1 - b0)
            v, i = torch.topk(d, min(C, b1 - b0), dim=1, largest=False, sorted=False)
            v, i = torch.cat([best_v[q0:q1], v], 1), torch.cat([best_i[q0:q1], i + b0], 1)
            v, pos = torch.topk(v, C, dim=1, largest=False, sorted=False)
            best_v[q0:q1], best_i[q0:q1] = v, torch.gather(i, 1, pos)
    v, i = best_v.cpu().numpy(), best_i.cpu().numpy()
    order = np.lexsort((i, v), axis=1)
    return np.take_along_axis(v, order, 1), np.take_along_axis(i, order, 1)


def _rerank_block(model, solver, wq, qids, refs, cand_i, cand_v, k, *, lower, n_candidates, known):
    """Exact re-ranking of one block of queries among their candidates (see the module docstring).

    ``wq (b, K)`` float64 histograms of the queries ``qids (b,)``; ``cand_i``/``cand_v (b, C)`` their
    candidates in order of (estimate, index); ``known`` maps ``(query, reference)`` to exact values already
    solved (read and filled). Returns ``indices (b, k)``, ``values (b, k)`` (exact, ascending, ties by
    index) and ``solved (b,)`` (candidates solved per query).
    """
    b = wq.shape[0]
    uniq, inv = np.unique(cand_i.ravel(), return_inverse=True)
    inv = inv.reshape(cand_i.shape)
    W = np.concatenate([wq, model.histograms(take_rows(refs, uniq), "references")])
    exact = np.full(cand_i.shape, np.inf)

    def solve(qs, cs):
        keys = list(zip(qids[qs].tolist(), cand_i[qs, cs].tolist()))
        out = np.array([known.get(key, np.nan) for key in keys], dtype=np.float64)
        new = np.flatnonzero(np.isnan(out))
        if new.size:
            out[new] = solver.solve_pairs(W, qs[new], b + inv[qs[new], cs[new]])
            known.update(zip((keys[t] for t in new), out[new].tolist()))
        exact[qs, cs] = out
        return out

    solved = exact_rerank(cand_v, k, solve, lower=lower, n_candidates=n_candidates)[2]
    idx, val = np.empty((b, k), dtype=np.int64), np.empty((b, k))
    for q in range(b):  # the k smallest exact values among the solved candidates, ties by reference index
        s = int(solved[q])
        sel = np.lexsort((cand_i[q, :s], exact[q, :s]))[:k]
        idx[q], val[q] = cand_i[q, :s][sel], exact[q, :s][sel]
    return idx, val, solved


def _rerank(model, wq, qids, refs, cand_i, cand_v, k, *, lower, n_candidates, known):
    """:func:`_rerank_block` over blocks of queries reading at most :data:`RERANK_ROWS` candidate rows."""
    nq, C = cand_i.shape
    idx, val, spent = np.empty((nq, k), dtype=np.int64), np.empty((nq, k)), np.empty(nq, dtype=np.int64)
    step, solver = max(1, RERANK_ROWS // C), model._exact_solver()
    for q0 in range(0, nq, step):
        s = slice(q0, min(q0 + step, nq))
        idx[s], val[s], spent[s] = _rerank_block(model, solver, wq[s], qids[s], refs, cand_i[s], cand_v[s], k,
                                                 lower=lower, n_candidates=n_candidates, known=known)
    return idx, val, spent


def search(model, ZQ, wq, E, refs, centre, k, *, exact, lower, n_candidates, max_candidates, references_per_block,
           tile_size):
    """The ``k`` nearest references of each query: ``(indices (nq, k), values (nq, k) float64, spent (nq,))``.

    ``ZQ (nq, d)`` float32 query embeddings and ``wq (nq, K)`` float64 histograms; ``E (n, d)`` the reference
    embeddings and ``refs`` the stored references (memory maps); ``centre (d,)`` the mean of ``E``. Without
    ``exact``, values are estimates; else exact values of the re-ranked candidates: ``n_candidates`` per
    query (fixed mode), or the adaptive rule with ``lower`` (then ``max_candidates`` kept per pass, × 4 for
    each query whose rule needs more). ``spent`` counts the candidates solved per query (as the model's).
    """
    nq, n = ZQ.shape[0], E.shape[0]
    stream = lambda Z, C: stream_topc(Z, E, centre, C, model.distance_fn, references_per_block=references_per_block,
                                      tile_size=tile_size)
    if not exact:
        v, i = stream(ZQ, k)
        return i, v.astype(np.float64), np.zeros(nq, dtype=np.int64)
    idx, val, spent = np.empty((nq, k), dtype=np.int64), np.empty((nq, k)), np.empty(nq, dtype=np.int64)
    C = min(n, max(k, n_candidates if n_candidates is not None else max_candidates))
    todo, known = np.arange(nq), {}
    while todo.size:
        keep = min(n, C + 1) if lower is not None else C  # the (C + 1)-th estimate: does the rule need more?
        v, i = stream(ZQ[torch.from_numpy(todo).to(ZQ.device)], keep)
        v = v.astype(np.float64)
        ii, vv, ss = _rerank(model, wq[todo], todo, refs, i[:, :C], v[:, :C], k, lower=lower,
                             n_candidates=n_candidates, known=known)
        more = np.zeros(todo.size, dtype=bool)
        if keep > C:
            more = lower(v[:, C:C + 1])[:, 0] < vv[:, k - 1]
        done = todo[~more]
        idx[done], val[done], spent[done] = ii[~more], vv[~more], ss[~more]
        todo, C = todo[more], min(n, 4 * C)
    return idx, val, spent
