"""The learning-rate schedule of a run, on :mod:`torch.optim.lr_scheduler`.

``TrainSettings.schedule`` picks one of three:

* ``"cosine"``: :class:`~torch.optim.lr_scheduler.LambdaLR` with :class:`CosineFactor`, stepped after every
  batch: the rate of batch ``b`` (of ``n``) in epoch ``e`` is ``lr · (f + (1 − f) · ½(1 + cos πt))`` with
  ``t = (e − 1 + b / n) / epochs`` and ``f = 1/100`` (cosine decay to ``lr / 100`` over ``epochs``).
* ``"plateau"``: :class:`~torch.optim.lr_scheduler.ReduceLROnPlateau` on the validation MSE, stepped after
  every epoch: the rate halves after every ``lr_patience`` (at least 1) consecutive epochs without a strictly
  lower validation MSE.
* ``"constant"``: :class:`~torch.optim.lr_scheduler.ConstantLR` with factor 1.

A resumed run recomputes the scheduler's state exactly from the history of the epochs already done (their
numbers of batches and validation MSEs), so the checkpoint needs no scheduler state and a run extended
with more ``epochs`` follows the cosine over the new length, as a run started with it would from there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch.optim.lr_scheduler import ConstantLR, LambdaLR, LRScheduler, ReduceLROnPlateau

from ._settings import TrainSettings

__all__ = ["COSINE_FLOOR", "CosineFactor", "LRSchedule", "make_schedule"]

#: the cosine schedule decays to this fraction of the peak learning rate
COSINE_FLOOR = 0.01
#: the plateau schedule multiplies the learning rate by this after ``lr_patience`` bad epochs
PLATEAU_FACTOR = 0.5


@dataclass
class CosineFactor:
    """Multiplier of :class:`~torch.optim.lr_scheduler.LambdaLR` for a cosine over fractional epochs.

    ``LambdaLR`` counts optimizer steps (batches); epochs hold different numbers of batches, so the factor
    keeps the number of batches of every epoch begun (:meth:`begin_epoch`) to place a step in its epoch.

    Parameters
    ----------
    epochs : int
        Length of the decay.
    batches : list of int
        Batches of each epoch begun so far.
    floor : float
        Factor reached at the end of the last epoch.

    Examples
    --------
    >>> f = CosineFactor(epochs=2, batches=[4])
    >>> [round(f(step), 4) for step in range(5)]  # epoch 1, then the first batch of epoch 2
    [1.0, 0.9623, 0.855, 0.6944, 0.505]
    """

    epochs: int
    batches: list[int] = field(default_factory=list)
    floor: float = COSINE_FLOOR

    def begin_epoch(self, n_batches: int) -> None:
        """Record the number of batches of the next epoch (before its first scheduler step)."""
        self.batches.append(int(n_batches))

    def at(self, epoch: int, batch: int, n_batches: int) -> float:
        """Factor for batch ``batch`` (0-based) of ``n_batches`` in epoch ``epoch`` (1-based)."""
        frac = (epoch - 1 + batch / n_batches) / self.epochs
        return self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * frac))

    def __call__(self, step: int) -> float:
        """Factor of optimizer step ``step`` (0-based, counted over all epochs)."""
        start = 0
        for e, n in enumerate(self.batches, start=1):
            if step < start + n:
                return self.at(e, step - start, n)
            start += n
        if step != start:
            raise ValueError(f"step {step} lies past the {len(self.batches)} epochs begun ({start} steps)")
        return self.at(len(self.batches) + 1, 0, 1)  # the first batch of the next epoch


@dataclass
class LRSchedule:
    """A torch scheduler and when it steps: after each batch (cosine, constant) or each epoch (plateau).

    Attributes
    ----------
    scheduler : LRScheduler
    cosine : CosineFactor or None
        The cosine's multiplier, told the number of batches of each epoch.
    """

    scheduler: LRScheduler
    cosine: CosineFactor | None = None

    @property
    def lr(self) -> float:
        """The learning rate the next optimizer step uses."""
        return float(self.scheduler.optimizer.param_groups[0]["lr"])

    @property
    def on_plateau(self) -> bool:
        """Whether the rate follows the validation MSE (stepped per epoch) rather than the batches."""
        return isinstance(self.scheduler, ReduceLROnPlateau)

    def begin_epoch(self, n_batches: int) -> None:
        """Call before an epoch's first batch, with its number of batches."""
        if self.cosine is not None:
            self.cosine.begin_epoch(n_batches)

    def after_batch(self) -> None:
        """Call after each ``optimizer.step()``."""
        if not self.on_plateau:
            self.scheduler.step()

    def after_epoch(self, val_mse: float) -> None:
        """Call once an epoch is validated."""
        if self.on_plateau:
            self.scheduler.step(val_mse)


def make_schedule(optimizer: torch.optim.Optimizer, settings: TrainSettings, history=()) -> LRSchedule:
    """The schedule of ``settings`` on ``optimizer``, positioned after the epochs of ``history``.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        Its learning rates are set (to the rate of the next batch).
    settings : TrainSettings
        ``lr`` (the peak), ``schedule``, ``epochs``, ``lr_patience``.
    history : sequence of dict
        Records of the epochs already done (``"batches"``, ``"val_mse"``), empty for a new run.

    Returns
    -------
    LRSchedule

    Examples
    --------
    >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    >>> s = make_schedule(opt, TrainSettings(lr=0.1, schedule="plateau", lr_patience=1),
    ...                   [{"batches": 3, "val_mse": 1.0}, {"batches": 3, "val_mse": 2.0}])
    >>> s.lr
    0.05
    >>> s = make_schedule(opt, TrainSettings(lr=0.1, epochs=2), [{"batches": 4, "val_mse": 1.0}])
    >>> round(s.lr, 6)  # half-way through the cosine: lr · (0.01 + 0.99 / 2)
    0.0505
    """
    for group in optimizer.param_groups:
        group["lr"] = group["initial_lr"] = settings.lr
    if settings.schedule == "cosine":
        # epochs=None spans the default 40 (the trainer passes its run's resolved epochs)
        factor = CosineFactor(settings.pair_epochs(False), [int(r["batches"]) for r in history])
        steps = sum(factor.batches)
        return LRSchedule(LambdaLR(optimizer, factor, last_epoch=steps - 1), factor)
    if settings.schedule == "plateau":
        # one reduction each time `lr_patience` consecutive epochs fail to improve strictly on the best
        schedule = LRSchedule(ReduceLROnPlateau(optimizer, mode="min", factor=PLATEAU_FACTOR,
                                                patience=max(1, settings.lr_patience) - 1, threshold=0.0,
                                                threshold_mode="abs", cooldown=0, min_lr=0.0, eps=0.0))
        for record in history:
            schedule.after_epoch(float(record["val_mse"]))
        return schedule
    return LRSchedule(ConstantLR(optimizer, factor=1.0, total_iters=0))
