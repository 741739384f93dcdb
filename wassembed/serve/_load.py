"""The one loader of served models, ``wassembed.load``: a model directory of either kind, as the class it holds."""

from __future__ import annotations

import os

from ._cloud_model import CloudEmbedding  # noqa: F401  (registers the sibling of its configuration class)
from ._embedding import BaseEmbedding
from ._histogram_model import WassersteinEmbedding  # noqa: F401  (likewise)
from ._inputs import Device
from ._modelfile import read_model

__all__ = ["load"]


def load(path: str | os.PathLike, *, device: Device = "cpu") -> BaseEmbedding:
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
    parts = read_model(path)
    cls = BaseEmbedding.model_class(parts["config"])  # the sibling serving the file's configuration class
    return cls(**cls._kwargs(parts), device=device)
