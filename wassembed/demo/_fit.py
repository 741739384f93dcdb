"""Steps 1–3 of the demo: precompute the two exact caches, train, evaluate on pairs of unseen images.

Each step measures and returns numbers (the dicts that go into ``results.json``), plus the arrays its
figure draws; none of them writes text. Only the public API is used.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass

import numpy as np

from ._setup import DemoSetup
from ._sizes import DECILE_LEVELS, LEVELS, OOD_LEVELS, PATIENCE, TRAINING

__all__ = ["UnseenPairs", "Trained", "Evaluation", "precompute_caches", "train_model", "evaluate_unseen",
           "conformal_coverage", "ood_check"]


def precompute_caches(setup: DemoSetup) -> dict:
    """Exact W₂² for pairs among the training images (in blocks) and, separately, among the test images.

    Returns
    -------
    dict
        ``seconds``, ``train`` and ``test`` (the two precompute reports), ``pairs_computed``,
        ``pairs_reused`` (already in the caches of an earlier run).
    """
    import wassembed

    s, out = setup.sizes, setup.out
    t0 = time.perf_counter()
    r_train = wassembed.precompute(setup.hs, out / "cache-train", pairs=s["train_pairs"], images=setup.train_range,
                                   sampling="blocks", block_size=s["block_size"], seed=setup.seed,
                                   workers=setup.workers, progress=setup.progress)
    r_test = wassembed.precompute(setup.hs, out / "cache-test", pairs=s["test_pairs"], images=setup.test_range,
                                  seed=setup.seed + 1, workers=setup.workers, progress=setup.progress)
    return {"seconds": time.perf_counter() - t0, "train": r_train.as_dict(), "test": r_test.as_dict(),
            "pairs_computed": r_train.computed + r_test.computed,
            "pairs_reused": r_train.already_cached + r_test.already_cached}


@dataclass(frozen=True)
class Trained:
    """The trained model, where it was saved, its per-epoch log and the numbers of its training."""

    model: object
    model_dir: object
    history: list
    numbers: dict


def train_model(setup: DemoSetup) -> Trained:
    """Train the encoder/decoder on the training cache alone and save it to ``OUT/model``.

    A checkpoint folder of an earlier demo is removed first (its run would be refused as a different one).

    Returns
    -------
    Trained
        ``numbers``: ``seconds``, ``epochs_run``, ``best_epoch``, ``stopped``, ``train_pairs``, ``val_pairs``,
        ``validation`` (metrics of the kept epoch), ``split`` (where the pairs went), ``decoder_phase`` (what the
        decoder phase did), ``device``, ``model_dir``.
    """
    import wassembed

    out, ckpt = setup.out, setup.out / "checkpoints"
    if ckpt.exists():
        shutil.rmtree(ckpt)
    t0 = time.perf_counter()
    model = wassembed.train(out / "cache-train", model="fast", epochs=setup.sizes["epochs"], patience=PATIENCE,
                            decoder_epochs=setup.sizes["decoder_epochs"], **TRAINING, device=setup.device,
                            seed=setup.seed, checkpoint_dir=ckpt,
                            progress=setup.progress)
    seconds = time.perf_counter() - t0
    model_dir = model.save(out / "model") or out / "model"
    tinfo = model.info.get("training", {})
    history = [json.loads(line) for line in (ckpt / "train_log.jsonl").read_text().splitlines() if line.strip()]
    numbers = {"seconds": seconds, "epochs_run": tinfo.get("epochs_run"), "best_epoch": tinfo.get("best_epoch"),
               "stopped": tinfo.get("stopped"), "train_pairs": tinfo.get("train_pairs"),
               "val_pairs": tinfo.get("val_pairs"), "validation": tinfo.get("validation"),
               "split": tinfo.get("split"), "decoder_phase": tinfo.get("decoder_phase"),
               "device": str(model.device), "model_dir": str(model_dir)}
    return Trained(model=model, model_dir=model_dir, history=history, numbers=numbers)


@dataclass(frozen=True)
class UnseenPairs:
    """The pairs of the test cache: image indices ``i``, ``j`` and their exact values."""

    i: np.ndarray
    j: np.ndarray
    exact: np.ndarray


@dataclass(frozen=True)
class Evaluation:
    """The test pairs, the model's estimates on them, their metrics and the numbers of the report."""

    pairs: UnseenPairs
    pred: np.ndarray
    metrics: dict
    numbers: dict


def evaluate_unseen(setup: DemoSetup, model) -> Evaluation:
    """Metrics on the test pairs with :func:`wassembed.serve.evaluate`, and again through ``model.distance``.

    Returns
    -------
    Evaluation
        ``numbers``: evaluate's metrics plus ``n_dropped_by_evaluate``, ``pairs_touching_training_images``
        (0 when the split holds) and ``distance_vs_evaluate_mse_diff`` (the two routes agree).
    """
    import wassembed
    from wassembed.metrics import regression_metrics
    from wassembed.serve import evaluate

    test_cache = wassembed.DistanceCache.open(setup.out / "cache-test")
    ev = evaluate(model, test_cache)
    table = test_cache.read()
    pairs = UnseenPairs(i=table.i, j=table.j, exact=table.value)
    W = setup.weights
    pred = np.asarray(model.distance(W[pairs.i], W[pairs.j], warn_ood=False), dtype=np.float64)
    met = regression_metrics(pred, pairs.exact)
    seen = np.zeros(setup.hs.n, dtype=bool)
    seen[np.asarray(model.calibration.get("train_images", np.zeros(0, np.int64)), dtype=np.int64)] = True
    numbers = {key: v for key, v in ev.items() if key not in ("n_dropped", "cache_fingerprint")}
    numbers.update(n_dropped_by_evaluate=int(ev.get("n_dropped", 0)),
                   pairs_touching_training_images=int((seen[pairs.i] | seen[pairs.j]).sum()),
                   distance_vs_evaluate_mse_diff=abs(met["mse"] - ev["mse"]))
    return Evaluation(pairs=pairs, pred=pred, metrics=met, numbers=numbers)


def conformal_coverage(setup: DemoSetup, model, pairs: UnseenPairs) -> dict:
    """Coverage and mean width on the test pairs of the model's conformal intervals at each level, the coverage
    in each decile of the exact values, and the relative error of the closest pairs.

    Returns
    -------
    dict
        ``levels``, ``coverage`` and ``mean_width`` (one per level), ``calibration_pairs``,
        ``calibration_source``, ``decile_edges`` (11 quantiles of the exact values), ``coverage_by_decile``
        (``{level: [10 fractions]}`` for :data:`DECILE_LEVELS`), and for the closest tenth of the pairs (first
        decile) ``closest_mean_relative_error`` (signed: negative when underestimated) and
        ``closest_mean_abs_relative_error``, next to ``all_mean_relative_error``.
    """
    W = setup.weights
    exact = pairs.exact
    edges = np.quantile(exact, np.linspace(0, 1, 11))
    decile = np.clip(np.searchsorted(edges, exact, side="right") - 1, 0, 9)
    cover, widths, by_decile = [], [], {}
    est = None
    for lv in LEVELS:
        est = model.interval(W[pairs.i], W[pairs.j], lv, warn_ood=False)
        lo, hi = np.asarray(est.lower, dtype=np.float64), np.asarray(est.upper, dtype=np.float64)
        inside = (exact >= lo) & (exact <= hi)
        cover.append(float(np.mean(inside)))
        widths.append(float(np.mean(hi - lo)))
        if lv in DECILE_LEVELS:
            by_decile[lv] = [float(np.mean(inside[decile == d])) for d in range(10)]
    pred = np.asarray(est.estimate, dtype=np.float64)
    rel = (pred - exact) / exact
    near = decile == 0
    return {"levels": list(LEVELS), "coverage": cover, "mean_width": widths,
            "calibration_pairs": int(np.size(model.calibration.get("val_pred", []))),
            "calibration_source": model.info.get("training", {}).get("calibration_source"),
            "decile_edges": edges.tolist(), "coverage_by_decile": by_decile,
            "closest_mean_relative_error": float(np.mean(rel[near])),
            "closest_mean_abs_relative_error": float(np.mean(np.abs(rel[near]))),
            "all_mean_relative_error": float(np.mean(rel))}


def ood_check(setup: DemoSetup, model) -> dict:
    """How many test images ``model.is_ood`` flags at each of :data:`OOD_LEVELS` (about ``1 − level`` expected for
    images like the training ones: false alarms).

    Returns
    -------
    dict
        ``levels``, ``flagged`` and ``fractions`` (one per level), ``test_images``, and for the default level
        0.99 ``test_images_flagged`` and ``fraction``.
    """
    X = setup.weights[setup.test_idx]
    flagged = [int(np.sum(model.is_ood(X, level=lv))) for lv in OOD_LEVELS]
    n = int(setup.test_idx.size)
    top = flagged[OOD_LEVELS.index(0.99)]
    return {"levels": list(OOD_LEVELS), "flagged": flagged, "fractions": [f / n for f in flagged],
            "test_images_flagged": top, "test_images": n, "fraction": top / n}
