"""Variational autoencoders: pytorch/examples' MLP VAE, a convolutional VAE / autoencoder for small images, and
Stable Diffusion's AutoencoderKL, all behind one interface:

    from genzoo import vae
    model = vae.from_pretrained("sd-vae-ft-mse", device="auto")   # or "mnist-vae", a folder, a file, a repo id
    mean, logvar = model.encode(images)      # images (N, C, H, W) in [-1, 1]
    images = model.decode(mean)              # back in [-1, 1]
    grid = model.sample(64, seed=0)          # decoded draws from the prior

Latent tools (interpolation, attribute arithmetic) are in genzoo.vae.latent; training in genzoo.vae.train.
"""
from .autoencoder_kl import AutoencoderKL, AutoencoderKLConfig
from .latent import attribute_vector, interpolate, latent_arithmetic, slerp
from .loading import build_model, from_pretrained
from .model import ConvVAE, ConvVAEConfig, MLPVAE, MLPVAEConfig, VAEBase

__all__ = ["from_pretrained", "build_model", "AutoencoderKL", "AutoencoderKLConfig", "ConvVAE", "ConvVAEConfig",
           "MLPVAE", "MLPVAEConfig", "VAEBase", "interpolate", "slerp", "attribute_vector", "latent_arithmetic"]
