"""Figures of images: rows of histograms, barycenters, interpolations, principal directions, kNN."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._charts import _as_images, _figure, _fmt, _save, _show

__all__ = ["barycenter_figure", "image_rows", "interpolation_figure", "knn_gallery", "principal_directions_figure"]


def image_rows(rows, path, *, row_labels=None, titles=None, title: str | None = None, grid=None,
               panel: float = 0.85, label_width: float | None = None) -> Path:
    """A grid of small images: one row per array of ``rows``, each panel scaled to its own maximum.

    Parameters
    ----------
    rows : list of array-like, each ``(n_r, H, W)`` (or ``(n_r, k)`` with ``grid``)
        Rows may have different lengths; missing panels stay empty.
    path : str or path
        PNG to write.
    row_labels : list of str, optional
        Text to the left of each row.
    titles : list of list of str, optional
        A small title above each panel (``titles[r][c]``; ``None`` entries are skipped).
    title : str, optional
        Figure title.
    grid : tuple (H, W), optional
        Image shape when rows hold flat histograms.
    panel : float
        Size of one panel in inches.
    label_width : float, optional
        Inches reserved for the row labels (default: from the longest label line).

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     image_rows([np.eye(4)[None], np.ones((2, 4, 4))], d + "/g.png", row_labels=["a", "b"]).suffix
    '.png'
    """
    rows = [_as_images(r, grid) for r in rows]
    rows = [r[None] if r.ndim == 2 else r for r in rows]
    n_rows, n_cols = len(rows), max(r.shape[0] for r in rows)
    if row_labels is None:
        lw = 0.0
    elif label_width is None:
        longest = max((len(line) for lab in row_labels for line in str(lab).splitlines()), default=0)
        lw = max(0.8, 0.08 * longest + 0.25)
    else:
        lw = float(label_width)
    head = 0.45 if title else 0.0
    sub = 0.22 if titles is not None else 0.0
    fig = _figure(lw + panel * n_cols, head + (panel + sub) * n_rows)
    for r, imgs in enumerate(rows):
        for c in range(n_cols):
            left = (lw + c * panel) / (lw + panel * n_cols)
            bottom = 1 - (head + (r + 1) * (panel + sub)) / (head + (panel + sub) * n_rows)
            ax = fig.add_axes((left + 0.004, bottom, panel / (lw + panel * n_cols) * 0.94,
                               panel / (head + (panel + sub) * n_rows) * 0.94))
            if c < imgs.shape[0]:
                t = titles[r][c] if titles is not None and r < len(titles) and c < len(titles[r]) else None
                _show(ax, imgs[c], title=t)
            else:
                ax.axis("off")
        if row_labels is not None:
            y = 1 - (head + (r + 0.5) * (panel + sub) + sub / 2) / (head + (panel + sub) * n_rows)
            fig.text(0.01, y, row_labels[r], fontsize=8, va="center", ha="left", wrap=True)
    if title:
        fig.text(0.5, 1 - 0.5 * head / (head + (panel + sub) * n_rows), title, fontsize=10, ha="center",
                 va="center")
    return _save(fig, path)


def barycenter_figure(classes, rows: dict, path, *, grid=None, title: str | None = None) -> Path:
    """Class-wise barycenters computed several ways, one row per method, one column per class.

    Parameters
    ----------
    classes : sequence
        Class names (column titles).
    rows : dict of str → array-like ``(n_classes, H, W)``
        Method name (row label) → one image per class, e.g. ``{"ψ(mean φ)": ..., "POT entropic": ...}``.
    path : str or path
        PNG to write.
    grid : tuple (H, W), optional
        Image shape when rows hold flat histograms.
    title : str, optional

    Returns
    -------
    pathlib.Path
    """
    names = list(rows)
    titles = [[f"{c}" for c in classes]] + [[None] * len(classes)] * (len(names) - 1)
    return image_rows([rows[k] for k in names], path, row_labels=names, titles=titles, title=title, grid=grid)


def interpolation_figure(rows: dict, ts, path, *, grid=None, title: str | None = None) -> Path:
    """Interpolation strips between two inputs, one row per method, one column per ``t``.

    Parameters
    ----------
    rows : dict of str → array-like ``(len(ts), H, W)``
        Method name → images along the path (``t = 0`` is the first input, ``t = 1`` the second).
    ts : array-like
        Interpolation times (column titles).
    path : str or path
    grid : tuple (H, W), optional
    title : str, optional

    Returns
    -------
    pathlib.Path
    """
    names = list(rows)
    ts = np.asarray(ts, dtype=np.float64)
    titles = [[f"t = {t:.2g}" for t in ts]] + [[None] * ts.size] * (len(names) - 1)
    return image_rows([rows[k] for k in names], path, row_labels=names, titles=titles, title=title, grid=grid)


def principal_directions_figure(histograms, scales, path, *, explained=None, row_prefix: str = "",
                                grid=None, title: str | None = None) -> Path:
    """Principal directions of the embedding decoded at ``mean + s·σ·v`` (principal geodesic analysis).

    Parameters
    ----------
    histograms : array-like, shape (n_components, n_scales, H, W) (or ``(…, k)`` with ``grid``)
        Decoded images, as returned in ``WassersteinEmbedding.principal_directions(...).histograms``.
    scales : sequence of float
        The multiples ``s`` of the standard deviation σ (column titles).
    path : str or path
    explained : array-like, shape (n_components,), optional
        Explained variance ratio of each direction (in the row label).
    row_prefix : str
        Put before each row label (e.g. the class).
    grid : tuple (H, W), optional
    title : str, optional

    Returns
    -------
    pathlib.Path
    """
    h = _as_images(histograms, grid)
    scales = [float(s) for s in scales]
    labels = []
    for c in range(h.shape[0]):
        ev = f" ({100 * float(explained[c]):.0f} % var.)" if explained is not None else ""
        labels.append(f"{row_prefix}direction {c + 1}{ev}")
    col = [("mean" if s == 0 else f"{s:+g}σ") for s in scales]
    titles = [col] * h.shape[0]
    return image_rows(list(h), path, row_labels=labels, titles=titles, title=title)


def knn_gallery(queries, approx, approx_values, exact, exact_values, path, *, query_labels=None,
                approx_labels=None, exact_labels=None, unit: str = "pixel²", grid=None,
                title: str | None = None) -> Path:
    """Queries with their nearest references: embedding estimates, then after exact re-ranking.

    Parameters
    ----------
    queries : array-like, shape (q, H, W)
    approx : array-like, shape (q, k, H, W)
        Neighbours found with embedding distances.
    approx_values : array-like, shape (q, k)
        Their estimated distances.
    exact : array-like, shape (q, k, H, W)
        Neighbours after exact re-ranking.
    exact_values : array-like, shape (q, k)
        Their exact distances.
    path : str or path
    query_labels, approx_labels, exact_labels : array-like, optional
        Class labels shown in the panel titles (``(q,)``, ``(q, k)``, ``(q, k)``).
    unit : str
        Unit of W₂² (pixel² on a pixel grid).
    grid : tuple (H, W), optional
    title : str, optional

    Returns
    -------
    pathlib.Path
    """
    Q = _as_images(queries, grid)
    A = _as_images(approx, grid)
    E = _as_images(exact, grid)
    av = np.asarray(approx_values, dtype=np.float64)
    ev = np.asarray(exact_values, dtype=np.float64)
    nq, k = av.shape
    panel = 0.85

    def lab(arr, a, b=None) -> str:
        if arr is None:
            return ""
        v = np.asarray(arr)[a] if b is None else np.asarray(arr)[a][b]
        return f"[{v}] "

    n_cols = 1 + 2 * k
    gap = 0.35
    W = panel * n_cols + gap
    head = 0.75
    Hh = head + (panel + 0.3) * nq
    fig = _figure(W, Hh)
    for r in range(nq):
        bottom = 1 - (head + (r + 1) * (panel + 0.3)) / Hh
        hgt = panel / Hh * 0.92
        for c in range(n_cols):
            x = c * panel + (gap if c > k else 0.0)
            ax = fig.add_axes((x / W + 0.003, bottom, panel / W * 0.92, hgt))
            if c == 0:
                _show(ax, Q[r], title=f"query {lab(query_labels, r)}".strip(), color="tab:red")
            elif c <= k:
                _show(ax, A[r, c - 1], title=f"{lab(approx_labels, r, c - 1)}{_fmt(av[r, c - 1])}")
            else:
                _show(ax, E[r, c - k - 1], title=f"{lab(exact_labels, r, c - k - 1)}{_fmt(ev[r, c - k - 1])}")
    y = 1 - (head * 0.72) / Hh
    fig.text((panel + k * panel / 2) / W, y, f"{k} nearest by embedding (estimated W₂², {unit})", ha="center",
             fontsize=8, color="tab:blue")
    fig.text((panel * (1 + k) + gap + k * panel / 2) / W, y, f"{k} nearest after exact re-ranking (exact W₂², {unit})",
             ha="center", fontsize=8, color="tab:green")
    if title:
        fig.text(0.5, 1 - (head * 0.25) / Hh, title, ha="center", fontsize=10)
    return _save(fig, path)
