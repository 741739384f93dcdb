"""Which reference measure makes the best LOT teacher? Unseen images, a·d + b fitted on half their pairs.

For the first IMAGES images of the test cache's pairs, one exact LOT solve each against each reference (the
mean of the training cache's images 0–5,999, the mean blurred by a 1-pixel Gaussian, the mean's upper half
of bins, the uniform measure on the grid); pairs among them split in halves: the correction is fitted on
one, scored on the other; then the average of two references' squared distances. Printed figures are in
docs/benchmarks.md ("Levers measured on MNIST"):

    python docs/lot_references.py caches/mnist-train-14k-lot caches/mnist-test-10k 1000
"""
import sys
from itertools import combinations

import numpy as np
from scipy.ndimage import gaussian_filter

from wassembed.exact import DistanceCache, LinearOT
from wassembed.metrics import regression_metrics

train, test = DistanceCache.open(sys.argv[1]), DistanceCache.open(sys.argv[2])
tp = test.read()
imgs = np.union1d(tp.i, tp.j)[:int(sys.argv[3]) if len(sys.argv) > 3 else 1000]
keep = np.isin(tp.i, imgs) & np.isin(tp.j, imgs)
pi, pj, pv = tp.i[keep], tp.j[keep], tp.value[keep]
half = np.arange(pi.size) % 2 == 0
W, mean = test.data.weights, train.data.weights[:6000].mean(0)
H, Wd = test.data.grid
refs = {"mean": mean, "mean-blur1": gaussian_filter(mean.reshape(H, Wd), 1.0).ravel(),
        "uniform": np.ones(W.shape[1]), "mean-upper-half": np.where(mean > np.median(mean[mean > 0]), mean, 0)}
show = lambda m: {k: round(m[k], 4) for k in ("pearson", "mse", "mean_relative_error")}
E = {}
for name, r in refs.items():
    lot = LinearOT(test.data, reference=r / r.sum())
    E[name] = np.zeros((W.shape[0], lot.dim))
    E[name][imgs] = lot.transform(W[imgs])
    lot.fit_correction(E[name], pi[half], pj[half], pv[half])
    print(name, show(regression_metrics(lot.distance(E[name][pi[~half]], E[name][pj[~half]]), pv[~half])))
for a, b in combinations(refs, 2):
    d = (((E[a][pi] - E[a][pj]) ** 2).sum(1) + ((E[b][pi] - E[b][pj]) ** 2).sum(1)) / 2
    coef = np.linalg.lstsq(np.c_[d[half], np.ones(half.sum())], pv[half], rcond=None)[0]
    print(a, "+", b, show(regression_metrics(coef[0] * d[~half] + coef[1], pv[~half])))
