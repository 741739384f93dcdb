"""Model configurations: presets ``paper``, ``fast``, ``mlp`` (histograms) and ``set`` (point clouds),
validated and hashable."""

from __future__ import annotations

import hashlib
import json
import operator
from dataclasses import asdict, dataclass, fields, replace

from ..errors import InputError, explain

__all__ = ["CONFIG_VERSION", "ModelConfig", "PRESETS", "SET_ENCODERS", "SET_FIELDS"]

CONFIG_VERSION = 1
PRESETS = ("paper", "fast", "mlp", "set")
#: encoders of ``kind="set"`` (see :mod:`wassembed.nn._sets`)
SET_ENCODERS = ("deepsets", "attention", "transformer")
#: fields used by ``kind="set"`` only: left out of :meth:`ModelConfig.to_dict` for the other kinds, so the
#: dicts and digests of histogram models are those of the versions without them
SET_FIELDS = ("point_dim", "set_encoder", "set_width", "set_layers", "set_heads", "set_queries", "decoder_points",
              "centre", "coord_scale")


def _bad(field: str, expected: str, received, fix: str):
    raise InputError(explain(f"invalid model config field {field!r}", expected=expected, received=repr(received),
                             fix=fix))


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the encoder/decoder pair (frozen and validated on construction).

    Parameters
    ----------
    kind : {"conv", "mlp", "set"}
        Convolutional (needs ``grid``), fully connected, or a set network over packed point clouds
        ``(n, kmax, point_dim + 1)`` (:func:`wassembed.nn.pack_clouds`).
    k : int
        Number of bins of the input histograms, ``k = H * W`` for a grid; for ``"set"`` the largest number of
        points of a cloud (``kmax``).
    grid : tuple (H, W) or None
        Pixel grid of the inputs (required for ``"conv"``).
    embed_dim : int
        Embedding dimension ``d`` (paper: 50).
    channels, kernels, strides : tuple of int, one entry per conv layer
        Output channels, odd kernel sizes and strides of the encoder's convolutions (``"conv"`` only).
    hidden : tuple of int
        Widths of the dense hidden layers between the convolutions (or the input) and the embedding.
    hidden_activation : bool
        ReLU after each dense hidden layer (the embedding layer itself is always linear).
    scale_input : bool
        Multiply the input histogram by ``k`` inside the encoder.
    name : str
        Preset name or ``"custom"`` (informational).
    point_dim : int
        ``"set"`` only (as all below): dimension ``d`` of the points (0 for the other kinds).
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
    >>> cfg = ModelConfig.preset("paper", grid=(28, 28))
    >>> cfg.kind, cfg.channels, cfg.hidden, cfg.embed_dim
    ('conv', (20, 10), (100,), 50)
    >>> ModelConfig.from_dict(cfg.to_dict()) == cfg
    True
    >>> len(cfg.digest())
    64
    """

    kind: str
    k: int
    grid: tuple | None = None
    embed_dim: int = 50
    channels: tuple = (20, 10)
    kernels: tuple = (3, 5)
    strides: tuple = (1, 1)
    hidden: tuple = (100,)
    hidden_activation: bool = True
    scale_input: bool = True
    name: str = "custom"
    point_dim: int = 0
    set_encoder: str = "deepsets"
    set_width: int = 128
    set_layers: int = 3
    set_heads: int = 4
    set_queries: int = 8
    decoder_points: int = 64
    centre: bool = True
    coord_scale: float = 1.0

    def __post_init__(self):
        for f in ("grid", "channels", "kernels", "strides", "hidden"):
            v = getattr(self, f)
            if isinstance(v, list):
                object.__setattr__(self, f, tuple(v))
        if self.kind not in ("conv", "mlp", "set"):
            _bad("kind", "'conv', 'mlp' or 'set'", self.kind,
                 "use 'conv' for pixel grids, 'set' for point clouds, 'mlp' otherwise")
        if not _is_int(self.k) or self.k < 1:
            _bad("k", "a positive number of bins", self.k, "pass the histograms' number of bins")
        if not _is_int(self.embed_dim) or self.embed_dim < 1:
            _bad("embed_dim", "a positive int", self.embed_dim, "use e.g. 50 (the paper)")
        for f in ("channels", "kernels", "strides", "hidden"):
            v = getattr(self, f)
            if not isinstance(v, tuple) or not all(_is_int(x) and x >= 1 for x in v):
                _bad(f, "a tuple of positive ints", v, f"pass e.g. {getattr(ModelConfig, f)!r}")
        if not isinstance(self.hidden_activation, bool) or not isinstance(self.scale_input, bool):
            _bad("hidden_activation/scale_input", "booleans", (self.hidden_activation, self.scale_input),
                 "pass True or False")
        if not isinstance(self.name, str):
            _bad("name", "a string", self.name, "pass a preset name or 'custom'")
        if self.grid is not None:
            g = self.grid
            if not isinstance(g, tuple) or len(g) != 2 or not all(_is_int(x) and x >= 1 for x in g):
                _bad("grid", "(H, W) with positive ints", g, "pass the images' shape")
            if g[0] * g[1] != self.k:
                _bad("grid", f"H * W = k = {self.k}", g, "pass the grid of the histograms")
        self._check_set()
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

    def _check_set(self) -> None:
        """The ``"set"`` fields (``point_dim`` is 0 exactly for the other kinds)."""
        if not _is_int(self.point_dim) or self.point_dim < (1 if self.kind == "set" else 0):
            _bad("point_dim", "a positive int for kind='set'", self.point_dim, "pass the clouds' dimension d")
        if self.kind != "set":
            if self.point_dim:
                _bad("point_dim", f"0 for kind={self.kind!r}", self.point_dim, "use kind='set' for point clouds")
            return
        if self.set_encoder not in SET_ENCODERS:
            _bad("set_encoder", f"one of {', '.join(SET_ENCODERS)}", self.set_encoder, "use 'deepsets'")
        for f in ("set_width", "set_layers", "set_heads", "set_queries", "decoder_points"):
            if not _is_int(getattr(self, f)) or getattr(self, f) < 1:
                _bad(f, "a positive int", getattr(self, f), f"pass e.g. {getattr(ModelConfig, f)!r}")
        if self.set_width % self.set_heads:
            _bad("set_heads", f"a divisor of set_width ({self.set_width})", self.set_heads, "use e.g. 4")
        if not isinstance(self.centre, bool):
            _bad("centre", "a boolean", self.centre, "pass True or False")
        if isinstance(self.coord_scale, bool) or not isinstance(self.coord_scale, (int, float)) \
                or not 0 < self.coord_scale < float("inf"):
            _bad("coord_scale", "a positive finite number", self.coord_scale, "pass the coordinates' typical size")
        object.__setattr__(self, "coord_scale", float(self.coord_scale))  # 10 and 10.0: one digest
        if self.grid is not None:
            _bad("grid", "None for kind='set'", self.grid, "point clouds have no grid")
        if self.centre and self.embed_dim <= self.point_dim:
            _bad("embed_dim", f"more than point_dim ({self.point_dim}) with centre=True", self.embed_dim,
                 "the mean takes point_dim entries of the embedding: raise embed_dim")

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def preset(cls, name: str, *, grid=None, k: int | None = None, point_dim: int | None = None,
               max_points: int | None = None, **overrides) -> ModelConfig:
        """A named architecture for a support.

        ``"paper"``: conv 20@3×3 → conv 10@5×5 → dense 100 → dense ``d`` (the DWE encoder);
        ``"fast"``: conv 16@3×3 → conv 32@3×3 → conv 64@3×3, all stride 2 → dense 256 → dense ``d``
        (measured on MNIST: more accurate than ``"paper"`` at ~25× its CPU embedding speed);
        ``"mlp"``: dense 512 → dense 256 → dense ``d``. Without a grid every preset is an MLP.
        ``"set"`` (point clouds of dimension ``point_dim`` with at most ``max_points`` points): DeepSets,
        per-point MLP 64 → 64 → 64 on the centred coordinates, mean weighted by the masses, dense 256 →
        dense ``d - point_dim``, exact mean appended; 64 decoded points (DeepSets: on MNIST clouds as accurate
        as attention pooling and a 2-block transformer at equal training CPU time, and the fastest; width 64:
        within 0.002 of the Pearson r of width 128 after the same training, 3× faster to serve and 2× to
        train; see ``docs/benchmarks-clouds.md``; ``set_width=128`` for the last digit of accuracy). Pass
        ``coord_scale=suggest_coord_scale(clouds)``.
        ``overrides`` replace any field.
        """
        if name == "set":
            if point_dim is None or (max_points is None and k is None):
                raise InputError(explain("the 'set' preset needs the clouds' shape", expected="point_dim= and "
                                         "max_points=", received=f"point_dim={point_dim}, max_points={max_points}",
                                         fix="pass e.g. point_dim=clouds.d, max_points=int(clouds.sizes.max())"))
            base = dict(kind="set", k=_as_int(max_points if max_points is not None else k),
                        point_dim=_as_int(point_dim), channels=(), kernels=(), strides=(), hidden=(256,),
                        set_width=64, name=name)
            return cls(**{**base, **overrides})
        if point_dim is not None or max_points is not None:
            _bad("point_dim/max_points", "set with the 'set' preset only", (point_dim, max_points),
                 "use ModelConfig.preset('set', point_dim=..., max_points=...) for point clouds")
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
        elif name in PRESETS:
            base = dict(kind="mlp", channels=(), kernels=(), strides=(), hidden=(512, 256))
        else:
            raise InputError(explain("unknown model preset", expected=f"one of {', '.join(PRESETS)}",
                                     received=repr(name), fix="pick a preset or build a ModelConfig"))
        base.update(k=int(k), grid=grid, name=name)
        base.update(overrides)
        return cls(**base)

    def to_dict(self) -> dict:
        """JSON-able dict (tuples as lists) with a ``version`` key (the ``"set"`` fields for ``"set"`` only)."""
        d = asdict(self)
        if self.kind != "set":
            d = {key: v for key, v in d.items() if key not in SET_FIELDS}
        d = {key: list(v) if isinstance(v, tuple) else v for key, v in d.items()}
        d["version"] = CONFIG_VERSION
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        """Inverse of :meth:`to_dict`; refuses unknown fields and other versions."""
        if not isinstance(d, dict):
            raise InputError(explain("model config is not a mapping", expected="a dict", received=type(d).__name__,
                                     fix="pass ModelConfig.to_dict() output"))
        d = dict(d)
        version = d.pop("version", CONFIG_VERSION)
        if version != CONFIG_VERSION:
            raise InputError(explain("unsupported model config version", expected=str(CONFIG_VERSION),
                                     received=repr(version), fix="retrain or upgrade wassembed"))
        known = {f.name for f in fields(cls)}
        extra = sorted(set(d) - known)
        if extra:
            raise InputError(explain("unknown model config fields", expected=f"fields among {sorted(known)}",
                                     received=str(extra), fix="remove them"))
        return cls(**{key: tuple(v) if isinstance(v, list) else v for key, v in d.items()})

    def replace(self, **changes) -> ModelConfig:
        """A validated copy with some fields changed."""
        return replace(self, **changes)

    def digest(self) -> str:
        """sha256 hex digest of the canonical JSON of :meth:`to_dict`."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    def conv_shape(self) -> tuple[int, int]:
        """Spatial shape after the encoder's convolutions (``"conv"`` only)."""
        h, w = self.grid
        for kk, s in zip(self.kernels, self.strides):
            h, w = _conv_out(h, kk, s), _conv_out(w, kk, s)
        return h, w


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

