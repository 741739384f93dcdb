"""The pairs of a training run: a cache's pairs merged, split by image, grouped into batching units.

A fraction ``val_fraction`` of the images of the cache's pairs is held out, in two sets (:func:`split_images`):

* **calibration images**: the *last* two thirds of the held-out budget, by image index (the end of the data,
  as a test range of later images is). Their pairs calibrate the conformal error bars: every pair of the cache
  that joins two calibration images, plus pairs among them solved exactly here until there are
  ``calibration_pairs`` (:func:`calibration_pairs`). So the calibration pairs are drawn as test pairs are:
  two images that no training pair used and that took no part in model selection, from the end of the data.
  Pairs that join a calibration image and another image are not used (an error of one unseen image, not
  two, would make the error bars too narrow on pairs of two new images).
* **selection images**: the rest of the budget, drawn at random (seeded) among the other images; pairs with
  one of them (and no calibration image) select the model (early stopping).

Pairs with no held-out image train. Training pairs are grouped into units of pairs that share images
(:func:`~._batching.plan_units`), one unit per pair with ``batching="pairs"``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError, explain, param
from ..exact import CloudSolver, ExactSolver, PairTable
from ._batching import plan_units
from ._settings import TrainSettings

__all__ = ["SPLIT_RULE", "TrainingPairs", "calibration_pairs", "split_images", "split_pairs"]

#: How pairs are split (part of a checkpoint's identity: a run resumed under another rule would compare
#: validation errors over other pairs).
SPLIT_RULE = ("by image; held out: the last images (by index) calibrate on pairs among themselves, random "
              "others select the model")
#: Share of the held-out images that calibrate (the rest select the model): the coverage of the error bars
#: varies with the number of calibration images (their pairs share images), early stopping needs fewer.
CALIBRATION_SHARE = 2 / 3


def _take(table: PairTable, mask: np.ndarray) -> PairTable:
    return PairTable(table.i[mask], table.j[mask], table.value[mask])


@dataclass(frozen=True)
class TrainingPairs:
    """A cache's pairs as one run uses them.

    Attributes
    ----------
    all : PairTable
        Every pair of the cache, sorted by ``(i, j)``.
    train, val : PairTable
        Pairs among training images; pairs with a selection image (early stopping) and no calibration image.
    calibration : PairTable
        Pairs of two calibration images (conformal error bars): those of the cache, then those solved for
        the run (``solved`` of them), sorted by ``(i, j)``; empty when fewer than two calibration images.
    val_images : ndarray, shape (h,), int64
        The held-out images (selection and calibration), sorted.
    calibration_images : ndarray, shape (c,), int64
        The calibration images (the last held-out images by index), sorted.
    units : list of int64 arrays
        Indices into ``train`` of the pairs of each batching unit.
    scale : float
        Target scale ``s`` of the distance loss.
    digest : str
        sha256 of the cache's pairs and values (the checkpoint's and the model's ``cache_fingerprint``).
    solved : int
        Calibration pairs solved exactly for the run (not in the cache).
    target_images : ndarray, shape (t,), int64
        Images of the cache with a per-image LOT target and no pair at all: the distillation trains on them
        through their targets (set by the trainer; part of :attr:`train_images`).
    """

    all: PairTable
    train: PairTable
    val: PairTable
    calibration: PairTable
    val_images: np.ndarray
    calibration_images: np.ndarray
    units: list
    scale: float
    digest: str
    solved: int = 0
    target_images: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def dropped(self) -> int:
        """Pairs of the cache in none of the three sets: those joining a calibration image and another image."""
        return len(self.all) - len(self.train) - len(self.val) - (len(self.calibration) - self.solved)

    def counts(self) -> dict:
        """How many pairs went where (``info["training"]["split"]``): ``train``, ``validation``,
        ``calibration`` (``calibration_solved`` of them solved for the run), ``dropped`` (a calibration image
        with another image), ``validation_mixed`` (validation pairs with one training image), and the
        held-out images: ``selection_images``, ``calibration_images``."""
        held = np.zeros(int(max(self.all.i.max(initial=-1), self.all.j.max(initial=-1))) + 1, dtype=bool)
        held[self.val_images] = True
        return {"train": len(self.train), "validation": len(self.val), "calibration": len(self.calibration),
                "calibration_solved": int(self.solved), "dropped": self.dropped,
                "validation_mixed": int((held[self.val.i] != held[self.val.j]).sum()),
                "selection_images": int(self.val_images.size - self.calibration_images.size),
                "calibration_images": int(self.calibration_images.size)}

    @property
    def all_images(self) -> np.ndarray:
        """The images of the cache's pairs, sorted."""
        return np.unique(np.concatenate([self.all.i, self.all.j]))

    @property
    def train_images(self) -> np.ndarray:
        """The images trained on, sorted: those of the training pairs and :attr:`target_images`."""
        return np.unique(np.concatenate([self.train.i, self.train.j, self.target_images]))


def split_images(used: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The held-out images among ``used`` (sorted image indices): ``(selection, calibration)``, sorted.

    ``h = round(val_fraction * len(used))`` images are held out: the calibration images are the last
    ``round(2h / 3)`` of ``used``; the selection images the other ``h - round(2h / 3)``, drawn at random
    (``seed``) among the rest.

    Examples
    --------
    >>> sel, cal = split_images(np.arange(100), 0.3, seed=0)
    >>> cal.tolist() == list(range(80, 100)), sel.size, bool((sel < 80).all())
    (True, 10, True)
    """
    used = np.asarray(used, dtype=np.int64)
    h = int(round(val_fraction * used.size))
    n_cal = int(round(CALIBRATION_SHARE * h))
    cal = used[used.size - n_cal:] if n_cal else used[:0]
    rng = np.random.default_rng([int(seed), 0x5eed])
    sel = rng.choice(used[:used.size - n_cal], size=h - n_cal, replace=False)
    return np.sort(sel).astype(np.int64), cal.copy()


def _solver(data, p: int):
    """``(i, j) -> exact values`` for the cache's data (histograms or point clouds)."""
    if hasattr(data, "weights") and hasattr(data, "ground_cost"):
        solver = ExactSolver.for_support(grid=data.grid, coords=data.coords, cost=data.cost, p=p)
        return lambda i, j: solver.solve_pairs(data.weights, i, j)
    cloud_solver = CloudSolver(p)
    return lambda i, j: cloud_solver.solve_pairs(data, i, j)


def calibration_pairs(table: PairTable, images: np.ndarray, target: int, data, p: int,
                      seed: int) -> tuple[PairTable, int]:
    """Pairs of two calibration ``images``: the cache's (``table``), then random new pairs among them solved
    exactly until there are ``target`` (at most every pair of the images); sorted by ``(i, j)``.

    Returns ``(pairs, solved)``, ``solved`` the number of new pairs.

    Examples
    --------
    >>> from wassembed.data import HistogramSet
    >>> hs = HistogramSet.from_images(np.eye(4).reshape(4, 2, 2))
    >>> t = PairTable(np.array([0, 2]), np.array([1, 3]), np.array([1.0, 1.0]))
    >>> cal, solved = calibration_pairs(t, np.array([1, 2, 3]), 10, hs, 2, seed=0)
    >>> list(zip(cal.i.tolist(), cal.j.tolist())), solved, cal.value.tolist()
    ([(1, 2), (1, 3), (2, 3)], 2, [2.0, 1.0, 1.0])
    """
    n = int(max(images.max(initial=-1), table.i.max(initial=-1), table.j.max(initial=-1))) + 1
    mine = np.zeros(n, dtype=bool)
    mine[images] = True
    have = _take(table, mine[table.i] & mine[table.j])
    c = images.size
    want = min(int(target), c * (c - 1) // 2) - len(have)
    if want <= 0:
        return have, 0
    rng = np.random.default_rng([int(seed), 0xCA1B])
    a, b = _new_pairs(c, np.searchsorted(images, have.i), np.searchsorted(images, have.j), want, rng)
    i, j = images[a], images[b]
    new = PairTable(i, j, np.asarray(_solver(data, p)(i, j), dtype=np.float64))
    return PairTable.merge([have, new]), len(new)


def _new_pairs(c: int, hi: np.ndarray, hj: np.ndarray, want: int, rng: np.random.Generator):
    """``want`` distinct random pairs ``a < b`` of ``range(c)`` outside the pairs ``(hi, hj)`` (``a < b``)."""
    total = c * (c - 1) // 2
    taken = set((hi * c + hj).tolist())
    if total <= 4 * (want + len(taken)) or total <= 200_000:  # few enough to list
        a, b = np.triu_indices(c, 1)
        free = np.flatnonzero(~np.isin(a * c + b, list(taken)))
        pick = np.sort(rng.choice(free, size=min(want, free.size), replace=False))
        return a[pick], b[pick]
    keys: list[int] = []
    while len(keys) < want:  # rejection: most draws are new when the pairs are a small part of all
        x, y = rng.integers(0, c, (2, 2 * (want - len(keys))))
        for k in (np.minimum(x, y) * c + np.maximum(x, y))[x != y].tolist():
            if k not in taken and len(keys) < want:
                taken.add(k)
                keys.append(k)
    keys = np.sort(np.asarray(keys, dtype=np.int64))
    return keys // c, keys % c


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
                f"precompute pairs over more images ({param('images')} of {param('precompute')}, or a larger "
                "dataset)")
    else:
        more = (f"precompute more pairs ({param('pairs', min(most, 10000))} in {param('precompute')}: its {u} "
                f"images allow up to n(n-1)/2 = {most})")
    return InputError(explain(f"cache {cache.path} is too small to train on",
                              expected="at least 10 training and 5 validation pairs after the split by image",
                              received=f"{len(table)} pairs: {n_tr} train, {n_va} validation "
                                       f"({param('val_fraction', f'{val_fraction:g}')})",
                              fix=f"{more}; or change {param('val_fraction')}"))


def split_pairs(cache, settings: TrainSettings, seed: int) -> TrainingPairs:
    """Read, merge and split the pairs of ``cache`` for a run with ``settings`` and ``seed``.

    The calibration pairs the cache lacks are solved exactly here (:func:`calibration_pairs`), single-threaded.

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
                                 fix=f"precompute exact distances into it first (e.g. {param('pairs', 20000)} in "
                                     f"{param('precompute')})"))
    used = np.unique(np.concatenate([table.i, table.j]))
    sel_images, cal_images = split_images(used, settings.val_fraction, seed)
    sel, cal = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    sel[sel_images], cal[cal_images] = True, True
    touch_cal = cal[table.i] | cal[table.j]
    va_mask = (sel[table.i] | sel[table.j]) & ~touch_cal
    tr_mask = ~(sel[table.i] | sel[table.j]) & ~touch_cal
    n_tr, n_va = int(tr_mask.sum()), int(va_mask.sum())
    if n_tr < 10 or n_va < 5:
        raise _too_small(cache, table, n_tr, n_va, settings.val_fraction)
    calibration, solved = calibration_pairs(table, cal_images, settings.calibration_pairs, cache.data,
                                            int(cache.p), seed)
    train = _take(table, tr_mask)
    if settings.batching == "groups":
        units = plan_units(_shard_units(shards, train, n), train.i, train.j)
    else:
        units = list(np.arange(len(train), dtype=np.int64)[:, None])
    digest = hashlib.sha256(table.i.tobytes() + table.j.tobytes() + table.value.tobytes()).hexdigest()
    scale = float(train.value.mean()) if settings.target_scale == "mean" else float(settings.target_scale)
    return TrainingPairs(table, train, _take(table, va_mask), calibration, np.union1d(sel_images, cal_images),
                         cal_images, units, scale, digest, solved)
