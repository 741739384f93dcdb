"""Splits by image, batches that share images, and exact-symmetry augmentation."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["augment_images", "bounding_boxes", "pack_batches", "plan_units", "split_by_image"]


def split_by_image(i, j, n: int, val_fraction: float, seed: int):
    """Hold out a seeded fraction of the images used by pairs ``(i, j)``; every pair goes to one side.

    Returns ``(train_mask, held_mask, held_images)``: ``train_mask`` marks pairs with no held-out image (the
    only pairs trained on), ``held_mask`` every other pair: pairs with at least one held-out image, whether
    the other is held out too or a training image (a "mixed" pair). No pair is dropped, and no held-out
    image appears in a training pair, so a held-out pair always involves an image the networks never saw.

    Examples
    --------
    >>> tr, held, imgs = split_by_image(np.array([0, 0, 2]), np.array([1, 2, 3]), 4, 0.5, seed=0)
    >>> bool((tr & held).any()), bool((tr | held).all())
    (False, True)
    """
    used = np.unique(np.concatenate([i, j]))
    rng = np.random.default_rng([int(seed), 0x5eed])
    n_val = int(round(val_fraction * used.size))
    held = np.zeros(n, dtype=bool)
    held[rng.choice(used, size=n_val, replace=False)] = True
    touched = held[i] | held[j]
    return ~touched, touched, np.flatnonzero(held)


def plan_units(shards: list[np.ndarray], i: np.ndarray, j: np.ndarray) -> list[np.ndarray]:
    """Group training pairs into units of pairs that share images.

    Parameters
    ----------
    shards : list of int arrays
        Indices into ``i, j`` of the pairs of each cache shard.
    i, j : ndarray, shape (m,)
        Image indices of the training pairs.

    Returns
    -------
    list of int64 arrays (pair indices), one per unit: the connected components of each shard's pair
    graph; a component of at least 3 images whose images lie (90 %) inside a larger component of another
    shard joins it (pieces of one "blocks" group cut by shard boundaries).
    """
    from scipy.sparse import coo_matrix, csr_matrix
    from scipy.sparse.csgraph import connected_components

    units: list[np.ndarray] = []
    for sh in shards:
        if sh.size == 0:
            continue
        nodes, inv = np.unique(np.concatenate([i[sh], j[sh]]), return_inverse=True)
        m = sh.size
        g = coo_matrix((np.ones(m), (inv[:m], inv[m:])), shape=(nodes.size, nodes.size))
        _, lab = connected_components(g, directed=False)
        pc = lab[inv[:m]]
        order = np.argsort(pc, kind="stable")
        cuts = np.flatnonzero(np.diff(pc[order])) + 1
        units.extend(sh[o] for o in np.split(order, cuts))
    if not units:
        return units
    sizes = np.array([np.unique(np.concatenate([i[u], j[u]])).size for u in units])
    big = np.flatnonzero(sizes >= 3)
    if big.size > 1:
        rows, cols = [], []
        for r, u in enumerate(big):
            im = np.unique(np.concatenate([i[units[u]], j[units[u]]]))
            rows.append(np.full(im.size, r))
            cols.append(im)
        rows, cols = np.concatenate(rows), np.concatenate(cols)
        a = csr_matrix((np.ones(rows.size), (rows, cols)), shape=(big.size, int(cols.max()) + 1))
        o = (a @ a.T).tocoo()
        sb = sizes[big]
        # attach each unit to the larger unit holding (nearly) all its images: one parent, no chains of
        # chance overlaps, so a merged unit stays about one group
        ok = ((sb[o.col] > sb[o.row]) | ((sb[o.col] == sb[o.row]) & (o.col < o.row))) & (o.data >= 0.9 * sb[o.row])
        r, c, d = o.row[ok], o.col[ok], o.data[ok]
        parent = np.arange(big.size)
        if r.size:
            order = np.lexsort((d, r))
            last = np.r_[r[order][1:] != r[order][:-1], True]
            parent[r[order][last]] = c[order][last]
        while True:
            nxt = parent[parent]
            if np.array_equal(nxt, parent):
                break
            parent = nxt
        merged: dict = {}
        for k2, u in enumerate(big):
            merged.setdefault(int(parent[k2]), []).append(units[u])
        small = [units[u] for u in np.flatnonzero(sizes < 3)]
        units = [np.concatenate(ms) for ms in merged.values()] + small
    return units


def pack_batches(units, i, j, batch_images: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle units and pack them into batches (arrays of pair indices) of at most ``batch_images`` images.

    A unit with more images than that is cut into shuffled chunks of ``batch_images // 2`` pairs.
    """
    pieces: list[tuple[np.ndarray, int]] = []
    for u in units:
        n_img = 2 if u.size == 1 else np.unique(np.concatenate([i[u], j[u]])).size
        if n_img <= batch_images:
            pieces.append((u, n_img))
        else:
            u = u[rng.permutation(u.size)]
            step = max(1, batch_images // 2)
            pieces.extend((u[s:s + step], 2 * min(step, u.size - s)) for s in range(0, u.size, step))
    order = rng.permutation(len(pieces))
    batches, cur, cur_n = [], [], 0
    for k in order:
        u, n_img = pieces[k]
        if cur and cur_n + n_img > batch_images:
            batches.append(np.concatenate(cur))
            cur, cur_n = [], 0
        cur.append(u)
        cur_n += n_img
    if cur:
        batches.append(np.concatenate(cur))
    return batches


def augment_images(x: torch.Tensor, grid, bbox: np.ndarray, ops, max_shift: int,
                   rng: np.random.Generator) -> torch.Tensor:
    """Apply one in-bounds translation / flip / rotation to every image of a batch.

    The same transformation moves every image, so every exact ``W_2^2`` between them is unchanged (grid
    supports with the squared Euclidean ground cost).

    Parameters
    ----------
    x : Tensor, shape (n, H * W)
        Histograms of the batch's images.
    grid : (int, int)
        ``(H, W)``.
    bbox : ndarray, shape (n, 4), int
        Bounding boxes ``(row0, row1, col0, col1)`` of the images' supports (:func:`bounding_boxes`):
        the translation keeps every image inside the grid.
    ops : sequence of str
        Among ``"shift"``, ``"flip"``, ``"rot"``.
    max_shift : int
        Largest translation in pixels.
    rng : numpy.random.Generator
        Draws the transformation (consumed in a fixed order: shift, flips, rotation).

    Returns
    -------
    Tensor, shape (n, H * W)

    Examples
    --------
    >>> x = torch.eye(4)[:1]  # one pixel at (0, 0) of a 2x2 grid
    >>> augment_images(x, (2, 2), np.array([[0, 0, 0, 0]]), ["rot"], 0, np.random.default_rng(0)).sum().item()
    1.0
    """
    H, W = grid
    x = x.reshape(-1, H, W)
    if "shift" in ops:
        r0, r1, c0, c1 = bbox[:, 0].min(), bbox[:, 1].max(), bbox[:, 2].min(), bbox[:, 3].max()
        dy = int(rng.integers(max(-r0, -max_shift), min(H - 1 - r1, max_shift) + 1))
        dx = int(rng.integers(max(-c0, -max_shift), min(W - 1 - c1, max_shift) + 1))
        if dy or dx:
            x = torch.roll(x, (dy, dx), dims=(1, 2))
    if "flip" in ops:
        if rng.random() < 0.5:
            x = x.flip(2)
        if rng.random() < 0.5:
            x = x.flip(1)
    if "rot" in ops:
        k = int(rng.integers(4)) if H == W else 2 * int(rng.integers(2))
        if k:
            x = torch.rot90(x, k, dims=(1, 2))
    return x.reshape(x.shape[0], H * W)


def bounding_boxes(weights: np.ndarray, grid) -> np.ndarray:
    """Bounding boxes of the supports of images on a grid.

    Parameters
    ----------
    weights : ndarray, shape (n, H * W)
    grid : (int, int)

    Returns
    -------
    ndarray, shape (n, 4), int64
        ``(first row, last row, first column, last column)`` holding mass.

    Examples
    --------
    >>> w = np.zeros((1, 9)); w[0, 5] = 1.0  # row 1, column 2 of a 3x3 grid
    >>> bounding_boxes(w, (3, 3)).tolist()
    [[1, 1, 2, 2]]
    """
    nz = weights.reshape(-1, *grid) > 0
    rows, cols = nz.any(2), nz.any(1)
    first = lambda a: a.argmax(1)
    last = lambda a: a.shape[1] - 1 - a[:, ::-1].argmax(1)
    return np.stack([first(rows), last(rows), first(cols), last(cols)], axis=1)
