"""CycleGAN (Zhu et al. 2017): unpaired image-to-image translation, written from scratch.

    from genzoo import cyclegan
    G = cyclegan.from_pretrained("horse2zebra", device="auto")      # junyanz's published generator
    zebra = cyclegan.translate(G, "horse.jpg")                      # -> PIL image, same size as the input
    y = cyclegan.translate_tensor(G, x)                             # (N, 3, H, W) in [-1, 1], any H, W

Generators take and return images in [-1, 1]. Train your own with `genzoo train cyclegan` or cyclegan.train.train.
"""
from .loading import discriminator_from_pretrained, from_pretrained, load_cyclegan, load_discriminator
from .model import (CycleGAN, DiscriminatorConfig, GeneratorConfig, NLayerDiscriminator, ResnetGenerator,
                    UnetGenerator, build_discriminator, build_generator, register_discriminator, register_generator)
from .translate import translate, translate_files, translate_tensor

__all__ = ["from_pretrained", "discriminator_from_pretrained", "load_cyclegan", "load_discriminator", "translate", "translate_tensor", "translate_files",
           "GeneratorConfig", "DiscriminatorConfig", "ResnetGenerator", "UnetGenerator", "NLayerDiscriminator",
           "CycleGAN", "build_generator", "build_discriminator", "register_generator", "register_discriminator"]
