"""LOT at the solves of a cache: its cached per-image embeddings, a·d + b fitted on its pairs, scored on test pairs."""
import sys

import numpy as np

from wassembed.exact import DistanceCache, LinearOT
from wassembed.exact._teacher import read_lot_targets
from wassembed.metrics import regression_metrics

train, test = DistanceCache.open(sys.argv[1]), DistanceCache.open(sys.argv[2])
t, pairs, tp = read_lot_targets(train), train.read(), test.read()
lot = LinearOT(train.data, reference=t.reference)            # the cache's reference: the mean of its images
E = np.zeros((train.data.n, t.embedding.shape[1]))
E[t.index] = t.embedding                                      # cached: one exact solve per training image
fit = np.isin(pairs.i, t.index) & np.isin(pairs.j, t.index)  # training pairs whose images have an embedding
lot.fit_correction(E, pairs.i[fit], pairs.j[fit], pairs.value[fit])
new = np.union1d(tp.i, tp.j)
F = np.zeros((test.data.n, E.shape[1]))
F[new] = lot.transform(test.data.weights[new])                # one exact solve per unseen image
print({"images": len(t), "fit_pairs": int(fit.sum()), "correction": lot.correction_}
      | regression_metrics(lot.distance(F[tp.i], F[tp.j]), tp.value))
