"""What training does differently for each kind of data: one table, keyed by ``data.kind``.

The trainer reads the data through the :class:`~wassembed.data.DataSet` protocol (the networks' input is
``data.packed()``: histograms ``(n, k)``, clouds ``(n, kmax, d + 1)``) and runs the same split, batches, epochs,
early stopping, checkpoints, distillation and conformal calibration for every kind. Where the mathematics
differs it looks up :func:`training_kind`:

- **the architecture**: a given config checked against the data (its class reads this kind, on this support),
  or the kind's preset (histograms: the named preset on the data's grid or ``k`` bins; point clouds: the
  ``"set"`` preset with ``coord_scale`` from the data, :mod:`._clouds`);
- **the reconstruction term**: the KL of :class:`~wassembed.learn.DWELoss` for histograms, the Sinkhorn
  divergence for clouds (:class:`~._clouds.CloudReconstructionLoss`);
- **the exact symmetries** (``augment``): one translation, flip or 90° rotation of every image of a batch
  (grid supports only), or one rigid motion of every cloud (:class:`Augmentation`);
- **the out-of-distribution reference** kept for serving: ``"pca"`` and the reconstruction errors for
  histograms, ``"latent"`` for clouds (:mod:`._calibration`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..data import HISTOGRAMS, POINT_CLOUDS
from ..errors import InputError, explain
from ..nn import ModelConfig, suggest_coord_scale
from ._batching import augment_images, bounding_boxes
from ._calibration import latent_arrays
from ._clouds import CloudReconstructionLoss, augment_clouds
from ._losses import ReconstructionLoss

__all__ = ["Augmentation", "TrainingKind", "image_augmentation", "training_kind"]


@dataclass(frozen=True)
class Augmentation:
    """One exact symmetry applied to a whole batch: ``apply(x, images, rng)``, where ``images`` are the batch's
    image indices on the host (``needs_images``) or None."""

    apply: Callable
    needs_images: bool


@dataclass(frozen=True)
class TrainingKind:
    """The training mathematics of one kind of data (see the module docstring).

    Attributes
    ----------
    config : callable ``(model, data) -> ModelConfig``
    reconstruction : callable ``(scale) -> loss``
        The reconstruction term of :class:`~wassembed.learn.DWELoss` (``scale``: the target scale).
    augmentation : callable ``(data, ops, max_shift) -> Augmentation or None``
    ood_arrays : callable ``(encoder, decoder, X, pairs) -> dict`` or None
        The calibration arrays of the kind's OOD reference (None: ``"pca"`` and the reconstruction errors,
        :func:`~._calibration.calibrate`'s default).
    """

    config: Callable
    reconstruction: Callable
    augmentation: Callable
    ood_arrays: Callable


def _refuse(expected: str, received: str, fix: str):
    raise InputError(explain("the model config does not fit the cache's data", expected=expected, received=received,
                             fix=fix))


def _histogram_config(model, data) -> ModelConfig:
    if not isinstance(model, ModelConfig):
        return ModelConfig.preset(str(model), grid=data.grid, k=data.k)
    if model.data_kind != data.kind or model.k != data.k or \
            (model.grid is not None and tuple(model.grid) != tuple(data.grid or ())):
        _refuse(f"a histogram config with k={data.k}, grid={data.grid}",
                f"{type(model).__name__} kind={model.kind!r}, k={model.k}, grid={getattr(model, 'grid', None)}",
                "use ModelConfig.preset(name, grid=cache.data.grid)")
    return model


def _cloud_config(model, data) -> ModelConfig:
    """A given :class:`~wassembed.nn.SetConfig` (checked), else the ``"set"`` preset for the clouds."""
    if not isinstance(model, ModelConfig):
        return ModelConfig.preset("set", point_dim=data.d, max_points=int(data.sizes.max()),
                                  coord_scale=suggest_coord_scale(data))
    if model.data_kind != data.kind or model.point_dim != data.d:
        _refuse(f"kind='set', point_dim={data.d}",
                f"kind={model.kind!r}, point_dim={getattr(model, 'point_dim', None)}",
                "use ModelConfig.preset('set', point_dim=clouds.d, max_points=...)")
    return model


def _image_augmentation(data, ops, max_shift) -> Augmentation | None:
    if not ops or data.grid is None:  # translations, flips and rotations are symmetries of grids only
        return None
    return image_augmentation(data.grid, bounding_boxes(data.weights, data.grid), ops, max_shift)


def image_augmentation(grid, bboxes, ops, max_shift) -> Augmentation | None:
    """The image augmentation of ``ops`` on ``grid`` with the images' bounding boxes (None without ops)."""
    if not ops:
        return None
    return Augmentation(lambda x, images, rng: augment_images(x, grid, bboxes[images], ops, max_shift, rng), True)


def _cloud_augmentation(data, ops, max_shift) -> Augmentation | None:
    return Augmentation(lambda x, images, rng: augment_clouds(x, ops, max_shift, rng), False) if ops else None


def _cloud_ood(encoder, decoder, X: torch.Tensor, pairs) -> dict:
    return latent_arrays(encoder, X, pairs.train_images, pairs.val_images)


_TABLE = {
    HISTOGRAMS: TrainingKind(config=_histogram_config, reconstruction=lambda scale: ReconstructionLoss(),
                             augmentation=_image_augmentation, ood_arrays=None),
    POINT_CLOUDS: TrainingKind(config=_cloud_config, reconstruction=lambda scale: CloudReconstructionLoss(scale=scale),
                               augmentation=_cloud_augmentation, ood_arrays=_cloud_ood),
}


def training_kind(data) -> TrainingKind:
    """The training mathematics of ``data``'s kind."""
    if getattr(data, "kind", None) not in _TABLE:
        raise InputError(explain("no training for this kind of data", expected=" or ".join(_TABLE),
                                 received=repr(getattr(data, "kind", type(data).__name__)),
                                 fix="train on a cache of a HistogramSet or a PointCloudSet"))
    return _TABLE[data.kind]

