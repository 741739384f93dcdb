"""Model configurations: presets ``paper``, ``fast`` and ``mlp``, validated and hashable."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace

from ..errors import InputError, explain

__all__ = ["CONFIG_VERSION", "ModelConfig", "PRESETS"]

CONFIG_VERSION = 1
PRESETS = ("paper", "fast", "mlp")


def _bad(field: str, expected: str, received, fix: str):
    raise InputError(explain(f"invalid model config field {field!r}", expected=expected, received=repr(received),
                             fix=fix))


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the encoder/decoder pair (frozen and validated on construction).

    Parameters
    ----------
    kind : {"conv", "mlp"}
        Convolutional (needs ``grid``) or fully connected.
    k : int
        Number of bins of the input histograms, ``k = H * W`` for a grid.
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

    def __post_init__(self):
        for f in ("grid", "channels", "kernels", "strides", "hidden"):
            v = getattr(self, f)
            if isinstance(v, list):
                object.__setattr__(self, f, tuple(v))
        if self.kind not in ("conv", "mlp"):
            _bad("kind", "'conv' or 'mlp'", self.kind, "use 'conv' for pixel grids, 'mlp' otherwise")
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

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def preset(cls, name: str, *, grid=None, k: int | None = None, **overrides) -> ModelConfig:
        """A named architecture for a support.

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
        elif name in PRESETS:
            base = dict(kind="mlp", channels=(), kernels=(), strides=(), hidden=(512, 256))
        else:
            raise InputError(explain("unknown model preset", expected=f"one of {', '.join(PRESETS)}",
                                     received=repr(name), fix="pick a preset or build a ModelConfig"))
        base.update(k=int(k), grid=grid, name=name)
        base.update(overrides)
        return cls(**base)

    def to_dict(self) -> dict:
        """JSON-able dict (tuples as lists) with a ``version`` key."""
        d = asdict(self)
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


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _conv_out(n: int, k: int, s: int) -> int:
    return (n + 2 * (k // 2) - k) // s + 1

