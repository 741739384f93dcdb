"""Training from a cache: losses, batching, the trainer, checkpoints, the scikit-learn estimator.

:func:`train` sets a run up and loops over epochs; each step is a module of its own:

- ``_split``: a cache's pairs merged, split by image (training / model selection / calibration; no pair
  dropped), units;
- ``_batching``: splits by image, batches of pairs that share images, exact-symmetry augmentation;
- ``_losses``: the DWE loss on :class:`wassembed.nn.LatentDistance` and :func:`wassembed.nn.reconstruction_kl`;
- ``_state``: the trainer state (networks, optimizer, schedule, best weights, history, epoch, RNG);
- ``_schedule``: learning-rate schedules on :mod:`torch.optim.lr_scheduler`;
- ``_epoch``: one training epoch (losses read in batches, divergence undone by a replay);
  ``_device_batches``: an epoch's batches laid out and copied to the device at once; ``_predict``:
  validation predictions;
- ``_checkpoints``: checkpoint files, saving and resuming a run;
- ``_calibration``: conformal calibration pairs and the out-of-distribution reference;
- ``_smalldata``: :class:`SmallDataWarning`, when the held-out pairs are too few for error bars or early stopping;
- ``_estimator``: :class:`WassersteinEmbedder` (scikit-learn, imported on first access: training
  does not need scikit-learn's import time).
"""

from __future__ import annotations

from ._batching import pack_batches, plan_units, split_by_image
from ._checkpoints import load_checkpoint, save_checkpoint
from ._losses import DistanceLoss, DWELoss, ReconstructionLoss, pair_distance
from ._settings import TrainSettings
from ._smalldata import SmallDataWarning
from ._trainer import DEFAULT_CPU_THREADS, train

__all__ = [
    "TrainSettings",
    "train",
    "DEFAULT_CPU_THREADS",
    "SmallDataWarning",
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


def __getattr__(name: str):
    if name == "WassersteinEmbedder":
        from ._estimator import WassersteinEmbedder

        globals()[name] = WassersteinEmbedder
        return WassersteinEmbedder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
