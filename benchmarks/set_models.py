"""Set encoders for point clouds compared on MNIST clouds (``docs/benchmarks-clouds.md``, "the set encoder").

Data: the first ``n_images`` MNIST digits as jittered weighted clouds (:func:`wassembed.data.mnist_clouds`),
exact W2² for ``train_pairs`` random pairs among the first ``split`` clouds and ``test_pairs`` random pairs
among the others (unseen), solved by ``wassembed.precompute`` (the exact stage's executors: in this process or
a local pool of ``--workers``) into two caches of the work folder, which later runs reuse. Each candidate encoder
(:data:`CANDIDATES`) is trained alone by ``wassembed.train`` (one torch thread, pairs only: no distillation,
``--epochs`` pair epochs; with ``--recon-weight W`` the decoder too); then the ``--variants`` best are trained
again with ``centre=True`` (centred clouds, exact mean appended to the embedding). Reported per run: Pearson
r, MSE and mean relative error on the unseen pairs (``wassembed.evaluate``), training CPU seconds, clouds and
pairs embedded per CPU second, and the largest change of the embedding when every point is split into two
copies of half its weight (order shuffled).

    python benchmarks/set_models.py $WASSEMBED_BENCH_DATA --epochs 20 --work runs/set-models
    python benchmarks/set_models.py $WASSEMBED_BENCH_DATA --recon-cost     # only times the reconstruction loss

``--tiny`` runs one candidate for one epoch on clouds of the bundled 8×8 digits (the smoke test). The figures
of docs/benchmarks-clouds.md were measured by an earlier version of this script (``wassembed/bench/
_set_models.py`` before it moved here), which trained each candidate with a loop of its own for a budget of
CPU seconds; this one trains through the package's trainer, by epochs.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

#: (name, SetConfig overrides of the "set" preset): the encoders compared, all without centring
CANDIDATES = (
    ("deepsets", dict(set_encoder="deepsets", set_width=128, set_layers=3)),
    ("attention", dict(set_encoder="attention", set_width=128, set_layers=2, set_heads=4, set_queries=8)),
    ("transformer", dict(set_encoder="transformer", set_width=64, set_layers=2, set_heads=4)),
)

#: MNIST pixel coordinates span 0-27: they enter the networks divided by this
COORD_SCALE = 10.0


def prepare_caches(images, work, *, split: int, train_pairs: int, test_pairs: int, seed: int = 0,
                   workers: int = 1):
    """The clouds of ``images`` and two caches in ``work``: pairs among clouds ``0:split`` and among the others."""
    import wassembed as we
    from wassembed.data import mnist_clouds

    clouds = mnist_clouds(images, seed=seed)
    work, n = Path(work), clouds.n
    kw = dict(workers=workers, lot=False, progress=False)
    t0 = time.perf_counter()
    done = we.precompute(clouds, work / "train.cache", pairs=train_pairs, images=f"0:{split}", seed=seed, **kw)
    we.precompute(clouds, work / "test.cache", pairs=test_pairs, images=f"{split}:{n}", seed=seed + 1, **kw)
    rate = done.computed / max(time.perf_counter() - t0, 1e-9) / max(workers, 1)
    return clouds, work / "train.cache", work / "test.cache", rate


def _duplication_change(enc, X, seed: int) -> float:
    """Largest relative change of the embedding when each point becomes two copies at half weight."""
    import torch

    dup = torch.cat([X, X], dim=1)
    dup[..., -1] /= 2
    perm = torch.as_tensor(np.random.default_rng(seed).permutation(dup.shape[1]))
    with torch.no_grad():
        a, b = enc(X), enc(dup[:, perm])
    return float(((a - b).norm(dim=1) / a.norm(dim=1)).max())


def _test_recon(enc, dec, X) -> float:
    """Mean reconstruction loss (full Sinkhorn divergence, W2² units) of the packed clouds ``X``."""
    import torch

    from wassembed.nn import cloud_reconstruction_loss

    with torch.no_grad():
        return float(torch.cat([cloud_reconstruction_loss(X[s:s + 100], dec(enc(X[s:s + 100])))
                                for s in range(0, len(X), 100)]).mean())


def run_one(name: str, overrides: dict, centre: bool, clouds, train, test, *, epochs: int, seed: int,
            recon_weight: float) -> dict:
    """Train and evaluate one candidate (one torch thread)."""
    import torch

    import wassembed as we
    from wassembed.nn import ModelConfig

    cfg = ModelConfig.preset("set", point_dim=clouds.d, max_points=int(clouds.sizes.max()), embed_dim=50,
                             coord_scale=COORD_SCALE, centre=centre, **overrides)
    t0 = time.process_time()
    model = we.train(train, model=cfg, epochs=epochs, distill_epochs=0, patience=0, recon_weight=recon_weight,
                     seed=seed, threads=1, progress=False, device="cpu")
    rec = {"name": name + (" + centre/mean" if centre else ""), "set_encoder": cfg.set_encoder, "centre": centre,
           "params": sum(p.numel() for p in model.encoder.parameters()), "epochs": epochs,
           "train_cpu_s": time.process_time() - t0, "seed": seed, "recon_weight": recon_weight}
    metrics = we.evaluate(model, test)
    rec.update(pearson_r=metrics["pearson"], mse=metrics["mse"], rel_err=metrics["mean_relative_error"])
    t = we.DistanceCache.open(test).read()
    unseen = clouds.subset(np.unique(np.concatenate([t.i, t.j])))
    torch.set_num_threads(1)
    best = min(_clock(model.embed, unseen) for _ in range(3))
    X = torch.from_numpy(unseen.packed())
    rec.update(clouds_per_s=unseen.n / best, pairs_per_s=unseen.n / best / 2,
               dup_change=_duplication_change(model.encoder, X[:32], seed))
    if recon_weight > 0:
        rec["test_recon"] = _test_recon(model.encoder, model.decoder, X)
    return rec


def _clock(fn, *args) -> float:
    t0 = time.process_time()
    fn(*args)
    return time.process_time() - t0


def run_set_models_benchmark(images, work, *, epochs: int = 20, candidates=CANDIDATES, variants: int = 1,
                             centred_only: bool = False, seed: int = 0, recon_weight: float = 0.0, split: int = 2500,
                             train_pairs: int = 20_000, test_pairs: int = 3_000, workers: int = 1) -> dict:
    """Every candidate, then the ``variants`` best (by MSE on the unseen pairs) with ``centre=True``."""
    from wassembed.bench import hardware

    clouds, train, test, rate = prepare_caches(images, work, split=split, train_pairs=train_pairs,
                                               test_pairs=test_pairs, workers=workers)
    run = lambda name, o, centre: run_one(name, o, centre, clouds, train, test, epochs=epochs, seed=seed,
                                          recon_weight=recon_weight)
    runs = [run(name, o, centred_only) for name, o in candidates]
    if not centred_only:
        best = sorted(range(len(runs)), key=lambda t: runs[t]["mse"])[:variants]
        runs += [run(candidates[t][0], candidates[t][1], True) for t in best]
    sizes = clouds.sizes
    info = {"clouds": int(sizes.size), "points_min": int(sizes.min()), "points_max": int(sizes.max()),
            "points_mean": float(sizes.mean()), "train_pairs": train_pairs, "test_pairs": test_pairs,
            "exact_pairs_per_worker_s": rate}
    return {"runs": runs, "data": info, "hardware": hardware()}


def format_set_models_benchmark(result: dict) -> str:
    """A markdown table of the runs (with the reconstruction loss when decoders were trained)."""
    recon = any("test_recon" in r for r in result["runs"])
    lines = ["| encoder | params | train CPU s | r (unseen) | MSE (unseen) | rel. err. | clouds/s | pairs/s | dup. "
             "change |" + (" recon. (unseen) |" if recon else ""),
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if recon else "")]
    for r in result["runs"]:
        lines.append(f"| {r['name']} | {r['params']:,} | {r['train_cpu_s']:.0f} | {r['pearson_r']:.4f} | "
                     f"{r['mse']:.3f} | {r['rel_err']:.3f} | {r['clouds_per_s']:,.0f} | {r['pairs_per_s']:,.0f} | "
                     f"{r['dup_change']:.1e} |" + (f" {r.get('test_recon', float('nan')):.3f} |" if recon else ""))
    return "\n".join(lines)


def reconstruction_loss_cost(images, *, n_clouds: int = 128, decoded_points: int = 64, seed: int = 0) -> list:
    """CPU seconds (one thread) of one forward and backward of :func:`wassembed.nn.cloud_reconstruction_loss`
    on the first ``n_clouds`` clouds against random decoded clouds, and its relative gap to the exact W2²
    (16 pairs), for a few ``blur``/``scaling`` settings, with and without the inputs' term."""
    import torch

    from wassembed.data import mnist_clouds
    from wassembed.exact import CloudSolver
    from wassembed.nn import cloud_reconstruction_loss, unpack_cloud

    torch.set_num_threads(1)
    X = torch.from_numpy(mnist_clouds(images[:n_clouds], seed=seed).packed())
    n_clouds = X.shape[0]
    g = torch.Generator().manual_seed(seed)
    dec = torch.cat([torch.rand(n_clouds, decoded_points, 2, generator=g) * 20 + 4,
                     torch.full((n_clouds, decoded_points, 1), 1 / decoded_points)], -1)
    exact = np.array([CloudSolver().solve(unpack_cloud(X[t]), unpack_cloud(dec[t])) for t in range(16)])
    cloud_reconstruction_loss(X[:2], dec[:2])  # warm-up
    rows = []
    for blur, scaling, input_term in ((0.05, 0.5, True), (0.05, 0.5, False), (0.05, 0.7, True), (0.5, 0.5, True)):
        d = dec.clone().requires_grad_()
        t0 = time.process_time()
        v = cloud_reconstruction_loss(X, d, blur=blur, scaling=scaling, input_term=input_term)
        v.sum().backward()
        row = {"blur": blur, "scaling": scaling, "input_term": input_term, "cpu_s": time.process_time() - t0}
        if input_term:
            row["rel_gap_to_exact"] = float(np.mean(np.abs(v[:16].detach().numpy() - exact) / exact))
        rows.append(row)
    return rows


def _images(args):
    """The digits as images ``(n, H, W)``: MNIST from ``data``, or scikit-learn's 8×8 digits with ``--tiny``."""
    from wassembed.data import load_dataset

    if args.tiny:
        args.n_images, args.split, args.train_pairs, args.test_pairs, args.epochs = 80, 60, 150, 60, 1
        args.only, args.variants = "deepsets", 0
        return load_dataset("digits", limit=args.n_images).images()
    return load_dataset(args.data, limit=args.n_images).images()


def main(argv=None) -> dict | list:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="?", help="MNIST images (an IDX file), e.g. $WASSEMBED_BENCH_DATA")
    ap.add_argument("--work", default="set-models-work", help="folder of the two caches (reused) [set-models-work]")
    ap.add_argument("--epochs", type=int, default=20, help="pair epochs per run [20]")
    ap.add_argument("--n-images", type=int, default=3000)
    ap.add_argument("--split", type=int, default=2500, help="clouds 0:split train, the others are unseen [2500]")
    ap.add_argument("--train-pairs", type=int, default=20_000)
    ap.add_argument("--test-pairs", type=int, default=3_000)
    ap.add_argument("--workers", type=int, default=1, help="processes of the exact solves [1]")
    ap.add_argument("--variants", type=int, default=1, help="best candidates rerun with centre=True [1]")
    ap.add_argument("--centred-only", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", help="comma-separated candidate names")
    ap.add_argument("--recon-weight", type=float, default=0.0, help="> 0: train the decoders too")
    ap.add_argument("--recon-cost", action="store_true", help="only time the reconstruction loss")
    ap.add_argument("--out", help="also write the JSON result here")
    ap.add_argument("--tiny", action="store_true", help="one candidate, one epoch, the 8×8 digits (the smoke test)")
    a = ap.parse_args(argv)
    if a.data is None and not a.tiny:
        ap.error("DATA is required (or --tiny)")
    images = _images(a)
    if a.recon_cost:
        rows = reconstruction_loss_cost(images)
        print(*map(json.dumps, rows), sep="\n")
        return rows
    with tempfile.TemporaryDirectory() as scratch:
        result = _run(a, images, scratch if a.tiny else a.work)
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=1))
    print(result["hardware"], json.dumps(result["data"]), format_set_models_benchmark(result), sep="\n")
    return result


def _run(a, images, work) -> dict:
    return run_set_models_benchmark(
        images, work, epochs=a.epochs, variants=a.variants, centred_only=a.centred_only, seed=a.seed,
        recon_weight=a.recon_weight, split=a.split, train_pairs=a.train_pairs, test_pairs=a.test_pairs,
        workers=a.workers, candidates=[c for c in CANDIDATES if not a.only or c[0] in a.only.split(",")])


if __name__ == "__main__":
    main()
