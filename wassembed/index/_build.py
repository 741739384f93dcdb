"""Building a reference index: references stored in compact form and embedded once, block by block, locally
or on Dask workers.

Blocks of ``references_per_block`` references are read from the source (any array-like with ``shape``,
``dtype`` and slicing: a numpy array, a memory map, an HDF5 or Zarr dataset, or an object generating blocks on
demand), converted to their stored form (:func:`stored_form`), appended to ``references.npy`` and embedded; the
embeddings are appended to ``embeddings.npy`` in order. Memory is a few blocks, whatever the number of
references.

With a Dask client, each block of stored references is sent to a worker, which embeds it with the model
read from the index directory (a shared file system) once per worker process (:func:`worker_model`); at most
two blocks per worker thread are in flight, and results are written in order.
"""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np

from .._io import file_sha256
from ..errors import ClusterError, InputError, ModelFileError, WassembedError, explain

__all__ = ["embed_blocks", "embed_chunk", "source_layout", "stored_blocks", "stored_form", "worker_model"]

#: Dask worker-side cache ``(model directory, sha256 of its model.json) -> WassersteinEmbedding``: module
#: level on purpose, so that each worker process reads the model file once rather than once per chunk (the
#: one piece of global state of the package; keyed by digest, a rewritten model is never served stale)
_WORKER_MODELS: dict = {}


def source_layout(model, R) -> tuple[tuple, np.dtype]:
    """Row shape and stored dtype of the references ``R`` (images ``(n, H, W)`` or histograms ``(n, k)``).

    ``R`` must hold a stack on the model's support: images of the model's grid, or rows of its ``k`` bins.
    uint8 is stored as uint8; every other dtype as float32 histograms.
    """
    shape = tuple(getattr(R, "shape", ()))
    k, grid = model.k, model.grid
    ok = (len(shape) == 2 and (k is None or shape[1] == k)) or (len(shape) == 3 and grid is not None
                                                                and shape[1:] == tuple(grid))
    if not ok or shape[0] < 1 or not hasattr(R, "__getitem__"):
        forms = f"images (n, {grid[0]}, {grid[1]}) or histograms (n, {k})" if grid else f"histograms (n, {k})"
        raise InputError(explain("the references have the wrong shape", expected=f"a stack of n >= 1 {forms} "
                                 "(an array, a memory map, or any array-like with shape, dtype and slicing)",
                                 received=f"{type(R).__name__} of shape {shape or 'unknown'}",
                                 fix="stack the references along axis 0 on the model's support"))
    dtype = np.dtype(getattr(R, "dtype", np.float64))
    return shape[1:], np.dtype(np.uint8) if dtype == np.uint8 else np.dtype(np.float32)


def stored_form(model, block: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A block of references as stored: uint8 unchanged; other dtypes as float32 histograms summing to 1 (in
    float64 first, :meth:`~wassembed.serve.WassersteinEmbedding.histograms`), in the block's own shape."""
    block = np.asarray(block)
    if dtype == np.uint8:
        return np.ascontiguousarray(block)
    return model.histograms(block, "references").astype(np.float32).reshape(block.shape)


def stored_blocks(model, R, references_per_block: int, dtype: np.dtype):
    """Yield the stored form of ``R[a:a + b]`` for ``a = 0, b, 2 b, …`` (``b = references_per_block``)."""
    for a in range(0, R.shape[0], references_per_block):
        yield stored_form(model, R[a:a + references_per_block], dtype)


def worker_model(model_dir: str, digest: str):
    """The model of ``model_dir`` (its ``model.json`` of sha256 ``digest``), read once per process."""
    key = (str(model_dir), digest)
    model = _WORKER_MODELS.get(key)
    if model is None:
        from ..serve import load

        got = file_sha256(Path(model_dir) / "model.json")
        if got != digest:
            raise ModelFileError(explain(f"the model file {model_dir} seen by a worker is not the index's",
                                         expected=f"model.json of sha256 {digest[:16]}…", received=f"{got[:16]}…",
                                         fix="put the index directory on a file system every worker shares"))
        model = _WORKER_MODELS[key] = load(model_dir, device="cpu")
    return model


def embed_chunk(model_dir: str, digest: str, chunk: np.ndarray, batch_size: int | None) -> np.ndarray:
    """Embeddings ``(b, d)`` float32 of the stored references ``chunk`` (a Dask task)."""
    return worker_model(model_dir, digest).embed(chunk, batch_size=batch_size, device="cpu")


def _dask_results(client, blocks, model_dir: str, digest: str, batch_size):
    """Embeddings of ``blocks`` computed on ``client``'s workers, yielded in order."""
    try:
        window = 2 * max(1, sum(client.nthreads().values()))
    except Exception as exc:  # any failure to reach the scheduler
        raise ClusterError(explain("cannot use the Dask client", expected="a connected distributed.Client",
                                   received=f"{type(exc).__name__}: {str(exc)[:200]}",
                                   fix="pass Client(address) of a running scheduler")) from None
    pending = collections.deque()
    for blk in blocks:
        pending.append(client.submit(embed_chunk, model_dir, digest, blk, batch_size, pure=False))
        if len(pending) >= window:
            yield _result(pending.popleft())
    while pending:
        yield _result(pending.popleft())


def _result(future) -> np.ndarray:
    try:
        return future.result()
    except WassembedError:
        raise
    except Exception as exc:  # a worker lost, a connection closed: the cluster's failures
        raise ClusterError(explain("a Dask worker failed to embed a block of references",
                                   received=f"{type(exc).__name__}: {str(exc)[:200]}",
                                   fix="check the workers' logs and that each has wassembed[learn] installed, "
                                       "then build again")) from None


def embed_blocks(model, blocks, *, client, model_dir: Path, digest: str, batch_size, device):
    """Yield ``(stored block, embeddings (b, d) float32)`` in order, embedded locally or on ``client``."""
    if client is None:
        for blk in blocks:
            yield blk, np.asarray(model.embed(blk, batch_size=batch_size, device=device), dtype=np.float32)
        return
    sent = collections.deque()

    def remember():
        for blk in blocks:
            sent.append(blk)
            yield blk

    for Z in _dask_results(client, remember(), str(Path(model_dir).resolve()), digest, batch_size):
        yield sent.popleft(), np.asarray(Z, dtype=np.float32)
