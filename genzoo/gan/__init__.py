"""GANs: MLP GAN, DCGAN and their conditional variants, with BCE / LSGAN / WGAN-GP training.

    from genzoo import gan
    G = gan.from_pretrained("mnist-dcgan")          # the embedded conditional MNIST DCGAN
    digits = G.sample(16, seed=0, labels=3)         # (16, 1, 28, 28) in [-1, 1]
    D = gan.discriminator_from_pretrained("mnist-dcgan")
    p_real = D.probability(digits, labels=3)        # D returns logits; probability() applies the sigmoid

Generators take z shaped (n, latent_dim) (a DCGAN also takes (n, latent_dim, 1, 1)) and return:
  * image GANs (DCGAN, MLP with a (C, H, W) data_shape): images (n, C, H, W) in [-1, 1];
  * the book's curve GAN (PRESETS["curve"]): points (n, 2), columns (x, y);
  * the book's number GAN (PRESETS["numbers"]): vectors (n, 100) >= 0; data.decode_onehot -> integers (n,).
Loads genzoo folders, pytorch/examples dcgan checkpoints (netG/netD_epoch_N.pth) and yunjey/pytorch-tutorial
MLP GAN checkpoints (G.ckpt / D.ckpt); see convert.py.
"""
from . import data, losses
from .loading import discriminator_from_pretrained, from_pretrained, load_pair, save_gan
from .models import (PRESETS, DCGANConfig, DCGANDiscriminator, DCGANGenerator, Discriminator, Generator,
                     MLPDiscriminator, MLPGANConfig, MLPGenerator, build, register_discriminator, register_generator)
from .train import new_gan, train

__all__ = ["from_pretrained", "discriminator_from_pretrained", "load_pair", "save_gan", "train", "new_gan", "build",
           "PRESETS", "DCGANConfig", "MLPGANConfig", "DCGANGenerator", "DCGANDiscriminator", "MLPGenerator",
           "MLPDiscriminator", "Generator", "Discriminator", "register_generator", "register_discriminator", "data",
           "losses"]
