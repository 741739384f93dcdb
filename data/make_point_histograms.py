"""Generate ``point-histograms.npz``: 600 histograms on 48 scattered points of the plane (a non-grid support).

Run from the repository root (needs numpy only; the output is byte-for-byte reproducible)::

    python data/make_point_histograms.py            # writes data/point-histograms.npz

What it holds
-------------
- ``coords`` (48, 2) float64: the support, 48 points of the unit square drawn by a jittered 8 × 6 layout
  (one point uniformly inside each cell of an 8 × 6 grid over [0, 1]², then rounded to 3 decimals), so that
  the points are irregular but cover the square;
- ``histograms`` (600, 48) uint8: counts. Each histogram is 200 points sampled from one random shape and
  binned to their nearest support point; the loader divides each row by its sum;
- ``labels`` (600,) int64: the kind of shape, 150 of each, in random order:
  0 = one Gaussian blob, 1 = two blobs, 2 = a circular arc, 3 = a line segment (each with a random position,
  size and orientation, clipped to the square).

The kinds differ in how their mass is spread, so exact W2² separates them and the distances are neither all
alike nor trivially large: a learned embedding has something to learn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

N_PER_KIND = 150
SAMPLES = 200
SEED = 20261129
OUT = Path(__file__).with_name("point-histograms.npz")


def support(rng: np.random.Generator) -> np.ndarray:
    """48 jittered points of the unit square (one per cell of an 8 × 6 grid)."""
    cols, rows = 8, 6
    cx, cy = np.meshgrid(np.arange(cols), np.arange(rows), indexing="xy")
    u = rng.random((rows * cols, 2))
    pts = np.stack([(cx.ravel() + u[:, 0]) / cols, (cy.ravel() + u[:, 1]) / rows], axis=1)
    return np.round(pts, 3)


def shape_samples(kind: int, rng: np.random.Generator) -> np.ndarray:
    """``SAMPLES`` points of one random shape of the given kind."""
    c = rng.uniform(0.25, 0.75, size=2)
    if kind == 0:  # one blob
        return c + rng.normal(scale=rng.uniform(0.05, 0.15), size=(SAMPLES, 2))
    if kind == 1:  # two blobs
        d = rng.normal(size=2)
        d *= rng.uniform(0.2, 0.35) / np.linalg.norm(d)
        which = rng.random(SAMPLES) < rng.uniform(0.3, 0.7)
        return np.where(which[:, None], c + d, c - d) + rng.normal(scale=0.05, size=(SAMPLES, 2))
    if kind == 2:  # an arc
        r, a0 = rng.uniform(0.15, 0.35), rng.uniform(0, 2 * np.pi)
        t = a0 + rng.uniform(0, rng.uniform(np.pi / 2, 3 * np.pi / 2), size=SAMPLES)
        return c + r * np.stack([np.cos(t), np.sin(t)], axis=1) + rng.normal(scale=0.02, size=(SAMPLES, 2))
    # a segment
    a = rng.uniform(0, np.pi)
    t = rng.uniform(-1, 1, size=SAMPLES)[:, None] * rng.uniform(0.15, 0.4)
    return c + t * np.array([np.cos(a), np.sin(a)]) + rng.normal(scale=0.02, size=(SAMPLES, 2))


def histogram(points: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Counts of ``points`` binned to their nearest support point."""
    pts = np.clip(points, 0.0, 1.0)
    nearest = np.argmin(((pts[:, None, :] - coords[None]) ** 2).sum(-1), axis=1)
    return np.bincount(nearest, minlength=len(coords)).astype(np.uint8)


def make(seed: int = SEED) -> dict[str, np.ndarray]:
    """The arrays of the file (see the module docstring)."""
    rng = np.random.default_rng(seed)
    coords = support(rng)
    labels = rng.permutation(np.repeat(np.arange(4), N_PER_KIND)).astype(np.int64)
    hist = np.stack([histogram(shape_samples(int(k), rng), coords) for k in labels])
    return {"histograms": hist, "coords": coords, "labels": labels}


if __name__ == "__main__":
    arrays = make()
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT}: {arrays['histograms'].shape[0]} histograms on {arrays['coords'].shape[0]} points, "
          f"{OUT.stat().st_size / 1024:.0f} kB")
