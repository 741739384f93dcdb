"""An epoch's batches as a few flat tensors on the training device, built and copied once per epoch.

:func:`~._batching.pack_batches` gives an epoch's batches as arrays of pair indices. Each step needs the
batch's distinct images (each embedded once), every pair as two rows of those images and the pairs' targets.
:func:`epoch_batches` computes them for every batch of the epoch at once on the host (one ``np.unique`` over
``(batch, image)`` keys gives exactly what a ``np.unique`` per batch gives) and moves them to the device in
one copy; a step then only slices them (:meth:`EpochBatches.batch`): no host work, no transfer, no sync.

Layout, for ``B`` batches holding ``N`` distinct images and ``M`` pairs in all:

* ``images (N,) int64``: each batch's distinct images, sorted, batch after batch;
* ``li, lj (M,) int64``: the pair's two images as rows of its batch's images;
* ``y (M,) float32``: the exact values;
* ``image_offsets, pair_offsets (B + 1,)`` on the host: batch ``b`` owns ``images[image_offsets[b]:
  image_offsets[b + 1]]`` and the pairs ``pair_offsets[b]:pair_offsets[b + 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["EpochBatches", "batch_layout", "epoch_batches", "to_device"]


def batch_layout(batches: list[np.ndarray], i: np.ndarray, j: np.ndarray) -> dict[str, np.ndarray]:
    """The flat layout (module docstring) of ``batches`` of pairs ``(i, j)``, on the host.

    Parameters
    ----------
    batches : list of int arrays
        Pair indices into ``i, j`` of each batch (none empty).
    i, j : ndarray, shape (m,), int
        Image indices of the pairs.

    Returns
    -------
    dict
        ``images``, ``li``, ``lj``, ``pairs`` (the pair indices, batch after batch), ``image_offsets``,
        ``pair_offsets``, all int64.

    Examples
    --------
    >>> lay = batch_layout([np.array([0, 1]), np.array([2])], np.array([5, 3, 5]), np.array([7, 5, 6]))
    >>> lay["images"].tolist(), lay["image_offsets"].tolist()
    ([3, 5, 7, 5, 6], [0, 3, 5])
    >>> lay["li"].tolist(), lay["lj"].tolist()
    ([1, 0, 0], [2, 1, 1])
    """
    sizes = np.array([b.size for b in batches], dtype=np.int64)
    pairs = np.concatenate(batches).astype(np.int64) if batches else np.zeros(0, np.int64)
    bid = np.repeat(np.arange(sizes.size, dtype=np.int64), sizes)
    n = int(max(i.max(initial=-1), j.max(initial=-1))) + 1
    m = pairs.size
    # sorted (batch, image) keys: batch b's slice is np.unique of its images, and the inverse minus the
    # batch's first position is np.unique's inverse within the batch
    keys, inv = np.unique(np.concatenate([bid * n + i[pairs], bid * n + j[pairs]]), return_inverse=True)
    inv = inv.reshape(-1)
    image_offsets = np.zeros(sizes.size + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys // max(n, 1), minlength=sizes.size), out=image_offsets[1:])
    first = image_offsets[bid]
    return {"images": keys % max(n, 1), "li": inv[:m] - first, "lj": inv[m:] - first, "pairs": pairs,
            "image_offsets": image_offsets, "pair_offsets": np.concatenate([[0], np.cumsum(sizes)])}


def to_device(arrays: list[np.ndarray], device: torch.device) -> list[torch.Tensor]:
    """Copy numpy arrays to ``device`` in one transfer.

    The arrays are packed, each aligned to 8 bytes, into one byte buffer (pinned on CUDA, copied without
    blocking the host), and the device copy is viewed back as one tensor per array (same dtype and shape).

    Examples
    --------
    >>> a, b = to_device([np.arange(3), np.array([0.5], np.float32)], torch.device("cpu"))
    >>> a.tolist(), b.dtype
    ([0, 1, 2], torch.float32)
    """
    starts, total = [], 0
    for a in arrays:
        total += -total % 8
        starts.append(total)
        total += a.nbytes
    buf = torch.empty(total, dtype=torch.uint8, pin_memory=device.type == "cuda")
    host = buf.numpy()
    for a, s in zip(arrays, starts):
        host[s:s + a.nbytes] = np.ascontiguousarray(a).reshape(-1).view(np.uint8)
    on_dev = buf.to(device, non_blocking=True)
    return [on_dev[s:s + a.nbytes].view(torch.from_numpy(a[:0]).dtype).reshape(a.shape)
            for a, s in zip(arrays, starts)]


@dataclass(frozen=True)
class EpochBatches:
    """Every batch of an epoch on the device (module docstring); a step slices them.

    Attributes
    ----------
    images, li, lj : Tensor, int64, on the device
    y : Tensor, float32, on the device
    image_offsets, pair_offsets : ndarray, shape (B + 1,), int64
    host_images : ndarray or None
        Host copy of ``images`` (augmentation reads the images' bounding boxes), None when not needed.
    """

    images: torch.Tensor
    li: torch.Tensor
    lj: torch.Tensor
    y: torch.Tensor
    image_offsets: np.ndarray
    pair_offsets: np.ndarray
    host_images: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.pair_offsets.size - 1)

    @property
    def sizes(self) -> np.ndarray:
        """Pairs of each batch, shape (B,)."""
        return np.diff(self.pair_offsets)

    def batch(self, b: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(images, li, lj, y)`` of batch ``b``: views of the device tensors."""
        i0, i1 = int(self.image_offsets[b]), int(self.image_offsets[b + 1])
        p0, p1 = int(self.pair_offsets[b]), int(self.pair_offsets[b + 1])
        return self.images[i0:i1], self.li[p0:p1], self.lj[p0:p1], self.y[p0:p1]

    def batch_images(self, b: int) -> np.ndarray:
        """Host copy of batch ``b``'s images (needs ``host_images``)."""
        return self.host_images[self.image_offsets[b]:self.image_offsets[b + 1]]


def epoch_batches(batches: list[np.ndarray], train, device: torch.device, *, keep_host: bool) -> EpochBatches:
    """The batches of pair indices ``batches`` into ``train`` (a PairTable) as :class:`EpochBatches` on ``device``.

    Parameters
    ----------
    batches : list of int arrays
        From :func:`~._batching.pack_batches`.
    train : PairTable
        The training pairs (image indices, exact values).
    device : torch.device
    keep_host : bool
        Keep a host copy of the images (for augmentation).

    Examples
    --------
    >>> from wassembed.exact import PairTable
    >>> t = PairTable(np.array([0, 0, 1]), np.array([1, 2, 2]), np.array([1.0, 2.0, 3.0]))
    >>> eb = epoch_batches([np.array([2]), np.array([0, 1])], t, torch.device("cpu"), keep_host=False)
    >>> len(eb), eb.batch(1)[0].tolist(), eb.batch(1)[3].tolist()
    (2, [0, 1, 2], [1.0, 2.0])
    """
    lay = batch_layout(batches, train.i, train.j)
    y = train.value[lay["pairs"]].astype(np.float32)
    images, li, lj, yd = to_device([lay["images"], lay["li"], lay["lj"], y], device)
    return EpochBatches(images, li, lj, yd, lay["image_offsets"], lay["pair_offsets"],
                        lay["images"] if keep_host else None)
