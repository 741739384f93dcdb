"""Networks (torch): model configurations (one class per kind of data), encoders and decoders (histograms and
packed point clouds), the latent distance, the reconstruction losses, the device resolver."""

from ._config import CONFIG_VERSION as CONFIG_VERSION
from ._config import PRESETS, HistogramConfig, ModelConfig, SetConfig
from ._config import SET_ENCODERS as SET_ENCODERS
from ._device import resolve_device as resolve_device
from ._distance import LatentDistance
from ._distance import safe_sqrt as safe_sqrt
from ._networks import build_decoder, build_encoder
from ._reconstruction import cloud_reconstruction_loss as cloud_reconstruction_loss
from ._reconstruction import reconstruction_kl as reconstruction_kl
from ._sets import SetDecoder, SetEncoder, pack_clouds, suggest_coord_scale, unpack_cloud

#: what users call; the names imported ``as`` themselves are the package's own (the other stages import them
#: from here), not public
__all__ = [
    "ModelConfig",
    "HistogramConfig",
    "SetConfig",
    "PRESETS",
    "build_encoder",
    "build_decoder",
    "LatentDistance",
    "SetEncoder",
    "SetDecoder",
    "pack_clouds",
    "unpack_cloud",
    "suggest_coord_scale",
]
