"""Histogram sets and their supports: loading, validation, normalisation, ground costs, fingerprints.

A histogram is a nonnegative weight vector summing to 1 over a support of ``k`` bins: a pixel grid
``(H, W)``, explicit coordinates ``(k, d)`` or an explicit ``(k, k)`` ground cost. A point cloud
(:class:`PointCloudSet`) is a weighted set of ``k_i`` points in ``R^d``, ``k_i`` varying from cloud to cloud.
Both answer one interface, :class:`DataSet` (fingerprint, subset, the networks' input, the cache's file,
validation): the other stages call it and never ask which class they hold. Needs numpy only.
"""

from ._augment import elastic_copies, elastic_copy
from ._cloud_datasets import SHAPE_NAMES, make_shapes, mnist_clouds
from ._clouds import PointCloudSet
from ._dataset import (
    HISTOGRAMS,
    POINT_CLOUDS,
    DataSet,
    as_dataset,
    data_kinds,
    kind_class,
    quantity_name,
    read_stored,
)
from ._histograms import HistogramSet
from ._loaders import DAMAGED_FILE_ERRORS, load_dataset, read_idx
from ._support import as_weights, ground_cost_name, make_ground_cost, parse_p

__all__ = [
    "DataSet",
    "HISTOGRAMS",
    "POINT_CLOUDS",
    "as_dataset",
    "data_kinds",
    "kind_class",
    "quantity_name",
    "read_stored",
    "HistogramSet",
    "PointCloudSet",
    "SHAPE_NAMES",
    "make_shapes",
    "mnist_clouds",
    "DAMAGED_FILE_ERRORS",
    "load_dataset",
    "read_idx",
    "as_weights",
    "ground_cost_name",
    "make_ground_cost",
    "parse_p",
    "elastic_copies",
    "elastic_copy",
]
