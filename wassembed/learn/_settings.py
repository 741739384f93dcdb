"""Training hyper-parameters."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .._validation import check_int, check_number, check_pos_int
from ..errors import InputError, explain

__all__ = ["DEFAULT_DISTILL_EPOCHS", "DEFAULT_EPOCHS", "DEFAULT_FINETUNE_EPOCHS", "TrainSettings"]

#: maximum pair epochs when ``epochs`` is not given: without, and after, a distillation phase
DEFAULT_EPOCHS = 40
DEFAULT_FINETUNE_EPOCHS = 20
#: distillation epochs when ``distill_epochs`` is not given: histograms (80 measured better than 40 on MNIST,
#: docs/benchmarks.md), point clouds (40, as measured in docs/benchmarks-clouds.md)
DEFAULT_DISTILL_EPOCHS = {"histograms": 80, "clouds": 40}


@dataclass(frozen=True)
class TrainSettings:
    """Training hyper-parameters (frozen, validated). Defaults are the best measured settings.

    Parameters
    ----------
    epochs : int or None
        Maximum number of passes over the training pairs. None (the default): 40, or 20 after a distillation
        phase (the pair epochs then fine-tune; 20 measured as good as 40 on MNIST, docs/benchmarks.md).
    batch_images : int
        Maximum distinct images per batch (pairs per batch: up to ``batch_images / 2`` for random pairs,
        thousands for blocks caches).
    lr : float
        Adam learning rate (peak of the schedule).
    schedule : {"cosine", "plateau", "constant"}
        Cosine decay to ``lr / 100`` over ``epochs``; halve after ``lr_patience`` epochs without
        improvement; or constant (see :mod:`wassembed.learn._schedule`).
    lr_patience : int
        ``"plateau"``: epochs without improvement before each halving (0 counts as 1).
    patience : int
        Early stopping: stop after this many epochs without a better validation MSE (0: never).
    val_fraction : float
        Fraction of the images held out: no training pair uses them, and every pair with one of them (the
        other image held out too or not) selects the model (early stopping) or calibrates the error bars.
    recon_weight : float
        ``λ`` of the reconstruction KL (per input of a pair). The paper used 10; 1 measured better on
        MNIST (test MSE 0.278 vs 0.331 with 486k training pairs, see docs/benchmarks-learning.md).
    relative_weight : float
        ``μ`` of the squared relative-error term.
    target_scale : float or "mean"
        Residuals are divided by this (``"mean"``: mean training target).
    augment : str
        Comma-separated exact symmetries among ``shift``, ``flip``, ``rot`` (grid supports), or ``""``.
    max_shift : int
        Largest translation in pixels for ``shift`` (always kept in bounds).
    weight_decay : float
        Adam weight decay.
    batching : {"groups", "pairs"}
        ``"groups"``: pack groups of pairs that share images (each distinct image embedded once per
        batch); ``"pairs"``: ordinary shuffled pair batches of ``batch_images / 2`` pairs (for comparison).
    distill_epochs : int or None
        Epochs of the distillation phase before the pair epochs, when the cache holds per-image LOT targets
        (``wassembed precompute`` computes them by default; see :mod:`wassembed.learn._distill`); 0 skips it.
        None (the default): 80 for histograms, 40 for point clouds (:meth:`distillation_epochs`).
    finetune_lr : float
        Peak learning rate of the pair epochs after a distillation phase (replaces ``lr`` there: a fresh
        ``lr`` undoes much of what the distillation taught; measured in docs/benchmarks.md).
    calibration_pairs : int
        Pairs of two calibration images (the last held-out images) that calibrate the error bars: the cache's,
        then new ones solved exactly at the start of training up to this number (0: the cache's only; see
        :mod:`wassembed.learn._split`).
    decoder_epochs : int
        Epochs of a decoder phase after the pair epochs: the decoder trained alone (encoder frozen, peak rate
        ``lr``) on the training images' reconstruction (:mod:`wassembed.learn._decoder`); 0 (the default)
        skips it. Distances are unchanged; decoded barycenters and interpolations improve when the pair
        epochs were few.
    """

    epochs: int | None = None
    batch_images: int = 128
    lr: float = 1e-3
    schedule: str = "cosine"
    lr_patience: int = 2
    patience: int = 6
    val_fraction: float = 0.1
    recon_weight: float = 1.0
    relative_weight: float = 0.0
    target_scale: object = 1.0
    augment: str = ""
    max_shift: int = 3
    weight_decay: float = 0.0
    batching: str = "groups"
    distill_epochs: int | None = None
    finetune_lr: float = 3e-4
    calibration_pairs: int = 2000
    decoder_epochs: int = 0

    def __post_init__(self):
        def bad(name, expected):
            raise InputError(explain(f"invalid training setting {name}", expected=expected,
                                     received=repr(getattr(self, name)), fix=f"pass a valid {name}"))
        if self.epochs is not None:
            object.__setattr__(self, "epochs", check_pos_int("epochs", self.epochs))
        check_int("batch_images", self.batch_images, minimum=4, example=64)
        for name in ("patience", "lr_patience", "max_shift", "calibration_pairs", "decoder_epochs"):
            check_int(name, getattr(self, name), minimum=0, example=getattr(TrainSettings, name))
        if self.distill_epochs is not None:
            check_int("distill_epochs", self.distill_epochs, minimum=0, example=80)
        for name in ("lr", "finetune_lr"):
            check_number(name, getattr(self, name), low=0, high=1, low_open=True, high_open=True,
                         example=getattr(TrainSettings, name))
        if self.batching not in ("groups", "pairs"):
            bad("batching", "'groups' or 'pairs'")
        if self.schedule not in ("cosine", "plateau", "constant"):
            bad("schedule", "'cosine', 'plateau' or 'constant'")
        check_number("val_fraction", self.val_fraction, low=0, high=0.9, low_open=True, high_open=True, example=0.1)
        for name in ("recon_weight", "relative_weight", "weight_decay"):
            check_number(name, getattr(self, name), low=0, example=getattr(TrainSettings, name))
        if self.target_scale != "mean" and not (isinstance(self.target_scale, (int, float))
                                                 and self.target_scale > 0):
            bad("target_scale", "a positive float or 'mean'")
        ops = [o for o in self.augment.split(",") if o] if isinstance(self.augment, str) else None
        if ops is None or any(o not in ("shift", "flip", "rot") for o in ops):
            bad("augment", "a comma-separated subset of shift, flip, rot (or '')")

    def pair_epochs(self, distilled: bool) -> int:
        """The maximum pair epochs of a run: ``epochs``, or its default (40; 20 after a distillation phase)."""
        if self.epochs is not None:
            return int(self.epochs)
        return DEFAULT_FINETUNE_EPOCHS if distilled else DEFAULT_EPOCHS

    def distillation_epochs(self, clouds: bool) -> int:
        """The distillation epochs of a run: ``distill_epochs``, or its default for the data (80 histograms;
        40 point clouds)."""
        if self.distill_epochs is not None:
            return int(self.distill_epochs)
        return DEFAULT_DISTILL_EPOCHS["clouds" if clouds else "histograms"]

    def to_dict(self) -> dict:
        """The settings as a JSON-able dict (field name → value)."""
        return dataclasses.asdict(self)
