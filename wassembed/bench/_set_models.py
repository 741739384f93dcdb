"""Set encoders for point clouds compared on MNIST clouds (``docs/benchmarks-clouds.md``).

Data: the first ``n_images`` MNIST digits as jittered weighted clouds (:func:`wassembed.data.mnist_clouds`),
exact W2² (:class:`~wassembed.exact.CloudSolver`) for ``train_pairs`` random pairs among the first ``split``
clouds and ``test_pairs`` random pairs among the others (unseen). Each candidate encoder
(:data:`CANDIDATES`) is trained alone, with one torch thread, for a fixed CPU-time budget
(``time.process_time``) on :math:`\\mathrm{mean}\\,((\\|\\varphi_i - \\varphi_j\\|^2 - y_{ij}) / \\bar y)^2`
(Adam, learning rate decayed 10× over the budget); then the ``variants`` best are trained again with
``centre=True`` (centred clouds, exact mean appended to the embedding). Reported per run: Pearson r and MSE
on the unseen pairs, clouds and pairs embedded per CPU second, and the largest change of the embedding
when every point is split into two copies of half its weight (order shuffled).

Run it with ``python -m wassembed.bench._set_models $WASSEMBED_BENCH_DATA --budget 180``;
``--recon-weight W`` trains decoders too, ``--recon-cost`` only times the reconstruction loss.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from pathlib import Path

import numpy as np

from ..data import PointCloudSet, load_dataset, mnist_clouds
from ..exact import CloudSolver
from ..exact._pairs import random_pairs
from ._hardware import hardware

__all__ = ["CANDIDATES", "format_set_models_benchmark", "prepare_cloud_pairs", "reconstruction_loss_cost",
           "run_set_models_benchmark"]

#: (name, ModelConfig overrides of the "set" preset): the encoders compared, all without centring
CANDIDATES = (
    ("deepsets", dict(set_encoder="deepsets", set_width=128, set_layers=3)),
    ("attention", dict(set_encoder="attention", set_width=128, set_layers=2, set_heads=4, set_queries=8)),
    ("transformer", dict(set_encoder="transformer", set_width=64, set_layers=2, set_heads=4)),
)

#: MNIST pixel coordinates span 0-27: they enter the networks divided by this
COORD_SCALE = 10.0

_POOL: dict = {}


def _init_solver(clouds: PointCloudSet) -> None:
    from .._deps import exact_stage_only

    exact_stage_only()
    _POOL["clouds"] = clouds


def _solve_chunk(ij: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, float]:
    t0 = time.process_time()
    values = CloudSolver().solve_pairs(_POOL["clouds"], ij[0], ij[1])
    return values, time.process_time() - t0


def _exact(clouds: PointCloudSet, i: np.ndarray, j: np.ndarray, workers: int) -> tuple[np.ndarray, float]:
    """Exact W2² of the pairs ``(i, j)`` with ``workers`` processes; ``(values, pairs per CPU second)``."""
    chunks = [(i[s:s + 500], j[s:s + 500]) for s in range(0, i.size, 500)]
    if workers <= 1:
        _init_solver(clouds)
        parts = [_solve_chunk(c) for c in chunks]
    else:
        with multiprocessing.get_context("spawn").Pool(workers, _init_solver, (clouds,)) as pool:
            parts = pool.map(_solve_chunk, chunks)
    return np.concatenate([v for v, _ in parts]), i.size / sum(t for _, t in parts)


def prepare_cloud_pairs(path, *, n_images: int = 3000, split: int = 2500, train_pairs: int = 20000,
                        test_pairs: int = 3000, seed: int = 0, workers: int = 2, cache=None) -> dict:
    """MNIST clouds and exact W2² of random training and unseen pairs (read from ``cache`` when it exists).

    Parameters
    ----------
    path : str or path
        MNIST images (an IDX file), e.g. ``$WASSEMBED_BENCH_DATA``.
    n_images, split : int
        Clouds ``0:split`` give the training pairs, ``split:n_images`` the unseen ones.
    train_pairs, test_pairs : int
        Number of random distinct pairs of each side.
    seed : int
        Seed of the jitter and of the pairs.
    workers : int
        Processes for the exact solves.
    cache : str or path, optional
        ``.npz`` holding the pairs and values: written after the solves, read instead of them.

    Returns
    -------
    dict
        ``X`` (n_images, kmax, 3) float32 packed clouds, ``train`` and ``test`` as ``(i, j, y)`` arrays,
        ``exact_pairs_per_s`` (per CPU second of one process), ``sizes`` (points per cloud).
    """
    from ..nn import pack_clouds

    images = load_dataset(path, limit=n_images).weights.reshape(-1, 28, 28)
    clouds = mnist_clouds(images, seed=seed)
    if cache is not None and Path(cache).exists():
        with np.load(cache) as z:
            arrays = {k: z[k] for k in z.files}
    else:
        ti, tj = random_pairs(np.arange(split), train_pairs, seed=seed)
        ui, uj = random_pairs(np.arange(split, n_images), test_pairs, seed=seed + 1)
        ty, rate = _exact(clouds, ti, tj, workers)
        uy, _ = _exact(clouds, ui, uj, workers)
        arrays = dict(ti=ti, tj=tj, ty=ty, ui=ui, uj=uj, uy=uy, rate=np.array(rate))
        if cache is not None:
            np.savez(cache, **arrays)
    return {"X": pack_clouds(clouds), "train": (arrays["ti"], arrays["tj"], arrays["ty"]),
            "test": (arrays["ui"], arrays["uj"], arrays["uy"]), "exact_pairs_per_s": float(arrays["rate"]),
            "sizes": clouds.sizes}


def _config(overrides: dict, centre: bool, kmax: int):
    from ..nn import ModelConfig

    return ModelConfig.preset("set", point_dim=2, max_points=kmax, embed_dim=50, coord_scale=COORD_SCALE,
                              centre=centre, **overrides)


def _train(enc, dec, X, train, *, budget_s: float, seed: int, batch_pairs: int, lr: float,
           recon_weight: float, recon_clouds: int = 16) -> dict:
    """Adam on the scaled squared error (plus ``recon_weight`` times the reconstruction loss of the batch's
    first ``recon_clouds`` clouds over the mean target, when ``dec`` is given) for ``budget_s`` CPU seconds;
    steps and training losses (the reconstruction's without the inputs' constant self-transport term)."""
    import torch

    from ..nn import cloud_reconstruction_loss

    ti, tj, ty = train
    y_all = torch.as_tensor(ty, dtype=torch.float32)
    scale = float(ty.mean())
    opt = torch.optim.Adam([*enc.parameters(), *(dec.parameters() if dec is not None else [])], lr=lr)
    rng = np.random.default_rng(seed)
    t0, steps, losses, recons = time.process_time(), 0, [], []
    while (elapsed := time.process_time() - t0) < budget_s:
        for group in opt.param_groups:
            group["lr"] = lr * 0.1 ** (elapsed / budget_s)
        idx = rng.integers(0, ti.size, batch_pairs)
        imgs, inv = np.unique(np.concatenate([ti[idx], tj[idx]]), return_inverse=True)
        x = X[torch.as_tensor(imgs)]
        z = enc(x)
        inv = torch.as_tensor(inv)
        pred = (z[inv[:batch_pairs]] - z[inv[batch_pairs:]]).square().sum(1)
        loss = ((pred - y_all[idx]) / scale).square().mean()
        losses.append(float(loss.detach()))
        if dec is not None:
            recon = cloud_reconstruction_loss(x[:recon_clouds], dec(z[:recon_clouds]), input_term=False).mean()
            recons.append(float(recon.detach()))
            loss = loss + recon_weight * recon / scale
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps += 1
    out = {"steps": steps, "train_mse_last100": float(np.mean(losses[-100:])) * scale ** 2}
    if recons:
        out.update(train_recon_first100=float(np.mean(recons[:100])), train_recon_last100=float(np.mean(recons[-100:])))
    return out


def _duplication_change(enc, X, rows: np.ndarray, seed: int) -> float:
    """Largest relative change of the embedding when each point becomes two copies at half weight."""
    import torch

    x = X[torch.as_tensor(rows)]
    dup = torch.cat([x, x], dim=1)
    dup[..., -1] /= 2
    perm = torch.as_tensor(np.random.default_rng(seed).permutation(dup.shape[1]))
    with torch.no_grad():
        a, b = enc(x), enc(dup[:, perm])
    return float(((a - b).norm(dim=1) / a.norm(dim=1)).max())


def _evaluate(enc, X, test, *, rows: np.ndarray, seed: int) -> dict:
    """Pearson r, MSE on the unseen pairs; CPU embedding rate; duplication change."""
    import torch

    ui, uj, uy = test
    enc.eval()
    Xr = X[torch.as_tensor(rows)]
    best = np.inf
    with torch.no_grad():
        for _ in range(3):
            t0 = time.process_time()
            Z = torch.cat([enc(Xr[s:s + 250]) for s in range(0, len(rows), 250)]).numpy().astype(np.float64)
            best = min(best, time.process_time() - t0)
    pos = np.full(int(rows.max()) + 1, -1)
    pos[rows] = np.arange(rows.size)
    pred = ((Z[pos[ui]] - Z[pos[uj]]) ** 2).sum(1)
    return {"pearson_r": float(np.corrcoef(pred, uy)[0, 1]), "mse": float(np.mean((pred - uy) ** 2)),
            "rel_err": float(np.mean(np.abs(pred - uy) / uy)), "clouds_per_s": rows.size / best,
            "pairs_per_s": rows.size / best / 2, "dup_change": _duplication_change(enc, X, rows[:32], seed)}


def _run_one(job: dict) -> dict:
    """Train and evaluate one candidate (run in its own process when ``processes > 1``)."""
    import torch

    from ..nn import build_decoder, build_encoder

    torch.set_num_threads(1)
    data, seed, centre = job["data"], job["seed"], job["centre"]
    X = torch.from_numpy(data["X"])
    cfg = _config(job["overrides"], centre, X.shape[1])
    enc = build_encoder(cfg, seed=seed)
    dec = build_decoder(cfg, seed=seed) if job["recon_weight"] > 0 else None
    rec = {"name": job["name"] + (" + centre/mean" if centre else ""), "set_encoder": cfg.set_encoder,
           "centre": centre, "params": sum(p.numel() for p in enc.parameters()), "budget_cpu_s": job["budget_s"],
           "seed": seed, "recon_weight": job["recon_weight"]}
    rows = np.unique(np.concatenate(data["test"][:2]))
    if dec is not None:
        rec["test_recon_init"] = _test_recon(enc, dec, X, rows)
    rec.update(_train(enc, dec, X, data["train"], budget_s=job["budget_s"], seed=seed,
                      batch_pairs=job["batch_pairs"], lr=job["lr"], recon_weight=job["recon_weight"]))
    rec.update(_evaluate(enc, X, data["test"], rows=rows, seed=seed))
    if dec is not None:
        rec["test_recon"] = _test_recon(enc, dec, X, rows)
    return rec


def _test_recon(enc, dec, X, rows: np.ndarray) -> float:
    """Mean reconstruction loss (full Sinkhorn divergence, W2² units) of the clouds ``rows``."""
    import torch

    from ..nn import cloud_reconstruction_loss

    x = X[torch.as_tensor(rows)]
    with torch.no_grad():
        return float(torch.cat([cloud_reconstruction_loss(x[s:s + 100], dec(enc(x[s:s + 100]))).detach()
                                for s in range(0, len(rows), 100)]).mean())


def _run_jobs(jobs: list, processes: int) -> list:
    if processes <= 1 or len(jobs) <= 1:
        return [_run_one(j) for j in jobs]
    with multiprocessing.get_context("spawn").Pool(min(processes, len(jobs))) as pool:
        return pool.map(_run_one, jobs)


def run_set_models_benchmark(path, *, budget_s: float = 180.0, candidates=CANDIDATES, variants: int = 1,
                             centred_only: bool = False, processes: int = 1, seed: int = 0, data_seed: int = 0,
                             batch_pairs: int = 64, lr: float = 1e-3, recon_weight: float = 0.0, cache=None,
                             **data_options) -> dict:
    """Train every candidate for ``budget_s`` CPU seconds, then the ``variants`` best with ``centre=True``.

    Parameters
    ----------
    path : str or path
        MNIST images (``$WASSEMBED_BENCH_DATA``).
    budget_s : float
        CPU seconds of training per run (one torch thread).
    candidates : sequence of (name, dict)
        ModelConfig overrides of the ``"set"`` preset (:data:`CANDIDATES`).
    variants : int
        How many of the best candidates (by MSE on the unseen pairs) are rerun with the mean appended.
    centred_only : bool
        Run every candidate with ``centre=True`` only (no second round).
    processes : int
        Runs in parallel (one thread each).
    seed, batch_pairs, lr : training settings shared by every run (``seed``: initialisation and batches).
    recon_weight : float
        With ``> 0``, decoders are trained too, with this weight on the reconstruction loss
        (:func:`wassembed.nn.cloud_reconstruction_loss`) divided by the mean target.
    data_seed : int
        Seed of the jitter and of the pairs.
    cache : str or path, optional
        Exact values file (:func:`prepare_cloud_pairs`, made with ``data_seed``).
    **data_options
        Passed to :func:`prepare_cloud_pairs`.

    Returns
    -------
    dict
        ``runs`` (one record per run), ``data`` (sizes, exact pairs/s), ``hardware``.
    """
    data = prepare_cloud_pairs(path, seed=data_seed, cache=cache, workers=max(1, processes), **data_options)
    base = lambda name, o, centre: dict(name=name, overrides=o, centre=centre, data=data, budget_s=budget_s,
                                        seed=seed, batch_pairs=batch_pairs, lr=lr, recon_weight=recon_weight)
    runs = _run_jobs([base(name, o, centred_only) for name, o in candidates], processes)
    if not centred_only:
        best = sorted(range(len(runs)), key=lambda t: runs[t]["mse"])[:variants]
        runs += _run_jobs([base(candidates[t][0], candidates[t][1], True) for t in best], processes)
    sizes = data["sizes"]
    info = {"clouds": int(sizes.size), "points_min": int(sizes.min()), "points_max": int(sizes.max()),
            "points_mean": float(sizes.mean()), "train_pairs": int(data["train"][0].size),
            "test_pairs": int(data["test"][0].size), "exact_pairs_per_s": data["exact_pairs_per_s"],
            "target_mean": float(data["test"][2].mean()), "target_var": float(data["test"][2].var())}
    return {"runs": runs, "data": info, "hardware": hardware()}


def format_set_models_benchmark(result: dict) -> str:
    """A markdown table of :func:`run_set_models_benchmark`'s runs (with the reconstruction loss when trained)."""
    recon = any("test_recon" in r for r in result["runs"])
    lines = ["| encoder | params | steps | r (unseen) | MSE (unseen) | rel. err. | clouds/s | pairs/s | dup. change |"
             + (" recon. (unseen) |" if recon else ""),
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if recon else "")]
    for r in result["runs"]:
        lines.append(f"| {r['name']} | {r['params']:,} | {r['steps']:,} | {r['pearson_r']:.4f} | {r['mse']:.3f} | "
                     f"{r['rel_err']:.3f} | {r['clouds_per_s']:,.0f} | {r['pairs_per_s']:,.0f} | "
                     f"{r['dup_change']:.1e} |" + (f" {r.get('test_recon', float('nan')):.3f} |" if recon else ""))
    return "\n".join(lines)


def reconstruction_loss_cost(path, *, n_clouds: int = 128, decoded_points: int = 64, seed: int = 0) -> list:
    """CPU seconds (one thread) of one forward and backward of :func:`wassembed.nn.cloud_reconstruction_loss`
    on the first ``n_clouds`` MNIST clouds against random decoded clouds, and its relative gap to the exact
    W2² (16 pairs), for a few ``blur``/``scaling`` settings, with and without the inputs' term."""
    import torch

    from ..nn import cloud_reconstruction_loss, pack_clouds, unpack_cloud

    torch.set_num_threads(1)
    X = torch.from_numpy(pack_clouds(mnist_clouds(load_dataset(path, limit=n_clouds).weights.reshape(-1, 28, 28),
                                                  seed=seed)))
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


def main(argv=None) -> None:
    """``python -m wassembed.bench._set_models DATA [--budget S] [--processes P] [--variants V] [--centred-only]
    [--seed S] [--only NAMES] [--recon-weight W] [--recon-cost] [--cache F] [--out F]``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("--budget", type=float, default=180.0)
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--variants", type=int, default=1)
    ap.add_argument("--centred-only", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", help="comma-separated candidate names")
    ap.add_argument("--recon-weight", type=float, default=0.0)
    ap.add_argument("--recon-cost", action="store_true", help="only time the reconstruction loss")
    ap.add_argument("--cache")
    ap.add_argument("--out")
    a = ap.parse_args(argv)
    if a.recon_cost:
        print(hardware(), *map(json.dumps, reconstruction_loss_cost(a.data)), sep="\n")
        return
    result = run_set_models_benchmark(a.data, budget_s=a.budget, processes=a.processes, variants=a.variants,
                                      centred_only=a.centred_only, seed=a.seed, cache=a.cache,
                                      recon_weight=a.recon_weight,
                                      candidates=[c for c in CANDIDATES if not a.only or c[0] in a.only.split(",")])
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=1))
    print(result["hardware"], json.dumps(result["data"]), sep="\n")
    print(format_set_models_benchmark(result))


if __name__ == "__main__":
    main()
