"""Train a Wasserstein embedding from a distance cache alone.

Given exact values ``y_ij = W_p^p(x_i, x_j)`` of a cache, the encoder φ and decoder ψ minimise
:class:`~wassembed.learn._losses.DWELoss` (``(‖φ(x_i) − φ(x_j)‖^p − y_ij)²`` plus ``2λ·KL(x ‖ softmax ψ(φ(x)))``).

* **Split by image.** A fraction of the images is held out (:mod:`._split`); training pairs have no held-out
  image. The last held-out images by index calibrate the conformal intervals on pairs of two of them (the
  cache's, and pairs solved for the run up to ``calibration_pairs``), as test pairs of two new images are; the
  others, drawn at random, select the model (early stopping); ``info["training"]["split"]`` counts them
  (``dropped``: pairs of a calibration image with another image). A
  :class:`~wassembed.learn.SmallDataWarning` at the end says when they are too few.
* **Batches share images.** The loss needs φ only once per distinct image. Pairs computed together (one
  shard) are grouped into connected components; a component whose images lie inside a larger one of
  another shard (pieces of one "blocks" group) joins it; whole groups are packed into batches of at most
  ``batch_images`` images (shuffled every epoch). A group larger than that (random-pair caches) is cut
  into ordinary pair batches. One 64-image forward pass of a blocks cache serves ~2,000 pair terms.
* **Exact symmetries** (optional ``augment``): one in-bounds translation, flip or 90° rotation applied to
  every image of a batch leaves every ``W_2^2`` between them unchanged (grid supports); for point clouds one
  rotation, reflection or translation of the batch.
* **Point clouds** (a cache of :class:`~wassembed.data.PointCloudSet`) train the same way with a set encoder,
  a Sinkhorn reconstruction term and a latent OOD reference (:mod:`._clouds`); the result is a
  :class:`~wassembed.serve.CloudEmbedding`.
* **Distillation first** when the cache holds per-image LOT targets (``wassembed precompute`` caches them by
  default): the encoder regresses them (:mod:`._distill`), then the pair epochs fine-tune (20 by default,
  peaking at ``finetune_lr``).
* An optional **decoder phase** (``decoder_epochs``) fits the decoder alone to the chosen encoder
  (:mod:`._decoder`).
* Adam, cosine / plateau / constant learning rate, early stopping on the validation MSE, a checkpoint
  every epoch (safetensors + JSON, see :mod:`._checkpoints`), ``resume``, seeded and reproducible,
  per-epoch metrics appended to a JSON-lines log, progress on stderr (a bar on a terminal, one plain line per
  epoch in a log: :mod:`wassembed._progress`), bf16 autocast on CUDA.

The steps live in their own modules: :mod:`._split` (pairs and units), :mod:`._state` (the trainer state),
:mod:`._schedule` (learning rates), :mod:`._epoch` (one epoch), :mod:`._predict` (validation),
:mod:`._checkpoints` (save and resume), :mod:`._calibration` (conformal pairs, OOD reference); this module
sets a run up, loops over epochs and assembles the model.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .._progress import format_duration
from .._validation import check_int
from .._version import __version__
from ..data import POINT_CLOUDS
from ..errors import InputError, explain
from ..exact import DistanceCache
from ..exact._teacher import read_lot_targets
from ..nn import ModelConfig, resolve_device
from ..serve import BaseEmbedding
from ._calibration import FALLBACK, calibrate
from ._checkpoints import refuse_overwrite, restore_training_checkpoint, save_training_checkpoint
from ._decoder import fit_decoder
from ._distill import distill, distill_targets
from ._epoch import EpochPlan, run_epoch
from ._kinds import training_kind
from ._losses import DistanceLoss, DWELoss
from ._predict import validate
from ._settings import TrainSettings
from ._smalldata import warn_small_data
from ._split import SPLIT_RULE, TrainingPairs, split_pairs
from ._state import TrainerState, new_state

__all__ = ["DEFAULT_CPU_THREADS", "train", "training_threads"]

#: torch threads of a training run on a CPU device when ``threads`` is not given. Measured on a 2-core machine
#: (``wassembed bench threads``; docs/benchmarks-learning.md, "Training threads"): with other jobs running, all
#: cores trained every preset 3–15× slower than one thread; lightly loaded, at most 1.25× faster (``paper``).
DEFAULT_CPU_THREADS = 1


def _open_cache(cache):
    return DistanceCache.open(cache) if isinstance(cache, (str, Path)) else cache


def _settings(settings: TrainSettings | None, overrides: dict) -> TrainSettings:
    known = {f.name for f in dataclasses.fields(TrainSettings)}
    if set(overrides) - known:
        raise InputError(explain("unknown training options", expected=f"names among {sorted(known)}",
                                 received=str(sorted(set(overrides) - known)), fix="check the spelling"))
    return dataclasses.replace(settings or TrainSettings(), **overrides)


def _versions() -> dict:
    import numpy
    import safetensors

    return {"wassembed": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "safetensors": safetensors.__version__, "python": platform.python_version()}


def _ident(cache, pairs: TrainingPairs, cfg: ModelConfig, settings: TrainSettings, seed: int) -> dict:
    """What a checkpoint must have been made with to be resumed (``epochs`` and ``patience`` may change)."""
    return {"cache_fingerprint": pairs.digest, "dataset_fingerprint": cache.fingerprint,
            "config_digest": cfg.digest(), "seed": int(seed), "split": SPLIT_RULE,
            "settings": {k: v for k, v in settings.to_dict().items() if k not in ("epochs", "patience")}}


def _plan(data, pairs: TrainingPairs, settings: TrainSettings, p: int, dev: torch.device, progress: bool,
          checkpoint_dir: Path | None) -> EpochPlan:
    kind = training_kind(data)  # the reconstruction term and the exact symmetries of the data's kind
    distance = DistanceLoss(p=p, scale=pairs.scale, relative_weight=settings.relative_weight)
    loss = DWELoss(distance, recon_weight=settings.recon_weight, reconstruction=kind.reconstruction(pairs.scale))
    augment = kind.augmentation(data, [o for o in settings.augment.split(",") if o], settings.max_shift)
    return EpochPlan(settings=settings, X=torch.from_numpy(data.packed()).to(dev), train=pairs.train,
                     units=pairs.units, loss=loss, amp=dev.type == "cuda", progress=progress,
                     checkpoint_dir=checkpoint_dir, augment=augment)


def _epoch_record(trained: dict, metrics: dict) -> dict:
    """The log line of an epoch: training figures, then validation metrics (``best_epoch`` comes last)."""
    head = {k: trained[k] for k in ("epoch", "train_loss", "train_mse")}
    val = {"val_mse": metrics["mse"], "val_pearson": metrics["pearson"], "val_relative_mse": metrics["relative_mse"]}
    return head | val | {k: v for k, v in trained.items() if k not in head}


def _append_log(log: Path | None, record: dict) -> None:
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as fh:
            fh.write(json.dumps(record) + "\n")


def epoch_line(record: dict, epochs: int, eta_seconds: float) -> str:
    """The plain line printed after each epoch (the same on a terminal and in a log file).

    Examples
    --------
    >>> r = {"epoch": 3, "train_loss": 0.1234, "val_mse": 0.04567, "val_pearson": 0.98765, "pairs_per_s": 12345.6}
    >>> epoch_line(r, 40, 42.2)
    'epoch 3/40: loss 0.1234, val mse 0.04567, r 0.98765, 12,346 pairs/s, ETA 42 s'
    """
    eta = f"ETA {format_duration(eta_seconds)}" if record["epoch"] < epochs else "last epoch"
    return (f"epoch {record['epoch']}/{epochs}: loss {record['train_loss']:.4g}, val mse {record['val_mse']:.4g}, "
            f"r {record['val_pearson']:.5f}, {record['pairs_per_s']:,.0f} pairs/s, {eta}")


def _fit(state: TrainerState, plan: EpochPlan, val_pairs, p: int, ident: dict, log: Path | None) -> str:
    """Run epochs ``state.epoch + 1 ..`` until ``settings.epochs`` or early stopping; how it stopped."""
    settings, ckpt = plan.settings, plan.checkpoint_dir
    t0, first = time.time(), state.epoch + 1
    for epoch in range(first, settings.epochs + 1):
        trained = run_epoch(state, plan, epoch)
        _, metrics = validate(state.encoder, plan.X, val_pairs, p)
        record = _epoch_record(trained, metrics)
        state.end_epoch(record)
        _append_log(log, record)
        if plan.progress:  # the epoch's bar is closed: one plain line (no carriage return), flushed
            per_epoch = (time.time() - t0) / (epoch - first + 1)
            print(epoch_line(record, settings.epochs, per_epoch * (settings.epochs - epoch)), file=sys.stderr,
                  flush=True)
        if ckpt is not None:
            save_training_checkpoint(ckpt, state, ident)
        if settings.patience and state.bad_epochs >= settings.patience:
            return "early stopping"
    return "epochs"


def _info(cache, pairs: TrainingPairs, state: TrainerState, settings: TrainSettings, *, seed: int,
          dev: torch.device, stopped: str, source: str, metrics: dict, t_start: float) -> dict:
    """The model's ``info``: provenance of the data and cache, the run's settings, split, history, versions."""
    info = {"dataset_fingerprint": cache.fingerprint, "cache_fingerprint": pairs.digest,
            "dataset": cache.manifest.get("dataset", {}) | {"weights": None},
            "ground_cost": cache.manifest.get("ground_cost"), "cache_path": str(cache.path),
            "training": {"settings": settings.to_dict(), "seed": int(seed), "device": str(dev),
                         "epochs_run": state.epoch, "best_epoch": state.best_epoch, "stopped": stopped,
                         "train_pairs": len(pairs.train), "val_pairs": len(pairs.val),
                         "calibration_pairs": len(pairs.calibration), "calibration_source": source,
                         "dropped_pairs": pairs.dropped, "split": pairs.counts(),
                         "train_images": int(pairs.train_images.size),
                         "val_images": int(pairs.val_images.size), "units": len(pairs.units),
                         "target_scale": pairs.scale, "wall_seconds": time.time() - t_start,
                         "threads": torch.get_num_threads(), "validation": metrics, "history": state.history},
            "versions": _versions()}
    info["dataset"].pop("weights")
    return info


def train(cache: DistanceCache | str | os.PathLike, *, model: str | ModelConfig = "fast",
          settings: TrainSettings | None = None, checkpoint_dir: str | os.PathLike | None = None,
          resume: bool = False, device: str = "auto", seed: int = 0, progress: bool = True,
          log: str | os.PathLike | None = None, threads: int | None = None, **overrides) -> BaseEmbedding:
    """Train a served model on the pairs of a distance cache: a :class:`~wassembed.serve.WassersteinEmbedding`
    for histograms, a :class:`~wassembed.serve.CloudEmbedding` for point clouds.

    Parameters
    ----------
    cache : DistanceCache or path
        A cache with stored data (``wassembed precompute``).
    model : str or ModelConfig
        Preset name (``"fast"``, ``"paper"``, ``"mlp"``; non-grid supports always get an MLP) or a config.
    settings : TrainSettings, optional
        Hyper-parameters; keyword ``overrides`` (e.g. ``epochs=10``) replace fields.
    checkpoint_dir : path, optional
        Where a checkpoint is written every epoch and the JSON-lines log appended (``train_log.jsonl``).
    resume : bool
        Continue from the checkpoint in ``checkpoint_dir`` (refused if it was made for another cache,
        architecture or settings; ``epochs`` and ``patience`` may change).
    device : {"auto", "cpu", "cuda"}
    seed : int
        Seeds the split, initialisation, batch order and augmentation.
    progress : bool
        Progress on stderr: a bar during each epoch on a terminal (none in a log file), then one plain line
        per epoch (loss, validation MSE, pairs/s, ETA).
    log : path, optional
        JSON-lines log (default ``checkpoint_dir / "train_log.jsonl"``).
    threads : int, optional
        torch threads during training (torch's setting is restored afterwards). Default: 1
        (:data:`DEFAULT_CPU_THREADS`) on a CPU device (all cores: 3–15× slower for every preset on a busy
        2-core machine, at most 1.25× faster on a lightly loaded one); torch's current setting on CUDA. ``0``
        keeps torch's current setting (by default all cores).

    Returns
    -------
    WassersteinEmbedding or CloudEmbedding
        The best model on validation, with ``info`` and ``calibration``.

    Warns
    -----
    SmallDataWarning
        At the end, when the held-out pairs are too few for the error bars (calibration) or for early
        stopping (validation); the messages are also kept in ``info["training"]["warnings"]``.
    """
    old_threads = torch.get_num_threads()
    dev = resolve_device(device)
    torch.set_num_threads(training_threads(threads, dev))
    try:
        return _train(cache, model, settings, checkpoint_dir, resume, dev, seed, progress, log, overrides)
    finally:
        torch.set_num_threads(old_threads)


def training_threads(threads: int | None, device) -> int:
    """The torch thread count of a training run on ``device``.

    Parameters
    ----------
    threads : int or None
        None: :data:`DEFAULT_CPU_THREADS` on a CPU device, torch's current setting on CUDA; 0: torch's current
        setting; a positive int: itself.
    device : str or torch.device

    Examples
    --------
    >>> training_threads(None, "cpu"), training_threads(3, "cpu")
    (1, 3)
    >>> training_threads(0, "cpu") == torch.get_num_threads()
    True
    """
    if threads is None:
        return DEFAULT_CPU_THREADS if resolve_device(device).type == "cpu" else torch.get_num_threads()
    threads = check_int("threads", threads, minimum=0, example=1)
    return threads or torch.get_num_threads()


def _teacher(cache, pairs: TrainingPairs, cfg: ModelConfig, settings: TrainSettings):
    """The distillation targets of this run, or None and the reason (decided the same way on resume), and the
    pairs with the images trained on through their targets alone (targets of images without any pair)."""
    if settings.distill_epochs == 0:
        return None, "distill_epochs=0", pairs
    lot = read_lot_targets(cache)
    if lot is None:
        return None, "the cache has no per-image LOT targets", pairs
    extra = np.setdiff1d(lot.index, pairs.all_images)  # neither trained on nor held out by any pair
    pairs = dataclasses.replace(pairs, target_images=extra.astype(np.int64))
    # mean_dims: the embedding's entries that hold the exact mean (the set encoder with centre)
    targets = distill_targets(lot, pairs.train_images, pairs.train, cfg.embed_dim, mean_dims=cfg.mean_dims)
    if targets is None:
        return None, f"fewer than {cfg.embed_dim + 1} training images have LOT targets", pairs
    return targets, None, pairs


def _distill_phase(targets, why: str | None, state: TrainerState, plan: EpochPlan, seed: int,
                   distill_lr: float) -> dict:
    """Regress the per-image LOT targets before the pair epochs (see :mod:`._distill`); what was done."""
    if targets is None:
        return {"used": False, "reason": why}
    settings = plan.settings
    if plan.progress:
        print(f"distillation: {targets.images.size} images, {settings.distill_epochs} epochs", file=sys.stderr,
              flush=True)
    done = distill(state.encoder, plan.X, targets, epochs=settings.distill_epochs, batch=settings.batch_images,
                   lr=distill_lr, seed=seed)
    return {"used": True} | targets.summary() | done


def _train(cache, model, settings, checkpoint_dir, resume, device, seed, progress, log, overrides):
    """Set up (settings, device, cache, split, networks, checkpoint), fit, then calibrate the best model."""
    t_start = time.time()
    settings = _settings(settings, overrides)
    dev = resolve_device(device)
    cache = _open_cache(cache)
    data, p = cache.data, int(cache.p)
    cfg = training_kind(data).config(model, data)
    settings = dataclasses.replace(settings, distill_epochs=settings.distillation_epochs(cfg.data_kind == POINT_CLOUDS))
    pairs = split_pairs(cache, settings, seed)
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    log = Path(log) if log is not None else (ckpt / "train_log.jsonl" if ckpt else None)
    targets, why, pairs = _teacher(cache, pairs, cfg, settings)
    # after a distillation phase the pair epochs fine-tune: fewer of them (by default), peaking at finetune_lr
    run = dataclasses.replace(settings, epochs=settings.pair_epochs(targets is not None),
                              lr=settings.lr if targets is None else settings.finetune_lr)
    plan = _plan(data, pairs, run, p, dev, progress, ckpt)
    state = new_state(cfg, run, seed, dev)
    ident = _ident(cache, pairs, cfg, settings, seed) | {"distillation": targets is not None}
    if resume:
        restore_training_checkpoint(ckpt, state, ident, run)
        distilled = {"used": targets is not None, "reason": "resumed: the phase ran before the first checkpoint"}
    else:
        refuse_overwrite(ckpt)
        distilled = _distill_phase(targets, why, state, plan, seed, settings.lr)
    stopped = _fit(state, plan, pairs.val, p, ident, log)
    # the final model: the best weights on validation, calibrated on pairs it has not seen
    state.load_best()
    state.encoder.eval()
    decoded = fit_decoder(state.encoder, state.decoder, plan.X, pairs.train_images, epochs=settings.decoder_epochs,
                          lr=settings.lr, batch=settings.batch_images, seed=seed,
                          reconstruction=plan.loss.reconstruction) if settings.decoder_epochs else None
    state.decoder.eval()
    val_pred, metrics = validate(state.encoder, plan.X, pairs.val, p)
    cal = calibrate(state.encoder, state.decoder, plan.X, pairs, p, val_pred, ood_arrays=training_kind(data).ood_arrays)
    info = _info(cache, pairs, state, settings, seed=seed, dev=dev, stopped=stopped, source=cal.source,
                 metrics=metrics, t_start=t_start)
    info["training"]["distillation"] = distilled
    info["training"]["decoder_phase"] = decoded
    info["training"]["settings"]["epochs"] = run.epochs  # the resolved maximum
    # last, after every progress line: the held-out pairs may be too few for the error bars or early stopping
    info["training"]["warnings"] = warn_small_data(
        n_val=len(pairs.val), n_cal=int(cal.arrays["val_pred"].size), fallback=cal.source == FALLBACK,
        total=len(pairs.all), images=int(pairs.all_images.size), val_fraction=settings.val_fraction, stacklevel=3)
    served = BaseEmbedding.model_class(cfg)  # WassersteinEmbedding or CloudEmbedding: the sibling of the config
    return served(state.encoder.cpu(), state.decoder.cpu(), config=cfg, p=p, info=info, calibration=cal.arrays,
                  device=str(dev), **served.support_of(data))
