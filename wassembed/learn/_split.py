"""The pairs of a training run: a cache's pairs merged, split by image, grouped into batching units.

A seeded fraction of the images is held out (:func:`~._batching.split_by_image`): pairs without a held-out
image train, every other pair (both images held out, or one held-out and one training image) is held out,
so no pair is wasted. The held-out pairs are split again (:func:`~._batching.split_calibration`, by halving
the held-out images) into pairs that select the model (early stopping) and pairs that calibrate the
conformal intervals. Training pairs are grouped into units of pairs that share images
(:func:`~._batching.plan_units`), one unit per pair with ``batching="pairs"``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ..errors import InputError, explain
from ..exact import PairTable
from ._batching import plan_units, split_by_image, split_calibration
from ._settings import TrainSettings

__all__ = ["SPLIT_RULE", "TrainingPairs", "split_pairs"]

#: How pairs are split (part of a checkpoint's identity: a run resumed under another rule would compare
#: validation errors over other pairs).
SPLIT_RULE = "by image; every pair with a held-out image selects or calibrates (none dropped)"


def _take(table: PairTable, mask: np.ndarray) -> PairTable:
    return PairTable(table.i[mask], table.j[mask], table.value[mask])


@dataclass(frozen=True)
class TrainingPairs:
    """A cache's pairs as one run uses them.

    Attributes
    ----------
    all : PairTable
        Every pair of the cache, sorted by ``(i, j)``.
    train, val, calibration : PairTable
        Pairs among training images; held-out pairs that select the model; held-out pairs kept for
        conformal calibration (empty when too few to split). Every pair of ``all`` is in exactly one.
    val_images : ndarray, shape (h,), int64
        The held-out images.
    units : list of int64 arrays
        Indices into ``train`` of the pairs of each batching unit.
    scale : float
        Target scale ``s`` of the distance loss.
    digest : str
        sha256 of the pairs and values (the checkpoint's and the model's ``cache_fingerprint``).
    """

    all: PairTable
    train: PairTable
    val: PairTable
    calibration: PairTable
    val_images: np.ndarray
    units: list
    scale: float
    digest: str

    @property
    def dropped(self) -> int:
        """Pairs in none of the three sets (0: the split uses every pair)."""
        return len(self.all) - len(self.train) - len(self.val) - len(self.calibration)

    def counts(self) -> dict:
        """How many pairs went where (``info["training"]["split"]``): ``train``, ``validation``,
        ``calibration``, ``dropped``, and of the held-out sets how many are ``mixed`` (one training image)."""
        held = np.zeros(int(max(self.all.i.max(initial=-1), self.all.j.max(initial=-1))) + 1, dtype=bool)
        held[self.val_images] = True

        def mixed(t: PairTable) -> int:
            return int((held[t.i] != held[t.j]).sum())

        return {"train": len(self.train), "validation": len(self.val), "calibration": len(self.calibration),
                "dropped": self.dropped, "validation_mixed": mixed(self.val),
                "calibration_mixed": mixed(self.calibration)}

    @property
    def all_images(self) -> np.ndarray:
        """The images of the cache's pairs, sorted."""
        return np.unique(np.concatenate([self.all.i, self.all.j]))

    @property
    def train_images(self) -> np.ndarray:
        """The images of the training pairs, sorted."""
        return np.unique(np.concatenate([self.train.i, self.train.j]))


def _shard_units(shards, train: PairTable, n: int) -> list[np.ndarray]:
    """Indices into ``train`` of each shard's training pairs."""
    key = train.i * n + train.j
    out = []
    for sh in shards:
        s = np.searchsorted(key, sh.i * n + sh.j)
        s = np.minimum(s, key.size - 1)
        out.append(np.unique(s[key[s] == sh.i * n + sh.j]))
    return out


def _too_small(cache, table: PairTable, n_tr: int, n_va: int, val_fraction: float) -> InputError:
    """The error of a cache with too few pairs to train on: how many pairs its images allow, what to pass."""
    u = int(np.unique(np.concatenate([table.i, table.j])).size)
    most = u * (u - 1) // 2
    if len(table) >= most:
        more = (f"its {u} images allow no more than n(n-1)/2 = {most} pairs and the cache holds them all: "
                "precompute pairs over more images (the `images` of precompute, or a larger dataset)")
    else:
        more = (f"precompute more pairs (`pairs` of precompute, e.g. pairs={min(most, 10000)}: its {u} images "
                f"allow up to n(n-1)/2 = {most})")
    return InputError(explain(f"cache {cache.path} is too small to train on",
                              expected="at least 10 training and 5 validation pairs after the split by image",
                              received=f"{len(table)} pairs: {n_tr} train, {n_va} validation "
                                       f"(val_fraction={val_fraction:g})",
                              fix=f"{more}; or change val_fraction"))


def split_pairs(cache, settings: TrainSettings, seed: int) -> TrainingPairs:
    """Read, merge and split the pairs of ``cache`` for a run with ``settings`` and ``seed``.

    Raises
    ------
    InputError
        The cache holds no pairs, or fewer than 10 training or 5 validation pairs after the split.
    """
    n = cache.data.n
    shards = cache.read_shards()
    table = PairTable.merge(shards)  # unique, sorted by (i, j), as DistanceCache.read
    if len(table) == 0:
        raise InputError(explain(f"cache {cache.path} holds no pairs", expected="exact distances to train on",
                                 received="0 pairs",
                                 fix="precompute exact distances into it first (e.g. pairs=20000 in precompute)"))
    tr_mask, held_mask, val_images = split_by_image(table.i, table.j, n, settings.val_fraction, seed)
    va_mask, cal_mask = split_calibration(table.i, table.j, held_mask, val_images, n, seed)
    n_tr, n_va = int(tr_mask.sum()), int(va_mask.sum())
    if n_tr < 10 or n_va < 5:
        raise _too_small(cache, table, n_tr, n_va, settings.val_fraction)
    train = _take(table, tr_mask)
    if settings.batching == "groups":
        units = plan_units(_shard_units(shards, train, n), train.i, train.j)
    else:
        units = list(np.arange(len(train), dtype=np.int64)[:, None])
    digest = hashlib.sha256(table.i.tobytes() + table.j.tobytes() + table.value.tobytes()).hexdigest()
    scale = float(train.value.mean()) if settings.target_scale == "mean" else float(settings.target_scale)
    return TrainingPairs(table, train, _take(table, va_mask), _take(table, cal_mask), val_images, units, scale,
                         digest)
