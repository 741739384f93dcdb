"""The demo's figures: one function per figure, drawing what one step returned.

Each draws with :mod:`wassembed.demo.plots` into the report folder and returns its
:class:`~wassembed.demo.Figure` (file, heading, and caption from :mod:`wassembed.demo._captions`).
"""

from __future__ import annotations

import numpy as np

from . import _captions as words
from ._fit import Evaluation, Trained
from ._geometry import Barycenters, Interpolation, PrincipalRows
from ._report import Figure
from ._serving import Neighbours
from ._setup import DemoSetup

__all__ = ["training_figure", "scatter_figure", "errors_figure", "knn_figure", "barycenter_figure",
           "interpolation_figure", "principal_figure"]


def _figure(path, caption: str) -> Figure:
    return Figure(path.name, words.HEADINGS[path.name], caption)


def training_figure(setup: DemoSetup, trained: Trained) -> Figure:
    """Training objective, validation MSE and Pearson r per epoch, from the trainer's log."""
    from . import plots

    h, tr = trained.history, trained.numbers
    path = plots.training_curves([e["epoch"] for e in h], [e["train_loss"] for e in h], [e["val_mse"] for e in h],
                                 setup.out / "training_curves.png", val_pearson=[e["val_pearson"] for e in h],
                                 best_epoch=tr["best_epoch"], loss_label=words.training_loss_label())
    return _figure(path, words.training_caption(tr))


def scatter_figure(setup: DemoSetup, ev: Evaluation) -> Figure:
    """Estimated against exact W₂² on the unseen test pairs."""
    from . import plots

    path = plots.scatter_pred_vs_exact(ev.pred, ev.pairs.exact, setup.out / "scatter_unseen_pairs.png",
                                       metrics=ev.metrics, unit=words.UNIT,
                                       title=words.scatter_title(ev.pairs.exact.size, setup.test_range))
    return _figure(path, words.scatter_caption(setup.test_range))


def errors_figure(setup: DemoSetup, ev: Evaluation, conformal: dict, validation: dict | None) -> Figure:
    """Histogram of the errors, and coverage of the conformal intervals against their levels."""
    from . import plots

    path = plots.error_and_coverage(ev.pred, ev.pairs.exact, conformal["levels"], conformal["coverage"],
                                    setup.out / "errors_and_coverage.png", unit=words.UNIT,
                                    mean_width=conformal["mean_width"], by_decile=conformal["coverage_by_decile"])
    return _figure(path, words.errors_caption(conformal, validation, ev.numbers))


def knn_figure(setup: DemoSetup, nb: Neighbours) -> Figure:
    """Each query, its neighbours by embedding and after exact re-ranking."""
    from . import plots

    labels, ref = setup.labels, nb.references
    lab = setup.has_labels
    path = plots.knn_gallery(setup.images(setup.weights[nb.queries]),
                             setup.images(setup.weights[ref][nb.approx_idx]), nb.approx_values,
                             setup.images(setup.weights[ref][nb.exact_idx]), nb.exact_values,
                             setup.out / "knn_gallery.png", query_labels=labels[nb.queries] if lab else None,
                             approx_labels=labels[ref][nb.approx_idx] if lab else None,
                             exact_labels=labels[ref][nb.exact_idx] if lab else None, unit=words.UNIT,
                             title=words.knn_title(ref.size))
    return _figure(path, words.knn_caption(nb.numbers, float(np.mean(nb.approx_values)),
                                           float(np.mean(nb.exact_values))))


def barycenter_figure(setup: DemoSetup, bary: Barycenters) -> Figure:
    """Class barycenters, one row per method."""
    from . import plots

    path = plots.barycenter_figure([words.class_label(c) for c in bary.classes], bary.images,
                                   setup.out / "barycenters.png", title=words.barycenters_title())
    return _figure(path, words.barycenters_caption(bary.numbers))


def interpolation_figure(setup: DemoSetup, it: Interpolation) -> Figure:
    """The three interpolations between two test images."""
    from . import plots

    rows = dict(zip(words.INTERPOLATION_ROWS, (it.pixel, it.embedding, it.entropic)))
    path = plots.interpolation_figure(rows, it.ts, setup.out / "interpolation.png",
                                      title=words.interpolation_title(it.a, it.label_a, it.b, it.label_b))
    return _figure(path, words.interpolation_caption())


def principal_figure(setup: DemoSetup, pd: PrincipalRows) -> Figure:
    """Decoded principal directions, one row per (class, direction)."""
    from . import plots

    scales = pd.numbers["scales"]
    path = plots.image_rows(pd.rows, setup.out / "principal_directions.png",
                            row_labels=[words.principal_row_label(*d) for d in pd.directions],
                            titles=[words.principal_column_titles(scales)] * len(pd.rows),
                            title=words.principal_title())
    return _figure(path, words.principal_caption(scales))
