"""The served model: embeddings, distances, neighbours with exact re-ranking, intervals, model files."""

from ._conformal import ConformalCalibrator, conformal_quantile
from ._embedding import (
    DistanceEstimate,
    OutOfDistributionWarning,
    PrincipalDirections,
    WassersteinEmbedding,
    load_model,
)
from ._evaluate import evaluate
from ._modelfile import FORMAT_VERSION, save_model
from ._neighbors import KNNResult

__all__ = [
    "DistanceEstimate",
    "OutOfDistributionWarning",
    "PrincipalDirections",
    "WassersteinEmbedding",
    "KNNResult",
    "ConformalCalibrator",
    "conformal_quantile",
    "FORMAT_VERSION",
    "load_model",
    "save_model",
    "evaluate",
]
