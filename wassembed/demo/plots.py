"""Figures of a trained Wasserstein embedding (matplotlib, Agg, no global state).

Every function takes plain numpy arrays and an output path, writes one PNG and returns the path. They
draw on a bare :class:`matplotlib.figure.Figure` (never ``pyplot``), so they neither change the user's
backend nor leak figures, and they work on headless machines. matplotlib is imported inside each function:
``import wassembed.demo.plots`` is free, and a missing matplotlib gives an install hint
(``pip install wassembed[plot]``).

Images are drawn as histograms: each panel is scaled to its own maximum (mass per pixel, white = 0), since
a histogram's total mass is 1 whatever its spread.

Examples
--------
>>> import tempfile, numpy as np
>>> rng = np.random.default_rng(0)
>>> y = rng.uniform(0, 5, 200)
>>> with tempfile.TemporaryDirectory() as d:
...     path = scatter_pred_vs_exact(y + rng.normal(0, 0.1, 200), y, d + "/scatter.png")
...     path.name, path.stat().st_size > 1000
('scatter.png', True)
"""

from ._charts import INSTALL_HINT, error_and_coverage, scatter_pred_vs_exact, training_curves
from ._images import barycenter_figure, image_rows, interpolation_figure, knn_gallery, principal_directions_figure

__all__ = [
    "INSTALL_HINT",
    "barycenter_figure",
    "error_and_coverage",
    "image_rows",
    "interpolation_figure",
    "knn_gallery",
    "principal_directions_figure",
    "scatter_pred_vs_exact",
    "training_curves",
]
