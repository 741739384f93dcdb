"""The served model: embeddings, distances, neighbours with exact re-ranking, intervals and model files (the
on-disk reference indexes built on it are :mod:`wassembed.index`).

Its conventions (single inputs, float64 distances, decoded shapes) are stated in the Notes of
:class:`WassersteinEmbedding`; its warnings derive from :class:`ServingWarning`.
:class:`CloudEmbedding` serves point clouds with the same methods; :func:`load_model` (``wassembed.load``) reads
either kind.
"""

from ._cloud_model import CloudEmbedding, load_model
from ._conformal import ConformalCalibrator, conformal_quantile
from ._embedding import (
    DistanceEstimate,
    OutOfDistributionWarning,
    PrincipalDirections,
    WassersteinEmbedding,
)
from ._evaluate import evaluate
from ._modelfile import FORMAT_VERSION, save_model
from ._neighbors import KNNResult
from ._warnings import CalibrationWarning, EvaluationWarning, RerankWarning, ServingWarning

__all__ = [
    "DistanceEstimate",
    "OutOfDistributionWarning",
    "CalibrationWarning",
    "RerankWarning",
    "EvaluationWarning",
    "ServingWarning",
    "PrincipalDirections",
    "WassersteinEmbedding",
    "CloudEmbedding",
    "KNNResult",
    "ConformalCalibrator",
    "conformal_quantile",
    "FORMAT_VERSION",
    "load_model",
    "save_model",
    "evaluate",
]
