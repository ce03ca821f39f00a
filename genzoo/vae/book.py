"""The convolutional VAE of the book's ch. 7 (Learn Generative AI with PyTorch): 256-pixel face images.

    encoder: conv1 (3x3 stride 2) -> ReLU -> conv2 (3x3 stride 2) -> batch2 (BatchNorm) -> ReLU
             -> conv3 (3x3 stride 2, no padding) -> ReLU -> flatten -> linear1 -> ReLU
             -> linear2 = mean, linear3 = log of the standard deviation
    decoder: decoder_lin (Linear, ReLU, Linear, ReLU) -> unflatten -> decoder_conv (three 3x3 stride-2 transposed
             convs, BatchNorm + ReLU between) -> sigmoid

Module names are the book's, so its `torch.save(vae.state_dict())` loads key for key. The book's pixels are in
[0, 1]; like genzoo's other VAEs this class takes and returns [-1, 1] and converts at the boundary. Its encoder
predicts log(std); encode() returns logvar = 2 * log(std), genzoo's convention.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import CheckpointError, ConfigError
from ..pretrained import Config
from .model import VAEBase


@dataclass
class BookConvVAEConfig(Config):
    model_type = "book_conv"
    LIMITS = {"in_channels": (1, 64), "channels": (1, 1 << 14), "hidden": (1, 1 << 16), "latent_dim": (1, 1 << 16),
              "image_size": (16, 1 << 14)}

    in_channels: int = 3
    channels: tuple = (8, 16, 32)   # conv1, conv2, conv3 outputs
    hidden: int = 1024              # linear1's width
    latent_dim: int = 100
    image_size: int = 256

    def __post_init__(self):
        super().__post_init__()
        if len(self.channels) != 3 or (self.image_size - 8) % 8 or self.image_size < 16:
            raise ConfigError(f"the book's conv VAE has three convs and takes 8k + 8 pixel images (256): got "
                              f"channels={self.channels}, image_size={self.image_size}")

    @property
    def bottom_size(self) -> int:
        """conv3's output side: S/2 -> S/4 -> (S/4 - 3) // 2 + 1, which the decoder maps back to S."""
        return (self.image_size // 4 - 3) // 2 + 1


class BookEncoder(nn.Module):
    def __init__(self, c: BookConvVAEConfig):
        super().__init__()
        c1, c2, c3 = c.channels
        self.conv1 = nn.Conv2d(c.in_channels, c1, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, stride=2, padding=1)
        self.batch2 = nn.BatchNorm2d(c2)
        self.conv3 = nn.Conv2d(c2, c3, 3, stride=2, padding=0)
        self.linear1 = nn.Linear(c3 * c.bottom_size ** 2, c.hidden)
        self.linear2 = nn.Linear(c.hidden, c.latent_dim)   # mean
        self.linear3 = nn.Linear(c.hidden, c.latent_dim)   # log(std)

    def forward(self, x):
        x = F.relu(self.conv3(F.relu(self.batch2(self.conv2(F.relu(self.conv1(x)))))))
        h = F.relu(self.linear1(x.flatten(1)))
        return self.linear2(h), 2 * self.linear3(h)


class BookDecoder(nn.Module):
    def __init__(self, c: BookConvVAEConfig):
        super().__init__()
        c1, c2, c3 = c.channels
        self.shape = (c3, c.bottom_size, c.bottom_size)
        self.decoder_lin = nn.Sequential(nn.Linear(c.latent_dim, c.hidden), nn.ReLU(True),
                                         nn.Linear(c.hidden, math.prod(self.shape)), nn.ReLU(True))
        self.decoder_conv = nn.Sequential(
            nn.ConvTranspose2d(c3, c2, 3, stride=2, output_padding=1), nn.BatchNorm2d(c2), nn.ReLU(True),
            nn.ConvTranspose2d(c2, c1, 3, stride=2, padding=1, output_padding=1), nn.BatchNorm2d(c1), nn.ReLU(True),
            nn.ConvTranspose2d(c1, c.in_channels, 3, stride=2, padding=1, output_padding=1))

    def forward(self, z):
        return self.decoder_conv(self.decoder_lin(z).view(-1, *self.shape))


class BookConvVAE(VAEBase):
    def __init__(self, config: BookConvVAEConfig):
        super().__init__()
        self.config = config
        self.encoder = BookEncoder(config)
        self.decoder = BookDecoder(config)

    def encode(self, x: torch.Tensor):
        """Images (N, C, S, S) in [-1, 1] -> (mean, logvar), each (N, latent_dim)."""
        self.check_images(x, size=(self.config.image_size, self.config.image_size))
        return self.encoder((self.to_model(x) + 1) / 2)  # the book trains on [0, 1] pixels

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        self.check_latents(z)
        return self.decoder(self.to_model(z))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents (N, latent_dim) -> images (N, C, S, S) in [-1, 1]."""
        return torch.sigmoid(self.decode_logits(z)) * 2 - 1

    def forward(self, x: torch.Tensor, generator=None):
        mean, logvar = self.encode(x)
        return self.decode_logits(self.reparameterize(mean, logvar, generator)), mean, logvar


def is_book_conv_vae(state_dict: dict) -> bool:
    return "encoder.conv1.weight" in state_dict and "decoder.decoder_lin.0.weight" in state_dict


def convert_book_conv_vae(state_dict: dict, path="<checkpoint>"):
    """-> (BookConvVAEConfig, state dict): the names are the book's; the sizes come from the shapes."""
    try:
        c1, in_channels = state_dict["encoder.conv1.weight"].shape[:2]
        c2, c3 = state_dict["encoder.conv2.weight"].shape[0], state_dict["encoder.conv3.weight"].shape[0]
        hidden, flat = state_dict["encoder.linear1.weight"].shape
        latent_dim = state_dict["encoder.linear2.weight"].shape[0]
    except KeyError as e:
        raise CheckpointError(f"{path} looks like the book's ch. 7 conv VAE but lacks {e.args[0]}") from None
    side = math.isqrt(flat // c3)
    if side * side * c3 != flat:
        raise CheckpointError(f"{path}: linear1 takes {flat} inputs, not {c3} x S x S")
    config = BookConvVAEConfig(in_channels=in_channels, channels=(c1, c2, c3), hidden=hidden, latent_dim=latent_dim,
                               image_size=8 * side + 8)
    extra = [k for k in state_dict if not re.match(r"^(encoder|decoder)\.", k)]
    if extra:
        raise CheckpointError(f"{path}: keys outside the book's conv VAE: {extra[:8]}")
    return config, dict(state_dict)
