"""What limits the student: its unseen error against the number of images with LOT targets, copies, students.

The learned model's first phase regresses each training image's linear optimal transport (LOT) embedding,
projected on its ``d`` principal axes (the distillation of ``wassembed train``). This script measures that
phase alone, on the project's own encoders, as a function of what it is given:

- ``--images``: how many training images have a target (one exact LOT solve each, against the dyadic mean of
  the training range, on the grid path);
- ``--copies``: elastic copies of each of those images, each with its own LOT solve (a Gaussian-smoothed
  random displacement field, ``--alpha`` pixels, ``--sigma`` pixels of smoothing, applied bilinearly and
  rounded to integer pixels: :func:`wassembed.data.elastic_copies`);
- ``--student``: an encoder preset (``fast``, ``wide``: ``fast`` with twice the channels and a 512 layer)
  and ``--dim``.

For each setting it prints, as ``wassembed train`` does it: the distilled student's squared latent
distances, fitted ``a·d + b`` on exact pairs among the training images, scored on exact pairs among those
training images and on exact pairs of unseen images (another range), with LOT itself (all axes, and ``d``
axes) as the reference rows. Exact values, LOT targets and copies are computed once and kept in ``--work``.

Run (MNIST 8k file; the table of docs/benchmarks.md, "What limits the student")::

    python benchmarks/student_diagnosis.py --data mnist-8k-images-idx3-ubyte.gz --train 0:6000 --test 6000:8000 \\
        --images 2000,4000,6000 --copies 0,1,3 --epochs 60

``--tiny`` runs the bundled 8×8 digits for a few seconds (the smoke test).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import time
from pathlib import Path

import numpy as np


def _lot_rows(args):
    coords, reference, weights = args
    from wassembed.exact import LinearOT

    return LinearOT(coords, reference=reference).transform(weights)


def lot_embeddings(coords, reference, weights, workers: int) -> np.ndarray:
    """LOT embeddings of ``weights`` (n, k) against ``reference``, in ``workers`` processes."""
    chunks = np.array_split(np.arange(len(weights)), max(1, min(len(weights) // 64, 64)))
    if workers <= 1:
        return np.concatenate([_lot_rows((coords, reference, weights[c])) for c in chunks])
    with cf.ProcessPoolExecutor(workers) as pool:
        return np.concatenate(list(pool.map(_lot_rows, [(coords, reference, weights[c]) for c in chunks])))


def _exact(hs, i, j, workers):
    from wassembed.exact import ExactSolver

    solver = ExactSolver.for_support(grid=hs.grid)
    parts = np.array_split(np.arange(len(i)), max(1, workers * 4))
    if workers <= 1:
        return solver.solve_pairs(hs.weights, i, j)
    with cf.ProcessPoolExecutor(workers) as pool:
        futs = [pool.submit(solver.solve_pairs, hs.weights, i[p], j[p]) for p in parts]
        return np.concatenate([f.result() for f in futs])


def _cached(work: Path, name: str, make):
    f = work / f"{name}.npy"
    if f.exists():
        return np.load(f)
    out = make()
    np.save(f, out)
    return out


def _student(kind: str, grid, dim: int):
    from wassembed.nn import ModelConfig, build_encoder

    over = {"embed_dim": dim}
    if kind == "wide":
        over.update(channels=(32, 64, 128), hidden=(512,))
    return build_encoder(ModelConfig.preset("fast", grid=grid, **over), seed=0)


def _distill(enc, X, T, epochs: int, seed: int = 0) -> float:
    import torch

    opt = torch.optim.Adam(enc.parameters(), lr=1e-3)
    steps = epochs * -(-len(X) // 128)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1), eta_min=1e-5)
    rng = np.random.default_rng(seed)
    Xt, Tt = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(T, dtype=torch.float32)
    enc.train()
    for _ in range(epochs):
        perm = torch.as_tensor(rng.permutation(len(X)))
        for s in range(0, len(X), 128):
            b = perm[s:s + 128]
            loss = ((enc(Xt[b]) - Tt[b]) ** 2).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    enc.eval()
    with torch.no_grad():
        return float(((enc(Xt) - Tt) ** 2).sum(1).mean())


def _score(d_train, y_train, d_test, y_test, seen=None) -> dict:
    """a·d + b fitted on the training-range pairs; scored on those among the student's images (``seen``) and on
    the unseen pairs."""
    A = np.stack([d_train, np.ones_like(d_train)], 1)
    (a, b), *_ = np.linalg.lstsq(A, y_train, rcond=None)
    out = {}
    seen = slice(None) if seen is None else seen
    for name, d, y in (("train_pairs", d_train[seen], y_train[seen]), ("unseen", d_test, y_test)):
        p = a * d + b
        out[name] = {"mse": float(np.mean((p - y) ** 2)), "r": float(np.corrcoef(p, y)[0, 1]),
                     "rel": float(np.mean(np.abs(p - y) / y))}
    return out


def main(argv=None) -> list:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="integer images (IDX or .npy)")
    ap.add_argument("--test-data", default=None, help="images of the unseen pairs [default: --data]")
    ap.add_argument("--train", default="0:6000", help="range A:B of the training images")
    ap.add_argument("--test", default="6000:8000", help="range of the unseen images (in --test-data)")
    ap.add_argument("--images", default="2000,4000,6000", help="numbers of training images with targets")
    ap.add_argument("--copies", default="0", help="elastic copies per image (comma-separated)")
    ap.add_argument("--alpha", type=float, default=6.0)
    ap.add_argument("--sigma", type=float, default=4.0)
    ap.add_argument("--student", default="fast", help="fast or wide (comma-separated)")
    ap.add_argument("--dim", default="50", help="latent sizes (comma-separated)")
    ap.add_argument("--epochs", type=int, default=60, help="distillation epochs (passes over all targets)")
    ap.add_argument("--pairs", type=int, default=4000, help="exact pairs among training images and unseen ones")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", default="diagnosis-work")
    ap.add_argument("--cache", default=None, help="a cache with LOT targets: its images (inside --train) and "
                    "targets, and its reference, instead of solving them here")
    ap.add_argument("--tiny", action="store_true")
    args = ap.parse_args(argv)
    import torch

    from wassembed.data import HistogramSet, elastic_copies, read_idx
    from wassembed.exact._pairs import parse_range, random_pairs
    from wassembed.exact._rational import dyadic_reference

    torch.set_num_threads(args.threads)
    if args.tiny:
        from sklearn.datasets import load_digits

        full = load_digits().images.astype(np.int64)
        args.train, args.test, args.images, args.pairs, args.epochs = "0:1400", "1400:1797", "300,600", 300, 3
        test_full = full
    else:
        def read(path):
            return read_idx(path) if not str(path).endswith(".npy") else np.load(path)
        full = read(args.data).astype(np.int64)
        test_full = read(args.test_data).astype(np.int64) if args.test_data else full
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    tr = parse_range(args.train, len(full), what="--train")
    te = parse_range(args.test, len(test_full), what="--test")
    test = HistogramSet.from_images(test_full[te])
    cached_targets = None
    if args.cache:
        from wassembed.exact import DistanceCache
        from wassembed.exact._teacher import read_lot_targets

        t = read_lot_targets(DistanceCache.open(args.cache))
        tr = t.index[np.isin(t.index, tr)]  # the range's images that have a target
        reference, cached_targets = t.reference, t.embedding[t.rows(tr)]
    train = HistogramSet.from_images(full[tr])
    coords = train.support_coords()
    if cached_targets is None:
        reference = dyadic_reference(train.weights.mean(0))
    ni, nj = random_pairs(np.arange(train.n), args.pairs, seed=0)
    ti, tj = random_pairs(np.arange(test.n), args.pairs, seed=1)
    y_train = _cached(work, f"exact-train-{args.pairs}", lambda: _exact(train, ni, nj, args.workers))
    y_test = _cached(work, f"exact-test-{args.pairs}", lambda: _exact(test, ti, tj, args.workers))
    E_test = _cached(work, "lot-test", lambda: lot_embeddings(coords, reference, test.weights, args.workers))
    E_train = cached_targets if cached_targets is not None else _cached(
        work, "lot-train", lambda: lot_embeddings(coords, reference, train.weights, args.workers))
    rows = []
    for name, Etr, Ete in (("LOT in full", E_train, E_test),):
        d = lambda E, i, j: ((E[i] - E[j]) ** 2).sum(1)
        rows.append({"setting": name, **_score(d(Etr, ni, nj), y_train, d(Ete, ti, tj), y_test)})
    sizes = [int(x) for x in args.images.split(",")]
    for dim in (int(x) for x in args.dim.split(",")):
        mean = E_train.mean(0)
        _, _, vt = np.linalg.svd(E_train - mean, full_matrices=False)
        V = vt[:dim].T
        proj = lambda E, mean=mean, V=V: (E - mean) @ V
        d = lambda Z, i, j: ((Z[i] - Z[j]) ** 2).sum(1)
        rows.append({"setting": f"LOT on {dim} axes",
                     **_score(d(proj(E_train), ni, nj), y_train, d(proj(E_test), ti, tj), y_test)})
        for student in args.student.split(","):
            for n in sizes:
                for k in (int(x) for x in args.copies.split(",")):
                    t0 = time.time()
                    imgs = full[tr][:n]
                    X, E = train.weights[:n], E_train[:n]
                    if k:
                        cop = elastic_copies(imgs, k, alpha=args.alpha, sigma=args.sigma, seed=0)
                        hc = HistogramSet.from_images(cop)
                        Ec = _cached(work, f"lot-copies-v2-{n}-{k}-{args.alpha}-{args.sigma}",
                                     lambda hc=hc: lot_embeddings(coords, reference, hc.weights, args.workers))
                        X, E = np.concatenate([X, hc.weights]), np.concatenate([E, Ec])
                    t_lot = time.time() - t0
                    T = proj(E)
                    epochs = args.epochs
                    enc = _student(student, train.grid, dim)
                    t1 = time.time()
                    fit = _distill(enc, X, T, epochs)
                    with torch.no_grad():
                        Ztr = enc(torch.as_tensor(train.weights, dtype=torch.float32)).numpy().astype(np.float64)
                        Zte = enc(torch.as_tensor(test.weights, dtype=torch.float32)).numpy().astype(np.float64)
                    row = {"setting": f"{student} d={dim}, {n} images + {k} copies each ({len(X)} targets), "
                               f"{epochs} epochs", "fit_mse": fit, "train_seconds": round(time.time() - t1, 1),
                           "lot_seconds": round(t_lot, 1),
                           **_score(d(Ztr, ni, nj), y_train, d(Zte, ti, tj), y_test, (ni < n) & (nj < n))}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    print("| setting | MSE, pairs among training images | MSE, unseen pairs | r unseen |\n|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['setting']} | {r['train_pairs']['mse']:.3f} | {r['unseen']['mse']:.3f} | "
              f"{r['unseen']['r']:.4f} |")
    return rows


if __name__ == "__main__":
    main()
