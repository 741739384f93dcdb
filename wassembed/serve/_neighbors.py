"""Block-wise embedding distances, k-nearest neighbours and exact re-ranking.

Distances between embeddings use one matrix product per block,
:math:`\\|a - b\\|^2 = \\|a\\|^2 + \\|b\\|^2 - 2 a \\cdot b` clamped at 0, after subtracting a common centre from
both sides (distances are translation invariant, and centring keeps the float32 cancellation error small).
Memory beyond the output is bounded by one ``tile_size × tile_size`` tile. Each tile of squared distances
becomes estimates through the model's :class:`~wassembed.nn.LatentDistance` (the one used in training), in
the network's float32, and is stored in the output's dtype (float64 for the served model's outputs; measured
on one CPU thread, a float64 2,000 × 2,000 matrix from raw 28×28 images cost ~1.5 ms more than a float32
one, 15.7 vs 14.1 ms median, in a call of ~110 ms that the encoder dominates, and twice the memory, 32 MB).
``precision="bf16"`` rounds the centred embeddings to bfloat16 for the cross term :math:`a \\cdot b` only
(the norms and the sum stay float32). When the output lives elsewhere than the embeddings (a numpy result of
a CUDA computation), rows of it are computed on the device and copied back through two staging buffers (pinned
on CUDA, at most :data:`STAGE_BYTES` each), the copy of one row block overlapping the computation of the next.

:func:`kneighbors` is :meth:`WassersteinEmbedding.kneighbors <wassembed.serve.WassersteinEmbedding.kneighbors>`
(the served model is its first argument).
"""


from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .._results import Neighbors
from .._validation import check_pos_int
from ..errors import InputError, explain, param
from ..nn import LatentDistance
from . import _inputs
from ._conformal import check_level
from ._warnings import warn_brute_force

__all__ = ["PRECISIONS", "STAGE_BYTES", "cdist", "cdist_into", "check_k", "check_precision", "check_rerank",
           "exact_rerank", "kneighbors", "knn_embedded", "pdist", "pdist_into", "rerank_blocks"]


#: the precisions of the matrix product's cross term (``cdist(..., precision=)``)
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}
#: the largest staging buffer of :func:`cdist_into` when its output lives on another device (bytes, each of two)
STAGE_BYTES = 64 << 20


def check_precision(precision) -> str:
    """``precision`` (``"fp32"`` or ``"bf16"``), or an :class:`~wassembed.errors.InputError`."""
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise InputError(explain("unknown precision", expected=" or ".join(map(repr, PRECISIONS)),
                                 received=repr(precision), fix="pass precision='fp32' (default) or 'bf16'"))
    return precision


def _tile(A: torch.Tensor, sqA: torch.Tensor, B: torch.Tensor, sqB: torch.Tensor,
          distance: LatentDistance) -> torch.Tensor:
    """Estimates between the centred rows ``A`` and ``B`` (squared norms ``sqA``, ``sqB``): one GEMM,
    in their dtype, or in bfloat16 for the cross term when ``A`` and ``B`` are bfloat16."""
    if A.dtype != torch.bfloat16:
        d = torch.addmm(sqA[:, None] + sqB[None, :], A, B.T, beta=1.0, alpha=-2.0)
    else:
        d = (sqA[:, None] + sqB[None, :]).sub_(torch.mm(A, B.T).float(), alpha=2.0)
    return distance.from_squared(d.clamp_min_(0.0))


def _centre(ZA: torch.Tensor, ZB: torch.Tensor, precision: str = "fp32"):
    c = ZB.mean(dim=0, keepdim=True)
    A, B = ZA - c, ZB - c
    sqA, sqB = (A * A).sum(1), (B * B).sum(1)
    if precision == "bf16":  # the cross term's operands only; the norms keep the embeddings' dtype
        A, B = A.to(PRECISIONS[precision]), B.to(PRECISIONS[precision])
    return A, sqA, B, sqB


def cdist_into(out: torch.Tensor, ZA: torch.Tensor, ZB: torch.Tensor, *, distance: LatentDistance,
               tile_size: int, precision: str = "fp32", staged: bool | None = None) -> torch.Tensor:
    """Fill ``out (nA, nB)`` with the estimates ``distance`` gives (``‖a − b‖²`` for p=2), one tile at a time.

    ``staged`` (default: when ``out`` is not on the embeddings' device): row blocks computed on the
    embeddings' device and copied into ``out`` through :class:`_RowStaging`."""
    A, sqA, B, sqB = _centre(ZA, ZB, precision)
    tiles = lambda a0, a1, b0, b1: _tile(A[a0:a1], sqA[a0:a1], B[b0:b1], sqB[b0:b1], distance)
    if staged is None:
        staged = out.device != A.device
    if staged:
        return _RowStaging(out, A.device, tile_size).fill(tiles, B.shape[0], tile_size)
    for a0 in range(0, A.shape[0], tile_size):
        a1 = min(a0 + tile_size, A.shape[0])
        for b0 in range(0, B.shape[0], tile_size):
            b1 = min(b0 + tile_size, B.shape[0])
            out[a0:a1, b0:b1].copy_(tiles(a0, a1, b0, b1))
    return out


class _RowStaging:
    """Row blocks of ``out`` computed on ``dev`` into one device buffer, sent to two host buffers (pinned when
    ``dev`` is CUDA) asynchronously, and copied into ``out`` once the block after them is queued: the device
    computes block ``t`` while the host copies block ``t − 1``. Stream order keeps the device buffer safe to
    reuse; a host buffer is refilled only after its rows were copied out."""

    def __init__(self, out: torch.Tensor, dev: torch.device, tile_size: int):
        nA, nB = out.shape
        self.out, self.cuda = out, dev.type == "cuda"
        self.rows = max(1, min(tile_size, nA, STAGE_BYTES // max(1, out.element_size() * nB)))
        self.dev_buf = torch.empty(self.rows, nB, dtype=out.dtype, device=dev)
        self.host = [torch.empty(self.rows, nB, dtype=out.dtype, pin_memory=self.cuda) for _ in range(2)]

    def fill(self, tiles, nB: int, tile_size: int) -> torch.Tensor:
        """Fill ``out`` with ``tiles(a0, a1, b0, b1)`` (tensors on the device); returns ``out``."""
        pending = None
        for t, a0 in enumerate(range(0, self.out.shape[0], self.rows)):
            a1 = min(a0 + self.rows, self.out.shape[0])
            blk = self.dev_buf[:a1 - a0]
            for b0 in range(0, nB, tile_size):
                blk[:, b0:min(b0 + tile_size, nB)].copy_(tiles(a0, a1, b0, min(b0 + tile_size, nB)))
            host = self.host[t % 2][:a1 - a0]
            host.copy_(blk, non_blocking=self.cuda)
            event = None
            if self.cuda:
                event = torch.cuda.Event()
                event.record(torch.cuda.current_stream(blk.device))
            if pending is not None:
                self._drain(*pending)
            pending = (host, a0, a1, event)
        if pending is not None:
            self._drain(*pending)
        return self.out

    def _drain(self, host: torch.Tensor, a0: int, a1: int, event):
        if event is not None:
            event.synchronize()
        self.out[a0:a1].copy_(host)


def cdist(model, XA, XB, *, root: bool, tile_size: int, batch_size: int | None, precision: str, device):
    """:meth:`WassersteinEmbedding.cdist <wassembed.serve.WassersteinEmbedding.cdist>` of ``model``: float64
    ``(nA, nB)``, numpy for numpy inputs, a tensor on ``XA``'s device for a tensor."""
    tile_size, precision = check_pos_int("tile_size", tile_size), check_precision(precision)
    ZA, like, dev = model._embed_input(XA, "XA", device, batch_size)
    ZB = model._embed_input(XB, "XB", dev, batch_size)[0]
    out = torch.empty(ZA.shape[0], ZB.shape[0], dtype=torch.float64, device=like if like is not None else "cpu")
    cdist_into(out, ZA, ZB, distance=model.distance_fn, tile_size=tile_size, precision=precision)
    return _inputs.rewrap(model._finish(out, root), like)


def pdist(model, X, *, root: bool, tile_size: int, batch_size: int | None, device):
    """:meth:`WassersteinEmbedding.pdist <wassembed.serve.WassersteinEmbedding.pdist>` of ``model``."""
    tile_size = check_pos_int("tile_size", tile_size)
    Z, like, _ = model._embed_input(X, "X", device, batch_size)
    n = Z.shape[0]
    out = torch.empty(n * (n - 1) // 2, dtype=torch.float64, device=like if like is not None else "cpu")
    pdist_into(out, Z, distance=model.distance_fn, tile_size=tile_size)
    return _inputs.rewrap(model._finish(out, root), like)


def pdist_into(out: torch.Tensor, Z: torch.Tensor, *, distance: LatentDistance, tile_size: int) -> torch.Tensor:
    """Fill the condensed vector ``out (n(n−1)/2,)`` (scipy's order: pairs i < j, row-major)."""
    n = Z.shape[0]
    A, sqA, _, _ = _centre(Z, Z)
    for i0 in range(0, n - 1, tile_size):
        i1 = min(i0 + tile_size, n - 1)
        rows = torch.arange(i0, i1, device=Z.device)
        for j0 in range(i0 + 1, n, tile_size):
            j1 = min(j0 + tile_size, n)
            d = _tile(A[i0:i1], sqA[i0:i1], A[j0:j1], sqA[j0:j1], distance)
            cols = torch.arange(j0, j1, device=Z.device)
            mask = cols[None, :] > rows[:, None]
            # condensed position of (i, j): start(i) + j − i − 1
            ii = rows[:, None].expand_as(mask)[mask]
            jj = cols[None, :].expand_as(mask)[mask]
            pos = n * ii - ii * (ii + 1) // 2 + jj - ii - 1
            out[pos.to(out.device)] = d[mask].to(out.device, out.dtype)
    return out


def knn_embedded(ZQ: torch.Tensor, ZR: torch.Tensor, k: int, *, distance: LatentDistance, tile_size: int):
    """The ``k`` smallest embedding distances of each query: ``(values (nq, k), indices (nq, k))``, ascending."""
    A, sqA, B, sqB = _centre(ZQ, ZR)
    vals = torch.empty(A.shape[0], k, dtype=A.dtype, device=A.device)
    idx = torch.empty(A.shape[0], k, dtype=torch.int64, device=A.device)
    for a0 in range(0, A.shape[0], tile_size):
        a1 = min(a0 + tile_size, A.shape[0])
        best_v = best_i = None
        for b0 in range(0, B.shape[0], tile_size):
            b1 = min(b0 + tile_size, B.shape[0])
            d = _tile(A[a0:a1], sqA[a0:a1], B[b0:b1], sqB[b0:b1], distance)
            kk = min(k, b1 - b0)
            v, i = torch.topk(d, kk, dim=1, largest=False, sorted=False)
            i = i + b0
            if best_v is not None:
                v, i = torch.cat([best_v, v], 1), torch.cat([best_i, i], 1)
            if v.shape[1] > k:
                v, pos = torch.topk(v, k, dim=1, largest=False, sorted=False)
                i = torch.gather(i, 1, pos)
            best_v, best_i = v, i
        # ascending by value, ties by index (np.lexsort's order), on the device: by index, then stably by value
        by_i = torch.argsort(best_i, dim=1, stable=True)
        best_v, best_i = torch.gather(best_v, 1, by_i), torch.gather(best_i, 1, by_i)
        by_v = torch.argsort(best_v, dim=1, stable=True)
        vals[a0:a1], idx[a0:a1] = torch.gather(best_v, 1, by_v), torch.gather(best_i, 1, by_v)
    return vals, idx


def exact_rerank(est: np.ndarray, k: int, solve: Callable[[np.ndarray, np.ndarray], np.ndarray], *,
                 lower: Callable[[np.ndarray], np.ndarray] | None, n_candidates: int | None,
                 first: int | None = None):
    """Exact k nearest references of each query from a block of embedding estimates.

    Parameters
    ----------
    est : ndarray, shape (nq, nr)
        Estimated :math:`W_p^p` of every (query, reference) pair.
    k : int
        Number of neighbours.
    solve : callable ``(q, r) -> values``
        Exact :math:`W_p^p` of the pairs ``(q[t], r[t])`` (query row, reference column).
    lower : callable, optional
        Lower bounds of the exact values from estimates (non-decreasing; conformal), for the adaptive mode.
    n_candidates : int, optional
        Fixed mode: solve exactly the ``n_candidates`` best-estimated references of each query.
    first : int, optional
        Candidates solved in the first round of the adaptive mode (default ``2k``, at least ``k``).

    Adaptive mode: references are visited in order of estimate, in rounds that double the candidate set;
    a query stops when the next unsolved reference has a lower bound at least the current ``k``-th exact
    value (then every unsolved reference's bound is too, the bounds being non-decreasing in the estimate).

    Returns
    -------
    indices (nq, k) int64, values (nq, k) float64 (exact, ascending), n_exact (nq,) int64
    """
    nq, nr = est.shape
    order = np.argsort(est, axis=1, kind="stable")
    est_sorted = np.take_along_axis(est, order, axis=1)
    if n_candidates is not None:
        m = np.full(nq, min(nr, n_candidates), dtype=np.int64)
        lb = None
    else:
        lb = lower(est_sorted)
        m = np.full(nq, min(nr, max(k, first if first is not None else 2 * k)), dtype=np.int64)
    exact = np.full((nq, nr), np.inf)  # exact values in sorted-candidate order
    solved = np.zeros(nq, dtype=np.int64)
    while True:
        qs, pos = [], []
        for q in range(nq):
            if m[q] > solved[q]:
                qs.append(np.full(m[q] - solved[q], q))
                pos.append(np.arange(solved[q], m[q]))
        if not qs:
            break
        qv, pv = np.concatenate(qs), np.concatenate(pos)
        exact[qv, pv] = solve(qv, order[qv, pv])
        solved = m.copy()
        if lb is None:
            break
        for q in range(nq):
            if solved[q] >= nr:
                continue
            tau = np.partition(exact[q, :solved[q]], k - 1)[k - 1]
            need = int(np.searchsorted(lb[q], tau, side="left"))  # references whose bound is below tau
            if need > solved[q]:
                m[q] = min(nr, need, solved[q] + max(k, solved[q]))
    idx = np.empty((nq, k), dtype=np.int64)
    val = np.empty((nq, k), dtype=np.float64)
    for q in range(nq):
        cand = order[q, :solved[q]]
        v = exact[q, :solved[q]]
        sel = np.lexsort((cand, v))[:k]
        idx[q], val[q] = cand[sel], v[sel]
    return idx, val, solved


def rerank_blocks(ZQ: torch.Tensor, ZR: torch.Tensor, W, k: int, solver, *, distance: LatentDistance, lower,
                  n_candidates: int | None, tile_size: int):
    """:func:`exact_rerank` over blocks of ``tile_size`` queries (estimates for one block at a time).

    ``solver`` is an :class:`~wassembed.exact.ExactSolver` or :class:`~wassembed.exact.CloudSolver`; ``W`` the
    queries then the references in the form it reads (float64 histograms, or a point-cloud set).
    """
    nq, nr = ZQ.shape[0], ZR.shape[0]
    idx = np.empty((nq, k), dtype=np.int64)
    val = np.empty((nq, k))
    spent = np.empty(nq, dtype=np.int64)
    est = torch.empty(min(tile_size, nq), nr, dtype=torch.float32)
    for q0 in range(0, nq, tile_size):
        q1 = min(q0 + tile_size, nq)
        e = cdist_into(est[:q1 - q0], ZQ[q0:q1], ZR, distance=distance, tile_size=tile_size)
        e = e.numpy().astype(np.float64)

        def solve(qs, rs, q0=q0):
            return solver.solve_pairs(W, qs + q0, rs + nq)

        idx[q0:q1], val[q0:q1], spent[q0:q1] = exact_rerank(e, k, solve, lower=lower, n_candidates=n_candidates)
    return idx, val, spent


def check_rerank(exact_rerank: bool, n_candidates) -> None:
    """Refuse a candidate budget without exact re-ranking (it would be ignored: the answer would be estimates)."""
    if n_candidates is not None and not exact_rerank:
        raise InputError(explain(f"{param('n_candidates')} applies to exact re-ranking",
                                 expected=f"{param('exact_rerank', True)} with {param('n_candidates')}",
                                 received=f"{param('n_candidates', repr(n_candidates))} without "
                                          f"{param('exact_rerank')}",
                                 fix=f"pass {param('exact_rerank', True)} too, or drop {param('n_candidates')} "
                                     "for estimates"))


def check_k(k, n_ref: int) -> int:
    """Validate a neighbour count against the reference set size."""
    k = check_pos_int("k", k, example=10)
    if k > n_ref:
        raise InputError(explain(f"{param('k')} is larger than the reference set",
                                 expected=f"{param('k')} <= {n_ref} (references)", received=f"{param('k')} = {k}",
                                 fix=f"lower {param('k')} or add references"))
    return int(k)


def kneighbors(model, Q, R, k: int, *, exact_rerank: bool, level: float, n_candidates: int | None,
               tile_size: int, batch_size: int | None, device):
    """The ``k`` nearest references ``R`` of each query ``Q`` under ``model`` (see its ``kneighbors``).

    Values are float64 (estimates or exact values). Warns (:class:`~wassembed.serve.RerankWarning`) when the
    adaptive re-ranking solved most pairs, pointing at the caller of the method that calls this.
    """
    check_rerank(exact_rerank, n_candidates)
    src_q, src_r = model._prepare(Q, "Q"), model._prepare(R, "R")
    k = check_k(k, src_r.n)
    blk = check_pos_int("tile_size", tile_size)
    ZQ, like, dev = model._embed_input(src_q, "Q", device, batch_size)
    ZR = model._embed_input(src_r, "R", dev, batch_size)[0]
    if not exact_rerank:
        vals, idx = knn_embedded(ZQ, ZR, k, distance=model.distance_fn, tile_size=blk)
        return Neighbors(_inputs.rewrap(vals.double(), like), _inputs.rewrap(idx, like), np.zeros(src_q.n),
                         exact=False)
    W, nq = model._exact_data(src_q, src_r)  # the inputs as the exact solver reads them
    lower = None
    if n_candidates is None:
        cal, level = model._need_calibrator("adaptive exact re-ranking"), check_level(level, "re-ranking")
        lower = lambda est: cal.lower_bound(est, level)
    else:
        n_candidates = max(check_pos_int("n_candidates", n_candidates), k)
    idx, val, spent = rerank_blocks(ZQ, ZR, W, k, model._exact_solver(), distance=model.distance_fn,
                                    lower=lower, n_candidates=n_candidates, tile_size=blk)
    if lower is not None:
        warn_brute_force(int(spent.sum()), nq, src_r.n, k, level, stacklevel=4)  # 4: the user
    return Neighbors(_inputs.rewrap(torch.from_numpy(val), like), _inputs.rewrap(torch.from_numpy(idx), like),
                     spent, exact=True)
