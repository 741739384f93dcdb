"""The state of a training run: networks, optimizer, schedule, best weights, history, epoch counter, RNG.

Everything a checkpoint saves and a resumed run restores lives in one :class:`TrainerState`; the epoch loop
(:mod:`._epoch`) advances it, :mod:`._checkpoints` writes and reads it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..nn import ModelConfig, build_decoder, build_encoder
from ._schedule import LRSchedule, make_schedule
from ._settings import TrainSettings

__all__ = ["TrainerState", "new_state"]


def _weights(encoder: nn.Module, decoder: nn.Module) -> dict[str, torch.Tensor]:
    """Detached copies of both networks' tensors, keyed ``encoder.*`` and ``decoder.*``."""
    best = {f"encoder.{k}": v.detach().clone() for k, v in encoder.state_dict().items()}
    best.update({f"decoder.{k}": v.detach().clone() for k, v in decoder.state_dict().items()})
    return best


@dataclass
class TrainerState:
    """Where a training run stands after ``epoch`` complete epochs.

    Attributes
    ----------
    encoder, decoder : torch.nn.Module
        The networks being trained (on the run's device).
    optimizer : torch.optim.Adam
        Over the encoder's then the decoder's parameters.
    schedule : LRSchedule
        The learning-rate scheduler of ``optimizer``.
    best : dict of str to Tensor
        Weights of the epoch with the lowest validation MSE (``encoder.*``, ``decoder.*``).
    seed : int
        The run's seed; epoch ``e`` draws its batch order and augmentations from ``rng = default_rng([seed, e])``.
    epoch : int
        Epochs done.
    best_mse, best_epoch, bad_epochs :
        Lowest validation MSE, its epoch, and the epochs since (early stopping).
    history : list of dict
        One record per epoch done (the JSON-lines log's lines).
    rng : numpy.random.Generator or None
        The current epoch's generator.
    """

    encoder: nn.Module
    decoder: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    best: dict[str, torch.Tensor]
    seed: int
    epoch: int = 0
    best_mse: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    history: list[dict] = field(default_factory=list)
    rng: np.random.Generator | None = None

    def begin_epoch(self, epoch: int) -> np.random.Generator:
        """The generator of epoch ``epoch`` (seeded by the run's seed and the epoch: resumable)."""
        self.rng = np.random.default_rng([int(self.seed), int(epoch)])
        return self.rng

    def end_epoch(self, record: dict) -> bool:
        """Account a validated epoch (``record["epoch"]``, ``record["val_mse"]``); True when it is the best.

        Keeps the best weights, counts epochs without improvement, steps the plateau schedule and appends
        the record (with ``best_epoch``) to the history.
        """
        improved = record["val_mse"] < self.best_mse
        if improved:
            self.best_mse, self.best_epoch, self.bad_epochs = record["val_mse"], record["epoch"], 0
            self.best = _weights(self.encoder, self.decoder)
        else:
            self.bad_epochs += 1
        self.schedule.after_epoch(record["val_mse"])
        record["best_epoch"] = self.best_epoch
        self.epoch = record["epoch"]
        self.history.append(record)
        return improved

    def load_best(self) -> None:
        """Put the best weights back into the networks."""
        self.encoder.load_state_dict({k[8:]: v for k, v in self.best.items() if k.startswith("encoder.")})
        self.decoder.load_state_dict({k[8:]: v for k, v in self.best.items() if k.startswith("decoder.")})

    def train_state(self) -> dict:
        """The JSON part of a checkpoint: counters and history (``lr``: the next epoch's first rate)."""
        return {"epoch": self.epoch, "lr": self.schedule.lr, "best_mse": self.best_mse,
                "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs, "history": self.history}

    def load_train_state(self, st: dict, settings: TrainSettings) -> None:
        """Restore the counters and history of a checkpoint and recompute the schedule from its history."""
        self.epoch, self.best_mse = int(st["epoch"]), float(st["best_mse"])
        self.best_epoch, self.bad_epochs = int(st["best_epoch"]), int(st["bad_epochs"])
        self.history = list(st["history"])
        self.schedule = make_schedule(self.optimizer, settings, self.history)


def new_state(cfg: ModelConfig, settings: TrainSettings, seed: int, device: torch.device) -> TrainerState:
    """A fresh run: networks initialised from ``seed``, Adam at ``settings.lr``, the schedule at its start.

    Examples
    --------
    >>> st = new_state(ModelConfig.preset("mlp", k=4), TrainSettings(), 0, torch.device("cpu"))
    >>> st.epoch, st.schedule.lr, sorted(st.best)[0]
    (0, 0.001, 'decoder.dense.0.bias')
    """
    enc = build_encoder(cfg, seed=seed).to(device)
    dec = build_decoder(cfg, seed=seed).to(device)
    params = list(enc.parameters()) + list(dec.parameters())
    opt = torch.optim.Adam(params, lr=settings.lr, weight_decay=settings.weight_decay)
    return TrainerState(enc, dec, opt, make_schedule(opt, settings), _weights(enc, dec), int(seed))
