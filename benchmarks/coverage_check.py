"""Error bars and out-of-distribution flag of a model on unseen inputs: the figures of docs/calibration.md.

    python benchmarks/coverage_check.py MODEL TEST_CACHE [--ood A:B]

Prints, for the test cache's pairs that touch no training image: the conformal coverage at the demo's six
levels, the coverage at 50 % and 90 % in each decile of the exact values, the mean relative error of the
closest tenth of the pairs and of all pairs, and, with ``--ood A:B``, the fraction of the inputs A:B of the
cache's data that ``model.is_ood`` flags at levels 0.9, 0.95 and 0.99 (false alarms, for inputs drawn like the
training data). Histograms and point clouds alike (the model reads its kind of data set). ``--tiny`` makes a
small cache and model of the bundled 8×8 digits in a temporary folder (the smoke test).
"""

from __future__ import annotations

import argparse
import json
import tempfile

import numpy as np

LEVELS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99)


def coverage(model_path, test_cache, ood: str | None = None) -> dict:
    """The figures of the module docstring, as a dict."""
    import wassembed

    model = wassembed.load(model_path)
    cache = wassembed.DistanceCache.open(test_cache)
    data, t = cache.data, cache.read()
    seen = np.isin(t.i, model.calibration["train_images"]) | np.isin(t.j, model.calibration["train_images"])
    i, j, exact = t.i[~seen], t.j[~seen], t.value[~seen]
    edges = np.quantile(exact, np.linspace(0, 1, 11))
    decile = np.clip(np.searchsorted(edges, exact, side="right") - 1, 0, 9)
    out = {"pairs": int(exact.size), "calibration_pairs": int(model.calibration["val_pred"].size),
           "coverage_%": {}, "coverage_by_decile_%": {}}
    for level in LEVELS:
        est = model.interval(data.subset(i), data.subset(j), level, warn_ood=False)
        inside = (exact >= est.lower) & (exact <= est.upper)
        out["coverage_%"][level] = round(100 * float(inside.mean()), 1)
        if level in (0.5, 0.9):
            out["coverage_by_decile_%"][level] = [round(100 * float(inside[decile == d].mean()), 1)
                                                  for d in range(10)]
    rel = (np.asarray(est.estimate) - exact) / exact
    out["closest_tenth"] = {"exact_up_to": round(float(edges[1]), 4),
                            "mean_relative_error_%": round(100 * float(rel[decile == 0].mean()), 1)}
    out["all_mean_relative_error_%"] = round(100 * float(rel.mean()), 1)
    if ood:
        a, b = map(int, ood.split(":"))
        X = data.subset(np.arange(a, b))
        out["false_alarms_%"] = {lv: round(100 * float(np.mean(model.is_ood(X, level=lv))), 2)
                                 for lv in (0.9, 0.95, 0.99)}
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?")
    ap.add_argument("test_cache", nargs="?")
    ap.add_argument("--ood", default=None, help="A:B, inputs of the data to count false alarms on")
    ap.add_argument("--tiny", action="store_true", help="a small cache and model of the 8×8 digits (the smoke test)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        if args.tiny:
            from _tiny import digits_caches, digits_model

            train, args.test_cache = digits_caches(work)
            args.model, args.ood = digits_model(work, train), "1400:1450"
        elif args.test_cache is None:
            ap.error("MODEL and TEST_CACHE are required (or --tiny)")
        out = coverage(args.model, args.test_cache, args.ood)
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
