"""Network architectures: pure nn.Modules, no file I/O beyond VGG weights."""

from srgan.nets.discriminator import Discriminator
from srgan.nets.srresnet import SRResNet
from srgan.nets.vgg import VGGFeatures, VGGWeightsMissing

__all__ = ["Discriminator", "SRResNet", "VGGFeatures", "VGGWeightsMissing"]
