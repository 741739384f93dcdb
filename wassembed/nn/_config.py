"""Model configurations, one class per kind of data sharing a small base: :class:`HistogramConfig` (presets
``paper``, ``fast``, ``mlp``: histograms on a grid or another support) and :class:`SetConfig` (preset ``set``:
point clouds); validated, frozen and hashable.

:class:`ModelConfig` holds what every architecture has (``kind``, ``k``, ``embed_dim``, ``hidden``, ``name``),
builds a preset (:meth:`ModelConfig.preset`) and reads a stored dict (:meth:`ModelConfig.from_dict`) as the
class of its kind. ``ModelConfig(kind=..., ...)`` builds the class of ``kind`` too. Each class names the kind
of data it reads (``data_kind``, the :class:`~wassembed.data.DataSet` kind).

Point-cloud configurations written before the split carried the histogram fields (``grid``, ``channels``,
``kernels``, ``strides``, ``hidden_activation``, ``scale_input``), unused by set networks: :meth:`from_dict`
drops them (:data:`LEGACY_SET_FIELDS`), so those model files still load.
"""

from __future__ import annotations

import hashlib
import json
import operator
from dataclasses import asdict, dataclass, fields, replace
from typing import ClassVar

from ..data import HISTOGRAMS, POINT_CLOUDS
from ..errors import InputError, explain

__all__ = ["CONFIG_VERSION", "HistogramConfig", "LEGACY_SET_FIELDS", "ModelConfig", "PRESETS", "SET_ENCODERS",
           "SetConfig", "config_digest"]

CONFIG_VERSION = 1
PRESETS = ("paper", "fast", "mlp", "set")
#: encoders of :class:`SetConfig` (see :mod:`wassembed.nn._sets`)
SET_ENCODERS = ("deepsets", "attention", "transformer")
#: fields of the histogram networks that point-cloud configurations held before the split (ignored on reading)
LEGACY_SET_FIELDS = ("grid", "channels", "kernels", "strides", "hidden_activation", "scale_input")


def _bad(field: str, expected: str, received, fix: str):
    raise InputError(explain(f"invalid model config field {field!r}", expected=expected, received=repr(received),
                             fix=fix))


def config_digest(d: dict) -> str:
    """sha256 hex digest of a config's dict (:meth:`ModelConfig.to_dict`) as canonical JSON."""
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class ModelConfig:
    """What every architecture has (frozen and validated on construction); the base of one class per kind.

    Parameters
    ----------
    kind : {"conv", "mlp", "set"}
        Convolutional or fully connected over histograms (:class:`HistogramConfig`), or a set network over
        packed point clouds (:class:`SetConfig`). ``ModelConfig(kind=..., ...)`` builds that class.
    k : int
        Number of bins of the input histograms (``k = H * W`` for a grid); for ``"set"`` the largest number of
        points of a cloud (``max_points``).
    embed_dim : int
        Embedding dimension ``d`` (paper: 50).
    hidden : tuple of int
        Widths of the dense hidden layers before the embedding.
    name : str
        Preset name or ``"custom"`` (informational).

    Examples
    --------
    >>> cfg = ModelConfig.preset("paper", grid=(28, 28))
    >>> type(cfg).__name__, cfg.kind, cfg.channels, cfg.hidden, cfg.embed_dim
    ('HistogramConfig', 'conv', (20, 10), (100,), 50)
    >>> ModelConfig.from_dict(cfg.to_dict()) == cfg
    True
    >>> len(cfg.digest())
    64
    """

    #: the kinds of network this class builds
    kinds: ClassVar[tuple[str, ...]] = ()
    #: the kind of data its networks read (a :class:`~wassembed.data.DataSet` kind)
    data_kind: ClassVar[str] = ""

    kind: str
    k: int
    embed_dim: int = 50
    hidden: tuple = (100,)
    name: str = "custom"

    def __new__(cls, *args, **kwargs):
        if cls is ModelConfig:  # the class of the kind
            cls = _class_of(kwargs.get("kind", args[0] if args else None))
        return super().__new__(cls)

    def __post_init__(self):
        for f in fields(self):
            if isinstance(getattr(self, f.name), list):
                object.__setattr__(self, f.name, tuple(getattr(self, f.name)))
        if self.kind not in self.kinds:
            _bad("kind", " or ".join(repr(x) for x in self.kinds), self.kind,
                 "use 'conv' for pixel grids, 'set' for point clouds, 'mlp' otherwise")
        if not _is_int(self.k) or self.k < 1:
            _bad("k", "a positive number of bins", self.k, "pass the histograms' number of bins")
        if not _is_int(self.embed_dim) or self.embed_dim < 1:
            _bad("embed_dim", "a positive int", self.embed_dim, "use e.g. 50 (the paper)")
        if not isinstance(self.hidden, tuple) or not all(_is_int(x) and x >= 1 for x in self.hidden):
            _bad("hidden", "a tuple of positive ints", self.hidden, "pass e.g. (100,)")
        if not isinstance(self.name, str):
            _bad("name", "a string", self.name, "pass a preset name or 'custom'")
        self._check()

    def _check(self) -> None:
        """The kind's own fields."""

    @property
    def mean_dims(self) -> int:
        """Trailing entries of the embedding that hold the input's exact mean (0 when none)."""
        return 0

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def preset(cls, name: str, *, grid=None, k: int | None = None, point_dim: int | None = None,
               max_points: int | None = None, **overrides) -> ModelConfig:
        """A named architecture for a support: :meth:`HistogramConfig.preset` (``"paper"``, ``"fast"``,
        ``"mlp"``: ``grid=`` or ``k=``) or :meth:`SetConfig.preset` (``"set"``: ``point_dim=``,
        ``max_points=``). ``overrides`` replace any field."""
        if name == "set":
            return SetConfig.preset(name, k=k, point_dim=point_dim, max_points=max_points, **overrides)
        if point_dim is not None or max_points is not None:
            _bad("point_dim/max_points", "set with the 'set' preset only", (point_dim, max_points),
                 "use ModelConfig.preset('set', point_dim=..., max_points=...) for point clouds")
        return HistogramConfig.preset(name, grid=grid, k=k, **overrides)

    def to_dict(self) -> dict:
        """JSON-able dict (tuples as lists) with a ``version`` key."""
        d = {key: list(v) if isinstance(v, tuple) else v for key, v in asdict(self).items()}
        d["version"] = CONFIG_VERSION
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        """Inverse of :meth:`to_dict`, as the class of the dict's kind; refuses unknown fields and other versions
        (point-cloud dicts written before the split: :data:`LEGACY_SET_FIELDS` are dropped)."""
        if not isinstance(d, dict):
            raise InputError(explain("model config is not a mapping", expected="a dict", received=type(d).__name__,
                                     fix="pass ModelConfig.to_dict() output"))
        d = dict(d)
        version = d.pop("version", CONFIG_VERSION)
        if version != CONFIG_VERSION:
            raise InputError(explain("unsupported model config version", expected=str(CONFIG_VERSION),
                                     received=repr(version), fix="retrain or upgrade wassembed"))
        kind_cls = _class_of(d.get("kind")) if cls is ModelConfig else cls
        if kind_cls is SetConfig:
            d = {key: v for key, v in d.items() if key not in LEGACY_SET_FIELDS}
        known = {f.name for f in fields(kind_cls)}
        extra = sorted(set(d) - known)
        if extra:
            raise InputError(explain("unknown model config fields", expected=f"fields among {sorted(known)}",
                                     received=str(extra), fix="remove them"))
        return kind_cls(**{key: tuple(v) if isinstance(v, list) else v for key, v in d.items()})

    def replace(self, **changes) -> ModelConfig:
        """A validated copy with some fields changed."""
        return replace(self, **changes)

    def digest(self) -> str:
        """sha256 hex digest of the canonical JSON of :meth:`to_dict`."""
        return config_digest(self.to_dict())


@dataclass(frozen=True)
class HistogramConfig(ModelConfig):
    """Networks over histograms of ``k`` bins: ``kind="conv"`` (a pixel grid) or ``"mlp"`` (any support).

    Parameters
    ----------
    kind, k, embed_dim, hidden, name
        As for :class:`ModelConfig`.
    grid : tuple (H, W) or None
        Pixel grid of the inputs (required for ``"conv"``).
    channels, kernels, strides : tuple of int, one entry per conv layer
        Output channels, odd kernel sizes and strides of the encoder's convolutions (``"conv"`` only).
    hidden_activation : bool
        ReLU after each dense hidden layer (the embedding layer itself is always linear).
    scale_input : bool
        Multiply the input histogram by ``k`` inside the encoder.
    """

    kinds: ClassVar[tuple[str, ...]] = ("conv", "mlp")
    data_kind: ClassVar[str] = HISTOGRAMS

    grid: tuple | None = None
    channels: tuple = (20, 10)
    kernels: tuple = (3, 5)
    strides: tuple = (1, 1)
    hidden_activation: bool = True
    scale_input: bool = True

    def _check(self) -> None:
        for f in ("channels", "kernels", "strides"):
            v = getattr(self, f)
            if not isinstance(v, tuple) or not all(_is_int(x) and x >= 1 for x in v):
                _bad(f, "a tuple of positive ints", v, f"pass e.g. {getattr(HistogramConfig, f)!r}")
        if not isinstance(self.hidden_activation, bool) or not isinstance(self.scale_input, bool):
            _bad("hidden_activation/scale_input", "booleans", (self.hidden_activation, self.scale_input),
                 "pass True or False")
        if self.grid is not None:
            g = self.grid
            if not isinstance(g, tuple) or len(g) != 2 or not all(_is_int(x) and x >= 1 for x in g):
                _bad("grid", "(H, W) with positive ints", g, "pass the images' shape")
            if g[0] * g[1] != self.k:
                _bad("grid", f"H * W = k = {self.k}", g, "pass the grid of the histograms")
        if self.kind == "conv":
            if self.grid is None:
                _bad("grid", "a grid (H, W) for kind='conv'", None, "use kind='mlp' for supports without a grid")
            n = len(self.channels)
            if n == 0 or len(self.kernels) != n or len(self.strides) != n:
                _bad("channels/kernels/strides", "tuples of one equal, nonzero length",
                     (self.channels, self.kernels, self.strides), "give one kernel and stride per conv layer")
            if any(kk % 2 == 0 for kk in self.kernels):
                _bad("kernels", "odd kernel sizes ('same' padding)", self.kernels, "use 3, 5 or 7")
            h, w = self.conv_shape()
            if h < 1 or w < 1:
                _bad("strides", "strides that leave at least one pixel", self.strides, "use fewer strided layers")

    @classmethod
    def preset(cls, name: str, *, grid=None, k: int | None = None, **overrides) -> HistogramConfig:
        """A named architecture for histograms on a grid (``grid=``) or ``k`` bins.

        ``"paper"``: conv 20@3×3 → conv 10@5×5 → dense 100 → dense ``d`` (the DWE encoder);
        ``"fast"``: conv 16@3×3 → conv 32@3×3 → conv 64@3×3, all stride 2 → dense 256 → dense ``d``
        (measured on MNIST: more accurate than ``"paper"`` at ~25× its CPU embedding speed);
        ``"mlp"``: dense 512 → dense 256 → dense ``d``. Without a grid every preset is an MLP.
        ``overrides`` replace any field.
        """
        if grid is not None:
            grid = (int(grid[0]), int(grid[1]))
            k = grid[0] * grid[1]
        if k is None:
            raise InputError(explain("a preset needs a support", expected="grid=(H, W) or k=",
                                     received="neither", fix="pass the histograms' grid or number of bins"))
        if name == "paper" and grid is not None:
            base = dict(kind="conv", channels=(20, 10), kernels=(3, 5), strides=(1, 1), hidden=(100,))
        elif name == "fast" and grid is not None:
            base = dict(kind="conv", channels=(16, 32, 64), kernels=(3, 3, 3), strides=(2, 2, 2), hidden=(256,))
        elif name in PRESETS and name != "set":
            base = dict(kind="mlp", channels=(), kernels=(), strides=(), hidden=(512, 256))
        else:
            raise InputError(explain("unknown model preset", expected=f"one of {', '.join(PRESETS)}",
                                     received=repr(name), fix="pick a preset or build a ModelConfig"))
        base.update(k=int(k), grid=grid, name=name)
        base.update(overrides)
        return cls(**base)

    def conv_shape(self) -> tuple[int, int]:
        """Spatial shape after the encoder's convolutions (``"conv"`` only)."""
        h, w = self.grid
        for kk, s in zip(self.kernels, self.strides):
            h, w = _conv_out(h, kk, s), _conv_out(w, kk, s)
        return h, w


@dataclass(frozen=True)
class SetConfig(ModelConfig):
    """Set networks over packed point clouds ``(n, kmax, point_dim + 1)`` (:func:`wassembed.nn.pack_clouds`).

    Parameters
    ----------
    kind : "set"
    k : int
        The largest number of points of a cloud (``max_points``).
    embed_dim, hidden, name
        As for :class:`ModelConfig`.
    point_dim : int
        Dimension ``d`` of the points.
    set_encoder : {"deepsets", "attention", "transformer"}
        Weighted-mean pooling of per-point features, learned queries attending over the points, or
        self-attention blocks then weighted-mean pooling (all invariant to order, padding and duplication).
    set_width, set_layers, set_heads, set_queries : int
        Per-point feature width; per-point MLP depth (or number of attention blocks); attention heads (divide
        ``set_width``); learned queries (``"attention"``).
    decoder_points : int
        Number ``m`` of points of a decoded cloud.
    centre : bool
        Encode the centred cloud and append its exact weighted mean (the last ``point_dim`` entries).
    coord_scale : float
        Typical size of the clouds (:func:`wassembed.nn.suggest_coord_scale`): coordinates enter the networks
        divided by it and the embedding is multiplied by it.

    Examples
    --------
    >>> cfg = ModelConfig.preset("set", point_dim=3, max_points=30, embed_dim=8)
    >>> type(cfg).__name__, cfg.max_points, cfg.mean_dims
    ('SetConfig', 30, 3)
    """

    kinds: ClassVar[tuple[str, ...]] = ("set",)
    data_kind: ClassVar[str] = POINT_CLOUDS

    point_dim: int = 0
    set_encoder: str = "deepsets"
    set_width: int = 128
    set_layers: int = 3
    set_heads: int = 4
    set_queries: int = 8
    decoder_points: int = 64
    centre: bool = True
    coord_scale: float = 1.0

    def _check(self) -> None:
        if not _is_int(self.point_dim) or self.point_dim < 1:
            _bad("point_dim", "a positive int for kind='set'", self.point_dim, "pass the clouds' dimension d")
        if self.set_encoder not in SET_ENCODERS:
            _bad("set_encoder", f"one of {', '.join(SET_ENCODERS)}", self.set_encoder, "use 'deepsets'")
        for f in ("set_width", "set_layers", "set_heads", "set_queries", "decoder_points"):
            if not _is_int(getattr(self, f)) or getattr(self, f) < 1:
                _bad(f, "a positive int", getattr(self, f), f"pass e.g. {getattr(SetConfig, f)!r}")
        if self.set_width % self.set_heads:
            _bad("set_heads", f"a divisor of set_width ({self.set_width})", self.set_heads, "use e.g. 4")
        if not isinstance(self.centre, bool):
            _bad("centre", "a boolean", self.centre, "pass True or False")
        if isinstance(self.coord_scale, bool) or not isinstance(self.coord_scale, (int, float)) \
                or not 0 < self.coord_scale < float("inf"):
            _bad("coord_scale", "a positive finite number", self.coord_scale, "pass the coordinates' typical size")
        object.__setattr__(self, "coord_scale", float(self.coord_scale))  # 10 and 10.0: one digest
        if self.centre and self.embed_dim <= self.point_dim:
            _bad("embed_dim", f"more than point_dim ({self.point_dim}) with centre=True", self.embed_dim,
                 "the mean takes point_dim entries of the embedding: raise embed_dim")

    @property
    def max_points(self) -> int:
        """The largest number of points of a cloud (``k``)."""
        return self.k

    @property
    def mean_dims(self) -> int:
        """``point_dim`` with ``centre`` (the exact mean ends the embedding), else 0."""
        return self.point_dim if self.centre else 0

    @classmethod
    def preset(cls, name: str = "set", *, k: int | None = None, point_dim: int | None = None,
               max_points: int | None = None, **overrides) -> SetConfig:
        """The ``"set"`` architecture for clouds of dimension ``point_dim`` with at most ``max_points`` points.

        DeepSets, per-point MLP 64 → 64 → 64 on the centred coordinates, mean weighted by the masses, dense 256
        → dense ``d - point_dim``, exact mean appended; 64 decoded points (DeepSets: on MNIST clouds as
        accurate as attention pooling and a 2-block transformer at equal training CPU time, and the fastest;
        width 64: within 0.002 of the Pearson r of width 128 after the same training, 3× faster to serve and 2×
        to train; see ``docs/benchmarks-clouds.md``; ``set_width=128`` for the last digit of accuracy). Pass
        ``coord_scale=suggest_coord_scale(clouds)``. ``overrides`` replace any field.
        """
        if name != "set":
            raise InputError(explain("unknown point-cloud preset", expected="'set'", received=repr(name),
                                     fix="use ModelConfig.preset('set', point_dim=..., max_points=...)"))
        if point_dim is None or (max_points is None and k is None):
            raise InputError(explain("the 'set' preset needs the clouds' shape", expected="point_dim= and "
                                     "max_points=", received=f"point_dim={point_dim}, max_points={max_points}",
                                     fix="pass e.g. point_dim=clouds.d, max_points=int(clouds.sizes.max())"))
        base = dict(kind="set", k=_as_int(max_points if max_points is not None else k), point_dim=_as_int(point_dim),
                    hidden=(256,), set_width=64, name=name)
        return cls(**{**base, **overrides})


def _class_of(kind) -> type:
    """The config class of a network ``kind``; InputError for an unknown one."""
    for c in (HistogramConfig, SetConfig):
        if kind in c.kinds:
            return c
    _bad("kind", "'conv', 'mlp' or 'set'", kind, "use 'conv' for pixel grids, 'set' for point clouds, 'mlp' otherwise")


def _as_int(x):
    """``x`` as an int when it is an integer of any type (numpy's included), else unchanged (for the checks)."""
    try:
        return x if isinstance(x, bool) else operator.index(x)
    except TypeError:
        return x


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _conv_out(n: int, k: int, s: int) -> int:
    return (n + 2 * (k // 2) - k) // s + 1

