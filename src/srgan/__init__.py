"""srgan: photo-realistic single-image super-resolution (SRResNet / SRGAN, Ledig et al. 2017).

    from srgan import Upscaler
    up = Upscaler.from_pretrained("srresnet_x4")
    big = up.upscale(pil_image)
"""

from srgan.weights import ModelFileError, list_models, load_generator, save_generator

__version__ = "0.1.0"

__all__ = ["ModelFileError", "Upscaler", "list_models", "load_generator", "save_generator"]


def __getattr__(name: str):  # lazy: importing srgan must not pull in the inference stack
    if name == "Upscaler":
        from srgan.inference import Upscaler

        return Upscaler
    raise AttributeError(name)
