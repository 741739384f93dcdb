"""Reference indexes: a reference set embedded once by a served model, stored on disk, queried many times.

:func:`build_index` embeds the references block by block (locally or on Dask workers) and writes them, their
embeddings, the model and a manifest to a directory; :func:`open_index` reopens it, memory-mapped, with its
model; :meth:`ReferenceIndex.kneighbors` answers as the model's ``kneighbors(Q, R)`` does on the stored
references, streaming the embeddings block by block and re-ranking candidates with exact solves.

It sits on :mod:`wassembed.serve` (the model, its neighbour search and re-ranking rule) and
:mod:`wassembed.exact` (the exact solves); ``wassembed.build_index`` and ``wassembed.open_index`` are these.
"""

from ._reference import ReferenceIndex, build_index, open_index

__all__ = ["ReferenceIndex", "build_index", "open_index"]
