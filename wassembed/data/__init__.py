"""Histogram sets and their supports: loading, validation, normalisation, ground costs, fingerprints.

A histogram is a nonnegative weight vector summing to 1 over a support of ``k`` bins: a pixel grid
``(H, W)``, explicit coordinates ``(k, d)`` or an explicit ``(k, k)`` ground cost. A point cloud
(:class:`PointCloudSet`) is a weighted set of ``k_i`` points in ``R^d``, ``k_i`` varying from cloud to cloud.
Both answer one interface, :class:`DataSet` (fingerprint, subset, the networks' input, the cache's file,
validation): the other stages call it and never ask which class they hold. Needs numpy only.
"""

from ._augment import elastic_copies as elastic_copies
from ._augment import elastic_copy as elastic_copy
from ._cloud_datasets import SHAPE_NAMES as SHAPE_NAMES
from ._cloud_datasets import make_shapes, mnist_clouds
from ._clouds import PointCloudSet
from ._dataset import HISTOGRAMS as HISTOGRAMS
from ._dataset import POINT_CLOUDS as POINT_CLOUDS
from ._dataset import DataSet
from ._dataset import as_dataset as as_dataset
from ._dataset import data_kinds as data_kinds
from ._dataset import kind_class as kind_class
from ._dataset import quantity_name as quantity_name
from ._dataset import read_stored as read_stored
from ._histograms import HistogramSet
from ._loaders import DAMAGED_FILE_ERRORS as DAMAGED_FILE_ERRORS
from ._loaders import load_dataset, read_idx
from ._support import as_weights, make_ground_cost
from ._support import ground_cost_name as ground_cost_name
from ._support import parse_p as parse_p

#: what users call; the names imported ``as`` themselves are the package's own (the other stages import them
#: from here), not public
__all__ = [
    "DataSet",
    "HistogramSet",
    "PointCloudSet",
    "load_dataset",
    "read_idx",
    "make_shapes",
    "mnist_clouds",
    "as_weights",
    "make_ground_cost",
]
