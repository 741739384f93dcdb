"""Networks (torch): model configurations (one class per kind of data), encoders and decoders (histograms and
packed point clouds), the latent distance, the reconstruction losses, the device resolver."""

from ._config import CONFIG_VERSION, PRESETS, SET_ENCODERS, HistogramConfig, ModelConfig, SetConfig
from ._device import resolve_device
from ._distance import LatentDistance, safe_sqrt
from ._networks import build_decoder, build_encoder
from ._reconstruction import cloud_reconstruction_loss, reconstruction_kl
from ._sets import SetDecoder, SetEncoder, pack_clouds, suggest_coord_scale, unpack_cloud

__all__ = [
    "CONFIG_VERSION",
    "PRESETS",
    "SET_ENCODERS",
    "ModelConfig",
    "HistogramConfig",
    "SetConfig",
    "resolve_device",
    "LatentDistance",
    "safe_sqrt",
    "build_decoder",
    "build_encoder",
    "reconstruction_kl",
    "cloud_reconstruction_loss",
    "SetDecoder",
    "SetEncoder",
    "pack_clouds",
    "suggest_coord_scale",
    "unpack_cloud",
]
