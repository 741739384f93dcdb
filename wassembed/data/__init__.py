"""Histogram sets and their supports: loading, validation, normalisation, ground costs, fingerprints.

A histogram is a nonnegative weight vector summing to 1 over a support of ``k`` bins: a pixel grid
``(H, W)``, explicit coordinates ``(k, d)`` or an explicit ``(k, k)`` ground cost. A point cloud
(:class:`PointCloudSet`) is a weighted set of ``k_i`` points in ``R^d``, ``k_i`` varying from cloud to cloud.
Needs numpy only.
"""

from ._augment import elastic_copies, elastic_copy
from ._cloud_datasets import SHAPE_NAMES, make_shapes, mnist_clouds
from ._clouds import PointCloudSet
from ._histograms import HistogramSet
from ._loaders import DAMAGED_FILE_ERRORS, load_dataset, read_idx
from ._support import as_weights, ground_cost_name, make_ground_cost, parse_p

__all__ = [
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
