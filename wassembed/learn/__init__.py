"""Training from a cache: losses, batching, the trainer, checkpoints, the scikit-learn estimator.

Public: :func:`train` (and its :class:`TrainSettings`), :class:`SmallDataWarning`, and the scikit-learn
estimator :class:`WassersteinTransformer`; the losses, batching and checkpoints are the trainer's own.

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
- ``_estimator``: :class:`WassersteinTransformer` (scikit-learn's fit/transform; imported on first access:
  training does not need scikit-learn's import time; ``WassersteinEmbedder``, its former name, is deprecated).
"""

from __future__ import annotations

import warnings

from ._settings import TrainSettings
from ._smalldata import SmallDataWarning
from ._trainer import train

__all__ = ["train", "TrainSettings", "SmallDataWarning", "WassersteinTransformer"]


def __getattr__(name: str):
    if name in ("WassersteinTransformer", "WassersteinEmbedder"):
        from . import _estimator

        cls = getattr(_estimator, "WassersteinTransformer", None) or _estimator.WassersteinEmbedder
        if name == "WassersteinEmbedder":
            warnings.warn("WassersteinEmbedder is deprecated: it is wassembed.learn.WassersteinTransformer",
                          DeprecationWarning, stacklevel=2)
            return cls
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
