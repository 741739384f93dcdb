"""The one loader of served models, ``wassembed.load``: a model directory of either kind, as the class it holds."""

from __future__ import annotations

import os

from ._cloud_model import CloudEmbedding
from ._embedding import WassersteinEmbedding
from ._inputs import Device
from ._modelfile import read_model

__all__ = ["load"]


def load(path: str | os.PathLike, *, device: Device = "cpu") -> WassersteinEmbedding:
    """Load a model directory written by ``model.save(path)`` (or ``wassembed train --out``) onto ``device``.

    Parameters
    ----------
    path : str or path
        The model directory.
    device : str
        "cpu", "cuda", "cuda:N" or "auto": the default device of the model's methods.

    Returns
    -------
    WassersteinEmbedding
        A :class:`~wassembed.serve.WassersteinEmbedding` for a histogram (image) model, a
        :class:`~wassembed.serve.CloudEmbedding` for a point-cloud model.

    Raises
    ------
    ModelFileError
        A missing, truncated, modified or other-version file: every file is checked (sizes, sha256 of the
        weights and of the description) and nothing is unpickled.
    """
    kwargs = read_model(path)
    cls = CloudEmbedding if getattr(kwargs["config"], "kind", None) == "set" else WassersteinEmbedding
    return cls(**kwargs, device=device)
