"""On-disk layout of a reference index: streamed ``.npy`` files, the manifest, and their checks.

An index is a directory::

    INDEX/
      manifest.json     format + version, n, the stored references' and embeddings' shapes, dtypes and sha256
                        (the references' sha256 is their fingerprint), the embeddings' centre, the model's
                        digest (sha256 of model/model.json), build settings; and its own sha256
      references.npy    the references in compact form: uint8 inputs as given (images (n, H, W) or
                        histograms (n, k)), any other dtype as float32 histograms summing to 1 (same shapes)
      embeddings.npy    float32 embeddings (n, d), row i of references.npy embedded
      model/            the model, written by its ``save`` (safetensors + JSON, checked on load)

The ``.npy`` files are written row block by row block under a temporary name (header first, no memory map)
and renamed when complete; the manifest is written last, atomically, so an interrupted build never looks
complete. The sha256 of an array covers its data bytes in C order (not the ``.npy`` header).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from .._io import atomic_write
from ..errors import ModelFileError, explain
from ..nn._files import check_format, read_json

__all__ = ["EMBEDDINGS", "FORMAT", "FORMAT_VERSION", "MANIFEST", "MODEL_DIR", "REFERENCES", "NpyWriter",
           "file_data_sha256", "open_array", "read_manifest", "read_rows", "take_rows",
           "write_manifest"]

FORMAT, FORMAT_VERSION = "wassembed-index", 1
MANIFEST, REFERENCES, EMBEDDINGS, MODEL_DIR = "manifest.json", "references.npy", "embeddings.npy", "model"
_HASH_BYTES = 1 << 24  # bytes read per step when verifying a file (16 MiB)


class NpyWriter:
    """Append row blocks to a ``.npy`` file of known shape; :meth:`close` renames it into place.

    Parameters
    ----------
    path : Path
        Final name; the rows go to ``.tmp-<name>.part`` beside it until :meth:`close`.
    shape : tuple of int
        Shape of the whole array ``(n, ...)``.
    dtype : numpy dtype
        Its dtype (blocks are cast to it).

    Attributes
    ----------
    sha256 : hashlib object
        Running sha256 of the data bytes written.
    """

    def __init__(self, path: Path, shape: tuple, dtype) -> None:
        self.path, self.shape, self.dtype = Path(path), tuple(int(s) for s in shape), np.dtype(dtype)
        self.tmp = self.path.with_name(f".tmp-{self.path.name}.part")
        self.sha256, self.rows = hashlib.sha256(), 0
        self._fh = open(self.tmp, "wb")
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": self.shape}
        np.lib.format.write_array_header_1_0(self._fh, header)

    def write(self, block: np.ndarray) -> None:
        """Append rows ``block (b, ...)`` (the row shape of :attr:`shape`)."""
        data = np.ascontiguousarray(block, dtype=self.dtype)
        if data.shape[1:] != self.shape[1:] or self.rows + data.shape[0] > self.shape[0]:
            raise ModelFileError(explain(f"a block does not fit {self.path.name}", expected=f"rows of shape "
                                         f"{self.shape[1:]}, {self.shape[0]} rows in all",
                                         received=f"{data.shape} after {self.rows} rows",
                                         fix="pass an array whose blocks keep the shape of its first rows"))
        buf = memoryview(data).cast("B")
        self.sha256.update(buf)
        self._fh.write(buf)
        self.rows += data.shape[0]

    def close(self) -> str:
        """fsync, rename to :attr:`path`; returns the data's sha256 (hex). Refuses a short array."""
        if self.rows != self.shape[0]:
            self.abort()
            raise ModelFileError(explain(f"{self.path.name} is incomplete", expected=f"{self.shape[0]} rows",
                                         received=f"{self.rows} rows", fix="build the index again"))
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        os.replace(self.tmp, self.path)
        return self.sha256.hexdigest()

    def abort(self) -> None:
        """Close and delete the temporary file (after an error; harmless after :meth:`close`)."""
        if not self._fh.closed:
            self._fh.close()
        with contextlib.suppress(OSError):
            os.unlink(self.tmp)


def file_data_sha256(path: Path, offset: int) -> str:
    """sha256 (hex) of the bytes of file ``path`` from ``offset`` on (the data of a ``.npy`` file), read with
    plain file reads (a memory map would count every page read in the process's resident memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        fh.seek(offset)
        while chunk := fh.read(_HASH_BYTES):
            h.update(chunk)
    return h.hexdigest()


def read_rows(arr: np.ndarray, a: int, b: int) -> np.ndarray:
    """A copy of rows ``a:b`` of ``arr``; for a memory-mapped ``.npy`` file, read with a plain file read (so a
    scan of the file leaves no pages in the process's resident memory)."""
    if isinstance(arr, np.memmap) and arr.filename is not None and arr.flags.c_contiguous and arr.ndim >= 1:
        row = arr.dtype.itemsize * int(np.prod(arr.shape[1:]))
        out = np.fromfile(arr.filename, dtype=arr.dtype, count=(b - a) * row // arr.dtype.itemsize,
                          offset=arr.offset + a * row)
        return out.reshape(b - a, *arr.shape[1:])
    return np.array(arr[a:b])


def take_rows(arr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """A copy of rows ``rows (m,)`` (sorted, unique) of ``arr``; for a memory-mapped ``.npy`` file, one plain
    read per row (indexing the memory map would map whole runs of pages around each row into the process's
    resident memory: about 150 MB for 2,000 scattered rows of 28×28 images)."""
    if not (isinstance(arr, np.memmap) and arr.filename is not None and arr.flags.c_contiguous):
        return np.array(arr[rows])
    out = np.empty((len(rows), *arr.shape[1:]), dtype=arr.dtype)
    flat, row = out.reshape(len(rows), -1).view(np.uint8), arr.dtype.itemsize * int(np.prod(arr.shape[1:]))
    with open(arr.filename, "rb", buffering=0) as fh:
        for t, r in enumerate(np.asarray(rows, dtype=np.int64).tolist()):
            fh.seek(arr.offset + r * row)
            fh.readinto(memoryview(flat[t]))
    return out


def _digest(manifest: dict) -> str:
    """sha256 of the manifest without its own checksum (canonical JSON)."""
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def write_manifest(path: Path, manifest: dict) -> None:
    """Write ``manifest`` (with its own sha256 added) to ``path / manifest.json`` atomically."""
    body = dict(manifest, format=FORMAT, format_version=FORMAT_VERSION)
    body["manifest_sha256"] = _digest(body)
    atomic_write(Path(path) / MANIFEST, lambda fh: fh.write(json.dumps(body, indent=2, sort_keys=True).encode()))


def read_manifest(path: Path) -> dict:
    """The checked manifest of the index at ``path`` (:class:`~wassembed.errors.ModelFileError` otherwise)."""
    path = Path(path)
    if not (path / MANIFEST).is_file():
        found = "no such directory" if not path.exists() else "a directory without it (an unfinished build or " \
                "another kind of directory)"
        raise ModelFileError(explain(f"{path} is not a reference index", expected=f"a directory with {MANIFEST} "
                                     "written by build_index", received=found,
                                     fix="pass the path given to build_index, or build the index again"))
    manifest = read_json(path / MANIFEST, "index manifest")
    check_format(manifest, FORMAT, FORMAT_VERSION, path / MANIFEST)
    if manifest.get("manifest_sha256") != _digest(manifest):
        raise ModelFileError(explain(f"index manifest {path / MANIFEST} was modified",
                                     expected=f"content matching sha256 {str(manifest.get('manifest_sha256'))[:16]}…",
                                     received=f"{_digest(manifest)[:16]}…",
                                     fix="restore the original file or build the index again"))
    return manifest


def open_array(path: Path, spec: dict, *, verify: bool) -> np.memmap:
    """Memory-map the ``.npy`` file ``path / spec["file"]`` read-only, checked against ``spec``.

    Parameters
    ----------
    path : Path
        The index directory.
    spec : dict
        ``file``, ``shape``, ``dtype`` and ``sha256`` (of the data bytes) from the manifest.
    verify : bool
        Also hash the data (reads the whole file) against ``spec["sha256"]``; shapes, dtypes and sizes are
        always checked.

    Returns
    -------
    numpy.memmap, shape ``spec["shape"]``
    """
    f = Path(path) / spec["file"]
    fix = "restore the index directory as build_index wrote it, or build the index again"
    if not f.is_file():
        raise ModelFileError(explain(f"missing index file {f}", expected=f"{spec['file']} beside {MANIFEST}",
                                     received="no such file", fix=fix))
    try:
        arr = np.load(f, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:  # a truncated or damaged file
        raise ModelFileError(explain(f"unreadable index file {f}", expected=f"a .npy array of shape "
                                     f"{tuple(spec['shape'])}", received=str(exc)[:200], fix=fix)) from None
    size, want = f.stat().st_size, arr.offset + int(np.prod(spec["shape"])) * np.dtype(spec["dtype"]).itemsize
    if tuple(arr.shape) != tuple(spec["shape"]) or str(arr.dtype) != spec["dtype"] or size != want:
        raise ModelFileError(explain(f"index file {f} was altered", expected=f"shape {tuple(spec['shape'])}, "
                                     f"{spec['dtype']}, {want} bytes", received=f"shape {arr.shape}, {arr.dtype}, "
                                     f"{size} bytes", fix=fix))
    if verify and (got := file_data_sha256(f, arr.offset)) != spec["sha256"]:
        raise ModelFileError(explain(f"index file {f} was altered", expected=f"data matching sha256 "
                                     f"{spec['sha256'][:16]}… (manifest)", received=f"{got[:16]}…", fix=fix))
    return arr
