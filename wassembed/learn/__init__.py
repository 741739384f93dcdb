"""Training from a distance cache: losses, batching, the trainer, checkpoints, the scikit-learn estimator."""

from ._batching import pack_batches, plan_units, split_by_image
from ._checkpoints import load_checkpoint, save_checkpoint
from ._estimator import WassersteinEmbedder
from ._losses import DistanceLoss, DWELoss, ReconstructionLoss, pair_distance
from ._settings import TrainSettings
from ._trainer import train

__all__ = [
    "TrainSettings",
    "train",
    "DistanceLoss",
    "DWELoss",
    "ReconstructionLoss",
    "pair_distance",
    "pack_batches",
    "plan_units",
    "split_by_image",
    "load_checkpoint",
    "save_checkpoint",
    "WassersteinEmbedder",
]
