"""Accuracy of estimated distances against exact ones (numpy and scipy only; no torch).

For estimates ``ŷ`` and exact values ``y`` (both ``(m,)``):

* ``mse = mean((ŷ − y)²)``, ``relative_mse = mse / mean(y²)``;
* ``pearson`` and ``spearman`` correlations (:func:`scipy.stats.pearsonr`, :func:`scipy.stats.spearmanr`:
  Pearson on average ranks, :func:`scipy.stats.rankdata`); NaN when one side is constant;
* ``mean_relative_error = mean(|ŷ − y| / y)`` over pairs with ``y > 0``;
* quantiles of ``|ŷ − y|``: ``abs_err_q50``, ``abs_err_q90``, ``abs_err_q99``, ``abs_err_max``.

The accuracy of a trained model on a cache is :func:`wassembed.serve.evaluate`.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError, explain

__all__ = ["regression_metrics", "rankdata"]


def rankdata(x) -> np.ndarray:
    """Ranks ``1..m`` of the flattened ``x`` with ties given their average rank (:func:`scipy.stats.rankdata`).

    Examples
    --------
    >>> rankdata([10, 30, 20, 20]).tolist()
    [1.0, 4.0, 2.5, 2.5]
    """
    from scipy import stats  # imported on use: scipy.stats costs ~1 s at start-up

    return stats.rankdata(np.asarray(x, dtype=np.float64).ravel(), method="average")


def _correlation(test, a: np.ndarray, b: np.ndarray) -> float:
    """The statistic of ``test`` (``pearsonr`` or ``spearmanr``), NaN when ``a`` or ``b`` is constant."""
    if np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan")
    return float(test(a, b)[0])


def regression_metrics(pred, target) -> dict:
    """Accuracy metrics of estimates ``pred`` against exact ``target``.

    Parameters
    ----------
    pred, target : array-like, shape (m,)
        Finite estimates and exact values (``m >= 2``).

    Returns
    -------
    dict
        ``n_pairs, mse, relative_mse, pearson, spearman, mean_relative_error, abs_err_q50, abs_err_q90,
        abs_err_q99, abs_err_max, target_mean`` as Python floats (``n_pairs`` an int).

    Examples
    --------
    >>> m = regression_metrics([1.0, 2.0, 3.5], [1.0, 2.0, 3.0])
    >>> round(m["mse"], 4), round(m["pearson"], 4), m["spearman"]
    (0.0833, 0.9934, 1.0)
    """
    from scipy import stats  # imported on use: scipy.stats costs ~1 s at start-up

    pred = np.asarray(pred, dtype=np.float64).ravel()
    target = np.asarray(target, dtype=np.float64).ravel()
    if pred.shape != target.shape:
        raise InputError(explain("estimates and targets differ in length", expected="two arrays of equal length",
                                 received=f"{pred.size} and {target.size}", fix="pass matching pairs"))
    if pred.size < 2:
        raise InputError(explain("too few pairs to evaluate", expected="at least 2 pairs",
                                 received=str(pred.size), fix="evaluate on a larger cache"))
    if not (np.isfinite(pred).all() and np.isfinite(target).all()):
        raise InputError(explain("non-finite values in metrics input", expected="finite estimates and targets",
                                 received=f"{int((~np.isfinite(pred)).sum())} bad estimates, "
                                          f"{int((~np.isfinite(target)).sum())} bad targets",
                                 fix="check the model (NaN weights?) and the cache"))
    err = pred - target
    ae = np.abs(err)
    mse = float(np.mean(err ** 2))
    denom = float(np.mean(target ** 2))
    pos = target > 0
    q50, q90, q99 = np.quantile(ae, [0.5, 0.9, 0.99])
    return {
        "n_pairs": int(pred.size),
        "mse": mse,
        "relative_mse": mse / denom if denom > 0 else float("nan"),
        "pearson": _correlation(stats.pearsonr, pred, target),
        "spearman": _correlation(stats.spearmanr, pred, target),
        "mean_relative_error": float(np.mean(ae[pos] / target[pos])) if pos.any() else float("nan"),
        "abs_err_q50": float(q50),
        "abs_err_q90": float(q90),
        "abs_err_q99": float(q99),
        "abs_err_max": float(ae.max()),
        "target_mean": float(target.mean()),
    }
