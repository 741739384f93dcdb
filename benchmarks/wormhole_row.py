"""Wasserstein Wormhole (Haviv et al., ICML 2024; PyPI ``wassersteinwormhole``) against exact W2² on MNIST clouds.

Runs in its OWN environment (JAX + wassersteinwormhole + numpy + scipy), never in wassembed's: it reads only
plain ``.npz`` files that wassembed wrote (``docs/benchmarks-clouds.md`` gives the commands):

- CLOUDS: a ragged point-cloud file (``points (N, 2)``, ``weights (N,)``, ``offsets (n + 1,)``), as written by
  ``wassembed.data.PointCloudSet.save``;
- TRAIN_PAIRS, TEST_PAIRS: ``i``, ``j``, ``w2sq`` (exact W2², squared Euclidean ground cost, pixel²).

What Wormhole learns (read from its source, version 0.3.7): the encoder is trained so that the embedding
distance ``mean_k (e_ik - e_jk)²`` (squared Euclidean divided by ``emb_dim``) matches the debiased Sinkhorn
divergence ``S2`` of ott-jax with cost ``‖x - y‖² / ot_scale`` and ``epsilon = 0.01`` (absolute, in those
rescaled units), where ``ot_scale`` is the largest squared point-to-point distance seen over 1,000 random
pairs of training clouds. Its raw estimate of W2² in pixel² is therefore ``ot_scale · mean_k (e_ik - e_jk)²``
(a squared quantity: nothing is squared here). Coordinates enter the encoder unscaled; weights are supported
(they bias the attention logits by ``log w`` and weight the pooling).

The script trains Wormhole on the clouds ``0 .. n_train - 1`` only (its own ``Wormhole.train``: minibatches
of clouds, all-pairs S2 targets computed on the fly, decoder loss included), then embeds every cloud and
reports, on TEST_PAIRS (unseen clouds), Pearson r, Spearman, MSE (pixel⁴) and mean relative error of the raw
estimate and of ``a·d + b`` fitted by least squares on TRAIN_PAIRS only. It prints one JSON line.

Usage (with the Wormhole environment's python)::

    python benchmarks/wormhole_row.py CLOUDS TRAIN_PAIRS TEST_PAIRS --steps 300

``--tiny`` writes tiny inputs (12 random clouds, a few pairs) to a temporary folder, reads and checks them, and
trains Wormhole for 2 steps where it is installed; without it (wassembed's own environment) it says so and
stops there (the smoke test of the inputs and options).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time


def _one_thread() -> None:
    """Ask XLA (and any BLAS/OpenMP) for one thread; must run before jax is imported."""
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")


def _metrics(pred, target) -> dict:
    import numpy as np
    from scipy import stats

    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    err = pred - target
    pos = target > 0
    return {
        "pearson": float(stats.pearsonr(pred, target)[0]),
        "spearman": float(stats.spearmanr(pred, target)[0]),
        "mse": float(np.mean(err ** 2)),
        "mean_relative_error": float(np.mean(np.abs(err[pos]) / target[pos])),
        "pred_mean": float(pred.mean()),
        "target_mean": float(target.mean()),
    }


def _tiny_inputs(work: str) -> tuple[str, str, str]:
    """12 random clouds of 5–9 points in 2-D and a few pairs (random values), written as the real inputs are."""
    import numpy as np

    rng = np.random.default_rng(0)
    sizes = rng.integers(5, 10, 12)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    w = rng.uniform(0.5, 1.0, offsets[-1])
    w /= np.repeat(np.add.reduceat(w, offsets[:-1]), sizes)
    paths = tuple(os.path.join(work, f) for f in ("clouds.npz", "train.npz", "test.npz"))
    np.savez(paths[0], points=rng.uniform(0, 27, (offsets[-1], 2)), weights=w, offsets=offsets)
    np.savez(paths[1], i=np.array([0, 1, 2]), j=np.array([3, 4, 5]), w2sq=rng.uniform(1, 9, 3))
    np.savez(paths[2], i=np.array([8, 9]), j=np.array([10, 11]), w2sq=rng.uniform(1, 9, 2))
    return paths


def _read_inputs(args):
    """``(pcs, ws, weighted, (tr_i, tr_j, tr_y), (te_i, te_j, te_y))`` from the three input files (checked)."""
    import numpy as np

    z = np.load(args.clouds)
    points, offsets = z["points"].astype(np.float64), z["offsets"].astype(np.int64)
    weights = z["weights"].astype(np.float64) if "weights" in z else None
    n = offsets.size - 1
    pcs = [points[offsets[c]:offsets[c + 1]] for c in range(n)]
    if weights is None or args.uniform:
        ws = [np.full(p.shape[0], 1.0 / p.shape[0]) for p in pcs]
    else:
        ws = [weights[offsets[c]:offsets[c + 1]] for c in range(n)]
    tr, te = np.load(args.train_pairs), np.load(args.test_pairs)
    train, test = (tr["i"], tr["j"], tr["w2sq"]), (te["i"], te["j"], te["w2sq"])
    if max(train[0].max(), train[1].max()) >= args.n_train:
        sys.exit("a training pair uses a cloud outside 0..n_train-1")
    if min(test[0].min(), test[1].min()) < args.n_train:
        print("warning: some test pairs use training clouds", file=sys.stderr)
    return pcs, ws, not (weights is None or args.uniform), train, test


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clouds", nargs="?", help="ragged point-cloud .npz (points, weights, offsets)")
    ap.add_argument("train_pairs", nargs="?", help=".npz with i, j, w2sq among the training clouds")
    ap.add_argument("test_pairs", nargs="?", help=".npz with i, j, w2sq among unseen clouds")
    ap.add_argument("--n-train", type=int, default=2500, help="clouds 0..n_train-1 train Wormhole [2500]")
    ap.add_argument("--steps", type=int, default=10000, help="training steps [10000, Wormhole's default]")
    ap.add_argument("--batch-size", type=int, default=16, help="clouds per step [16, Wormhole's default]")
    ap.add_argument("--num-sinkhorn-iter", type=int, default=-1,
                    help="fixed Sinkhorn iterations; -1: Wormhole's own auto_find_num_iter, run on the clouds at "
                         "their padded size (its default pads every cloud to 2,048 points for that check, which "
                         "costs minutes of CPU for the same answer) [-1]")
    ap.add_argument("--shape-sample", type=int, default=None,
                    help="Wormhole's train(shape_sample=K): each step subsamples K points per cloud (by weight, "
                         "without replacement) before the S2 targets; off by default, as in Wormhole")
    ap.add_argument("--uniform", action="store_true", help="ignore the weights (uniform clouds)")
    ap.add_argument("--target-check", type=int, default=300,
                    help="also score Wormhole's own training target (ot_scale · S2) on this many test pairs [300]")
    ap.add_argument("--seed", type=int, default=0, help="seed of numpy (ot_scale, iteration check) and jax [0]")
    ap.add_argument("--verbose", type=int, default=25, help="steps between Wormhole's progress updates [25]")
    ap.add_argument("--json-out", help="also write the JSON result here")
    ap.add_argument("--tiny", action="store_true", help="tiny inputs, 2 steps where Wormhole is installed")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        if args.tiny:
            args.clouds, args.train_pairs, args.test_pairs = _tiny_inputs(work)
            args.n_train, args.steps, args.batch_size, args.num_sinkhorn_iter = 8, 2, 4, 5
            args.target_check, args.verbose = 2, 1
        elif args.test_pairs is None:
            ap.error("CLOUDS TRAIN_PAIRS TEST_PAIRS are required (or --tiny)")
        inputs = _read_inputs(args)
        try:
            import wassersteinwormhole  # noqa: F401
        except ImportError:
            if not args.tiny:
                raise
            print(json.dumps({"inputs": "checked", "clouds": len(inputs[0]), "skipped": "wassersteinwormhole is "
                              "not installed here (it runs in its own environment)"}))
            return 0
        return _run(args, *inputs)


def _run(args, pcs, ws, weighted, train, test) -> int:
    """Train Wormhole, embed every cloud, print (and write) the JSON line of the module docstring."""
    _one_thread()
    from importlib.metadata import version

    import jax
    import numpy as np
    from wassersteinwormhole import Wormhole, utils_OT
    from wassersteinwormhole._utils_Processing import pad_pointclouds

    np.random.seed(args.seed)  # noqa: NPY002 -- Wormhole's ot_scale and iteration check use numpy's global RNG
    (tr_i, tr_j, tr_y), (te_i, te_j, te_y) = train, test
    n, n_train = len(pcs), args.n_train

    num_iter = args.num_sinkhorn_iter
    t_iter = time.process_time()
    if num_iter == -1:  # Wormhole's own convergence check (95% of 100 random pairs), at the clouds' padded size
        pc_tr, w_tr = pad_pointclouds(pcs[:n_train], ws[:n_train])
        from wassersteinwormhole._utils_Processing import get_max_dist_statistic
        scale = get_max_dist_statistic(pc_tr, w_tr, num_rand=1000, reduction="max", dist_func_enc="S2")
        num_iter = utils_OT.auto_find_num_iter(pc_tr, w_tr, eps=0.01, lse_mode=True, ot_scale=scale,
                                               ot_func="S2", num_calc=100, sample_size=pc_tr.shape[1])
        np.random.seed(args.seed)  # noqa: NPY002 -- the model's ot_scale then draws the same pairs as without it
    t_iter = time.process_time() - t_iter

    t0 = time.process_time()
    model = Wormhole(point_clouds=pcs[:n_train], weights=ws[:n_train], num_sinkhorn_iter=num_iter)
    t_init = time.process_time() - t0
    t0 = time.process_time()
    model.train(training_steps=args.steps, batch_size=args.batch_size, verbose=args.verbose,
                shape_sample=args.shape_sample, key=jax.random.key(args.seed))
    jax.block_until_ready(model.params)
    train_cpu = time.process_time() - t0
    n_params = int(sum(x.size for x in jax.tree_util.tree_leaves(model.params)))
    n_enc_params = int(sum(x.size for x in jax.tree_util.tree_leaves(model.params.get("Encoder", {}))))
    curve = np.asarray(model.enc_loss_curve, np.float64)

    # every cloud padded to one length (the encoder ignores weight-0 rows), embedded in batches of 250 by the
    # trained encoder under jax.jit (Wormhole's own encode() runs it op by op, far slower: timed on one batch)
    pc_all, w_all = pad_pointclouds(pcs, ws)
    batches = [slice(s, min(s + 250, n)) for s in range(0, n, 250)]
    encoder = jax.jit(lambda params, pc, w: model.model.bind({"params": params}).Encoder(pc, w, deterministic=True))
    speeds = []
    for _ in range(3):  # first pass includes compiling; best of 3 as in docs/benchmarks-clouds.md
        t0 = time.process_time()
        emb = np.concatenate([np.asarray(encoder(model.params, pc_all[b], w_all[b])) for b in batches])
        speeds.append(n / (time.process_time() - t0))
    t0 = time.process_time()
    lib = np.asarray(model.encode(pc_all[batches[0]], w_all[batches[0]], max_batch=256))
    lib_speed = lib.shape[0] / (time.process_time() - t0)
    lib_gap = float(np.max(np.abs(lib - emb[batches[0]])))
    scale = float(model.ot_scale_value)

    def predict(i, j):
        return scale * np.mean((emb[i] - emb[j]) ** 2, axis=1)

    d_tr, d_te = predict(tr_i, tr_j), predict(te_i, te_j)
    a, b = np.polyfit(d_tr, tr_y, 1)  # fitted on TRAINING pairs only
    out = {
        "model": "wassersteinwormhole",
        "versions": {p: version(p) for p in ("wassersteinwormhole", "jax", "jaxlib", "flax", "optax", "ott-jax")},
        "devices": [str(d) for d in jax.devices()],
        "weights": "intensities" if weighted else "uniform",
        "n_train_clouds": n_train, "n_train_pairs": int(tr_y.size), "n_test_pairs": int(te_y.size),
        "padded_points": int(model.point_clouds.shape[1]),
        "config": {"dist_func_enc": model.config.dist_func_enc, "eps_enc": model.config.eps_enc,
                   "emb_dim": model.config.emb_dim, "num_layers": model.config.num_layers,
                   "num_heads": model.config.num_heads, "coeff_dec": model.config.coeff_dec,
                   "num_sinkhorn_iter": int(num_iter), "batch_size": args.batch_size,
                   "num_particles_output": int(model.num_particles_output)},
        "ot_scale": scale,
        "steps": args.steps, "shape_sample": args.shape_sample,
        "enc_loss_every_10": [float(x) for x in np.asarray(model.enc_loss_curve[::10], np.float64)],
        "params": n_params, "encoder_params": n_enc_params,
        "iter_check_cpu_s": round(t_iter, 2), "init_cpu_s": round(t_init, 2),
        "train_cpu_s": round(train_cpu, 2), "train_cpu_s_per_step": round(train_cpu / max(args.steps, 1), 3),
        "enc_loss_first_25": float(curve[:25].mean()), "enc_loss_last_25": float(curve[-25:].mean()),
        "embed_clouds_per_cpu_s": round(max(speeds), 1),
        "embed_clouds_per_cpu_s_all_passes": [round(s, 1) for s in speeds],
        "embed_clouds_per_cpu_s_library_encode": round(lib_speed, 1), "library_encode_max_abs_gap": lib_gap,
        "test_raw": _metrics(d_te, te_y),
        "train_raw": _metrics(d_tr, tr_y),
        "correction": {"a": float(a), "b": float(b), "fitted_on": "train pairs"},
        "test_corrected": _metrics(a * d_te + b, te_y),
    }
    if args.target_check > 0:  # how close is Wormhole's own target, ot_scale * S2 (eps 0.01), to exact W2²?
        k = min(args.target_check, te_y.size)
        ci, cj = te_i[:k], te_j[:k]
        s2 = np.concatenate([np.asarray(model.jit_dist_enc([pc_all[ci[s]], w_all[ci[s]]],
                                                            [pc_all[cj[s]], w_all[cj[s]]]))
                             for s in (slice(q, min(q + 50, k)) for q in range(0, k, 50))])
        out["target_check"] = {"pairs": int(k), **_metrics(scale * s2, te_y[:k])}
    line = json.dumps(out)
    print(line)
    if args.json_out:
        with open(args.json_out, "w") as fh:
            fh.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
