"""Warnings of the served model: results that are returned but may not mean what the caller expects.

Each warning says what happened, with the numbers, and what to do about it (as errors do, see
:func:`wassembed.errors.explain`). All derive from :class:`ServingWarning`, so one filter silences them all:
``warnings.simplefilter("ignore", wassembed.serve.ServingWarning)``. The ``stacklevel`` of the helpers is
``warnings.warn``'s, counted from the helper: 3 points at the caller of a method that calls the helper.
"""

from __future__ import annotations

import math
import warnings

from ..errors import WassembedWarning, param

__all__ = ["CalibrationWarning", "EvaluationWarning", "MIN_TAIL_PAIRS", "RerankWarning", "ServingWarning",
           "warn_brute_force", "warn_few_calibration_pairs", "warn_unchecked_overlap"]

#: A level-α conformal quantile over ``n`` pairs is meaningful when about ``(n + 1)(1 − α)`` of them lie beyond
#: it: at least this many (below, the bound rests on one to four pairs and the coverage actually obtained
#: varies widely from one calibration set to another).
MIN_TAIL_PAIRS = 5.0

#: Adaptive re-ranking that solves more than this fraction of all (query, reference) pairs is brute force.
BRUTE_FORCE_FRACTION = 0.5


class ServingWarning(WassembedWarning):
    """Base class of the served model's warnings."""


class CalibrationWarning(ServingWarning):
    """Too few calibration pairs for the requested coverage level: the error bars rest on a handful of pairs."""


class RerankWarning(ServingWarning):
    """Adaptive exact re-ranking solved (nearly) every reference: it was no cheaper than brute force."""


class EvaluationWarning(ServingWarning):
    """``evaluate`` could not check the evaluation pairs against the images the model was trained on."""


def warn_few_calibration_pairs(level: float, m: int, n_bins: int, n_stored: int, *, stacklevel: int) -> bool:
    """Warn (:class:`CalibrationWarning`) when a level-``level`` quantile over ``m`` pairs has fewer than
    :data:`MIN_TAIL_PAIRS` pairs beyond it; returns whether it warned.

    ``m`` is the number of pairs the quantile is taken over (the smallest estimate bin), ``n_bins`` the
    number of bins, ``n_stored`` the model's calibration pairs.
    """
    tail = (m + 1) * (1 - level)
    if tail >= MIN_TAIL_PAIRS - 1e-9:
        return False
    need = math.ceil(MIN_TAIL_PAIRS / (1 - level) - 1e-9) - 1  # smallest m with (m + 1)(1 − level) >= 5
    top = math.floor(100 * (1 - MIN_TAIL_PAIRS / (m + 1))) / 100
    where = f"{m} pairs" + (f" (the smallest of {n_bins} estimate bins)" if n_bins > 1 else "")
    lower = f"a level of at most {top:.2f}" if top > 0 else "a much larger calibration set"
    warnings.warn(f"too few calibration pairs for {100 * level:g} % error bars: the quantile is taken over {where} "
                  f"of the model's {n_stored} calibration pairs, so it rests on (m + 1)(1 − level) = {tail:.1f} "
                  f"pairs beyond it (expected at least {MIN_TAIL_PAIRS:g}, i.e. m >= {need}); the coverage actually "
                  f"obtained may be far from {100 * level:g} %; fix: precompute more pairs or raise "
                  f"{param('val_fraction')} when training, or ask for {lower}", CalibrationWarning,
                  stacklevel=stacklevel)
    return True


def warn_brute_force(n_exact: int, n_queries: int, n_references: int, k: int, level: float, *,
                     stacklevel: int) -> bool:
    """Warn (:class:`RerankWarning`) when adaptive re-ranking solved more than :data:`BRUTE_FORCE_FRACTION` of
    the pairs although its first round (``2k`` candidates per query) did not; returns whether it warned."""
    pairs = n_queries * n_references
    if n_exact <= BRUTE_FORCE_FRACTION * pairs or min(2 * k, n_references) > BRUTE_FORCE_FRACTION * n_references:
        return False
    warnings.warn(f"adaptive exact re-ranking solved {n_exact} of the {pairs} (query, reference) pairs "
                  f"({100 * n_exact / pairs:.0f} %, {n_exact / n_queries:.1f} of {n_references} references per "
                  f"query; brute force solves them all): the model's conformal lower bounds at "
                  f"{param('level', f'{level:g}')} are too loose to rule references out; fix: use a better-trained "
                  f"model (more pairs or epochs), a lower level (e.g. {param('level', 0.9)}), or a fixed budget of "
                  f"candidates (e.g. {param('n_candidates', 4 * k)})", RerankWarning, stacklevel=stacklevel)
    return True


def warn_unchecked_overlap(cache_fingerprint: str, model_fingerprint, *, stacklevel: int) -> None:
    """Warn (:class:`EvaluationWarning`) that the cache holds other data than the model's training data, so
    pairs touching training images cannot be found and dropped."""
    model_fp = f"{model_fingerprint[:12]}…" if model_fingerprint else "none recorded"
    warnings.warn(f"cannot check the evaluation pairs for overlap with the training images: the cache holds "
                  f"other data than the model was trained on (data fingerprints: cache {cache_fingerprint[:12]}…, "
                  f"model's training data {model_fp}), so no pair was dropped and images the model trained on "
                  "may inflate its scores; fix: evaluate on a cache of images the model never saw, built from the "
                  "same data as its training cache with precompute(..., images=) of a range not used for "
                  "training (e.g. images='6000:8000' after training on '0:6000')", EvaluationWarning,
                  stacklevel=stacklevel)
