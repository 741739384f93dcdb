"""Reference sets of a million: build an on-disk index, query it, check its re-ranking against brute force.

:func:`run_index_benchmark` (``wassembed bench index``)

* extends base images (e.g. MNIST and Fashion-MNIST, 28×28 uint8) with exact symmetries to ``n`` images,
  generated block by block on demand (:class:`SymmetryExtended`: never more than one block in memory);
* builds an index with :func:`wassembed.serve.build_index` (time, peak resident memory, size on disk) and
  reopens it with :func:`~wassembed.serve.open_index` (checksums verified);
* times ``kneighbors`` for ``k`` neighbours without and with exact re-ranking (adaptive rule), on variants
  of the base images that the index does not hold, as seconds per 1,000 queries;
* on a subset small enough for brute force (``check_refs`` references, ``check_queries`` queries), compares
  the re-ranked answer with the exact ``k`` nearest references (every pair solved by
  :class:`~wassembed.exact.ExactSolver`).

CPU figures use ``torch.set_num_threads(threads)`` (default 1).
"""

from __future__ import annotations

import os
import platform
import resource
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from ..data import as_weights, read_idx
from ..errors import InputError, explain, param
from ._hardware import hardware

__all__ = ["SymmetryExtended", "format_index_benchmark", "run_index_benchmark"]

#: the eight symmetries of the square (dihedral group), on stacks of images (n, H, W)
DIHEDRAL = (lambda a: a, lambda a: a[:, ::-1], lambda a: a[:, :, ::-1], lambda a: a[:, ::-1, ::-1],
            lambda a: a.transpose(0, 2, 1), lambda a: a.transpose(0, 2, 1)[:, ::-1],
            lambda a: a.transpose(0, 2, 1)[:, :, ::-1], lambda a: a.transpose(0, 2, 1)[:, ::-1, ::-1])
#: shifts (rows, columns) by 1–2 pixels, one-pixel shifts first
SHIFTS = sorted(((dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if (dy, dx) != (0, 0)),
                key=lambda s: (max(abs(s[0]), abs(s[1])), abs(s[0]) + abs(s[1]), s))
N_VARIANTS = len(DIHEDRAL) * (1 + len(SHIFTS) // len(DIHEDRAL))


def _fits(imgs: np.ndarray, shift) -> np.ndarray:
    """Mask ``(n,)``: the images whose pixels that ``np.roll`` by ``shift`` would wrap around are all zero."""
    dy, dx = shift
    ok = np.ones(imgs.shape[0], dtype=bool)
    if dy:
        ok &= ~imgs[:, -dy:].any(axis=(1, 2)) if dy > 0 else ~imgs[:, :-dy].any(axis=(1, 2))
    if dx:
        ok &= ~imgs[:, :, -dx:].any(axis=(1, 2)) if dx > 0 else ~imgs[:, :, :-dx].any(axis=(1, 2))
    return ok


class SymmetryExtended:
    """Base images extended by exact symmetries, generated on demand (an array-like for ``build_index``).

    Row ``r`` is variant ``v = r // m`` of base image ``r % m`` (``m`` base images): variants 0–7 are the
    eight symmetries of the square (flips, transposes, rotations by multiples of 90°); variant ``v >= 8`` is symmetry
    ``v mod 8`` followed by the shift ``SHIFTS[v - 8]`` (1–2 pixels), or the next shift in :data:`SHIFTS`
    that moves no pixel across the border (mass and shape kept exactly); an image touching all four borders
    has no such shift and stays unshifted (a duplicate of variant ``v mod 8``).

    Parameters
    ----------
    base : ndarray, shape (m, H, W), uint8
        The base images (square: ``H = W``).
    n : int
        Rows, at most ``m × N_VARIANTS``.
    """

    def __init__(self, base: np.ndarray, n: int) -> None:
        if base.ndim != 3 or base.shape[1] != base.shape[2] or n > base.shape[0] * N_VARIANTS:
            raise InputError(explain("cannot extend these images by symmetries", expected=f"square images (m, H, "
                                     f"H) and n <= {N_VARIANTS} m", received=f"shape {base.shape}, n = {n}",
                                     fix="pass more base images or a smaller n"))
        self.base, self.shape, self.dtype, self.ndim = base, (int(n), *base.shape[1:]), base.dtype, 3
        self.unshiftable = int((~np.any([_fits(base, s) for s in SHIFTS], axis=0)).sum())

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        rows = np.arange(*key.indices(self.shape[0])) if isinstance(key, slice) else np.asarray(key)
        return self.rows(rows)

    def rows(self, r: np.ndarray) -> np.ndarray:
        """Images ``(len(r), H, W)`` of rows ``r`` (any rows below ``m × N_VARIANTS``, also past ``n``)."""
        v, b = np.divmod(np.asarray(r, dtype=np.int64), self.base.shape[0])
        out = np.empty((v.size, *self.base.shape[1:]), dtype=self.base.dtype)
        for u in np.unique(v):
            sel = v == u
            out[sel] = self._variant(self.base[b[sel]], int(u))
        return out

    @staticmethod
    def _variant(imgs: np.ndarray, v: int) -> np.ndarray:
        out = np.ascontiguousarray(DIHEDRAL[v % len(DIHEDRAL)](imgs))
        if v < len(DIHEDRAL):
            return out
        left = np.ones(out.shape[0], dtype=bool)
        first = v - len(DIHEDRAL)
        for s in SHIFTS[first:] + SHIFTS[:first]:
            fit = left & _fits(out, s)
            out[fit] = np.roll(out[fit], s, axis=(1, 2))
            left &= ~fit
            if not left.any():
                break
        return out


def _maxrss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def _brute_force(model, Q: np.ndarray, R: np.ndarray, k: int):
    """Exact ``k`` nearest references (ties by index) from every (query, reference) exact value."""
    from ..exact import ExactSolver

    W = as_weights(np.concatenate([Q, R]))[0]
    solver = ExactSolver(model.ground_cost(), model.p)
    nq, nr = Q.shape[0], R.shape[0]
    qi, ri = np.repeat(np.arange(nq), nr), np.tile(np.arange(nr), nq)
    E = solver.solve_pairs(W, qi, nq + ri).reshape(nq, nr)
    idx = np.array([np.lexsort((np.arange(nr), e))[:k] for e in E])
    return idx, np.take_along_axis(E, idx, 1)


def _misses(model, Q, R, res, want_i, want_v, level: float) -> list[dict]:
    """The true neighbours the re-ranked answer ``res`` left out: exact value, estimate, its conformal lower
    bound at ``level`` and the ``k``-th exact value found (the rule stops when the bound reaches it)."""
    cal, out = model._calibrator(), []
    for q in range(Q.shape[0]):
        for r in sorted(set(want_i[q].tolist()) - set(res.indices[q].tolist())):
            est = float(model.cdist(Q[q], R[r])[0, 0])
            out.append({"query": q, "reference": r, "exact": float(want_v[q][list(want_i[q]).index(r)]),
                        "estimate": est, "lower_bound": float(cal.lower_bound(np.array([est]), level)[0]),
                        "kth_exact_found": float(res.distances[q, -1]), "solved": int(res.n_exact_per_query[q])})
    return out


def _check_section(model, ix, Q: np.ndarray, k: int, n_refs: int, seed: int, say, level: float = 0.99) -> dict:
    """Re-ranked answer (adaptive rule) of an index of ``n_refs`` references sampled from ``ix`` against the
    in-memory ``model.kneighbors`` on the same references and against brute force."""
    from ..index import build_index
    from ..index._files import take_rows

    rows = np.sort(np.random.default_rng(seed + 1).choice(len(ix), size=min(n_refs, len(ix)), replace=False))
    R = take_rows(ix.references, rows)
    with tempfile.TemporaryDirectory(prefix="wassembed-bench-index-") as tmp:
        sub = build_index(model, R, Path(tmp) / "check")
        t = time.perf_counter()
        res = sub.kneighbors(Q, k=k, exact_rerank=True, level=level)
        rerank_s = time.perf_counter() - t
    say(f"in-memory kneighbors on the same {R.shape[0]} references")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the same RerankWarning as the index's, already shown
        mem = model.kneighbors(Q, R, k=k, exact_rerank=True, level=level)
    same_model = (np.array_equal(res.indices, mem.indices) and np.array_equal(res.distances, mem.distances)
                  and np.array_equal(res.n_exact_per_query, mem.n_exact_per_query))
    say(f"brute force: {Q.shape[0]} × {R.shape[0]} exact solves")
    t = time.perf_counter()
    want_i, want_v = _brute_force(model, Q, R, k)
    brute_s = time.perf_counter() - t
    same = np.all(res.indices == want_i, axis=1) & np.all(np.isclose(res.distances, want_v, rtol=1e-12, atol=0), 1)
    return {"references": int(R.shape[0]), "queries": int(Q.shape[0]), "k": k, "level": level,
            "queries_identical": int(same.sum()), "rerank_seconds": rerank_s, "rerank_exact_solves": res.n_exact,
            "identical_to_in_memory_model": bool(same_model), "brute_force_seconds": brute_s,
            "brute_force_exact_solves": int(Q.shape[0] * R.shape[0]),
            "missed": _misses(model, Q, R, res, want_i, want_v, level)}


def _query_section(ix, Q: np.ndarray, k: int, *, references_per_block: int, **kw) -> dict:
    """Seconds per 1,000 queries and exact solves per query of ``ix.kneighbors(Q, k, **kw)``."""
    t = time.perf_counter()
    res = ix.kneighbors(Q, k=k, references_per_block=references_per_block, **kw)
    s = time.perf_counter() - t
    mode = ("estimates" if not kw.get("exact_rerank") else
            f"exact, n_candidates={kw['n_candidates']}" if kw.get("n_candidates") else "exact, adaptive")
    return {"mode": mode, "queries": int(Q.shape[0]), "seconds": s, "seconds_per_1000": 1000 * s / Q.shape[0],
            "exact_solves_per_query": res.n_exact / Q.shape[0],
            "exact_solves_per_query_max": int(np.max(res.n_exact_per_query))}


def _setup(data, extra, n: int, n_queries: int, threads: int, seed: int, say):
    """``(references, queries, base names)``: the images of the IDX files ``data`` and ``extra``, extended by
    symmetries; ``n`` references, and ``n_queries`` variants of ``data``'s images that they do not hold."""
    import torch

    torch.set_num_threads(threads)
    parts = []
    for f in [data, *extra]:
        say(f"reading {f}")
        parts.append(read_idx(f))
    if len({p.shape[1:] for p in parts}) != 1 or any(p.ndim != 3 or p.dtype != np.uint8 for p in parts):
        raise InputError(explain("the image files differ", expected="uint8 images (m, H, W) of one size",
                                 received=str([(p.shape, str(p.dtype)) for p in parts]),
                                 fix="pass image files on the same grid"))
    base = np.concatenate(parts)
    ext = SymmetryExtended(base, base.shape[0] * N_VARIANTS)
    pool = np.arange(n, len(ext))
    pool = pool[pool % base.shape[0] < parts[0].shape[0]]  # variants of data's images, not in the index
    if n > len(ext) or pool.size < n_queries:
        raise InputError(explain(f"too few base images for {param('n')} references and the queries",
                                 expected=f"{param('n')} <= {len(ext)} ({N_VARIANTS} variants of {base.shape[0]} "
                                 f"images) and {n_queries} variants of {param('data')}'s images left for queries",
                                 received=f"{param('n')} = {n}",
                                 fix=f"lower {param('n')} or add base images ({param('extra')})"))
    Q = ext.rows(np.sort(np.random.default_rng(seed).choice(pool, size=n_queries, replace=False)))
    return SymmetryExtended(base, n), Q, [os.path.basename(str(f)) for f in [data, *extra]]


def _build_section(emb, src, out, references_per_block: int, say) -> dict:
    """Build the index (time, peak RSS, size on disk), then reopen it verifying its checksums."""
    from ..index import build_index, open_index

    say(f"building an index of {len(src):,} images at {out}")
    t = time.perf_counter()
    build_index(emb, src, out, references_per_block=references_per_block, overwrite=True)
    b = {"seconds": time.perf_counter() - t, "maxrss_mb": _maxrss_mb(), "bytes": _du(out),
         "files": {f.name + ("/" if f.is_dir() else ""): _du(f) if f.is_dir() else f.stat().st_size
                   for f in sorted(Path(out).iterdir())}}
    t = time.perf_counter()
    ix = open_index(out, verify=True)
    b["open_verify_seconds"] = time.perf_counter() - t
    return b, ix


def run_index_benchmark(data, model, out, *, extra=(), n: int = 1_000_000, k: int = 10, queries: int = 1000,
                        rerank_queries: int = 100, n_candidates: int | None = 20, adaptive_queries: int = 0,
                        references_per_block: int = 8192, search_references_per_block: int = 4096,
                        check_refs: int = 2000,
                        check_queries: int = 20, threads: int = 1, seed: int = 0, log=None) -> dict:
    """Build an index of ``n`` symmetry-extended images at ``out`` and measure it (module docstring).

    Parameters
    ----------
    data, extra : str
        IDX image files (uint8, one grid): the base images, ``data`` first; queries are variants of
        ``data``'s images (the model's domain) that the index does not hold.
    model : str or path
        A trained model directory.
    out : str or path
        The index directory (replaced).
    n, k : int
        References; neighbours.
    queries, rerank_queries, adaptive_queries : int
        Queries timed without re-ranking, with ``n_candidates`` exact solves each (skipped when None), and
        with the adaptive rule (0 skips it: with a model whose bounds are loose it can solve a large part
        of ``n`` references per query).
    n_candidates : int, optional
        The fixed budget of candidates of the re-ranked timing.
    references_per_block, search_references_per_block : int
        References per block of the build, and of the streamed matrix products of ``kneighbors``.
    check_refs, check_queries : int
        Size of the brute-force check of the adaptive re-ranking (0 skips it).
    threads, seed : int
        torch threads; seed of the query and subset draws.
    log : callable, optional
        Progress lines.

    Returns
    -------
    dict
        JSON-able: ``environment``, ``settings``, ``build``, ``queries``, ``check``.
    """
    import torch

    from ..serve import load

    say = log or (lambda msg: None)
    src, Q, names = _setup(data, extra, n, max(queries, rerank_queries, adaptive_queries, check_queries), threads,
                           seed, say)
    emb = load(model)
    build, ix = _build_section(emb, src, out, references_per_block, say)
    say(f"timing {queries} queries without re-ranking, {rerank_queries} and {adaptive_queries} with")
    search = dict(references_per_block=search_references_per_block)
    rows = [_query_section(ix, Q[:queries], k, **search, exact_rerank=False)]
    if n_candidates and rerank_queries:
        rows.append(_query_section(ix, Q[:rerank_queries], k, **search, exact_rerank=True, n_candidates=n_candidates))
    if adaptive_queries:
        rows.append(_query_section(ix, Q[:adaptive_queries], k, **search, exact_rerank=True))
    build["maxrss_after_queries_mb"] = _maxrss_mb()
    check = None
    if check_refs and check_queries:
        check = _check_section(emb, ix, Q[:check_queries], k, check_refs, seed, say)
    env = {"hardware": hardware(), "nproc": os.cpu_count(), "torch": torch.__version__,
           "torch_threads": torch.get_num_threads(), "python": platform.python_version()}
    settings = {"n": n, "k": k, "references_per_block": references_per_block,
                "search_references_per_block": search_references_per_block, "base_files": names,
                "base_images": int(src.base.shape[0]), "unshiftable_base_images": src.unshiftable,
                "embed_dim": int(ix.embeddings.shape[1]), "model": str(model)}
    return {"environment": env, "settings": settings, "build": build, "queries": rows, "check": check}


def format_index_benchmark(r: dict) -> str:
    """Markdown summary of a :func:`run_index_benchmark` result."""
    env, st, b = r["environment"], r["settings"], r["build"]
    mb = lambda x: f"{x / 1e6:,.0f} MB" if x >= 1e6 else f"{x / 1e3:,.1f} kB"
    lines = [f"Hardware: {env['hardware']}; torch {env['torch']}, {env['torch_threads']} torch thread(s)",
             f"References: {st['n']:,} images ({st['base_images']:,} base images of {', '.join(st['base_files'])} "
             f"× symmetries; {st['unshiftable_base_images']} touch all four borders), embeddings d = "
             f"{st['embed_dim']}", "",
             "| build | peak RSS (build) | peak RSS (after queries) | on disk | open + verify |",
             "|---:|---:|---:|---:|---:|",
             f"| {b['seconds']:.1f} s | {b['maxrss_mb']:,.0f} MB | {b['maxrss_after_queries_mb']:,.0f} MB | "
             f"{mb(b['bytes'])} | {b['open_verify_seconds']:.1f} s |", "",
             "Files: " + ", ".join(f"{name} {mb(size)}" for name, size in b["files"].items()), "",
             f"| k = {st['k']} | queries timed | s per 1,000 queries | exact solves per query (mean / max) |",
             "|---|---:|---:|---:|"]
    for q in r["queries"]:
        lines.append(f"| {q['mode']} | {q['queries']} | {q['seconds_per_1000']:,.1f} | "
                     f"{q['exact_solves_per_query']:,.1f} / {q['exact_solves_per_query_max']:,} |")
    c = r.get("check")
    if c:
        lines += ["", f"Brute-force check ({c['references']:,} references sampled from the index, {c['queries']} "
                      f"queries, k = {c['k']}): {c['queries_identical']}/{c['queries']} queries with identical "
                      f"indices and distances; re-ranking {c['rerank_exact_solves']:,} exact solves in "
                      f"{c['rerank_seconds']:.1f} s, brute force {c['brute_force_exact_solves']:,} in "
                      f"{c['brute_force_seconds']:.1f} s; the same answer as the in-memory model.kneighbors: "
                      f"{'yes' if c['identical_to_in_memory_model'] else 'no'}"]
        for m in c["missed"]:
            lines.append(f"- query {m['query']} missed reference {m['reference']} (exact {m['exact']:.3f}): "
                         f"estimate {m['estimate']:.3f}, its lower bound at level {c['level']:g} "
                         f"{m['lower_bound']:.3f}; k-th exact value found {m['kth_exact_found']:.3f} after "
                         f"{m['solved']} solves")
    return "\n".join(lines)
