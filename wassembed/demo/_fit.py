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
from ._sizes import LEVELS, PATIENCE, RECON_WEIGHT

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
        ``validation`` (metrics of the kept epoch), ``device``, ``model_dir``.
    """
    import wassembed

    out, ckpt = setup.out, setup.out / "checkpoints"
    if ckpt.exists():
        shutil.rmtree(ckpt)
    t0 = time.perf_counter()
    model = wassembed.train(out / "cache-train", model="fast", epochs=setup.sizes["epochs"], patience=PATIENCE,
                            recon_weight=RECON_WEIGHT, device=setup.device, seed=setup.seed, checkpoint_dir=ckpt,
                            progress=setup.progress)
    seconds = time.perf_counter() - t0
    model_dir = model.save(out / "model") or out / "model"
    tinfo = model.info.get("training", {})
    history = [json.loads(line) for line in (ckpt / "train_log.jsonl").read_text().splitlines() if line.strip()]
    numbers = {"seconds": seconds, "epochs_run": tinfo.get("epochs_run"), "best_epoch": tinfo.get("best_epoch"),
               "stopped": tinfo.get("stopped"), "train_pairs": tinfo.get("train_pairs"),
               "val_pairs": tinfo.get("val_pairs"), "validation": tinfo.get("validation"),
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
    """Coverage and mean width on the test pairs of the model's conformal intervals at each level.

    Returns
    -------
    dict
        ``levels``, ``coverage`` and ``mean_width`` (one per level), ``calibration_pairs``.
    """
    W = setup.weights
    cover, widths = [], []
    for lv in LEVELS:
        est = model.distance(W[pairs.i], W[pairs.j], interval=lv, warn_ood=False)
        lo, hi = np.asarray(est.lower, dtype=np.float64), np.asarray(est.upper, dtype=np.float64)
        cover.append(float(np.mean((pairs.exact >= lo) & (pairs.exact <= hi))))
        widths.append(float(np.mean(hi - lo)))
    return {"levels": list(LEVELS), "coverage": cover, "mean_width": widths,
            "calibration_pairs": int(np.size(model.calibration.get("val_pred", [])))}


def ood_check(setup: DemoSetup, model) -> dict:
    """How many test images ``model.is_ood`` flags (about 1 % expected for images like the training ones)."""
    ood = np.asarray(model.is_ood(setup.weights[setup.test_idx]))
    return {"test_images_flagged": int(ood.sum()), "test_images": int(setup.test_idx.size),
            "fraction": float(ood.mean())}
