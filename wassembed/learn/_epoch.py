"""One training epoch: batches packed from the units, one Adam step each, the schedule stepped after each.

Epoch ``e`` draws its batch order (:func:`~._batching.pack_batches`) and augmentations from the state's
generator ``default_rng([seed, e])``, so an epoch replays identically after a resume.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .._progress import progress
from ..errors import TrainingError, explain
from ..exact import PairTable
from ._batching import augment_images, pack_batches
from ._clouds import augment_clouds
from ._losses import DWELoss
from ._settings import TrainSettings
from ._state import TrainerState

__all__ = ["EpochPlan", "run_epoch"]


@dataclass(frozen=True)
class EpochPlan:
    """What every epoch of a run trains on and how.

    Attributes
    ----------
    settings : TrainSettings
    X : Tensor, shape (n, k)
        Every histogram of the dataset, on the run's device.
    train : PairTable
        Training pairs (image indices into ``X``, exact values).
    units : list of int64 arrays
        Groups of indices into ``train`` kept in one batch.
    loss : DWELoss
    grid : (int, int) or None
    ops : list of str
        Augmentations (empty without a grid).
    bboxes : ndarray, shape (n, 4), or None
        Bounding boxes of every image (with ``ops``).
    amp : bool
        bf16 autocast (CUDA).
    progress : bool
        Progress on stderr (:func:`wassembed._progress.progress`: a bar on a terminal, plain lines in a log).
    checkpoint_dir : Path or None
        Named in the error when training diverges.
    clouds : bool
        ``X`` holds packed point clouds ``(n, kmax, d + 1)`` (augmented by rigid motions: :mod:`._clouds`).
    """

    settings: TrainSettings
    X: torch.Tensor
    train: PairTable
    units: list
    loss: DWELoss
    grid: tuple | None
    ops: list
    bboxes: np.ndarray | None
    amp: bool
    progress: bool
    checkpoint_dir: Path | None
    clouds: bool = False


def _diverged(state: TrainerState, plan: EpochPlan, epoch: int, batch: int, loss, lr: float) -> TrainingError:
    ckpt = plan.checkpoint_dir
    where = (f"the last good checkpoint (epoch {state.epoch}) is kept in {ckpt}" if ckpt
             else "no checkpoint directory was given")
    return TrainingError(explain(f"training diverged at epoch {epoch}, batch {batch + 1}",
                                 expected="finite losses", received=f"loss {float(loss.detach())}",
                                 fix=f"lower the learning rate (now {lr:g}) or check the cache; {where}"))


def _batch_loss(state: TrainerState, plan: EpochPlan, idx: np.ndarray):
    """``(loss, parts)`` of the pairs ``idx`` of ``plan.train``: each distinct image embedded once."""
    train, dev = plan.train, plan.X.device
    imgs, inv = np.unique(np.concatenate([train.i[idx], train.j[idx]]), return_inverse=True)
    x = plan.X[torch.as_tensor(imgs, device=dev)]
    if plan.ops and plan.clouds:
        x = augment_clouds(x, plan.ops, plan.settings.max_shift, state.rng)
    elif plan.ops:
        x = augment_images(x, plan.grid, plan.bboxes[imgs], plan.ops, plan.settings.max_shift, state.rng)
    li = torch.as_tensor(inv[:idx.size], device=dev)
    lj = torch.as_tensor(inv[idx.size:], device=dev)
    y = torch.as_tensor(train.value[idx], dtype=torch.float32, device=dev)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=plan.amp):
        z = state.encoder(x)
        logits = state.decoder(z) if plan.settings.recon_weight > 0 else None
    return plan.loss(z, logits, x, li, lj, y)


def run_epoch(state: TrainerState, plan: EpochPlan, epoch: int) -> dict:
    """Train epoch ``epoch`` (1-based) of ``state``; its record, without validation.

    Returns
    -------
    dict
        ``epoch``, ``train_loss`` and ``train_mse`` (means over pairs; MSE in the targets' units), ``lr``
        (of the last batch), ``batches``, ``train_pairs``, ``seconds``, ``pairs_per_s``.

    Raises
    ------
    TrainingError
        A loss is not finite (the networks are left as they were before that batch's step).
    """
    settings, scale = plan.settings, plan.loss.distance.scale
    rng = state.begin_epoch(epoch)
    batches = pack_batches(plan.units, plan.train.i, plan.train.j, settings.batch_images, rng)
    state.schedule.begin_epoch(len(batches))
    t0, tot, tot_d, seen, lr = time.time(), 0.0, 0.0, 0, state.schedule.lr
    # on a terminal a bar, cleared at the end of the epoch; in a log a plain line every 10 s of a long epoch
    # (the trainer prints one line per epoch after it); closed before any message, an error included
    with progress(len(batches), desc=f"epoch {epoch}/{settings.epochs}", unit="batch", enabled=plan.progress,
                  leave=False, unit_scale=False) as bar:
        for b, idx in enumerate(batches):
            lr = state.schedule.lr
            loss, parts = _batch_loss(state, plan, idx)
            if not torch.isfinite(loss):
                bar.close()
                raise _diverged(state, plan, epoch, b, loss, lr)
            state.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            state.optimizer.step()
            state.schedule.after_batch()
            tot += float(loss.detach()) * idx.size
            tot_d += parts["distance"] * scale ** 2 * idx.size
            seen += idx.size
            bar.update(1)
            if b % 10 == 0:
                bar.set_postfix(loss=f"{tot / seen:.4g}", mse=f"{parts['distance'] * scale ** 2:.4g}")
    seconds = time.time() - t0
    return {"epoch": epoch, "train_loss": tot / max(seen, 1), "train_mse": tot_d / max(seen, 1), "lr": lr,
            "batches": len(batches), "train_pairs": seen, "seconds": seconds, "pairs_per_s": seen / seconds}
