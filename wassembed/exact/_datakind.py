"""The two kinds of data a cache holds, and what an executor's workers need to solve pairs of either.

Everything in the exact stage that depends on the kind of data goes through this module: the manifest's
description of the data, what ``data.npz`` stores and how it is read back, the facts of the stored data the
manifest must agree with. (What workers receive to solve either kind: :class:`~wassembed.exact._jobs.ExactJob`.)

- **histograms** (:class:`~wassembed.data.HistogramSet`): ``data.npz`` holds ``HistogramSet.to_arrays()``;
  the fingerprint (``fingerprint(p)``) covers the weights, the support, ``p`` and the ground cost; pairs are
  solved by :class:`~wassembed.exact.ExactSolver` (the grid path or POT, see its docstring).
- **point clouds** (:class:`~wassembed.data.PointCloudSet`): ``data.npz`` holds the ragged arrays of the
  interchange format (``points``, ``weights``, ``offsets``, optional ``labels``: ``PointCloudSet.load``
  reads it) and ``p``, since a cloud set's fingerprint does not cover ``p``: an edited ``p`` in the
  manifest is still found. Pairs are solved by :class:`~wassembed.exact.CloudSolver`.

A manifest without ``dataset.kind`` (format version 1) describes histograms.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import HistogramSet, PointCloudSet, ground_cost_name, parse_p
from ..errors import InputError, explain

__all__ = ["HISTOGRAMS", "KINDS", "POINT_CLOUDS", "custom_cost", "data_arrays", "dataset_record",
           "describe_data", "fingerprint_of", "kind_of", "manifest_kind", "quantity_name", "read_data_file",
           "solver_record", "stored_facts"]

HISTOGRAMS = "histograms"
POINT_CLOUDS = "point_clouds"
KINDS = (HISTOGRAMS, POINT_CLOUDS)

#: what the cache's data can be
Data = HistogramSet | PointCloudSet


def quantity_name(p: int, explicit_cost: bool = False) -> str:
    """Name of the cached quantity: ``w2sq`` (W2², p = 2), ``w1`` (p = 1) or ``ot_cost`` (custom cost)."""
    if explicit_cost:
        return "ot_cost"
    return "w2sq" if parse_p(p) == 2 else "w1"


def kind_of(data) -> str:
    """``"histograms"`` or ``"point_clouds"``; :class:`~wassembed.errors.InputError` for anything else."""
    if isinstance(data, HistogramSet):
        return HISTOGRAMS
    if isinstance(data, PointCloudSet):
        return POINT_CLOUDS
    raise InputError(explain("bad data", expected="a HistogramSet or a PointCloudSet", received=type(data).__name__,
                             fix="wrap images with HistogramSet.from_images(X), clouds with "
                                 "PointCloudSet.from_clouds([points, ...])"))


def manifest_kind(manifest: dict) -> str:
    """The kind a manifest records (``histograms`` when it records none: format version 1)."""
    return manifest["dataset"].get("kind", HISTOGRAMS)


def fingerprint_of(data: Data, p: int) -> str:
    """The fingerprint a cache of ``data`` and ``p`` is bound to (a cloud set's does not depend on ``p``)."""
    return data.fingerprint if isinstance(data, PointCloudSet) else data.fingerprint(p)


def custom_cost(data: Data) -> bool:
    """Whether the data brings its own ground cost (histograms with an explicit ``(k, k)`` cost)."""
    return isinstance(data, HistogramSet) and data.cost is not None


def _name(data: Data) -> str:
    return str(getattr(data, "name", None) or "point clouds")


def describe_data(data: Data) -> str:
    """``"60 histograms of 64 bins"`` or ``"40 clouds of 20–60 points in 3 dimensions"``."""
    if isinstance(data, PointCloudSet):
        sizes = data.sizes
        return f"{data.n} clouds of {int(sizes.min())}–{int(sizes.max())} points in {data.d} dimensions"
    return f"{data.n} histograms of {data.k} bins"


def dataset_record(data: Data, p: int) -> dict:
    """The manifest's ``dataset`` table for ``data`` (without ``file`` and ``sha256``, added by the cache)."""
    head = {"kind": kind_of(data), "name": _name(data), "n": data.n}
    tail = {"fingerprint": fingerprint_of(data, p), "has_labels": data.labels is not None}
    if isinstance(data, PointCloudSet):
        sizes = data.sizes
        return {**head, "d": data.d, "points": int(data.points.shape[0]), "k_min": int(sizes.min()),
                "k_max": int(sizes.max()), **tail}
    return {**head, "k": data.k, "support": data.support_kind,
            "grid": list(data.grid) if data.grid is not None else None, **tail}


def solver_record(data: Data, num_iter_max: int) -> dict:
    """The manifest's ``solver`` table."""
    if isinstance(data, PointCloudSet):
        from ._clouds import ASSIGNMENT_MAX_POINTS

        name = ("ot.emd2 (network simplex) on the clouds' ground cost; two uniform clouds of equal size up to "
                f"{ASSIGNMENT_MAX_POINTS} points: scipy.optimize.linear_sum_assignment (same optimum)")
    else:
        name = ("exact network simplex: W2² on 2-D integer coordinates with rational weights (integer counts): "
                "LEMON (pylmcf) on the separable 3-partite graph, in integers; otherwise ot.emd2 restricted to "
                "nonzero bins (values agree within float64 rounding)")
    return {"name": name, "num_iter_max": int(num_iter_max), "not_optimal": "error (never cached)"}


def data_arrays(data: Data, p: int) -> dict[str, np.ndarray]:
    """What ``data.npz`` stores: the histograms' arrays, or the clouds' ragged arrays and ``p``."""
    if isinstance(data, HistogramSet):
        return data.to_arrays()
    arrays = {"points": data.points, "weights": data.weights, "offsets": data.offsets,
              "p": np.asarray(p, dtype=np.int64)}
    if data.labels is not None:
        arrays["labels"] = data.labels
    return arrays


def read_data_file(f: Path, name: str) -> tuple[Data, int | None]:
    """Read a cache's ``data.npz``: ``(data, p stored with it)``; the kind is read from the file itself.

    ``p`` is None for histograms (their fingerprint covers it). Damage raises what numpy, zipfile and zlib
    raise, or :class:`~wassembed.errors.InputError` (a ``ValueError``).
    """
    with np.load(f, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    if "points" not in arrays or "offsets" not in arrays:
        return HistogramSet.from_arrays(arrays, name=name), None
    p = arrays.get("p")
    if p is None or p.shape != () or not np.issubdtype(p.dtype, np.integer):
        raise InputError(explain(f"{f} holds point clouds without their p", expected="an integer array 'p'",
                                 received="nothing" if p is None else f"dtype {p.dtype}, shape {p.shape}",
                                 fix="restore data.npz from a copy of the cache"))
    clouds = PointCloudSet(arrays["points"], arrays.get("weights"), arrays["offsets"], labels=arrays.get("labels"))
    return clouds, int(p)


def stored_facts(data: Data, p: int, stored_p: int | None) -> list[tuple[str, object]]:
    """(manifest field, value) that the stored data fixes, checked against the manifest.

    ``p`` is the manifest's; ``stored_p`` the one stored with clouds (their quantity and ground cost follow it).
    """
    if isinstance(data, PointCloudSet):
        sizes = data.sizes
        q = int(stored_p) if stored_p is not None else p
        return [("p", q), ("dataset.kind", POINT_CLOUDS), ("dataset.n", data.n), ("dataset.d", data.d),
                ("dataset.points", int(data.points.shape[0])), ("dataset.k_min", int(sizes.min())),
                ("dataset.k_max", int(sizes.max())), ("quantity", quantity_name(q)),
                ("ground_cost", ground_cost_name(q))]
    custom = custom_cost(data)
    grid = list(data.grid) if data.grid is not None else None
    return [("dataset.kind", HISTOGRAMS), ("dataset.n", data.n), ("dataset.k", data.k),
            ("dataset.support", data.support_kind), ("dataset.grid", grid), ("quantity", quantity_name(p, custom)),
            ("ground_cost", ground_cost_name(p, custom))]
