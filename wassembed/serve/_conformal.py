"""Split-conformal error bars for learned distance estimates.

Given calibration pairs that the model never trained on, with estimates :math:`\\hat y_i` and exact values
:math:`y_i` (both in units of :math:`W_p^p`), the *scale-aware* nonconformity score

.. math:: s_i = \\frac{|y_i - \\hat y_i|}{\\hat y_i + c}

makes intervals proportional to the estimate (plus a floor ``c``), so they stay narrow for small distances.
With :math:`q` the :math:`\\lceil (n+1)\\,\\alpha \\rceil`-th smallest of the ``n`` calibration scores, the
interval :math:`[\\hat y - q(\\hat y + c),\\; \\hat y + q(\\hat y + c)]` is the level-:math:`\\alpha` error bar.

**What it guarantees.** If the score of a new pair and the ``n`` calibration scores are exchangeable (their
joint distribution does not change when they are permuted), the new pair's exact value lies in its interval
with probability at least :math:`\\alpha` (and below :math:`\\alpha + 1/(n+1)` for continuous scores), the
probability taken over the calibration pairs and the new pair together (Vovk et al. 2005; Lei et al. 2018): a
coverage level on average over new pairs, not a certainty for one pair. :func:`wassembed.train` calibrates on
pairs of two *calibration images*: the last held-out images of the data, never trained on and not used to
choose the epoch (:mod:`wassembed.learn._split`). For a new pair of two images drawn like them (the images
independent draws from one distribution, the calibration images and the new ones alike), each calibration
score has the distribution of the new pair's score, but the ``n`` scores are not exactly exchangeable with it:
calibration pairs share images (a few thousand pairs among ``m``, a few hundred, images). The level then holds
up to an error that shrinks as ``m`` grows (about :math:`1/\\sqrt{m}`), and the coverage of one trained model
varies around it with its calibration images (measured in ``docs/calibration.md``: by up to about 4 points at
some levels with ``m`` = 187 to 397 images). Pairs with a training image have smaller errors and a higher
coverage; inputs unlike the training data (see the out-of-distribution check) are not covered.

One-sided lower bounds use the signed score :math:`(\\hat y_i - y_i)/(\\hat y_i + c)`:
:math:`P(y \\ge \\text{lower}) \\ge \\alpha`. They drive the adaptive exact re-ranking of nearest neighbours.

Scores are also split into up to five bins by the estimate (quantiles of :math:`\\hat y`, at least 250
pairs each; "Mondrian" conformal prediction): each bin has its own quantile, so the coverage level holds
within each range of estimates (small distances included), not only on average. A level too high for the
bins' sizes falls back to fewer, larger bins: a level uses the finest binning whose bins keep at least five
scores beyond their quantile (``(m + 1)(1 − level) >= 5`` for a bin of ``m`` pairs), or failing that the
finest whose bins have a quantile at all (``m / (m + 1) >= level``). One-sided lower bounds are then
replaced by their largest non-decreasing minorant (still valid, and monotone in the estimate, which the
re-ranking relies on).

How many pairs a level needs: conformal coverage holds on average over calibration sets of any size, but the
coverage a given set delivers varies around it, the more so the fewer scores lie beyond the quantile: about
:math:`(n+1)(1-\\alpha)` of the ``n`` pairs it is taken over (per bin). With fewer than ~5 the bound is set by
one to four pairs and can be far off in either direction (41 pairs at level 0.9: 4.2, a quantile that is the
38th of 41 scores); :meth:`ConformalCalibrator.support` gives ``n`` for a level, and the served model warns
(:class:`~wassembed.serve.CalibrationWarning`) when error bars are asked for at such a level.

The floor ``c`` is chosen on one half of the calibration pairs (the value in a small grid that minimises the
mean interval width there) and the quantile is taken on the other half, so the choice does not break the
coverage guarantee. With fewer than 200 pairs, ``c`` is 10 % of the median estimate and all pairs are used.
"""


from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .._validation import check_number, check_pos_int
from ..errors import InputError, explain, param
from ._warnings import MIN_TAIL_PAIRS

__all__ = ["ConformalCalibrator", "DistanceEstimate", "conformal_quantile"]


class DistanceEstimate(NamedTuple):
    """Paired estimates with split-conformal bounds (``lower <= exact <= upper`` at the coverage ``level``).

    ``estimate``, ``lower``, ``upper``: float64 arrays ``(n,)`` (numpy, or torch for torch inputs), the
    values of :meth:`~wassembed.serve.WassersteinEmbedding.distance` and their bounds; ``level``: float.
    """
    estimate: object
    lower: object
    upper: object
    level: float

_C_GRID = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)  # multiples of the median estimate
_SPLIT_MIN = 200


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The :math:`\\lceil (n+1)\\,\\text{level} \\rceil`-th smallest score (``inf`` when that exceeds ``n``).

    Examples
    --------
    >>> conformal_quantile(np.arange(1.0, 10.0), 0.9)  # ceil(10 * 0.9) = 9th smallest of 9
    9.0
    >>> conformal_quantile(np.arange(1.0, 10.0), 0.95)
    inf
    """
    s = np.sort(np.asarray(scores, dtype=np.float64))
    rank = math.ceil((s.size + 1) * level - 1e-12)
    if rank > s.size:
        return math.inf
    return float(s[max(rank, 1) - 1])


def check_level(level, what: str = "interval") -> float:
    """Validate a coverage level in (0, 1) (the parameter ``level``; ``what`` it is the level of)."""
    return check_number("level", level, low=0, high=1, low_open=True, high_open=True,
                        fix=f"pass e.g. {param('level', 0.9)} (a 90 % {what} level)")


class ConformalCalibrator:
    """Split-conformal intervals and lower bounds for distance estimates.

    Parameters
    ----------
    pred, target : array-like, shape (n,)
        Model estimates and exact values of :math:`W_p^p` on calibration (validation) pairs.
    offset : float or "auto"
        The floor ``c`` of the score :math:`|y - \\hat y| / (\\hat y + c)`; ``"auto"`` picks it on half of the
        pairs (see the module docstring).
    bins : int or "auto"
        Number of estimate bins (``"auto"``: ``min(5, n // 250)``, at least 1).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.uniform(1, 20, 2000)
    >>> yhat = y * (1 + 0.05 * rng.standard_normal(2000))
    >>> cal = ConformalCalibrator(yhat, y)
    >>> lo, hi = cal.interval(np.array([1.0, 10.0]), 0.9)
    >>> bool(hi[0] - lo[0] < hi[1] - lo[1])  # narrower for small distances
    True
    """

    def __init__(self, pred, target, *, offset="auto", bins="auto"):
        pred = np.asarray(pred, dtype=np.float64).ravel()
        target = np.asarray(target, dtype=np.float64).ravel()
        if pred.shape != target.shape or pred.size == 0:
            raise InputError(explain("bad calibration pairs", expected="val_pred and val_target of one equal, "
                                     "nonzero length", received=f"{pred.size} and {target.size} values",
                                     fix="store the estimates and exact values of the same validation pairs"))
        if not (np.isfinite(pred).all() and np.isfinite(target).all()):
            raise InputError(explain("bad calibration pairs", expected="finite values",
                                     received="NaN or infinite values", fix="drop those pairs"))
        pred = np.maximum(pred, 0.0)
        scale = float(np.median(pred)) or 1.0
        if offset == "auto":
            if pred.size >= _SPLIT_MIN:
                perm = np.random.default_rng(0).permutation(pred.size)
                half = pred.size // 2
                tune, keep = perm[:half], perm[half:]
                widths = []
                for m in _C_GRID:
                    c = max(m * scale, 1e-12)
                    q = conformal_quantile(np.abs(target[tune] - pred[tune]) / (pred[tune] + c), 0.9)
                    widths.append(q * float(np.mean(pred[tune] + c)))
                offset = max(_C_GRID[int(np.argmin(widths))] * scale, 1e-12)
                pred, target = pred[keep], target[keep]
            else:
                offset = 0.1 * scale
        offset = float(offset)
        if not offset > 0 or not math.isfinite(offset):
            raise InputError(explain("bad conformal offset", expected="a positive finite floor c",
                                     received=repr(offset), fix="pass offset='auto'"))
        nb = max(1, min(5, pred.size // 250)) if bins == "auto" else \
            check_pos_int("bins", bins, fix=f"pass {param('bins', repr('auto'))} or a positive int")
        self.offset = offset
        self.n = int(pred.size)
        denom = pred + offset
        abs_s, low_s = np.abs(target - pred) / denom, (pred - target) / denom
        # one binning per bin count 1..nb: a level uses the finest binning whose bins all hold enough pairs
        self._binnings = []
        for b in range(1, nb + 1):
            edges = np.unique(np.quantile(pred, np.arange(1, b) / b)) if b > 1 else np.zeros(0)
            which = np.searchsorted(edges, pred, side="right")
            self._binnings.append((edges, [np.sort(abs_s[which == t]) for t in range(edges.size + 1)],
                                   [np.sort(low_s[which == t]) for t in range(edges.size + 1)]))
        self.edges = self._binnings[-1][0]

    @property
    def n_bins(self) -> int:
        """Number of estimate bins of the finest binning."""
        return int(self.edges.size + 1)

    def _pick(self, level: float, one_sided: bool):
        """``(edges, per-bin quantiles, per-bin sizes)`` of the finest binning whose every bin has at least
        :data:`~wassembed.serve._warnings.MIN_TAIL_PAIRS` scores beyond its quantile (``(m + 1)(1 − level)``);
        else the finest with a finite quantile in every bin; else the coarsest."""
        level = check_level(level)
        chosen = None
        for binning in reversed(self._binnings):
            scores = binning[2 if one_sided else 1]
            q = np.array([conformal_quantile(x, level) for x in scores])
            if not np.isfinite(q).all():
                continue
            chosen = chosen or (binning, q)
            if (min(x.size for x in scores) + 1) * (1 - level) >= MIN_TAIL_PAIRS - 1e-9:
                chosen = (binning, q)
                break
        if chosen is None:
            binning = self._binnings[0]
            chosen = (binning, np.array([conformal_quantile(x, level) for x in binning[2 if one_sided else 1]]))
        binning, q = chosen
        return binning[0], q, np.array([x.size for x in binning[1]])

    def quantiles(self, level: float, *, one_sided: bool = False) -> np.ndarray:
        """Per-bin conformal score quantiles for ``level`` (``inf`` when even one bin has too few pairs)."""
        return self._pick(level, one_sided)[1]

    def support(self, level: float, *, one_sided: bool = False) -> tuple[int, int]:
        """``(m, bins)``: the pairs in the smallest estimate bin whose quantile serves ``level``, and the number
        of bins. About ``(m + 1)(1 − level)`` of those pairs lie beyond the quantile; with fewer than ~5 the
        bound is set by one to four pairs (see the module docstring).

        Examples
        --------
        >>> ConformalCalibrator(np.arange(1.0, 42.0), np.arange(1.0, 42.0)).support(0.9)  # (41 + 1)(0.1) = 4.2
        (41, 1)
        """
        _, _, sizes = self._pick(level, one_sided)
        return int(sizes.min()), int(sizes.size)

    def interval(self, pred, level: float) -> tuple[np.ndarray, np.ndarray]:
        """Two-sided intervals ``(lower, upper)`` with coverage ``>= level``; lower bounds clamped at 0."""
        pred = np.maximum(np.asarray(pred, dtype=np.float64), 0.0)
        edges, qs, _ = self._pick(level, False)
        q = qs[np.searchsorted(edges, pred, side="right")]
        with np.errstate(invalid="ignore"):
            half = np.where(np.isfinite(q), q * (pred + self.offset), np.inf)
        return np.maximum(pred - half, 0.0), pred + half

    def _lower_raw(self, pred: np.ndarray, q: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            lb = np.where(np.isfinite(q) & (q < 1), pred - q * (pred + self.offset), 0.0)
        return np.maximum(lb, 0.0)

    def lower_bound(self, pred, level: float) -> np.ndarray:
        """One-sided lower bounds: ``P(exact >= bound) >= level``; clamped at 0, non-decreasing in ``pred``."""
        pred = np.maximum(np.asarray(pred, dtype=np.float64), 0.0)
        edges, qs, _ = self._pick(level, True)
        b = np.searchsorted(edges, pred, side="right")
        lb = self._lower_raw(pred, qs[b])
        # each bin's bound is non-decreasing inside the bin: its smallest value is at the bin's left edge;
        # the largest non-decreasing minorant caps a bound by the smallest left-edge value of later bins
        left = self._lower_raw(edges, qs[1:])
        cap = np.append(np.minimum.accumulate(left[::-1])[::-1], np.inf)
        return np.minimum(lb, cap[b])

    def coverage(self, pred, target, level: float) -> float:
        """Fraction of ``target`` values inside the intervals of ``pred`` (to measure coverage on new pairs)."""
        lo, hi = self.interval(pred, level)
        target = np.asarray(target, dtype=np.float64)
        return float(np.mean((target >= lo) & (target <= hi)))

    def __repr__(self) -> str:
        return f"ConformalCalibrator(n={self.n}, offset={self.offset:.4g}, bins={self.n_bins})"
