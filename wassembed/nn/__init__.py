"""Networks (torch): model configurations, encoders and decoders, the latent distance, the device resolver."""

from ._config import CONFIG_VERSION, PRESETS, ModelConfig
from ._device import resolve_device
from ._distance import LatentDistance, safe_sqrt
from ._networks import build_decoder, build_encoder
from ._reconstruction import reconstruction_kl

__all__ = [
    "CONFIG_VERSION",
    "PRESETS",
    "ModelConfig",
    "resolve_device",
    "LatentDistance",
    "safe_sqrt",
    "build_decoder",
    "build_encoder",
    "reconstruction_kl",
]
