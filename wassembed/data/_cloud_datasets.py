"""Point-cloud data sets: images as clouds of pixels, and synthetic 3-D shapes.

- :func:`mnist_clouds`: each image becomes the cloud :math:`\\sum_{(r, c)} I_{rc} \\, \\delta_{(r, c) + \\epsilon_{rc}}`
  over its nonzero pixels, with a seeded uniform jitter :math:`\\epsilon_{rc} \\in [-0.5, 0.5)^2` (so no two
  points coincide and the clouds are not on one grid), normalised to total weight 1.
- :func:`make_shapes`: noisy samples of spheres, tori, ellipsoids and helices, randomly rotated and scaled,
  with 50 to 500 points each and uniform weights; the label is the shape's index in :data:`SHAPE_NAMES`.

Both take an explicit ``seed`` and use their own :class:`numpy.random.Generator` (no global state).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._validation import check_int, check_pos_int
from ..errors import InputError, explain
from ._clouds import PointCloudSet
from ._support import as_weights

__all__ = ["SHAPE_NAMES", "make_shapes", "mnist_clouds"]

#: the classes of :func:`make_shapes`, in label order
SHAPE_NAMES = ("sphere", "torus", "ellipsoid", "helix")

#: standard deviation of the Gaussian noise added to every shape (before its random scale)
SHAPE_NOISE = 0.03


def mnist_clouds(images: ArrayLike, *, seed: int = 0, labels: ArrayLike | None = None) -> PointCloudSet:
    """Turn images into point clouds: one point per nonzero pixel, weighted by its intensity.

    Pixel ``(r, c)`` of image ``i`` with intensity :math:`I_{rc} > 0` becomes the point
    :math:`(r, c) + \\epsilon` with :math:`\\epsilon` uniform in :math:`[-0.5, 0.5)^2`, of weight
    :math:`I_{rc} / \\sum I`.

    Parameters
    ----------
    images : array-like, shape (n, H, W)
        Nonnegative finite images (uint8 or float); each needs a nonzero pixel.
    seed : int
        Seed of the jitter.
    labels : array-like, shape (n,), optional
        Class labels, carried along.

    Returns
    -------
    PointCloudSet
        ``n`` clouds in ``d = 2`` (row, column), cloud ``i`` with as many points as image ``i`` has nonzero
        pixels.

    Examples
    --------
    >>> cs = mnist_clouds(np.array([[[0, 3], [1, 0]]], dtype=np.uint8))
    >>> cs.sizes.tolist(), cs.weights.tolist()
    ([2], [0.75, 0.25])
    """
    arr = np.asarray(images)
    if arr.ndim != 3:
        raise InputError(explain("images have the wrong rank", expected="images (n, H, W)",
                                 received=f"shape {arr.shape}", fix="for one image use X[None]"))
    w, _ = as_weights(arr, what="images")  # validates: numeric, finite, nonnegative, no empty image
    img, rows, cols = np.nonzero(w.reshape(arr.shape))
    rng = np.random.default_rng(seed)
    points = np.stack([rows, cols], axis=1).astype(np.float64) + rng.uniform(-0.5, 0.5, size=(img.size, 2))
    offsets = np.concatenate([[0], np.cumsum(np.bincount(img, minlength=arr.shape[0]))]).astype(np.int64)
    return PointCloudSet(points, w.reshape(arr.shape)[img, rows, cols], offsets, labels=labels)


def _random_rotation(rng: np.random.Generator, d: int) -> np.ndarray:
    """A Haar-random rotation of :math:`\\mathbb{R}^d` (determinant +1), as a ``(d, d)`` matrix."""
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _unit_sphere(rng: np.random.Generator, k: int) -> np.ndarray:
    x = rng.normal(size=(k, 3))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _shape(rng: np.random.Generator, label: int, k: int) -> np.ndarray:
    """``k`` noiseless points of shape ``SHAPE_NAMES[label]``, centred, of size about 1, shape ``(k, 3)``."""
    if label == 0:  # sphere of radius 1
        return _unit_sphere(rng, k)
    if label == 1:  # torus: major radius 1, minor radius 0.3 to 0.45
        u, v = rng.uniform(0, 2 * np.pi, size=(2, k))
        r = rng.uniform(0.3, 0.45)
        return np.stack([(1 + r * np.cos(v)) * np.cos(u), (1 + r * np.cos(v)) * np.sin(u), r * np.sin(v)], axis=1)
    if label == 2:  # ellipsoid with semi-axes 1 > b > c
        axes = np.array([1.0, rng.uniform(0.45, 0.7), rng.uniform(0.15, 0.35)])
        return _unit_sphere(rng, k) * axes
    turns = rng.uniform(2.0, 4.0)  # helix of radius 1 and height 2
    t = rng.uniform(0, 1, size=k)
    angle = 2 * np.pi * turns * t
    return np.stack([np.cos(angle), np.sin(angle), 2 * t - 1], axis=1)


def make_shapes(n: int, *, d: int = 3, seed: int = 0, min_points: int = 50, max_points: int = 500) -> PointCloudSet:
    """Synthetic labelled clouds: noisy spheres, tori, ellipsoids and helices.

    Cloud ``i`` has :math:`k_i` points drawn uniformly from ``[min_points, max_points]``, sampled from a shape
    of class ``labels[i]`` (balanced over :data:`SHAPE_NAMES`, in random order), plus Gaussian noise of
    standard deviation :data:`SHAPE_NOISE`, then scaled by a factor in :math:`[0.5, 2]` and rotated by a
    random rotation; weights are uniform, :math:`1 / k_i`.

    Parameters
    ----------
    n : int
        Number of clouds.
    d : int, default 3
        Dimension; the 3-D shapes are placed in the first three coordinates before the rotation (``d >= 3``).
    seed : int
        Seed of everything random.
    min_points, max_points : int
        Range of the cloud sizes (both included).

    Returns
    -------
    PointCloudSet
        ``n`` clouds in dimension ``d`` with integer ``labels`` (n,).

    Examples
    --------
    >>> cs = make_shapes(8, seed=1)
    >>> len(cs), cs.d, sorted(set(cs.labels.tolist()))
    (8, 3, [0, 1, 2, 3])
    """
    n = check_pos_int("n", n)
    d = check_int("d", d, minimum=3, fix="pass d=3 (the shapes are 3-D; a larger d embeds them)")
    min_points = check_pos_int("min_points", min_points)
    max_points = check_int("max_points", max_points, minimum=min_points,
                           fix=f"pass max_points >= min_points ({min_points})")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(SHAPE_NAMES)).astype(np.int64)
    sizes = rng.integers(min_points, max_points, size=n, endpoint=True)
    clouds = []
    for label, k in zip(labels.tolist(), sizes.tolist()):
        x = np.zeros((k, d))
        x[:, :3] = _shape(rng, label, k) + rng.normal(scale=SHAPE_NOISE, size=(k, 3))
        clouds.append(rng.uniform(0.5, 2.0) * x @ _random_rotation(rng, d).T)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return PointCloudSet(np.concatenate(clouds), None, offsets, labels=labels)
