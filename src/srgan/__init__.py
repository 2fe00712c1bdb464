"""srgan: photo-realistic single-image super-resolution (SRResNet / SRGAN, Ledig et al. 2017).

    from srgan import Upscaler
    up = Upscaler.from_pretrained("srresnet_x4")
    big = up.upscale(pil_image)

Names are imported on first use, so `import srgan.imageio` does not pull in torch.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "Upscaler": "srgan.inference",
    "LoadedModel": "srgan.weights",
    "ModelFileError": "srgan.weights",
    "list_models": "srgan.weights",
    "load_generator": "srgan.weights",
    "save_generator": "srgan.weights",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'srgan' has no attribute {name!r}")
