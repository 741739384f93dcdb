"""``wassembed demo``: the whole pipeline on one dataset, timed, with a report folder.

On scikit-learn's bundled digits (1,797 images of 8×8, no download) by default, or any file
:func:`wassembed.data.load_dataset` reads (``--data PATH``, e.g. MNIST IDX files):

1. **precompute** exact :math:`W_2^2` (POT's network simplex) for pairs among the *training images*
   (``0:1400`` for digits; the first 78 % otherwise) and for pairs among the *test images* (the rest);
2. **train** the encoder/decoder on the training cache alone (its own validation pairs, of training-range
   images held out by the trainer, give the early stopping and the conformal calibration);
3. **evaluate** on the test pairs, whose images were never seen in training: Pearson r, MSE, relative
   MSE, errors, and the coverage of conformal intervals;
4. **serve**: the measured speed of ``distance`` and ``cdist`` against exact POT (``ot.emd2``) in the same
   run, kNN with exact re-ranking (checked against brute force), class barycenters next to POT's entropic
   barycenters, an interpolation and principal directions.

It prints a results table and writes ``OUT/``: ``report.html`` and ``report.md`` (figures with captions and
the numbers), ``results.json``, the PNG figures, the trained model (``model/``, loadable with
``wassembed.load``), the two caches and the training log (``checkpoints/train_log.jsonl``).

Only the public API is used (``precompute``, ``train``, the model's methods, ``wassembed.metrics``): the
module doubles as an example. Heavy modules (torch, POT, matplotlib) are imported inside the functions;
``import wassembed.demo`` stays light for the command line.
"""


from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from ._sizes import LEVELS, PATIENCE, RECON_WEIGHT, demo_sizes, split_ranges
from ._text import _coverage_sentence, _intro, _notes, _table_rows, format_results

__all__ = ["run_demo"]

def _say(echo, msg: str) -> None:
    if echo is not None:
        echo(msg)


def _timed(fn, *args, repeat: int = 1, **kw):
    """Best wall time of ``repeat`` calls (after one warm-up when repeating) and the last result."""
    if repeat > 1:
        fn(*args, **kw)
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*args, **kw)
        best = min(best, time.perf_counter() - t0)
    return best, out


def _emd2_loop(wa, wb, M) -> np.ndarray:
    import ot

    return np.array([ot.emd2(a, b, M) for a, b in zip(wa, wb)], dtype=np.float64)


def _pick_classes(labels, wanted, n):
    """Up to ``n`` classes, preferring ``wanted`` ones present in ``labels``."""
    present = [c for c in wanted if c in set(labels.tolist())]
    rest = [c for c in np.unique(labels).tolist() if c not in present]
    return (present + rest)[:n]


def run_demo(data="digits", out="demo-output", *, seed: int = 0, device: str = "auto", tiny: bool = False,
             train_pairs: int | None = None, epochs: int | None = None, workers: int | None = None,
             threads: int | None = 1, progress: bool = True, echo=print) -> dict:
    """Run the demo pipeline and write its report folder.

    Parameters
    ----------
    data : str or path
        ``"digits"`` (default) or a data file readable by :func:`wassembed.data.load_dataset`.
    out : str or path
        Report folder (created; files of an earlier demo there are replaced, its caches reused).
    seed : int
        Seeds the pair plans, the training and the picks of examples.
    device : {"auto", "cpu", "cuda"}
        Where the network trains and serves.
    tiny : bool
        A few-second version (small sizes, 2 epochs) for tests; its numbers mean little.
    train_pairs, epochs : int, optional
        Override the default sizes (:func:`demo_sizes`).
    workers : int, optional
        Processes for the exact precompute (default: all cores).
    threads : int or None
        torch CPU threads while the demo runs (restored afterwards). The default 1 is the fastest for these
        small networks on a small or shared CPU (measured on a loaded 2-core machine: 3 epochs in 5.5 s with
        1 thread, 22 s with 2); ``None`` keeps torch's setting.
    progress : bool
        Progress bars on stderr.
    echo : callable or None
        Where the step messages and the final table go (``print`` by default; ``None``: silent).

    Returns
    -------
    dict
        Every number of the report (also in ``OUT/results.json``), plus ``table`` (the printed text) and
        ``files`` (paths written).
    """
    import torch

    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        from ..errors import InputError, explain

        raise InputError(explain("bad thread count", expected="a positive integer", received=repr(threads),
                                 fix="e.g. --threads 1"))
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _pipeline(data, Path(out), seed=seed, device=device, tiny=tiny, train_pairs=train_pairs,
                         epochs=epochs, workers=workers, progress=progress, echo=echo)
    finally:
        torch.set_num_threads(before)


def _pipeline(data, out: Path, *, seed, device, tiny, train_pairs, epochs, workers, progress, echo) -> dict:
    t_start = time.perf_counter()
    import torch

    import wassembed

    from ..data import load_dataset
    from ..exact import precompute
    from ..metrics import regression_metrics
    from ..serve import evaluate
    from . import plots
    from ._report import Figure, to_jsonable, write_report

    out.mkdir(parents=True, exist_ok=True)
    hs = load_dataset(data)
    if hs.grid is None:
        from ..errors import InputError, explain

        raise InputError(explain("the demo draws images", expected="images on a pixel grid",
                                 received=f"histograms on a {hs.support_kind} support",
                                 fix="use the Python API for non-image data"))
    H, W = hs.grid
    sizes = demo_sizes(hs.k, tiny)
    if train_pairs is not None:
        sizes["train_pairs"] = int(train_pairs)
    if epochs is not None:
        sizes["epochs"] = int(epochs)
    train_range, test_range = split_ranges(hs.n)
    cut = int(train_range.split(":")[1])
    labels = hs.labels if hs.labels is not None else np.zeros(hs.n, dtype=np.int64)
    has_labels = hs.labels is not None
    R = {"dataset": {"name": hs.name, "n": hs.n, "grid": [H, W], "k": hs.k,
                     "train_images": train_range, "test_images": test_range},
         "sizes": dict(sizes), "seed": int(seed), "tiny": bool(tiny),
         "versions": {"wassembed": wassembed.__version__, "torch": torch.__version__,
                      "numpy": np.__version__, "python": sys.version.split()[0]},
         "torch_threads": torch.get_num_threads()}
    files: list[Path] = []
    figs: list[Figure] = []
    timings: dict = {}
    cpu_timings: dict = {}
    mark = [time.perf_counter(), time.process_time()]

    def lap(name):
        now, cpu = time.perf_counter(), time.process_time()
        timings[name], cpu_timings[name] = now - mark[0], cpu - mark[1]
        mark[:] = [now, cpu]

    unit = "W₂²"

    # 1. exact distances ----------------------------------------------------------------------------
    _say(echo, f"[1/4] exact W2² with POT: {sizes['train_pairs']:,} pairs among training images {train_range}, "
               f"{sizes['test_pairs']:,} among test images {test_range} …")
    t0 = time.perf_counter()
    r_train = precompute(hs, out / "cache-train", pairs=sizes["train_pairs"], images=train_range,
                         sampling="blocks", block_size=sizes["block_size"], seed=seed, workers=workers,
                         progress=progress)
    r_test = precompute(hs, out / "cache-test", pairs=sizes["test_pairs"], images=test_range, seed=seed + 1,
                        workers=workers, progress=progress)
    t_pre = time.perf_counter() - t0
    R["precompute"] = {"seconds": t_pre, "train": r_train.as_dict(), "test": r_test.as_dict(),
                       "pairs_computed": r_train.computed + r_test.computed,
                       "pairs_reused": r_train.already_cached + r_test.already_cached}

    lap("precompute")
    # 2. training -----------------------------------------------------------------------------------
    _say(echo, f"[2/4] training the encoder/decoder ({sizes['epochs']} epochs max, device {device}, "
               f"{RECON_WEIGHT:g} × KL reconstruction) …")
    ckpt = out / "checkpoints"
    if ckpt.exists():  # a fresh run: the checkpoint of an earlier demo would be refused
        shutil.rmtree(ckpt)
    t0 = time.perf_counter()
    model = wassembed.train(out / "cache-train", model="fast", epochs=sizes["epochs"], patience=PATIENCE,
                            recon_weight=RECON_WEIGHT, device=device, seed=seed, checkpoint_dir=ckpt,
                            progress=progress)
    t_train = time.perf_counter() - t0
    model_dir = model.save(out / "model") or out / "model"
    tinfo = model.info.get("training", {})
    history = [json.loads(line) for line in (ckpt / "train_log.jsonl").read_text().splitlines() if line.strip()]
    R["training"] = {"seconds": t_train, "epochs_run": tinfo.get("epochs_run"),
                     "best_epoch": tinfo.get("best_epoch"), "stopped": tinfo.get("stopped"),
                     "train_pairs": tinfo.get("train_pairs"), "val_pairs": tinfo.get("val_pairs"),
                     "validation": tinfo.get("validation"), "device": str(model.device),
                     "model_dir": str(model_dir)}
    f = plots.training_curves([h["epoch"] for h in history], [h["train_loss"] for h in history],
                              [h["val_mse"] for h in history], out / "training_curves.png",
                              val_pearson=[h["val_pearson"] for h in history], best_epoch=tinfo.get("best_epoch"),
                              loss_label=f"training loss (distance + {RECON_WEIGHT:g}·KL)")
    files.append(f)
    figs.append(Figure(f.name, "Training curves",
                       f"Per-epoch values from the trainer's JSON-lines log (checkpoints/train_log.jsonl). Left: "
                       f"the training objective (squared error of the distance + {RECON_WEIGHT:g} × KL "
                       f"reconstruction per input, as optimised, log scale) and the MSE of the distance on "
                       f"validation pairs (pairs of training-range images that the trainer held out). Right: validation Pearson r. "
                       f"The weights of the best validation epoch ({tinfo.get('best_epoch')}) are kept; "
                       f"training stopped after {tinfo.get('epochs_run')} epochs ({tinfo.get('stopped')})."))

    lap("train")
    # 3. evaluation on unseen pairs -----------------------------------------------------------------
    _say(echo, "[3/4] evaluating on pairs of unseen test images …")
    test_cache = wassembed.DistanceCache.open(out / "cache-test")
    ev = evaluate(model, test_cache)
    table = test_cache.read()
    ti, tj, ty = table.i, table.j, table.value
    Wt = hs.weights
    pred = np.asarray(model.distance(Wt[ti], Wt[tj], warn_ood=False), dtype=np.float64)
    met = regression_metrics(pred, ty)  # the same pairs as `evaluate`, through model.distance, for the figures
    seen = np.zeros(hs.n, dtype=bool)
    seen[np.asarray(model.calibration.get("train_images", np.zeros(0, np.int64)), dtype=np.int64)] = True
    leaked = int((seen[ti] | seen[tj]).sum())
    R["test"] = {key: v for key, v in ev.items() if key not in ("n_dropped", "cache_fingerprint")}
    R["test"].update(n_dropped_by_evaluate=int(ev.get("n_dropped", 0)), pairs_touching_training_images=leaked,
                     distance_vs_evaluate_mse_diff=abs(met["mse"] - ev["mse"]))
    cover, widths = [], []
    for lv in LEVELS:
        est = model.distance(Wt[ti], Wt[tj], interval=lv, warn_ood=False)
        lo, hi = np.asarray(est.lower, dtype=np.float64), np.asarray(est.upper, dtype=np.float64)
        cover.append(float(np.mean((ty >= lo) & (ty <= hi))))
        widths.append(float(np.mean(hi - lo)))
    R["conformal"] = {"levels": list(LEVELS), "coverage": cover, "mean_width": widths,
                      "calibration_pairs": int(np.size(model.calibration.get("val_pred", [])))}
    test_idx = np.arange(cut, hs.n)
    ood = np.asarray(model.is_ood(Wt[test_idx]))
    R["ood"] = {"test_images_flagged": int(ood.sum()), "test_images": int(test_idx.size),
                "fraction": float(ood.mean())}
    f = plots.scatter_pred_vs_exact(pred, ty, out / "scatter_unseen_pairs.png", metrics=met, unit=unit,
                                    title=f"{ty.size:,} pairs of test images {test_range} (never trained on)")
    files.append(f)
    figs.append(Figure(f.name, "Estimated vs exact W₂² on unseen pairs",
                       f"Each point is a pair of test images (indices {test_range}); no test image was used "
                       f"in training. x: exact W₂² from POT's network simplex (squared-Euclidean ground "
                       f"cost in pixel² units); y: ‖φ(x) − φ(y)‖² from the model. Red: y = x."))
    f = plots.error_and_coverage(pred, ty, LEVELS, cover, out / "errors_and_coverage.png", unit=unit,
                                 mean_width=widths)
    files.append(f)
    figs.append(Figure(f.name, "Errors and conformal interval coverage",
                       "Left: histogram of estimate − exact on the unseen test pairs (clipped at the 99.5 % "
                       "quantile of |error|). Right: for split-conformal intervals calibrated on the "
                       "trainer's validation pairs (model.distance(..., interval=level)), the fraction of test "
                       "pairs whose exact value lies inside, against the nominal level; labels give the mean "
                       "half-width. Points on or above the red line mean the stated coverage holds; "
                       + _coverage_sentence(LEVELS, cover, tinfo.get("validation") or {}, R["test"])))

    lap("evaluate")
    # 4. serving ------------------------------------------------------------------------------------
    _say(echo, "[4/4] serving: speed against exact POT, kNN, barycenters, interpolation, principal directions …")
    M = np.array(hs.ground_cost(2))
    # speed of paired distances: the same test pairs, exact one by one with ot.emd2 vs the model
    m_ex = min(sizes["exact_timing_pairs"], ti.size)
    t_ex, ex_vals = _timed(_emd2_loop, Wt[ti[:m_ex]], Wt[tj[:m_ex]], M)
    exact_rate = m_ex / t_ex
    Xa, Xb = Wt[ti], Wt[tj]
    t_dist, _ = _timed(lambda: model.distance(Xa, Xb, warn_ood=False), repeat=3)
    dist_rate = ti.size / t_dist
    # speed of a distance matrix: test images against training images
    A, B = Wt[test_idx], Wt[:cut]
    t_cd, D = _timed(lambda: model.cdist(A, B), repeat=3)
    cd_rate = D.size / t_cd
    rng = np.random.default_rng(seed)
    ca = rng.integers(0, A.shape[0], m_ex)
    cb = rng.integers(0, B.shape[0], m_ex)
    t_ex2, _ = _timed(_emd2_loop, A[ca], B[cb], M)
    exact_rate_cd = m_ex / t_ex2
    R["speed"] = {"exact_pot_pairs_per_s": exact_rate, "exact_timing_pairs": m_ex,
                  "exact_check_max_abs_diff": float(np.max(np.abs(ex_vals - ty[:m_ex]))),
                  "distance_pairs": int(ti.size), "distance_seconds": t_dist, "distance_pairs_per_s": dist_rate,
                  "distance_speedup": dist_rate / exact_rate,
                  "cdist_shape": list(D.shape), "cdist_seconds": t_cd, "cdist_pairs_per_s": cd_rate,
                  "exact_pot_cdist_pairs_per_s": exact_rate_cd, "cdist_speedup": cd_rate / exact_rate_cd,
                  "cdist_exact_estimated_seconds": D.size / exact_rate_cd,
                  "notes": "exact: ot.emd2 on the full ground cost, one pair at a time, one process; "
                           f"model: torch on {model.device} with {torch.get_num_threads()} thread(s), inputs "
                           "encoded inside the timed call; best of 3 runs after a warm-up"}

    lap("speed")
    # kNN gallery: test queries against the training images
    classes_all = np.unique(labels[test_idx])
    q_idx = []
    for c in classes_all:
        first = test_idx[labels[test_idx] == c]
        if first.size:
            q_idx.append(int(first[rng.integers(first.size)]))
    q_idx = np.array(q_idx[:: max(1, len(q_idx) // sizes["knn_queries"])][:sizes["knn_queries"]], dtype=np.int64)
    k = sizes["knn_k"]
    ref = np.arange(min(cut, 1400))  # brute force below solves every (query, reference) pair
    t_knn, approx = _timed(lambda: model.kneighbors(Wt[q_idx], Wt[ref], k=k))
    t_rr, rer = _timed(lambda: model.kneighbors(Wt[q_idx], Wt[ref], k=k, exact_rerank=True))
    from ..exact import ExactSolver

    solver = ExactSolver(M, 2)
    t0 = time.perf_counter()
    brute = np.stack([solver.solve_pairs(Wt, np.full(ref.size, q), ref) for q in q_idx])
    t_brute = time.perf_counter() - t0
    true_idx = np.argsort(brute, axis=1, kind="stable")[:, :k]
    a_idx, a_val = np.asarray(approx.indices), np.asarray(approx.values)
    e_idx, e_val = np.asarray(rer.indices), np.asarray(rer.values)
    true_vals = np.take_along_axis(brute, true_idx, 1)
    R["knn"] = {"queries": q_idx.tolist(), "references": f"0:{ref.size}", "k": k,
                "approx_recall_at_k": float(np.mean([len(set(a) & set(t)) / k for a, t in zip(a_idx, true_idx)])),
                "reranked_values_match_brute_force": bool(np.allclose(e_val, true_vals, rtol=1e-9, atol=1e-12)),
                "exact_solves_reranking": int(rer.n_exact), "exact_solves_brute_force": int(brute.size),
                "seconds_approx": t_knn, "seconds_reranked": t_rr, "seconds_brute_force": t_brute}
    # kNN classification of every test image (embedding distances only)
    if has_labels:
        idx_all = np.asarray(model.kneighbors(Wt[test_idx], Wt[:cut], k=5).indices)
        votes = labels[:cut][idx_all]
        pred_lab = np.array([np.bincount(v).argmax() for v in votes])
        R["knn"]["test_accuracy_5nn_embedding"] = float(np.mean(pred_lab == labels[test_idx]))
    img = lambda w: np.asarray(w, dtype=np.float64).reshape(*np.shape(w)[:-1], H, W)  # noqa: E731
    f = plots.knn_gallery(img(Wt[q_idx]), img(Wt[ref][a_idx]), a_val, img(Wt[ref][e_idx]), e_val,
                          out / "knn_gallery.png", query_labels=labels[q_idx] if has_labels else None,
                          approx_labels=labels[ref][a_idx] if has_labels else None,
                          exact_labels=labels[ref][e_idx] if has_labels else None, unit=unit,
                          title=f"Test images queried against the first {ref.size:,} training images")
    files.append(f)
    kn = R["knn"]
    figs.append(Figure(f.name, "Nearest-neighbour gallery",
                       f"Each row: a test image (red), its {k} nearest training images by embedding distance "
                       f"(titles: [class] estimated W₂²), then the {k} nearest after exact re-ranking "
                       f"(model.kneighbors(..., exact_rerank=True); titles: [class] exact W₂²). Re-ranking "
                       f"spent {kn['exact_solves_reranking']:,} exact solves instead of "
                       f"{kn['exact_solves_brute_force']:,} for brute force; its values "
                       f"{'match' if kn['reranked_values_match_brute_force'] else 'DO NOT match'} the brute-force "
                       f"k nearest. Recall@{k} of the embedding alone: {kn['approx_recall_at_k']:.2f}. Compare "
                       f"the values of the two halves: the estimates of near neighbours are "
                       f"{'lower' if np.mean(a_val) < np.mean(e_val) else 'higher'} than the exact values on "
                       f"average here (mean {np.mean(a_val):.3g} vs {np.mean(e_val):.3g}), the bias of the model at "
                       f"small distances also visible in the scatter plot."))

    lap("knn")
    # barycenters per class: pixel mean, embedding, POT entropic
    import ot

    classes = np.unique(labels[:cut]).tolist() if has_labels else [0]
    nb = sizes["bary_images"]
    rows = {"pixel mean (Euclidean)": [], "embedding: ψ(mean φ(x))": [], "POT entropic W₂ (reg 0.004)": []}
    objective = {key: [] for key in rows}
    t0 = time.perf_counter()
    for c in classes:
        members = np.flatnonzero(labels[:cut] == c)[:nb]
        Xc = Wt[members]
        bars = {"pixel mean (Euclidean)": Xc.mean(0),
                "embedding: ψ(mean φ(x))": np.asarray(model.barycenter(Xc), dtype=np.float64),
                "POT entropic W₂ (reg 0.004)": ot.bregman.convolutional_barycenter2d(
                    Xc.reshape(-1, H, W), 0.004, numItermax=sizes["bary_iter"], stopThr=1e-7,
                    warn=False).ravel()}
        for key, b in bars.items():
            b = np.maximum(np.asarray(b, dtype=np.float64), 0)
            b = b / b.sum()
            rows[key].append(b.reshape(H, W))
            objective[key].append(float(np.mean(solver.solve_pairs(np.vstack([b[None], Xc]),
                                                                    np.zeros(len(members), np.int64),
                                                                    np.arange(1, len(members) + 1)))))
    t_bary = time.perf_counter() - t0
    R["barycenters"] = {"classes": classes, "images_per_class": nb, "seconds": t_bary,
                        "mean_exact_w2_to_members": {key: float(np.mean(v)) for key, v in objective.items()},
                        "per_class": {key: v for key, v in objective.items()}}
    f = plots.barycenter_figure([f"class {c}" for c in classes], {key: np.stack(v) for key, v in rows.items()},
                                out / "barycenters.png", title="Class barycenters of training images")
    files.append(f)
    obj = R["barycenters"]["mean_exact_w2_to_members"]
    figs.append(Figure(f.name, "Class barycenters",
                       f"For each class, the first {nb} training images of that class averaged three ways: "
                       f"pixel-wise mean; the model's barycenter ψ(mean of φ(xᵢ)) (model.barycenter); and "
                       f"POT's convolutional barycenter (ot.bregman.convolutional_barycenter2d) — an ENTROPIC "
                       f"(regularised, hence slightly blurred) approximation of the W₂ barycenter, not an exact "
                       f"one. A W₂ barycenter minimises the mean W₂² to the members; measured exactly, that "
                       f"mean is {obj['pixel mean (Euclidean)']:.3f} for the pixel mean, "
                       f"{obj['embedding: ψ(mean φ(x))']:.3f} for the embedding and "
                       f"{obj['POT entropic W₂ (reg 0.004)']:.3f} for POT entropic (lower is better)"
                       + (": by this measure the embedding's barycenter is not better than the pixel mean here."
                          if obj['embedding: ψ(mean φ(x))'] >= obj['pixel mean (Euclidean)'] else ".")))

    lap("barycenters")
    # interpolation between two test digits
    pair_classes = _pick_classes(labels[test_idx], [1, 7, 0, 3], 2) if has_labels else [0, 0]
    ia = int(test_idx[labels[test_idx] == pair_classes[0]][0])
    cand_b = test_idx[(labels[test_idx] == pair_classes[1]) & (test_idx != ia)]
    ib = int(cand_b[0]) if cand_b.size else int(test_idx[1])
    n_steps = 9
    ts = np.linspace(0, 1, n_steps)
    path_emb = np.asarray(model.interpolate(Wt[ia], Wt[ib], steps=n_steps), dtype=np.float64)
    pair = np.stack([Wt[ia].reshape(H, W), Wt[ib].reshape(H, W)])
    path_pot = np.stack([ot.bregman.convolutional_barycenter2d(pair, 0.004, weights=np.array([1 - t, t]),
                                                              numItermax=sizes["bary_iter"], stopThr=1e-7,
                                                              warn=False) for t in ts])
    path_lin = np.stack([(1 - t) * Wt[ia] + t * Wt[ib] for t in ts])
    f = plots.interpolation_figure({"pixel blend (1−t)a + tb": img(path_lin),
                                    "embedding: ψ((1−t)φ(a) + tφ(b))": img(path_emb),
                                    "POT entropic W₂ barycenter": path_pot}, ts, out / "interpolation.png",
                                   title=f"From test image {ia} (class {labels[ia]}) to test image {ib} "
                                         f"(class {labels[ib]})")
    files.append(f)
    figs.append(Figure(f.name, "Interpolation between two unseen digits",
                       "Top: pixel-wise blend (mass fades in and out). Middle: the model's interpolation "
                       "model.interpolate(a, b) = ψ((1−t)φ(a) + tφ(b)). Bottom, for reference: POT's entropic "
                       "barycenter with weights (1−t, t) (ot.bregman.convolutional_barycenter2d, regularised), "
                       "a displacement interpolation where mass moves. Both images are test images the model "
                       "never saw. The ends of the middle row are the model's reconstructions ψ(φ(a)) and "
                       "ψ(φ(b)), not the images themselves."))

    lap("interpolation")
    # principal directions inside a few classes
    pcs = _pick_classes(labels[:cut], [2, 3, 7, 0], sizes["pca_classes"]) if has_labels else [0]
    scales = (-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5)
    pd_rows, pd_labels, pd_info = [], [], {}
    for c in pcs:
        members = np.flatnonzero(labels[:cut] == c)
        pdir = model.principal_directions(Wt[members], n_components=2, scales=scales)
        hist = np.asarray(pdir.histograms, dtype=np.float64)
        for m in range(hist.shape[0]):
            pd_rows.append(hist[m].reshape(len(scales), H, W))
            pd_labels.append(f"class {c}, direction {m + 1}\n({100 * pdir.explained_variance_ratio[m]:.0f} % of "
                             "variance)")
        pd_info[str(c)] = {"images": int(members.size), "std": pdir.std.tolist(),
                           "explained_variance_ratio": pdir.explained_variance_ratio.tolist()}
    R["principal_directions"] = {"classes": pcs, "scales": list(scales), "per_class": pd_info}
    f = plots.image_rows(pd_rows, out / "principal_directions.png", row_labels=pd_labels,
                         titles=[["mean" if s == 0 else f"{s:+g}σ" for s in scales]] * len(pd_rows),
                         title="Principal directions of the embedding, decoded (principal geodesic analysis)")
    files.append(f)
    figs.append(Figure(f.name, "Principal directions",
                       "For each class, PCA of the embeddings φ(x) of its training images "
                       "(model.principal_directions); each row decodes ψ(mean + s·σ·v) along one direction v "
                       "for s from −1.5 to +1.5 standard deviations σ. Columns 'mean' show the decoded mean "
                       "embedding (the model's barycenter of all the class's training images)."))

    lap("principal_directions")
    # model round trip through its saved files
    again = wassembed.load(model_dir)
    R["model_file_check_max_abs_diff"] = float(np.max(np.abs(
        np.asarray(again.embed(Wt[test_idx[:50]])) - np.asarray(model.embed(Wt[test_idx[:50]])))))

    lap("model_file_check")
    R["step_seconds"] = timings
    R["step_cpu_seconds"] = cpu_timings  # this process only (the exact precompute runs in worker processes)
    R["total_seconds"] = time.perf_counter() - t_start
    rows_table = format_results(R)
    R["table"] = rows_table
    paths = write_report(out, title=f"wassembed demo: {hs.name}", rows=_table_rows(R), figures=figs,
                         numbers=None, intro=_intro(R), notes=_notes(R))
    R["files"] = [str(p) for p in files] + [str(paths["html"]), str(paths["markdown"]), str(out / "results.json")]
    (out / "results.json").write_text(json.dumps(to_jsonable(R), indent=2) + "\n")
    _say(echo, rows_table)
    _say(echo, f"report: {paths['html']} (and report.md, results.json, {len(files)} figures); "
               f"model: {model_dir}")
    return R


