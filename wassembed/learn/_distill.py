"""Distillation from per-image LOT targets: the first phase of training when the cache has them.

A pair solve gives the encoder one number to match; a per-image LOT solve (:mod:`wassembed.exact._teacher`)
gives it a whole embedding :math:`e_i` with :math:`\\|e_i - e_j\\|^2 \\approx W_2^2(\\mu_i, \\mu_j)`. Before the
pair epochs, the encoder φ regresses

.. math:: t_i = \\sqrt{a}\\, V_d^\\top (e_i - \\bar e), \\qquad
          \\min_\\phi \\frac{1}{|B|} \\sum_{i \\in B} \\|\\phi(x_i) - t_i\\|^2 ,

with :math:`V_d` the first ``d`` principal axes of the training images' embeddings (``d`` the model's
latent size) and :math:`a` the least-squares scale of :math:`\\|V_d^\\top (e_i - e_j)\\|^2` against the exact
values of the training pairs (no intercept: a latent distance has none). Only training images are used
(held-out images keep their role: their pairs select and calibrate the model), and the elastic copies of
training images when the cache has some (``precompute(..., lot_copies=K)``: each copy's own LOT embedding,
projected on the same axes; more images for the student, :mod:`wassembed.exact._copies`). The pair epochs then
fine-tune φ on the exact values (:mod:`._epoch`). For point clouds (:class:`~wassembed.exact.CloudLOT`
targets) the encoder's appended exact mean takes the mean part of the embeddings (``mean_dims``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from ..exact import PairTable
from ..exact._cloud_lot import split_mean
from ..exact._teacher import LOTTargets

__all__ = ["DistillTargets", "distill", "distill_targets"]


@dataclass(frozen=True)
class DistillTargets:
    """What the encoder regresses in the distillation phase.

    Attributes
    ----------
    images : ndarray, shape (m,), int64
        Training images with a target.
    targets : ndarray, shape (m, d), float32
        :math:`t_i` for those images.
    scale : float
        :math:`a` (latent distance per unit of squared LOT distance).
    explained : float
        Fraction of the embeddings' variance kept by the ``d`` principal axes.
    pairs_used : int
        Training pairs the scale was fitted on.
    copy_weights : ndarray, shape (m', k), float32
        Elastic copies of training images (histograms; none: ``(0, k)``).
    copy_targets : ndarray, shape (m', d), float32
        Their targets.
    """

    images: np.ndarray
    targets: np.ndarray
    scale: float
    explained: float
    pairs_used: int
    copy_weights: np.ndarray | None = None
    copy_targets: np.ndarray | None = None

    @property
    def n_copies(self) -> int:
        """Elastic copies among the targets."""
        return 0 if self.copy_weights is None else int(self.copy_weights.shape[0])

    def summary(self) -> dict:
        """JSON-able facts for the model's ``info``."""
        return {"images": int(self.images.size), "copies": self.n_copies, "dim": int(self.targets.shape[1]),
                "scale": self.scale, "explained_variance": self.explained, "pairs_for_scale": self.pairs_used}


def distill_targets(lot: LOTTargets, train_images: np.ndarray, train: PairTable, dim: int, *,
                    mean_dims: int = 0) -> DistillTargets | None:
    """Principal-axis targets of the training images (None when fewer than ``dim + 1`` images have one).

    Parameters
    ----------
    lot : LOTTargets
        The cache's per-image targets.
    train_images : ndarray, shape (n_train,), int64
        The run's training images.
    train : PairTable
        The run's training pairs (for the scale).
    dim : int
        The model's latent size ``d``.
    mean_dims : int
        For a point-cloud encoder that appends the exact mean of a cloud (``centre``): the clouds' dimension.
        The embeddings are split into the mean and a centred part (:func:`wassembed.exact.split_mean`); the
        principal axes of the centred part give the first ``d - mean_dims`` targets, the means the last ones
        (exact, as the encoder outputs them), and the scale is fitted on what the means leave of each exact
        value.
    """
    images = np.intersect1d(train_images, lot.index)
    if images.size <= dim:
        return None
    E = lot.embedding[lot.rows(images)].astype(np.float64)
    means = np.zeros((images.size, 0))
    if mean_dims:
        E, means = split_mean(E, mean_dims)
    centre = E.mean(axis=0)
    E -= centre
    _, s, vt = np.linalg.svd(E, full_matrices=False)
    d = min(dim - mean_dims, vt.shape[0])
    Z = np.zeros((images.size, dim - mean_dims))
    Z[:, :d] = E @ vt[:d].T
    explained = float((s[:d] ** 2).sum() / (s ** 2).sum())
    both = np.isin(train.i, images) & np.isin(train.j, images)
    pi, pj = np.searchsorted(images, train.i[both]), np.searchsorted(images, train.j[both])
    dz = ((Z[pi] - Z[pj]) ** 2).sum(1)
    y = train.value[both] - ((means[pi] - means[pj]) ** 2).sum(1)
    scale = float(dz @ y / (dz @ dz)) if both.sum() >= 2 and dz @ dz > 0 else 1.0
    targets = np.concatenate([np.sqrt(max(scale, 0.0)) * Z, means], axis=1)
    copy_w = copy_t = None
    if lot.copies is not None and not mean_dims:  # copies of training images only, on the same axes
        keep = np.isin(lot.copies.source, images)
        Zc = np.zeros((int(keep.sum()), dim))
        Zc[:, :d] = (lot.copies.embedding[keep].astype(np.float64) - centre) @ vt[:d].T
        copy_w = lot.copies.weights[keep].astype(np.float32)
        copy_t = (np.sqrt(max(scale, 0.0)) * Zc).astype(np.float32)
    return DistillTargets(images=images, targets=targets.astype(np.float32), scale=scale,
                          explained=explained, pairs_used=int(both.sum()), copy_weights=copy_w,
                          copy_targets=copy_t)


def distill(encoder: torch.nn.Module, X: torch.Tensor, targets: DistillTargets, *, epochs: int, batch: int,
            lr: float, seed: int) -> dict:
    """Regress ``targets`` with ``encoder`` (Adam, cosine decay to ``lr / 100``, seeded batch order).

    Parameters
    ----------
    encoder : torch.nn.Module
        Trained in place (its own optimizer: the pair phase starts afresh).
    X : Tensor, shape (n, k), float32
        Every image of the cache, on the training device.
    targets : DistillTargets
    epochs, batch : int
        Passes over the images and images per step.
    lr : float
    seed : int

    Returns
    -------
    dict
        ``epochs``, ``final_loss`` (mean squared target error of the last epoch), ``seconds``.
    """
    t0 = time.time()
    dev = X.device
    rows = X[torch.as_tensor(targets.images, device=dev)]  # the training images, then their elastic copies
    T = torch.as_tensor(targets.targets, device=dev)
    if targets.n_copies:
        rows = torch.cat([rows, torch.as_tensor(targets.copy_weights, device=dev, dtype=rows.dtype)])
        T = torch.cat([T, torch.as_tensor(targets.copy_targets, device=dev)])
    idx = torch.arange(rows.shape[0], device=dev)
    opt = torch.optim.Adam(encoder.parameters(), lr=lr)
    steps = epochs * -(-idx.numel() // batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1), eta_min=lr / 100)
    rng = np.random.default_rng([int(seed), 7919])  # its own stream: the pair epochs' draws are unchanged
    encoder.train()
    loss_sum, count = 0.0, 0
    for _ in range(epochs):
        perm = torch.as_tensor(rng.permutation(idx.numel()), device=dev)
        loss_sum, count = 0.0, 0
        for s in range(0, idx.numel(), batch):
            b = perm[s:s + batch]
            loss = ((encoder(rows[b]) - T[b]) ** 2).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += float(loss.detach()) * b.numel()
            count += b.numel()
    return {"epochs": int(epochs), "final_loss": loss_sum / max(count, 1), "seconds": time.time() - t0}
