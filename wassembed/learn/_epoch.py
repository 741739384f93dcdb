"""One training epoch: batches packed from the units, one Adam step each, the schedule stepped after each.

Epoch ``e`` draws its batch order (:func:`~._batching.pack_batches`) and augmentations from the state's
generator ``default_rng([seed, e])``, so an epoch replays identically after a resume.

**The device is fed without waiting for the host.** Every batch of the epoch is laid out at its start and
copied to the device at once (:mod:`._device_batches`); a step only slices those tensors. The steps' losses
stay on the device, in a per-batch log that the host reads in one transfer every :data:`CHECK_EVERY`
batches, at the end of the epoch, and every 10 batches when a progress display shows them: the sums of the
epoch's record are made from it, in the order of the batches (the same figures as a per-step read).

**Divergence.** A loss that is not finite must leave the networks as they were before that batch's step.
Checking each loss before its step makes the host wait for the device at every step (the sync this module
avoids), so the check is deferred to the reads above and made exact by a replay: each read window starts
from a snapshot (the networks, the optimizer state and the epoch's generator, copied on the device: a few
copies of the weights per window); when a read finds a non-finite loss, the snapshot is restored and the
window's batches before it are redone (with their recorded learning rates and the same augmentations), so
the networks end as they were before the first non-finite batch's step: exactly on the CPU, up to the
rounding of non-deterministic kernels on CUDA. The steps taken after that batch within its window are
wasted, which only happens on the way to the error.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .._progress import progress
from ..errors import TrainingError, explain
from ..exact import PairTable
from ._batching import pack_batches
from ._device_batches import EpochBatches, epoch_batches
from ._losses import DWELoss
from ._settings import TrainSettings
from ._state import TrainerState

__all__ = ["CHECK_EVERY", "EpochPlan", "run_epoch"]

#: batches between two reads of the losses (each read waits for the device; divergence is found there)
CHECK_EVERY = 50
#: batches between two updates of a progress display's loss figures
POSTFIX_EVERY = 10


@dataclass(frozen=True)
class EpochPlan:
    """What every epoch of a run trains on and how.

    Attributes
    ----------
    settings : TrainSettings
    X : Tensor, shape (n, k) or (n, kmax, d + 1)
        Every histogram (or packed point cloud) of the dataset (``data.packed()``), on the run's device.
    train : PairTable
        Training pairs (image indices into ``X``, exact values).
    units : list of int64 arrays
        Groups of indices into ``train`` kept in one batch.
    loss : DWELoss
    amp : bool
        bf16 autocast (CUDA).
    progress : bool
        Progress on stderr (:func:`wassembed._progress.progress`: a bar on a terminal, plain lines in a log).
    checkpoint_dir : Path or None
        Named in the error when training diverges.
    augment : Augmentation or None
        The exact symmetry applied to each batch (:mod:`._kinds`: images on a grid, rigid motions of clouds).
    """

    settings: TrainSettings
    X: torch.Tensor
    train: PairTable
    units: list
    loss: DWELoss
    amp: bool
    progress: bool
    checkpoint_dir: Path | None
    augment: object = None


def _diverged(state: TrainerState, plan: EpochPlan, epoch: int, batch: int, loss: float, lr: float) -> TrainingError:
    ckpt = plan.checkpoint_dir
    where = (f"the last good checkpoint (epoch {state.epoch}) is kept in {ckpt}" if ckpt
             else "no checkpoint directory was given")
    return TrainingError(explain(f"training diverged at epoch {epoch}, batch {batch + 1}",
                                 expected="finite losses", received=f"loss {loss}",
                                 fix=f"lower the learning rate (now {lr:g}) or check the cache; {where}"))


def _batch_loss(state: TrainerState, plan: EpochPlan, eb: EpochBatches, b: int, rng: np.random.Generator):
    """``(loss, parts)`` of batch ``b`` of ``eb``: each distinct image embedded once, augmented from ``rng``."""
    imgs, li, lj, y = eb.batch(b)
    x = plan.X[imgs]
    if plan.augment is not None:
        x = plan.augment.apply(x, eb.batch_images(b) if plan.augment.needs_images else None, rng)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=plan.amp):
        z = state.encoder(x)
        logits = state.decoder(z) if plan.settings.recon_weight > 0 else None
    return plan.loss(z, logits, x, li, lj, y)


def _step(state: TrainerState, loss: torch.Tensor) -> None:
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    state.optimizer.step()


class _StepLog:
    """Each batch's loss and distance term, on the device until read; the epoch's sums, made when read.

    ``parts["distance"]`` of the loss may be a Python float (then kept on the host) or a tensor (kept on the
    device with the loss).
    """

    def __init__(self, sizes: np.ndarray, scale: float, device: torch.device):
        self.sizes, self.scale2 = sizes, scale ** 2
        self.values = torch.zeros((sizes.size, 2), dtype=torch.float64, device=device)  # loss, distance
        self.host_distance, self.on_device = np.zeros(sizes.size), np.zeros(sizes.size, dtype=bool)
        self.lr = np.zeros(sizes.size)
        self.read_upto, self.total, self.total_distance, self.seen, self.last_distance = 0, 0.0, 0.0, 0, math.nan

    def record(self, b: int, loss: torch.Tensor, parts: dict, lr: float) -> None:
        """Keep batch ``b``'s loss and distance term (no host read) and the learning rate of its step."""
        self.values[b, 0] = loss.detach()
        d = parts["distance"]
        self.on_device[b] = isinstance(d, torch.Tensor)
        if self.on_device[b]:
            self.values[b, 1] = d.detach()
        else:
            self.host_distance[b] = d
        self.lr[b] = lr

    def read(self, upto: int) -> tuple[int, float] | None:
        """Read the batches before ``upto`` not read yet (one transfer) and add them to the sums, in order.

        Returns the first batch whose loss is not finite and that loss (the sums stop before it), or None.
        """
        lo = self.read_upto
        rows = self.values[lo:upto].tolist()
        for b, (loss, dist) in enumerate(rows, start=lo):
            if not math.isfinite(loss):
                self.read_upto = b
                return b, loss
            dist = dist if self.on_device[b] else float(self.host_distance[b])
            n = int(self.sizes[b])
            self.total += loss * n
            self.total_distance += dist * self.scale2 * n
            self.seen += n
            self.last_distance = dist
        self.read_upto = upto
        return None


@dataclass
class _Snapshot:
    """Where a read window starts: batch ``start``, copies of the networks, the optimizer and the generator."""

    start: int
    nets: tuple[dict, dict]
    optimizer: dict
    rng: np.random.Generator


def _snapshot(state: TrainerState, start: int) -> _Snapshot:
    return _Snapshot(start, (copy.deepcopy(state.encoder.state_dict()), copy.deepcopy(state.decoder.state_dict())),
                     copy.deepcopy(state.optimizer.state_dict()), copy.deepcopy(state.rng))


def _replay(state: TrainerState, plan: EpochPlan, eb: EpochBatches, snap: _Snapshot, log: _StepLog,
            bad: tuple[int, float]) -> tuple[int, float]:
    """Restore ``snap`` and redo its window's batches before the non-finite batch ``bad = (batch, loss)``;
    the batch to report: ``bad``, or an earlier batch whose loss is not finite when redone (where the
    networks then stop)."""
    state.encoder.load_state_dict(snap.nets[0])
    state.decoder.load_state_dict(snap.nets[1])
    state.optimizer.load_state_dict(snap.optimizer)
    for b in range(snap.start, bad[0]):
        for group in state.optimizer.param_groups:
            group["lr"] = float(log.lr[b])
        loss, _ = _batch_loss(state, plan, eb, b, snap.rng)
        if not torch.isfinite(loss):  # the error path: a sync per step is fine here
            return b, float(loss.detach())
        _step(state, loss)
    return bad


def _read_now(b: int, n: int, shown: bool) -> bool:
    """Whether the losses are read after batch ``b`` of ``n`` (``shown``: a progress display shows them)."""
    return b == n - 1 or (b + 1) % CHECK_EVERY == 0 or (shown and b % POSTFIX_EVERY == 0)


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
    settings = plan.settings
    rng = state.begin_epoch(epoch)
    batches = pack_batches(plan.units, plan.train.i, plan.train.j, settings.batch_images, rng)
    t0 = time.time()
    keep_host = plan.augment is not None and plan.augment.needs_images
    eb = epoch_batches(batches, plan.train, plan.X.device, keep_host=keep_host)
    n = len(eb)
    state.schedule.begin_epoch(n)
    log = _StepLog(eb.sizes, plan.loss.distance.scale, plan.X.device)
    # on a terminal a bar, cleared at the end of the epoch; in a log a plain line every 10 s of a long epoch
    # (the trainer prints one line per epoch after it); closed before any message, an error included
    with progress(n, desc=f"epoch {epoch}/{settings.epochs}", unit="batch", enabled=plan.progress,
                  leave=False, unit_scale=False) as bar:
        snap = _snapshot(state, 0)
        for b in range(n):
            lr = state.schedule.lr
            loss, parts = _batch_loss(state, plan, eb, b, rng)
            log.record(b, loss, parts, lr)
            _step(state, loss)
            state.schedule.after_batch()
            bar.update(1)
            if not _read_now(b, n, plan.progress):
                continue
            # the only host read of the window (the device catches up here); a non-finite loss found now is
            # undone by a replay from the window's snapshot (module docstring: no finiteness sync per step)
            bad = log.read(b + 1)
            if bad is not None:
                bar.close()
                at, value = _replay(state, plan, eb, snap, log, bad)
                raise _diverged(state, plan, epoch, at, value, float(log.lr[at]))
            if plan.progress and b % POSTFIX_EVERY == 0:
                bar.set_postfix(loss=f"{log.total / log.seen:.4g}", mse=f"{log.last_distance * log.scale2:.4g}")
            if b + 1 < n:
                snap = _snapshot(state, b + 1)
    seconds = time.time() - t0
    return {"epoch": epoch, "train_loss": log.total / max(log.seen, 1),
            "train_mse": log.total_distance / max(log.seen, 1), "lr": float(log.lr[-1]), "batches": n,
            "train_pairs": log.seen, "seconds": seconds, "pairs_per_s": log.seen / seconds}
