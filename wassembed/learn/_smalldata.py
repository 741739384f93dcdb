"""Warnings at the end of training when the held-out pairs are too few for what they are used for.

Training does not fail on a small cache: it returns a model, but its conformal error bars or its early
stopping may rest on a handful of pairs. :func:`warn_small_data` says so (:class:`SmallDataWarning`), with the
numbers, and names the parameters that fix it (``pairs`` of :func:`wassembed.exact.precompute`,
``val_fraction`` of training).

* **Calibration**: a level-α conformal quantile over ``n`` pairs has about ``(n + 1)(1 − α)`` pairs beyond
  it; with fewer than ~5 the bound is set by one to four pairs and the coverage obtained varies widely. Below
  :data:`MIN_CALIBRATION_PAIRS` pairs even 90–95 % error bars are fragile (and the served model cannot tune
  its score floor or bin the scores by estimate). The calibration pairs join two calibration images
  (:mod:`._split`), so their number is bounded by those images: more of them come from a larger
  ``val_fraction`` or more images.
* **Early stopping** compares epochs by the validation MSE; over fewer than :data:`MIN_VALIDATION_PAIRS`
  pairs its noise is of the order of the differences between epochs.
"""

from __future__ import annotations

import math
import warnings

from ..errors import WassembedWarning, param, render

__all__ = ["MIN_CALIBRATION_PAIRS", "MIN_VALIDATION_PAIRS", "SmallDataWarning", "small_data_problems",
           "warn_small_data"]

#: Fewer calibration pairs than this: the error bars rest on too few pairs to mean much.
MIN_CALIBRATION_PAIRS = 200
#: Fewer validation pairs than this: early stopping picks an epoch by noise.
MIN_VALIDATION_PAIRS = 100
#: A level-α quantile over n pairs needs about (n + 1)(1 − α) >= this many pairs beyond it.
MIN_TAIL_PAIRS = 5


class SmallDataWarning(WassembedWarning):
    """Training succeeded, but on too few held-out pairs for reliable error bars or early stopping."""


def _top_level(n: int) -> float:
    """The highest coverage level α with ``(n + 1)(1 − α) >= MIN_TAIL_PAIRS`` (two decimals, 0 if none).

    Examples
    --------
    >>> _top_level(41), _top_level(199), _top_level(3)
    (0.88, 0.97, 0.0)
    """
    return max(math.floor(100 * (1 - MIN_TAIL_PAIRS / (n + 1)) + 1e-9) / 100, 0.0)


def _more_pairs(total: int, have: float, need: int, images: int) -> str:
    """How many pairs to precompute for about ``need`` held-out pairs, where ``total`` pairs give ``have``
    (rounded up to two significant digits).

    Examples
    --------
    >>> from wassembed.errors import render  # the parameters are marked (wassembed.errors.param)
    >>> render(_more_pairs(4000, 41, 200, 1400))
    'pairs=20000 in precompute; its 1400 images allow up to 979,300'
    """
    most = images * (images - 1) // 2
    want = total * need / max(have, 0.5)
    step = 10 ** max(int(math.log10(want)) - 1, 0)
    want = int(math.ceil(want / step) * step)
    if want > most:
        return f"{param('pairs', most)} in {param('precompute')}, all that its {images} images allow; more images " \
               "give more"
    return f"{param('pairs', want)} in {param('precompute')}; its {images} images allow up to {most:,}"


def _calibration_images(images: int, val_fraction: float) -> int:
    """How many calibration images the split holds out (:func:`wassembed.learn._split.split_images`).

    Examples
    --------
    >>> _calibration_images(1400, 0.1), _calibration_images(150, 0.1)
    (93, 10)
    """
    from ._split import CALIBRATION_SHARE

    return int(round(CALIBRATION_SHARE * int(round(val_fraction * images))))


def small_data_problems(*, n_val: int, n_cal: int, fallback: bool, total: int, images: int,
                        val_fraction: float) -> list[str]:
    """The messages of :func:`warn_small_data` (empty when the held-out pairs suffice).

    Parameters
    ----------
    n_val, n_cal : int
        Validation pairs (early stopping) and calibration pairs (the error bars).
    fallback : bool
        The calibration pairs are the validation pairs (fewer than two calibration images).
    total : int
        Pairs in the cache.
    images : int
        Images used by the cache's pairs (they allow ``images (images − 1) / 2`` pairs).
    val_fraction : float
        The run's held-out fraction of the images.

    Examples
    --------
    >>> msgs = small_data_problems(n_val=41, n_cal=45, fallback=False, total=400, images=150, val_fraction=0.1)
    >>> len(msgs), msgs[0][:72]
    (2, 'the error bars are calibrated on 45 pairs of two held-out calibration im')
    >>> small_data_problems(n_val=900, n_cal=800, fallback=False, total=8000, images=1400, val_fraction=0.1)
    []
    """
    raise_vf = f"or raise {param('val_fraction')} (now {val_fraction:g}) to hold out more images"
    out = []
    if n_cal < MIN_CALIBRATION_PAIRS:
        c = _calibration_images(images, val_fraction)
        top = _top_level(n_cal)
        levels = (f"(n + 1)(1 − level) >= {MIN_TAIL_PAIRS} pairs beyond the quantile holds only for levels up to "
                  f"{top:.2f}" if top > 0 else f"no level has (n + 1)(1 − level) >= {MIN_TAIL_PAIRS} pairs beyond "
                  "the quantile")
        if fallback:
            what = (f"{n_cal} of the cache's {total} pairs (the validation pairs, which also selected the model: "
                    f"fewer than two calibration images)")
        else:
            what = (f"{n_cal} pairs of two held-out calibration images (the last {c} images, which allow "
                    f"{c * (c - 1) // 2:,} pairs)")
        more = (f"raise {param('calibration_pairs')} (pairs among the calibration images solved for the run), or "
                if not fallback and c * (c - 1) // 2 >= MIN_CALIBRATION_PAIRS else "")
        out.append(f"the error bars are calibrated on {what}: {levels}, and the coverage they deliver may be far "
                   f"from the level asked for (at least {MIN_CALIBRATION_PAIRS} calibration pairs expected, among "
                   f"as many images as possible); fix: {more}hold out more images: raise {param('val_fraction')} (now "
                   f"{val_fraction:g}; two thirds of the held-out images calibrate), or precompute pairs over more "
                   "images")
    if n_val < MIN_VALIDATION_PAIRS:
        out.append(f"early stopping compared epochs on {n_val} validation pairs (at least {MIN_VALIDATION_PAIRS} "
                   "expected): the best epoch may have been picked by noise; fix: precompute more pairs "
                   f"({_more_pairs(total, n_val, MIN_VALIDATION_PAIRS, images)}) {raise_vf}, or set "
                   f"{param('patience', 0)} and choose epochs yourself")
    return out


def warn_small_data(*, stacklevel: int, **counts) -> list[str]:
    """Warn (:class:`SmallDataWarning`) for each problem of :func:`small_data_problems`; returns them (as
    ``str`` of the warnings reads them: the model's ``info`` stores them)."""
    problems = small_data_problems(**counts)
    for msg in problems:
        warnings.warn(msg, SmallDataWarning, stacklevel=stacklevel + 1)
    return [render(msg) for msg in problems]
