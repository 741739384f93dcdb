"""LOT targets of elastic copies: more training images for the distillation, each with its own exact solve.

The student's unseen error falls with the number of images that have a target (docs/benchmarks.md, "What
limits the student"). Where the data has few images, ``precompute(..., lot_copies=K)`` adds ``K`` elastic
copies of each image of the plan (:func:`wassembed.data.elastic_copies`: a smooth random displacement, pixels
rounded to integers) and solves each copy's LOT problem against the cache's reference. They live next to the
other targets::

    CACHE/lot/copies-<tag>-<key>.npz   source (m,) int64, copy (m,) int64: copy number ``copy`` of image
                                       ``source``; counts (m, k): its integer pixels; embedding (m, K·d) float32;
                                       split (m,) float64; a sha256 of the five

``<tag>`` names the deformation (alpha, sigma, seed); copy ``c`` of image ``i`` depends on it, ``i`` and ``c``
only, so growing ``K`` later solves only the new copies, and the files are the same whichever executor made
them. Guarantees are those of the other LOT files (atomic writes, checksums, claims). Grid supports only.
The trainer uses the copies of its training images only (:mod:`wassembed.learn._distill`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from .._io import atomic_write

__all__ = ["COPIES_MAX", "COPIES_MIN_COVERAGE", "COPIES_MIN_SIDE", "COPIES_TARGET", "CopyTargets", "auto_copies",
           "copies_tag", "copy_files", "deformation", "read_copies", "store_copies"]

#: ``lot_copies="auto"``: once the plan's images cover at least COPIES_MIN_COVERAGE of the images it draws from,
#: enough copies per image for COPIES_TARGET images with targets, at most COPIES_MAX, on grids of at least
#: COPIES_MIN_SIDE pixels a side. Measured on MNIST (6,000 training images, unseen pairs; docs/benchmarks.md,
#: "Elastic copies, more images with targets" and "What limits the student"): at 12,000 pairs (98 % of the
#: images in the plan) no copies MSE 0.271 in 181 s of precompute + training, 3 copies 0.202 in 387 s, which no
#: recipe without copies reached in that time; at 3,000 and 6,000 pairs (64 % and 87 % of the images) copies
#: cost 2-3x the time and more pairs did better in it (no copies at 6,000 pairs: 0.287 in 126 s; 3 copies at
#: 3,000: 0.336 in 188 s). A new image with a target is worth more than a copy: copies come once the plan has
#: (nearly) all the images. Copies of 8×8 images are not made: a smooth field at a fraction of the side moves
#: whole strokes by a pixel, and the demo's digits train fast enough on their pairs.
COPIES_TARGET = 24_000
COPIES_MAX = 3
COPIES_MIN_SIDE = 16
COPIES_MIN_COVERAGE = 0.9
#: the deformation measured on 28×28 images (pixels); other grids scale it with their side
_ALPHA_28, _SIGMA_28 = 6.0, 4.0


@dataclass(frozen=True)
class CopyTargets:
    """LOT targets of elastic copies of a cache's images.

    Attributes
    ----------
    source, copy : ndarray, shape (m,), int64
        Copy number ``copy[t]`` of image ``source[t]`` (sorted by source, then copy).
    weights : ndarray, shape (m, k), float64
        The copies as histograms.
    embedding : ndarray, shape (m, K * d), float32
    split : ndarray, shape (m,), float64
    """

    source: np.ndarray
    copy: np.ndarray
    weights: np.ndarray
    embedding: np.ndarray
    split: np.ndarray

    def __len__(self) -> int:
        return int(self.source.size)


def auto_copies(data, n_images: int, available: int | None = None) -> int:
    """The number of copies ``lot_copies="auto"`` makes of each of ``n_images`` images of ``data`` (see
    :data:`COPIES_TARGET`): 0 without a grid of at least :data:`COPIES_MIN_SIDE` pixels a side, without
    integer images, or while those images are fewer than :data:`COPIES_MIN_COVERAGE` of the ``available``
    images the plan draws from (default: all of ``data``): more pairs would bring new images, worth more.

    Examples
    --------
    >>> from wassembed.data import HistogramSet
    >>> import numpy as np
    >>> mnist_like = HistogramSet.from_images(np.ones((10, 28, 28), dtype=np.uint8))
    >>> auto_copies(mnist_like, 5906, available=6000), auto_copies(mnist_like, 5196, available=6000)
    (3, 0)
    """
    from ._rational import rational_scales

    grid = getattr(data, "grid", None)
    if grid is None or min(grid) < COPIES_MIN_SIDE or n_images <= 0:
        return 0
    available = data.n if available is None else int(available)
    if n_images < COPIES_MIN_COVERAGE * available:
        return 0
    sample = data.weights[:: max(1, data.n // 200)]
    if (rational_scales(sample) == 0).any():
        return 0
    return int(min(COPIES_MAX, max(0, -(-COPIES_TARGET // int(n_images)) - 1)))


def deformation(grid, alpha: float | None = None, sigma: float | None = None) -> tuple[float, float]:
    """``(alpha, sigma)`` in pixels: as given, or the values measured on 28×28 images scaled to ``grid``'s side."""
    side = min(grid) / 28.0
    return (float(alpha) if alpha is not None else _ALPHA_28 * side,
            float(sigma) if sigma is not None else _SIGMA_28 * side)


def copies_tag(alpha: float, sigma: float, seed: int) -> str:
    """A short name of the deformation (the part of a file name that keeps other recipes apart)."""
    return hashlib.sha256(f"elastic;alpha={float(alpha)!r};sigma={float(sigma)!r};seed={int(seed)}".encode()
                          ).hexdigest()[:12]


def copy_files(lot_dir, tag: str | None = None) -> list:
    """The copy files under ``lot_dir`` (of one recipe when ``tag`` is given), sorted."""
    pattern = f"copies-{tag}-*.npz" if tag else "copies-*.npz"
    return sorted(lot_dir.glob(pattern)) if lot_dir.exists() else []


def _small_uint(counts: np.ndarray) -> np.ndarray:
    top = int(counts.max()) if counts.size else 0
    for dt in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dt).max:
            return counts.astype(dt)
    return counts.astype(np.int64)


def store_copies(cache, lot_dir, tag: str, task, result, digest) -> int:
    """Write one chunk of copies atomically under its claim; ``task`` = (source, copy), ``result`` =
    (embedding, split, counts). Returns the copies written (0 when another process wrote them)."""
    source, copy = (np.asarray(x, np.int64) for x in task)
    emb, split, counts = result
    key = f"copies-{tag}-" + hashlib.sha256(np.stack([source, copy]).tobytes()).hexdigest()[:24]
    f = lot_dir / f"{key}.npz"
    with cache.claim(key, block=True):
        if f.exists():
            return 0
        for tmp in lot_dir.glob(f".tmp-{key}-*"):  # left by a killed writer of this chunk (the claim is ours)
            tmp.unlink(missing_ok=True)
        arrays = {"source": source, "copy": copy, "counts": _small_uint(np.asarray(counts)),
                  "embedding": np.asarray(emb, np.float32), "split": np.asarray(split, np.float64)}
        arrays["sha256"] = np.array(digest(*arrays.values()))
        atomic_write(f, lambda fh: np.savez(fh, **arrays), prefix=f".tmp-{key}-")
    return int(source.size)


def read_copies(files: list, read_npz) -> CopyTargets | None:
    """The copies in ``files`` (each verified by ``read_npz``), one row per (source, copy), or None."""
    if not files:
        return None
    parts = [read_npz(f, ("source", "copy", "counts", "embedding", "split")) for f in files]
    source = np.concatenate([p["source"] for p in parts])
    copy = np.concatenate([p["copy"] for p in parts])
    _, first = np.unique(np.stack([source, copy], axis=1), axis=0, return_index=True)
    counts = np.concatenate([p["counts"] for p in parts])[first].astype(np.float64)
    return CopyTargets(source=source[first], copy=copy[first], weights=counts / counts.sum(1, keepdims=True),
                       embedding=np.concatenate([p["embedding"] for p in parts])[first],
                       split=np.concatenate([p["split"] for p in parts])[first])
