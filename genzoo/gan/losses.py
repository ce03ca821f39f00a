"""GAN objectives, all computed from discriminator logits.

* "bce"     non-saturating GAN (Goodfellow et al. 2014, sec. 3): D minimises BCE(real -> 1, fake -> 0);
            G maximises log D(G(z)) instead of minimising log(1 - D(G(z))), which saturates early in training.
* "lsgan"   least squares (Mao et al. 2017): D pushes real -> 1 and fake -> 0 in squared error; G pushes fake -> 1.
* "wgan-gp" Wasserstein critic with gradient penalty (Gulrajani et al. 2017): D maximises E[D(real)] - E[D(fake)]
            subject to ||grad D|| ~ 1 on random interpolates (weight `gp_weight`, 10 in the paper). Train the
            critic several steps per G step (n_critic = 5) and avoid BatchNorm in it (d_norm="layer" or "none").
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ConfigError

LOSSES = ("bce", "lsgan", "wgan-gp")


def check_loss(kind: str) -> str:
    if kind not in LOSSES:
        raise ConfigError(f"unknown GAN loss {kind!r}: one of {', '.join(LOSSES)}")
    return kind


def discriminator_loss(kind: str, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """What D minimises (without the gradient penalty, see gradient_penalty)."""
    if kind == "bce":
        return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
    if kind == "lsgan":
        return 0.5 * (F.mse_loss(real_logits, torch.ones_like(real_logits)) + fake_logits.pow(2).mean())
    if kind == "wgan-gp":
        return fake_logits.mean() - real_logits.mean()
    raise ConfigError(f"unknown GAN loss {kind!r}: one of {', '.join(LOSSES)}")


def generator_loss(kind: str, fake_logits: torch.Tensor) -> torch.Tensor:
    """What G minimises."""
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    if kind == "lsgan":
        return 0.5 * F.mse_loss(fake_logits, torch.ones_like(fake_logits))
    if kind == "wgan-gp":
        return -fake_logits.mean()
    raise ConfigError(f"unknown GAN loss {kind!r}: one of {', '.join(LOSSES)}")


def gradient_penalty(discriminator, real: torch.Tensor, fake: torch.Tensor, labels=None, generator=None) -> torch.Tensor:
    """E[(||grad_x D(x_hat)||_2 - 1)^2] with x_hat on random lines between real and fake samples."""
    alpha = torch.rand(real.shape[0], *[1] * (real.dim() - 1), device=real.device, dtype=real.dtype,
                       generator=generator)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = discriminator(x_hat, labels)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()
