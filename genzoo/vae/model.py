"""Variational autoencoders on flat vectors and on small images, plus what every genzoo VAE shares.

Every VAE here (and AutoencoderKL in autoencoder_kl.py) has the same interface:

    mean, logvar = model.encode(x)   # x: images (N, C, H, W) in [-1, 1]; logvar is None for a plain autoencoder
    images = model.decode(z)         # z: latents, e.g. (N, 20) or (N, 4, H/8, W/8) -> images in [-1, 1]
    images = model.sample(64, seed=0)        # decode z ~ N(0, I)
    model.save_pretrained("dir")             # genzoo format: model.safetensors + config.json

Value range. genzoo passes images in [-1, 1] everywhere. The MNIST VAEs model pixels as Bernoulli
probabilities in [0, 1] (pytorch/examples `vae/main.py`, trained with binary cross-entropy), so they convert at
the boundary: `encode` maps x -> (x + 1) / 2 before the first layer, and `decode` returns 2 * sigmoid(logits) - 1.
`decode_logits(z)` gives the raw logits, for a numerically stable BCE loss (train.py uses it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from ..pretrained import Config, PretrainedModel
from ..runtime import make_generator, randn

FAMILY = "vae"


class VAEBase(PretrainedModel):
    """Shared behaviour: input checks, the reparameterisation trick, prior samples, reconstruction, saving."""

    family = FAMILY

    @property
    def in_channels(self) -> int:
        return self.config.in_channels

    def latent_shape(self, image_size=None) -> tuple:
        """The shape of one image's latent (a vector of config.latent_dim unless a model says otherwise)."""
        return (self.config.latent_dim,)

    # -- checks that turn shape mistakes into clear errors ----------------------------------------------------------
    def check_images(self, x: torch.Tensor, multiple: int = 1, size=None) -> None:
        name = type(self).__name__
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ConfigError(f"{name}.encode expects images shaped (N, C, H, W) in [-1, 1], got {shape}")
        if not x.is_floating_point():
            raise ConfigError(f"{name}.encode expects float images in [-1, 1], got dtype {x.dtype} "
                              f"(uint8 pixels? use x.float() / 127.5 - 1, or genzoo.images.from_pil)")
        channels = x.shape[1]
        if channels != self.in_channels:
            hint = ""
            if channels == 1 and self.in_channels == 3:
                hint = " A grayscale image? Repeat it: x.expand(-1, 3, -1, -1)."
            elif channels == 3 and self.in_channels == 1:
                hint = " An RGB image? Convert it to grayscale: x.mean(1, keepdim=True)."
            elif channels == 4:
                hint = " An RGBA image? Drop the alpha channel: x[:, :3]."
            raise ConfigError(f"{name} takes {self.in_channels}-channel images, got {channels} channels "
                              f"(shape {tuple(x.shape)}).{hint}")
        height, width = x.shape[-2:]
        if height % multiple or width % multiple:
            raise ConfigError(f"{name} needs height and width that are multiples of {multiple}, got {height}x{width}: "
                              f"crop or pad the image (e.g. to {_round_up(height, multiple)}x{_round_up(width, multiple)}"
                              f"); `genzoo reconstruct` pads and crops back for you")
        if size is not None and (height, width) != tuple(size):
            raise ConfigError(f"{name} takes {size[0]}x{size[1]} images, got {height}x{width}: resize them first "
                              f"(genzoo.images.load_image(path, size=...) does)")

    def check_latents(self, z: torch.Tensor) -> None:
        expected = self.latent_shape()
        if not isinstance(z, torch.Tensor) or z.dim() != len(expected) + 1 or z.shape[1] != expected[0]:
            shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ConfigError(f"{type(self).__name__}.decode expects latents shaped (N, {', '.join(map(str, expected))})"
                              f"{' (any spatial size)' if len(expected) == 3 else ''}, got {shape}")

    def to_model(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs go to the model's device and dtype (as generate and translate_tensor do); outputs stay there."""
        return x.to(device=self.device, dtype=self.dtype)

    # -- sampling ------------------------------------------------------------------------------------------------
    @staticmethod
    def reparameterize(mean: torch.Tensor, logvar: torch.Tensor | None, generator=None) -> torch.Tensor:
        """z = mean + std * eps (the reparameterisation trick); the mean itself for a plain autoencoder."""
        if logvar is None:
            return mean
        eps = randn(mean.shape, generator, device=mean.device, dtype=mean.dtype)  # drawn where the generator lives
        return mean + torch.exp(0.5 * logvar) * eps

    @staticmethod
    def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL(N(mean, exp(logvar)) || N(0, I)) per example, summed over latent dimensions."""
        return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1).sum(1)

    def prior_latents(self, n: int, seed=None, generator=None, image_size=None) -> torch.Tensor:
        """n draws z ~ N(0, I) shaped like this model's latents (spatial VAEs: for `image_size` images).

        Drawn in float32 where the generator lives (a seed, or none, draws on the CPU) and then moved, so a seed
        gives the same latents on every device; AutoencoderKL's are divided by its scaling_factor (decode takes
        unscaled latents).
        """
        param = next(self.parameters())
        shape = self.latent_shape(image_size) if image_size is not None else self.latent_shape()
        generator = make_generator(seed, generator, "cpu")
        z = randn((n, *shape), generator, device=param.device, draw_on="cpu")
        return z.to(dtype=param.dtype) / getattr(self, "scaling_factor", 1.0)

    @torch.no_grad()
    def sample(self, n: int = 16, seed=None, generator=None, image_size=None, batch_size: int = 256) -> torch.Tensor:
        """Decode n draws from the prior: (n, C, H, W) images in [-1, 1].

        For AutoencoderKL the "prior" is N(0, I) in the scaled latent space (z / scaling_factor); its KL term was
        weighted too lightly for this to give natural images: that model is meant to be driven by a diffusion model.
        """
        if n < 1:
            raise ConfigError(f"n must be at least 1, got {n}")
        z = self.prior_latents(n, seed=seed, generator=generator, image_size=image_size)
        return torch.cat([self.decode(chunk) for chunk in z.split(batch_size)]).clamp(-1, 1)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        """Encode to the posterior mean and decode again (kwargs: AutoencoderKL's tiled=, tile_size=)."""
        mean, _ = self.encode(x, **kwargs)
        return self.decode(mean, **kwargs).clamp(-1, 1)


def _round_up(value: int, multiple: int) -> int:
    return math.ceil(value / multiple) * multiple


# ---------------------------------------------------------------------------------------------------------------
# The MLP VAE of pytorch/examples `vae/main.py`: 784 -> 400 -> (20, 20) -> 400 -> 784.
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class MLPVAEConfig(Config):
    model_type = "mlp"
    LIMITS = {"in_features": (1, 1 << 24), "hidden": (1, 1 << 16), "latent_dim": (1, 1 << 16),
              "image_shape": (1, 1 << 14)}

    in_features: int = 784
    hidden: int = 400
    latent_dim: int = 20
    image_shape: tuple = (1, 28, 28)   # how decode() reshapes the in_features outputs
    variational: bool = True           # False: a plain autoencoder (no fc22; encode returns (z, None)), the book's ch. 7 AE

    def __post_init__(self):
        super().__post_init__()
        if math.prod(self.image_shape) != self.in_features:
            raise ConfigError(f"image_shape {self.image_shape} has {math.prod(self.image_shape)} pixels, "
                              f"but in_features is {self.in_features}")


class MLPVAE(VAEBase):
    """Two-layer MLP encoder and decoder, Bernoulli pixels; layer names as in pytorch/examples (fc1, fc21, ...)."""

    def __init__(self, config: MLPVAEConfig):
        super().__init__()
        self.config = config
        self.fc1 = nn.Linear(config.in_features, config.hidden)
        self.fc21 = nn.Linear(config.hidden, config.latent_dim)   # mean
        self.fc22 = nn.Linear(config.hidden, config.latent_dim) if config.variational else None  # log-variance
        self.fc3 = nn.Linear(config.latent_dim, config.hidden)
        self.fc4 = nn.Linear(config.hidden, config.in_features)

    @property
    def in_channels(self) -> int:
        return self.config.image_shape[0]

    def encode(self, x: torch.Tensor):
        """Images (N, C, H, W) in [-1, 1] (or already flat (N, in_features)) -> (mean, logvar), each (N, latent_dim)."""
        if x.dim() == 2 and x.shape[1] == self.config.in_features:
            x = x.view(-1, *self.config.image_shape)
        self.check_images(x, size=self.config.image_shape[1:])
        x = self.to_model(x)
        h = F.relu(self.fc1(((x + 1) / 2).flatten(1)))  # the network was trained on [0, 1] pixels
        return self.fc21(h), (self.fc22(h) if self.fc22 is not None else None)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Latents -> Bernoulli logits (N, C, H, W); sigmoid(logits) is pytorch/examples' decode(z)."""
        self.check_latents(z)
        return self.fc4(F.relu(self.fc3(self.to_model(z)))).view(-1, *self.config.image_shape)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents (N, latent_dim) -> images (N, C, H, W) in [-1, 1]."""
        return torch.sigmoid(self.decode_logits(z)) * 2 - 1

    def forward(self, x: torch.Tensor, generator=None):
        """(reconstruction logits, mean, logvar), with z sampled from the posterior: what a training step needs."""
        mean, logvar = self.encode(x)
        return self.decode_logits(self.reparameterize(mean, logvar, generator)), mean, logvar


# ---------------------------------------------------------------------------------------------------------------
# A convolutional VAE (or plain autoencoder) for small images: MNIST digits, 64-256 px faces.
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class ConvVAEConfig(Config):
    model_type = "conv"
    LIMITS = {"in_channels": (1, 64), "image_size": (1, 1 << 14), "channels": (1, 1 << 14), "latent_dim": (1, 1 << 16)}

    in_channels: int = 1
    image_size: int = 28
    channels: tuple = (32, 64)     # one stride-2 conv per entry: 28 -> 14 -> 7
    latent_dim: int = 16
    variational: bool = True       # False: a plain autoencoder (encode returns (z, None); no KL term)

    def __post_init__(self):
        super().__post_init__()
        if not self.channels:
            raise ConfigError("channels must name at least one conv layer")
        if self.image_size % (2 ** len(self.channels)):
            raise ConfigError(f"image_size {self.image_size} must be divisible by 2^{len(self.channels)} "
                              f"(one halving per entry of channels={self.channels})")

    @property
    def bottom_size(self) -> int:
        return self.image_size // 2 ** len(self.channels)


class ConvVAE(VAEBase):
    """Stride-2 convs down to a small grid, linear heads for mean/logvar; transposed convs back up.

    For RGB faces (64-256 px) use e.g. channels=(32, 64, 128, 256) and latent_dim=100..128; for MNIST
    channels=(32, 64), latent_dim=16. The decoder outputs Bernoulli logits like MLPVAE (decode -> [-1, 1]).
    """

    def __init__(self, config: ConvVAEConfig):
        super().__init__()
        self.config = config
        widths = config.channels
        down = []
        for c_in, c_out in zip((config.in_channels,) + widths[:-1], widths):
            down += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2)]
        self.encoder = nn.Sequential(*down)
        flat = widths[-1] * config.bottom_size ** 2
        self.fc_mean = nn.Linear(flat, config.latent_dim)
        self.fc_logvar = nn.Linear(flat, config.latent_dim) if config.variational else None
        self.fc_decode = nn.Linear(config.latent_dim, flat)
        up = []
        for c_in, c_out in zip(widths[::-1], widths[::-1][1:]):
            up += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
        up += [nn.ConvTranspose2d(widths[0], config.in_channels, 4, stride=2, padding=1)]
        self.decoder = nn.Sequential(*up)

    def encode(self, x: torch.Tensor):
        """Images (N, C, S, S) in [-1, 1] -> (mean, logvar) each (N, latent_dim); logvar is None if not variational."""
        self.check_images(x, size=(self.config.image_size, self.config.image_size))
        h = self.encoder(self.to_model(x)).flatten(1)
        return self.fc_mean(h), (self.fc_logvar(h) if self.fc_logvar is not None else None)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        self.check_latents(z)
        h = F.relu(self.fc_decode(self.to_model(z))).view(-1, self.config.channels[-1], self.config.bottom_size, self.config.bottom_size)
        return self.decoder(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents (N, latent_dim) -> images (N, C, S, S) in [-1, 1]."""
        return torch.sigmoid(self.decode_logits(z)) * 2 - 1

    def forward(self, x: torch.Tensor, generator=None):
        mean, logvar = self.encode(x)
        return self.decode_logits(self.reparameterize(mean, logvar, generator)), mean, logvar
