"""The served model: embeddings, distances, error bars, neighbours with exact re-ranking, the
out-of-distribution flag and model files (the on-disk reference indexes built on it are :mod:`wassembed.index`).

Its conventions (single inputs, float64 distances, decoded shapes) are stated in the Notes of
:class:`WassersteinEmbedding`; its warnings derive from :class:`ServingWarning`. Two siblings share one base,
:class:`BaseEmbedding` (every served method): :class:`WassersteinEmbedding` serves histograms and images,
:class:`CloudEmbedding` point clouds; :func:`load` (``wassembed.load``) reads a model file of either kind.
Neighbour queries return a :class:`Neighbors` (``distances, indices``), :meth:`WassersteinEmbedding.interval`
a :class:`DistanceEstimate`.
"""

from .._results import Neighbors
from ._cloud_model import CloudEmbedding
from ._conformal import DistanceEstimate
from ._embedding import BaseEmbedding, OutOfDistributionWarning, PrincipalDirections
from ._evaluate import evaluate
from ._histogram_model import WassersteinEmbedding
from ._load import load
from ._warnings import CalibrationWarning, EvaluationWarning, RerankWarning, ServingWarning

__all__ = [
    "BaseEmbedding",
    "WassersteinEmbedding",
    "CloudEmbedding",
    "load",
    "evaluate",
    "Neighbors",
    "DistanceEstimate",
    "PrincipalDirections",
    "ServingWarning",
    "OutOfDistributionWarning",
    "CalibrationWarning",
    "RerankWarning",
    "EvaluationWarning",
]
