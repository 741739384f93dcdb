"""Reference indexes: a reference set embedded once, stored on disk, queried many times.

:func:`build_index` embeds the references block by block (locally or on Dask workers) and writes them, their
embeddings, the model and a manifest to a directory (layout: :mod:`._files`); :func:`open_index`
reopens it, memory-mapped, with its model. :meth:`ReferenceIndex.kneighbors` answers like the model's
``kneighbors(Q, R)`` on the stored references, streaming the embeddings block by block (never a
queries × references matrix) and re-ranking the candidates with exact solves (:mod:`._search`).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from .._io import file_sha256
from .._results import Neighbors
from .._validation import check_pos_int
from .._version import __version__
from ..errors import InputError, ModelFileError, explain
from ..serve import _inputs, load
from ..serve._conformal import check_level
from ..serve._inputs import Device, Inputs
from ..serve._neighbors import check_k, check_rerank
from ..serve._warnings import warn_brute_force
from . import _files as files
from ._build import embed_blocks, source_layout, stored_blocks
from ._search import search

__all__ = ["ReferenceIndex", "build_index", "open_index"]


class ReferenceIndex:
    """A reference set embedded by a model, on disk: neighbours of new queries without re-embedding it.

    Made by :func:`build_index` or :func:`open_index`; not constructed directly.

    Attributes
    ----------
    path : Path
        The index directory.
    model : WassersteinEmbedding
        The model stored with the index (the one given to :func:`build_index` when just built).
    manifest : dict
        The checked manifest (see :mod:`wassembed.index._files`).
    embeddings : numpy.memmap, shape (n, d), float32
        Row ``i``: the embedding of reference ``i``.
    references : numpy.memmap, shape (n, H, W) or (n, k)
        The references: uint8 as given, other inputs as float32 histograms summing to 1.

    Examples
    --------
    >>> ix = build_index(model, R, "refs.index")            # doctest: +SKIP
    >>> dist, ind = open_index("refs.index").kneighbors(Q, k=10)  # doctest: +SKIP
    """

    def __init__(self, path, model, manifest: dict, embeddings: np.ndarray, references: np.ndarray) -> None:
        self.path, self.model, self.manifest = Path(path), model, manifest
        self.embeddings, self.references = embeddings, references
        self._centre = np.asarray(manifest["centre"], dtype=np.float64)

    def __len__(self) -> int:
        return int(self.manifest["n"])

    @property
    def fingerprint(self) -> str:
        """sha256 of the stored references' bytes (the manifest's ``references.sha256``)."""
        return self.manifest["references"]["sha256"]

    def __repr__(self) -> str:
        return (f"ReferenceIndex({str(self.path)!r}, n={len(self)}, references={self.references.dtype}"
                f"{tuple(self.references.shape[1:])}, d={self.embeddings.shape[1]})")

    def kneighbors(self, Q: Inputs, k: int = 10, *, exact_rerank: bool = False, level: float = 0.99,
                   n_candidates: int | None = None, max_candidates: int = 1024, references_per_block: int = 4096,
                   tile_size: int = 256, batch_size: int | None = None, device: Device = None) -> Neighbors:
        """The ``k`` stored references :math:`r_j` of smallest :math:`W_p^p(q, r_j)` for each query ``q``
        (estimated, or exact after re-ranking): ``(distances, indices)``, ascending.

        The same answer and result type as ``model.kneighbors(Q, references, k, exact_rerank=...)``:
        ``distances (nq, k)`` float64, estimates of :math:`W_p^p` or, with ``exact_rerank=True``, exact values
        of the candidates re-ranked by the model's rule (``n_candidates``: fixed; None: adaptive at ``level``,
        see the model's ``kneighbors``), and ``indices (nq, k)`` int64 into the references. Estimates come from
        one matrix product per block of references (:mod:`._search`).

        Parameters
        ----------
        Q : array, shape (nq, H, W) or (nq, k)
            Queries (one image ``(H, W)`` or histogram ``(k,)``: ``nq = 1``); numpy or torch.
        k : int
            Neighbours per query, ``1 <= k <= len(self)``.
        exact_rerank : bool
            Re-rank candidates with exact solves (as the model's ``kneighbors``, off by default).
        level : float
            Coverage level of the adaptive rule's conformal lower bounds.
        n_candidates : int, optional
            Fixed number of candidates solved per query (at least ``k``).
        max_candidates : int
            Adaptive rule: candidates kept per query in the first pass (× 4 for each query needing more).
        references_per_block : int
            References read from the index per block of the streamed matrix products.
        tile_size : int
            Queries per tile (a tile is ``tile_size × references_per_block`` float32 estimates).
        batch_size : int, optional
            Queries per encoder pass (the model's default for the device).
        device : str, optional
            "cpu", "cuda", … (the model's device when None).

        Returns
        -------
        Neighbors
            ``distances``, ``indices`` (each ``(nq, k)``), ``n_exact_per_query`` (candidates solved), ``exact``.
        """
        model = self.model
        check_rerank(exact_rerank, n_candidates)
        wq, like = model.histograms(Q, "Q"), _inputs.unwrap(Q)[1]
        k = check_k(k, len(self))
        references_per_block = check_pos_int("references_per_block", references_per_block)
        tile_size = check_pos_int("tile_size", tile_size)
        lower = None
        if exact_rerank and n_candidates is None:
            cal, level = model._need_calibrator("adaptive exact re-ranking"), check_level(level, "re-ranking")
            lower = lambda est: cal.lower_bound(est, level)
            max_candidates = check_pos_int("max_candidates", max_candidates)
        elif exact_rerank:
            n_candidates = max(check_pos_int("n_candidates", n_candidates), k)
        dev = model._device(device)
        ZQ = model._encode(wq, dev, _inputs.batch_size(batch_size, dev))
        idx, val, spent = search(model, ZQ, wq, self.embeddings, self.references, self._centre, k,
                                 exact=exact_rerank, lower=lower, n_candidates=n_candidates,
                                 max_candidates=max_candidates, references_per_block=references_per_block,
                                 tile_size=tile_size)
        if lower is not None:
            warn_brute_force(int(spent.sum()), wq.shape[0], len(self), k, level, stacklevel=3)
        return Neighbors(_inputs.rewrap(torch.from_numpy(val), like), _inputs.rewrap(torch.from_numpy(idx), like),
                         spent, exact=exact_rerank)


def _prepare(path: Path, overwrite: bool) -> None:
    """Make ``path`` ready for a new index: refuse an existing one unless ``overwrite`` (then invalidate it
    first, so that a build interrupted from here on leaves no index that looks complete)."""
    ours = {files.MANIFEST, files.REFERENCES, files.EMBEDDINGS, files.MODEL_DIR}
    if path.exists() and not path.is_dir():
        raise InputError(explain(f"cannot build an index at {path}", expected="a new or empty directory",
                                 received="a file", fix="pass another path"))
    present = {p.name for p in path.iterdir()} if path.is_dir() else set()
    if present and not overwrite:
        what = "an index" if files.MANIFEST in present else "files (an unfinished build or other data)"
        raise InputError(explain(f"{path} already holds {what}", expected="a new or empty directory",
                                 received=", ".join(sorted(present)[:5]),
                                 fix="pass overwrite=True to replace it, or another path"))
    if present - ours - {p for p in present if p.startswith(".tmp-")}:
        raise InputError(explain(f"{path} holds files that are not an index's", expected=f"only {sorted(ours)}",
                                 received=", ".join(sorted(present - ours)[:5]), fix="pass another path"))
    path.mkdir(parents=True, exist_ok=True)
    if (path / files.MANIFEST).exists():
        os.unlink(path / files.MANIFEST)
    if (path / files.MODEL_DIR).exists():
        shutil.rmtree(path / files.MODEL_DIR)


def _write_arrays(model, R, path: Path, *, references_per_block, client, digest, batch_size, device) -> dict:
    """Write ``references.npy`` and ``embeddings.npy``; returns their manifest entries and the centre."""
    n, (row, dtype) = R.shape[0], source_layout(model, R)
    refs = files.NpyWriter(path / files.REFERENCES, (n, *row), dtype)
    embs, total = None, None
    try:
        for blk, Z in embed_blocks(model, stored_blocks(model, R, references_per_block, dtype), client=client,
                                   model_dir=path / files.MODEL_DIR, digest=digest, batch_size=batch_size,
                                   device=device):
            refs.write(blk)
            if embs is None:
                embs, total = files.NpyWriter(path / files.EMBEDDINGS, (n, Z.shape[1]), np.float32), 0.0
            embs.write(Z)
            total = total + Z.sum(0, dtype=np.float64)
        ref_sha, emb_sha = refs.close(), embs.close()
    except BaseException:
        for w in (refs, embs):
            if w is not None:
                w.abort()
        raise
    spec = lambda name, shape, dt, sha: {"file": name, "shape": list(shape), "dtype": np.dtype(dt).name,
                                         "sha256": sha}
    return {"n": n, "references": spec(files.REFERENCES, (n, *row), dtype, ref_sha),
            "embeddings": spec(files.EMBEDDINGS, (n, embs.shape[1]), np.float32, emb_sha),
            "centre": (np.asarray(total) / n).tolist()}


def build_index(model, R, path: str | os.PathLike, *, references_per_block: int = 8192,
                batch_size: int | None = None, device: Device = None, client=None,
                overwrite: bool = False) -> ReferenceIndex:
    """:math:`z_i = \\varphi(r_i)` for every reference, computed once: store the references ``R``, their
    embeddings and ``model`` at ``path`` (layout: :mod:`wassembed.index._files`).

    Parameters
    ----------
    model : WassersteinEmbedding
        A trained model (it must be saveable: a copy is written into the index with its ``save``).
    R : array-like, shape (n, H, W) or (n, k)
        References on the model's support: a numpy array, a memory map, or any array-like with ``shape``,
        ``dtype`` and slicing ``R[a:b]`` (read ``references_per_block`` rows at a time, so ``R`` may generate
        its rows on demand). uint8 is stored as uint8; other dtypes as float32 histograms summing to 1.
    path : str or path
        A new (or empty) directory.
    references_per_block : int
        References read, stored and embedded at a time (one Dask task each).
    batch_size : int, optional
        Inputs per encoder pass (the device's default).
    device : str, optional
        Device of the local encoder passes (the model's when None); Dask workers use their CPU.
    client : distributed.Client, optional
        Embed the blocks on this Dask cluster; its workers must see ``path`` (a shared file system).
    overwrite : bool
        Replace an index already at ``path``.

    Returns
    -------
    ReferenceIndex
        The new index, serving with ``model``.
    """
    if getattr(model.config, "kind", None) == "set":
        raise InputError(explain("reference indexes hold images or histograms", expected="a histogram model",
                                 received="a point-cloud model (CloudEmbedding)",
                                 fix="use model.kneighbors(Q, R) for point clouds (an on-disk index of clouds is "
                                     "not implemented)"))
    references_per_block = check_pos_int("references_per_block", references_per_block)
    path = Path(path)
    source_layout(model, R)  # refuse a wrong shape before touching the directory
    _prepare(path, overwrite)
    t0 = time.perf_counter()
    model.save(path / files.MODEL_DIR)
    digest = file_sha256(path / files.MODEL_DIR / "model.json")
    arrays = _write_arrays(model, R, path, references_per_block=references_per_block, client=client, digest=digest,
                           batch_size=batch_size, device=device)
    manifest = {**arrays, "model": {"dir": files.MODEL_DIR, "sha256": digest},
                "build": {"references_per_block": references_per_block, "dask": client is not None,
                          "seconds": time.perf_counter() - t0, "wassembed_version": __version__}}
    files.write_manifest(path, manifest)
    manifest = files.read_manifest(path)
    return ReferenceIndex(path, model, manifest, *_arrays(path, manifest, verify=False))


def _arrays(path: Path, manifest: dict, *, verify: bool):
    """``(embeddings, references)`` memory maps of the index at ``path``, checked against its manifest."""
    try:
        specs = manifest["embeddings"], manifest["references"]
        n, d = int(manifest["n"]), len(manifest["centre"])
    except (KeyError, TypeError) as exc:
        raise ModelFileError(explain(f"invalid index manifest {path / files.MANIFEST}", expected="the fields "
                                     "written by build_index", received=f"missing {exc}",
                                     fix="build the index again")) from None
    E, R = (files.open_array(path, s, verify=verify) for s in specs)
    if E.shape != (n, d) or R.shape[0] != n:
        raise ModelFileError(explain(f"index files in {path} disagree", expected=f"{n} references, d = {d}",
                                     received=f"embeddings {E.shape}, references {R.shape}",
                                     fix="build the index again"))
    return E, R


def open_index(path: str | os.PathLike, *, device: Device = "cpu", verify: bool = True) -> ReferenceIndex:
    """Reopen an index written by :func:`build_index` (memory-mapped), with its model on ``device``.

    Parameters
    ----------
    path : str or path
        The index directory.
    device : str
        Device of the model ("cpu", "cuda", …).
    verify : bool
        Hash the stored references and embeddings against the manifest (reads them once: about a second per
        GB); sizes, shapes, dtypes, the manifest's own checksum and the model's files are always checked.

    Returns
    -------
    ReferenceIndex

    Raises
    ------
    ModelFileError
        A file is missing, truncated or altered (with the file named), or of another format version.
    """
    path = Path(path)
    manifest = files.read_manifest(path)
    E, R = _arrays(path, manifest, verify=verify)
    model_dir = path / manifest.get("model", {}).get("dir", files.MODEL_DIR)
    got = file_sha256(model_dir / "model.json") if (model_dir / "model.json").is_file() else "no model.json"
    if got != manifest.get("model", {}).get("sha256"):
        raise ModelFileError(explain(f"the model in {model_dir} is not the index's", expected=f"model.json of "
                                     f"sha256 {str(manifest.get('model', {}).get('sha256'))[:16]}…",
                                     received=got[:16], fix="restore the model the index was built with, or "
                                     "build the index again"))
    return ReferenceIndex(path, load(model_dir, device=device), manifest, E, R)
