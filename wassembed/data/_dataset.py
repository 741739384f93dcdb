"""The interface every kind of data answers: :class:`DataSet`, the one definition the stages call.

Two kinds exist: histograms on one shared support (:class:`~wassembed.data.HistogramSet`, kind
``"histograms"``) and weighted point clouds of varying sizes (:class:`~wassembed.data.PointCloudSet`, kind
``"point_clouds"``). The stages (exact solves, the cache, training, serving, benchmarks) never ask which class
they hold: they call the methods below, and where the mathematics differs they look up the data's ``kind`` in
a table of their own (``wassembed.exact._datakind`` for the solvers and LOT teachers; the served models and
model configurations are one class per kind). This module needs numpy only.

What a kind provides:

- **identity**: ``n``, ``labels``, :meth:`DataSet.fingerprint` (sha256 of everything the exact values depend
  on: two sets with equal fingerprints give identical exact distances), :meth:`DataSet.subset`,
  :meth:`DataSet.describe` (and :meth:`DataSet.describe_record`, from a cache's manifest);
- **the cost**: :meth:`DataSet.cost_names` (the cached quantity and the ground cost for ``p``),
  :meth:`DataSet.lot_defined` (whether per-item LOT targets exist);
- **the networks' input**: :meth:`DataSet.packed` (histograms ``(m, k)``, clouds padded ``(m, kmax, d + 1)``,
  float32), :meth:`DataSet.model_inputs` (what a served model is given);
- **the cache's file**: :meth:`DataSet.record` (the manifest's ``dataset`` table), :meth:`DataSet.stored_arrays`
  (``data.npz``), :meth:`DataSet.from_stored` and :func:`read_stored` (back), :meth:`DataSet.stored_facts`
  (what the manifest must agree with), :data:`DataSet.manifest_fields` (its typed fields);
- **validation**: :func:`as_dataset` (a data set, of a given kind when asked, or
  :class:`~wassembed.errors.InputError` with the fix).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from ..errors import InputError, explain
from ._support import ground_cost_name, parse_p

__all__ = ["HISTOGRAMS", "POINT_CLOUDS", "DataSet", "as_dataset", "data_kinds", "kind_class", "quantity_name",
           "read_stored"]

HISTOGRAMS = "histograms"
POINT_CLOUDS = "point_clouds"

#: each kind's class, in the order they were defined (filled by :meth:`DataSet.__init_subclass__`)
_KINDS: dict[str, type] = {}

_WRAP_FIX = ("wrap images with HistogramSet.from_images(X) (histograms: from_histograms(X, grid=...)), "
             "clouds with PointCloudSet.from_clouds([points, ...])")


def quantity_name(p: int, explicit_cost: bool = False) -> str:
    """Name of the cached quantity: ``w2sq`` (W2², p = 2), ``w1`` (p = 1) or ``ot_cost`` (custom cost).

    Examples
    --------
    >>> quantity_name(2), quantity_name(1), quantity_name(2, explicit_cost=True)
    ('w2sq', 'w1', 'ot_cost')
    """
    if explicit_cost:
        return "ot_cost"
    return "w2sq" if parse_p(p) == 2 else "w1"


class DataSet(abc.ABC):
    """A set of ``n`` probability measures of one kind (see the module docstring for what each kind provides).

    Subclasses set the class attributes ``kind`` (``"histograms"``, ``"point_clouds"``), ``noun`` (the plural
    used in messages), ``manifest_fields`` (the typed fields of the cache manifest's ``dataset`` table) and
    ``size_field`` (the field, beside ``n``, that must be positive), and implement the abstract methods.
    """

    kind: ClassVar[str]
    noun: ClassVar[str]
    manifest_fields: ClassVar[dict[str, type]]
    size_field: ClassVar[str]
    labels: np.ndarray | None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            _KINDS[cls.kind] = cls

    # -- identity -----------------------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def n(self) -> int:
        """Number of measures (histograms or clouds)."""

    def __len__(self) -> int:
        return self.n

    @abc.abstractmethod
    def fingerprint(self, p: int = 2) -> str:
        """sha256 of what the exact values of ``p`` depend on (labels and names are ignored)."""

    @abc.abstractmethod
    def subset(self, index) -> DataSet:
        """A new set of the same kind holding the measures ``index``, in that order."""

    @abc.abstractmethod
    def describe(self) -> str:
        """One line for messages, e.g. ``"60 histograms of 64 bins"``."""

    @classmethod
    @abc.abstractmethod
    def describe_record(cls, record: Mapping) -> str:
        """:meth:`describe` from a cache manifest's ``dataset`` table, with the support or the points."""

    # -- the cost -----------------------------------------------------------------------------------
    def cost_names(self, p: int) -> tuple[str, str]:
        """``(quantity, ground cost)`` of ``p``: ``("w2sq", "sqeuclidean")`` or ``("w1", "euclidean")``."""
        return quantity_name(p), ground_cost_name(p)

    @classmethod
    def record_cost_names(cls, record: Mapping, p: int) -> tuple[str, str]:
        """:meth:`cost_names` from a manifest's ``dataset`` table (without loading the data)."""
        return quantity_name(p), ground_cost_name(p)

    @abc.abstractmethod
    def lot_defined(self, p: int) -> bool:
        """Whether per-item LOT targets (one exact solve from a reference) are defined for ``p``."""

    # -- the networks' input ------------------------------------------------------------------------
    @abc.abstractmethod
    def packed(self, indices=None) -> np.ndarray:
        """The measures ``indices`` (all when None) as the networks read them, float32."""

    @abc.abstractmethod
    def model_inputs(self):
        """The data in the form a served model of its kind reads and validates (images on a grid, so that a
        grid mismatch is reported as such; histograms; the clouds themselves)."""

    # -- the cache's file ---------------------------------------------------------------------------
    def record(self, p: int) -> dict:
        """The cache manifest's ``dataset`` table (``file`` and ``sha256`` are added by the cache)."""
        head = {"kind": self.kind, "name": str(getattr(self, "name", None) or self.noun), "n": self.n}
        return {**head, **self._record_sizes(), "fingerprint": self.fingerprint(p),
                "has_labels": self.labels is not None}

    @abc.abstractmethod
    def _record_sizes(self) -> dict:
        """The kind's own fields of :meth:`record` (sizes and support)."""

    @abc.abstractmethod
    def stored_arrays(self, p: int) -> dict[str, np.ndarray]:
        """The arrays of the cache's ``data.npz``; :meth:`from_stored` reads them back."""

    @classmethod
    @abc.abstractmethod
    def stores(cls, arrays: Mapping) -> bool:
        """Whether ``arrays`` (the names of a ``data.npz``) hold data of this kind."""

    @classmethod
    @abc.abstractmethod
    def from_stored(cls, arrays: Mapping, name: str, source: str = "data.npz") -> tuple[DataSet, int | None]:
        """``(data, p stored with it or None)`` from :meth:`stored_arrays`' output (``name``: the data's name;
        ``source``: the file, named in messages)."""

    @abc.abstractmethod
    def stored_facts(self, p: int, stored_p: int | None) -> list[tuple[str, object]]:
        """(manifest field, value) that the stored data fixes (``p``: the manifest's; ``stored_p``: the file's)."""

    @classmethod
    def record_problems(cls, record: Mapping) -> list[tuple[str, str, str]]:
        """(field, expected, received) for values of a well-typed ``dataset`` table this kind refuses."""
        return []


def data_kinds() -> tuple[str, ...]:
    """The kinds of data, e.g. ``("histograms", "point_clouds")``."""
    return tuple(_KINDS)


def kind_class(kind: str) -> type:
    """The class of ``kind``; :class:`~wassembed.errors.InputError` for an unknown kind."""
    if kind not in _KINDS:
        raise InputError(explain("unknown kind of data", expected=" or ".join(_KINDS), received=repr(kind)[:60],
                                 fix="use one of the kinds this wassembed knows"))
    return _KINDS[kind]


def as_dataset(data, what: str = "data", kind: str | None = None) -> DataSet:
    """``data`` if it is a :class:`DataSet` (of ``kind`` when given), else :class:`~wassembed.errors.InputError`.

    Examples
    --------
    >>> as_dataset([1, 2])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    wassembed.errors.InputError: bad data: expected a HistogramSet or a PointCloudSet, received list; fix: ...
    """
    want = [_KINDS[kind]] if kind in _KINDS else list(_KINDS.values())
    if not isinstance(data, DataSet) or (kind is not None and data.kind != kind):
        got = type(data).__name__ if not isinstance(data, DataSet) else f"{data.describe()} ({type(data).__name__})"
        raise InputError(explain(f"bad {what}", expected=" or ".join(f"a {c.__name__}" for c in want), received=got,
                                 fix=_WRAP_FIX if kind is None else f"pass a {want[0].__name__}"))
    return data


def read_stored(arrays: Mapping, name: str, source: str = "data.npz") -> tuple[DataSet, int | None]:
    """The data of a cache's ``data.npz`` (its kind read from the arrays themselves) and the ``p`` stored with
    it (None when the kind's fingerprint covers ``p``); ``source`` names the file in messages."""
    for cls in _KINDS.values():
        if cls.stores(arrays):
            return cls.from_stored(arrays, name, source)
    raise InputError(explain("stored data of no known kind", expected=" or ".join(_KINDS),
                             received=f"arrays {sorted(arrays)}", fix="restore data.npz from a copy of the cache"))
