"""Which min-cost-flow library solves the grid path's 3-partite graphs fastest (one thread, same graphs).

The exact stage's grid path (``wassembed.exact.GridSolver``) needs a network simplex on integer supplies. This
script builds the graphs of random pairs of integer images once and times each candidate library on the same
arcs, costs and supplies, with POT's bipartite network simplex on the same pairs as the reference; every
library's optimal value is checked against POT's.

Candidates: ``pylmcf`` (LEMON's network simplex; the exact stage's dependency) and, when installed, OR-tools'
``SimpleMinCostFlow`` (``pip install ortools``: not a dependency of wassembed, install it in a separate
environment). Run::

    python benchmarks/mincostflow_libraries.py --data IMAGES.idx3-ubyte.gz [--pairs 200] [--size 56]

``--tiny`` runs a few pairs of the bundled 8×8 digits (the smoke test).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _graphs(images: np.ndarray, pairs: int, seed: int):
    from wassembed.exact._grid import GridSolver

    h, w = images.shape[1:]
    solver = GridSolver(np.stack(np.divmod(np.arange(h * w), w), axis=1))
    counts = images.reshape(len(images), -1).astype(np.int64)
    rng = np.random.default_rng(seed)
    out = []
    for a, b in rng.integers(0, len(images), (pairs, 2)):
        ia, sa, ib, sb, total = solver.supplies(counts[a], counts[b])
        starts, ends, costs, supply, _ = solver._graph(ia, sa, ib, sb, solver._axis(ia, ib))
        out.append((counts[a], counts[b], starts, ends, costs, supply, total))
    return out


def _pylmcf(g):
    import pylmcf

    _, _, starts, ends, costs, supply, total = g
    G = pylmcf.Graph(int(supply.size), starts, ends)
    G.set_node_supply(supply)
    G.set_edge_capacities(np.full(starts.size, total, dtype=np.int64))
    G.set_edge_costs(costs)
    G.solve()
    return int(G.total_cost()) / total


def _ortools(g):
    from ortools.graph.python import min_cost_flow

    _, _, starts, ends, costs, supply, total = g
    m = min_cost_flow.SimpleMinCostFlow()
    m.add_arcs_with_capacity_and_unit_cost(starts.astype(np.int32), ends.astype(np.int32),
                                           np.full(starts.size, total, dtype=np.int64), costs)
    m.set_nodes_supplies(np.arange(supply.size, dtype=np.int32), supply)
    if m.solve() != m.OPTIMAL:
        raise RuntimeError("OR-tools: not optimal")
    return m.optimal_cost() / total


def _pot(g, coords):
    import ot

    ca, cb = g[0], g[1]
    ia, ib = np.flatnonzero(ca), np.flatnonzero(cb)
    M = ot.dist(coords[ia], coords[ib])
    return ot.emd2(ca[ia] / ca.sum(), cb[ib] / cb.sum(), M, numItermax=10_000_000)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="integer images: an IDX file or .npy (n, H, W)")
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--size", type=int, default=None, help="resample to size×size (bilinear, rounded)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tiny", action="store_true", help="a few pairs of the 8×8 digits")
    args = ap.parse_args(argv)
    if args.tiny:
        from sklearn.datasets import load_digits

        images, args.pairs = load_digits().images[:50].astype(np.int64), 5
    else:
        from wassembed.data import read_idx

        images = read_idx(args.data)[:1000] if not args.data.endswith(".npy") else np.load(args.data)
    if args.size:
        from wassembed.bench._solvers import resample_images

        images = resample_images(images, args.size)
    graphs = _graphs(images, args.pairs, args.seed)
    h, w = images.shape[1:]
    coords = np.stack(np.divmod(np.arange(h * w), w), axis=1).astype(np.float64)
    libs = {"POT (bipartite)": lambda g: _pot(g, coords), "pylmcf": _pylmcf}
    try:
        import ortools  # noqa: F401

        libs["OR-tools"] = _ortools
    except ImportError:
        print("OR-tools is not installed: skipped (pip install ortools, in a separate environment)")
    for fn in libs.values():  # warm-up: imports, first allocations
        fn(graphs[0])
    values, seconds = {}, {}
    for name, fn in libs.items():
        t0 = time.process_time()
        values[name] = np.array([fn(g) for g in graphs])
        seconds[name] = time.process_time() - t0
    ref = values["POT (bipartite)"]
    print(f"{len(graphs)} pairs of {h}×{w} images, mean {np.mean([(g[0] > 0).sum() for g in graphs]):.0f} "
          "nonzero bins; CPU seconds of one thread; the flow libraries solve the same prebuilt 3-partite graphs "
          "(building them, the same for both, is not timed), POT builds its bipartite costs")
    print("| library | pairs/s | vs POT | max rel. diff to POT |\n|---|---:|---:|---:|")
    for name in libs:
        diff = np.max(np.abs(values[name] - ref) / np.maximum(ref, 1e-300))
        print(f"| {name} | {len(graphs) / seconds[name]:.1f} | {seconds['POT (bipartite)'] / seconds[name]:.2f}× | "
              f"{diff:.1e} |")
    return {name: len(graphs) / s for name, s in seconds.items()}


if __name__ == "__main__":
    main()
