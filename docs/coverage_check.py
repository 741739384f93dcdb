"""Error bars and out-of-distribution flag of a model on unseen inputs: the figures of docs/calibration.md.

    python docs/coverage_check.py MODEL TEST_CACHE [--clouds] [--ood A:B]

Prints, for the test cache's pairs that touch no training image: the conformal coverage at the demo's six
levels, the coverage at 50 % and 90 % in each decile of the exact values, the mean relative error of the
closest tenth of the pairs and of all pairs, and, with ``--ood A:B``, the fraction of the inputs A:B of the
cache's data that ``model.is_ood`` flags at levels 0.9, 0.95 and 0.99 (false alarms, for inputs drawn like the
training data). ``--clouds``: the cache holds the digits as point clouds (``examples/point_clouds.py``).
"""
import argparse
import json

import numpy as np

import wassembed

LEVELS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99)

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("model")
ap.add_argument("test_cache")
ap.add_argument("--clouds", action="store_true", help="the caches hold point clouds")
ap.add_argument("--ood", default=None, help="A:B, inputs of the data to count false alarms on")
args = ap.parse_args()

model = wassembed.load(args.model)
cache = wassembed.DistanceCache.open(args.test_cache)
data, t = cache.data, cache.read()
seen = np.isin(t.i, model.calibration["train_images"]) | np.isin(t.j, model.calibration["train_images"])
i, j, exact = t.i[~seen], t.j[~seen], t.value[~seen]
pick = data.subset if args.clouds else (lambda rows: data.weights[rows])
edges = np.quantile(exact, np.linspace(0, 1, 11))
decile = np.clip(np.searchsorted(edges, exact, side="right") - 1, 0, 9)
out = {"pairs": int(exact.size), "calibration_pairs": int(model.calibration["val_pred"].size),
       "coverage_%": {}, "coverage_by_decile_%": {}}
for level in LEVELS:
    est = model.interval(pick(i), pick(j), level, warn_ood=False)
    inside = (exact >= est.lower) & (exact <= est.upper)
    out["coverage_%"][level] = round(100 * float(inside.mean()), 1)
    if level in (0.5, 0.9):
        out["coverage_by_decile_%"][level] = [round(100 * float(inside[decile == d].mean()), 1) for d in range(10)]
rel = (np.asarray(est.estimate) - exact) / exact
out["closest_tenth"] = {"exact_up_to": round(float(edges[1]), 4),
                        "mean_relative_error_%": round(100 * float(rel[decile == 0].mean()), 1)}
out["all_mean_relative_error_%"] = round(100 * float(rel.mean()), 1)
if args.ood:
    a, b = map(int, args.ood.split(":"))
    X = pick(np.arange(a, b))
    out["false_alarms_%"] = {lv: round(100 * float(np.mean(model.is_ood(X, level=lv))), 2) for lv in (0.9, 0.95, 0.99)}
print(json.dumps(out, indent=1))
