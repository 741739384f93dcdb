"""Charts of measured numbers: estimates against exact values, errors and coverage, training curves."""


from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["INSTALL_HINT", "error_and_coverage", "scatter_pred_vs_exact", "training_curves"]

INSTALL_HINT = "plots need matplotlib: pip install 'wassembed[plot]' (or pip install matplotlib)"
_CMAP = "Greys"


def _figure(width: float, height: float):
    """A new Agg-backed Figure (no pyplot, no global state)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ModuleNotFoundError as exc:  # pragma: no cover - depends on the environment
        raise ModuleNotFoundError(INSTALL_HINT, name=exc.name) from None
    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", bbox_inches="tight", facecolor="white")
    return path


def _as_images(a, grid=None) -> np.ndarray:
    """``(..., H, W)`` float array from ``(..., H, W)`` or ``(..., k)`` with ``grid``."""
    a = np.asarray(a, dtype=np.float64)
    if grid is not None:
        a = a.reshape(*a.shape[:-1], int(grid[0]), int(grid[1])) if a.shape[-2:] != tuple(grid) else a
    if a.ndim < 2:
        raise ValueError(f"expected images (..., H, W) or histograms (..., k) with grid=, got shape {a.shape}")
    return a


def _show(ax, img, *, title=None, fontsize=7, color="black"):
    img = np.asarray(img, dtype=np.float64)
    top = float(img.max()) if img.size and img.max() > 0 else 1.0
    ax.imshow(img, cmap=_CMAP, vmin=0.0, vmax=top, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_linewidth(0.4)
        s.set_color("0.6")
    if title is not None:
        ax.set_title(title, fontsize=fontsize, pad=2, color=color)


def _squared(unit: str) -> str:
    """The unit of a squared error: ``pixel⁴`` for ``pixel²``, ``(u)²`` otherwise.

    Examples
    --------
    >>> _squared("pixel²"), _squared("m")
    ('pixel⁴', '(m)²')
    """
    return "pixel⁴" if unit == "pixel²" else f"({unit})²"


def _decile_panel(ax, by_decile: dict) -> None:
    """Coverage per decile of the exact values, one line per level, with the nominal levels dashed."""
    for k, (level, cov) in enumerate(sorted(by_decile.items())):
        color = ("tab:blue", "tab:green", "tab:purple")[k % 3]
        ax.plot(np.arange(1, len(cov) + 1), cov, "o-", ms=4, color=color, label=f"level {100 * float(level):g} %")
        ax.axhline(float(level), color=color, ls="--", lw=0.8)
    ax.set_xlabel("decile of the exact W₂² (1: closest pairs)")
    ax.set_ylabel("fraction inside the interval")
    ax.set_xticks(range(1, 11))
    ax.set_ylim(0, 1.02)
    ax.set_title("Coverage by distance decile (dashed: nominal)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"


def scatter_pred_vs_exact(pred, exact, path, *, metrics: dict | None = None, unit: str = "pixel²",
                          title: str = "Unseen test pairs", max_points: int = 20000, seed: int = 0) -> Path:
    """Scatter of embedding estimates against exact values, with the ``y = x`` line.

    Parameters
    ----------
    pred, exact : array-like, shape (m,)
        Estimates and exact values of the same pairs.
    path : str or path
        PNG to write.
    metrics : dict, optional
        :func:`wassembed.metrics.regression_metrics` output; Pearson r, MSE and relative MSE go in the
        title (computed here when omitted).
    unit : str
        Unit of W₂² on the axes (pixel² on a pixel grid).
    title : str
        First line of the title.
    max_points : int
        At most this many points are drawn (a seeded random subset; the metrics use every pair).
    seed : int
        Seed of that subset.

    Returns
    -------
    pathlib.Path
    """
    from ..metrics import regression_metrics

    pred = np.asarray(pred, dtype=np.float64).ravel()
    exact = np.asarray(exact, dtype=np.float64).ravel()
    m = metrics if metrics is not None else regression_metrics(pred, exact)
    idx = np.arange(pred.size)
    if pred.size > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(pred.size, max_points, replace=False))
    fig = _figure(5.0, 5.0)
    ax = fig.add_subplot()
    ax.scatter(exact[idx], pred[idx], s=4, alpha=0.35, color="tab:blue", edgecolors="none",
               label=f"{pred.size:,} pairs" + (f" ({idx.size:,} drawn)" if idx.size < pred.size else ""))
    lo = float(min(exact.min(), pred.min(), 0.0))
    hi = float(max(exact.max(), pred.max()))
    pad = 0.03 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="tab:red", lw=1.2, label="y = x")
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_aspect("equal")
    ax.set_xlabel(f"exact W₂² [{unit}] (POT network simplex)")
    ax.set_ylabel(f"embedding estimate ‖φ(x) − φ(y)‖² of W₂² [{unit}]")
    ax.set_title(f"{title}\nPearson r = {m['pearson']:.4f}, MSE = {m['mse']:.4g}, "
                 f"relative MSE = {m['relative_mse']:.3g}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def error_and_coverage(pred, exact, levels, coverage, path, *, unit: str = "pixel²",
                       mean_width=None, by_decile: dict | None = None) -> Path:
    """Histogram of the errors ``estimate − exact`` and the coverage of conformal intervals.

    Parameters
    ----------
    pred, exact : array-like, shape (m,)
        Estimates and exact values on test pairs.
    levels : array-like, shape (L,)
        Nominal coverage levels of the intervals (e.g. 0.5 … 0.99).
    coverage : array-like, shape (L,)
        Fraction of test pairs whose exact value fell inside the interval at each level.
    path : str or path
        PNG to write.
    unit : str
        Unit of W₂² (pixel² on a pixel grid).
    mean_width : array-like, shape (L,), optional
        Mean interval width at each level (annotated next to the points).
    by_decile : dict, optional
        ``{level: coverage (10,)}``: coverage at some levels in each decile of the exact values (a third
        panel).

    Returns
    -------
    pathlib.Path
    """
    err = np.asarray(pred, dtype=np.float64).ravel() - np.asarray(exact, dtype=np.float64).ravel()
    levels = np.asarray(levels, dtype=np.float64)
    coverage = np.asarray(coverage, dtype=np.float64)
    fig = _figure(15.0 if by_decile else 10.0, 4.2)
    ax1, ax2, *ax3 = fig.subplots(1, 3 if by_decile else 2)
    lim = float(np.quantile(np.abs(err), 0.995)) or 1.0
    ax1.hist(np.clip(err, -lim, lim), bins=60, color="tab:blue", alpha=0.8)
    ax1.axvline(0, color="tab:red", lw=1)
    q5, q95 = np.quantile(err, [0.05, 0.95])
    for q in (q5, q95):
        ax1.axvline(q, color="0.3", lw=0.8, ls="--")
    ax1.set_xlabel(f"estimate − exact W₂² [{unit}]")
    ax1.set_ylabel("test pairs")
    ax1.set_title(f"Errors on {err.size:,} unseen pairs\nmean {err.mean():+.3g}, median |err| "
                  f"{np.median(np.abs(err)):.3g}; dashed: 5 % and 95 %", fontsize=10)
    ax1.grid(alpha=0.3)
    ax2.plot([0, 1], [0, 1], color="tab:red", lw=1, label="nominal (y = x)")
    ax2.plot(levels, coverage, "o-", color="tab:blue", label="measured on test pairs")
    if mean_width is not None:
        for lv, cv, w in zip(levels, coverage, np.asarray(mean_width, dtype=np.float64)):
            ax2.annotate(f"±{w / 2:.2g}", (lv, cv), textcoords="offset points", xytext=(-8, -12), fontsize=7)
    lo = float(min(levels.min(), coverage.min())) - 0.05
    ax2.set_xlim(lo, 1.0)
    ax2.set_ylim(lo, 1.0)
    ax2.set_aspect("equal")
    ax2.set_xlabel("nominal coverage level")
    ax2.set_ylabel("fraction of exact values inside the interval")
    ax2.set_title("Split-conformal intervals (calibrated on held-out pairs)\n"
                  + (f"labels: mean half-width [{unit}]" if mean_width is not None else ""), fontsize=10)
    ax2.grid(alpha=0.3)
    ax2.legend(loc="lower right", fontsize=8)
    if by_decile:
        _decile_panel(ax3[0], by_decile)
    fig.tight_layout()
    return _save(fig, path)


def training_curves(epochs, train_loss, val_mse, path, *, val_pearson=None, best_epoch: int | None = None,
                    unit: str = "pixel²", loss_label: str = "training loss") -> Path:
    """Training loss and validation error per epoch (from the trainer's JSON-lines log).

    Parameters
    ----------
    epochs : array-like, shape (E,)
    train_loss : array-like, shape (E,)
        Mean training objective per epoch (distance term + reconstruction term, as optimised).
    val_mse : array-like, shape (E,)
        MSE of the distance estimates on validation pairs (held-out images).
    path : str or path
        PNG to write.
    val_pearson : array-like, shape (E,), optional
        Pearson r on validation pairs (second panel).
    best_epoch : int, optional
        Epoch whose weights were kept (marked).
    unit : str
        Unit of W₂² (pixel² on a pixel grid): the MSE is in its square.
    loss_label : str
        Legend of the training-loss curve (say what it sums).

    Returns
    -------
    pathlib.Path
    """
    epochs = np.asarray(epochs)
    fig = _figure(10.0 if val_pearson is not None else 5.5, 4.0)
    axes = fig.subplots(1, 2 if val_pearson is not None else 1)
    axes = np.atleast_1d(axes)
    ax = axes[0]
    ax.plot(epochs, train_loss, "o-", ms=3, color="tab:blue", label=loss_label)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss", color="tab:blue")
    ax.grid(alpha=0.3)
    ax2 = ax.twinx()
    ax2.plot(epochs, val_mse, "s-", ms=3, color="tab:orange", label="validation MSE of the distance")
    ax2.set_yscale("log")
    ax2.set_ylabel(f"validation MSE of W₂² [{_squared(unit)}]", color="tab:orange")
    if best_epoch:
        ax.axvline(best_epoch, color="0.4", ls="--", lw=0.8)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper right", fontsize=8)
    ax.set_title("Loss per epoch" + (f" (dashed: best epoch {best_epoch}, kept)" if best_epoch else ""),
                 fontsize=10)
    if val_pearson is not None:
        axp = axes[1]
        axp.plot(epochs, val_pearson, "o-", ms=3, color="tab:green")
        axp.set_xlabel("epoch")
        axp.set_ylabel("Pearson r on validation pairs")
        axp.set_title("Validation correlation (pairs of held-out images)", fontsize=10)
        axp.grid(alpha=0.3)
        if best_epoch:
            axp.axvline(best_epoch, color="0.4", ls="--", lw=0.8)
    fig.tight_layout()
    return _save(fig, path)


