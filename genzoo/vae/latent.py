"""Walking the latent space: prior samples, interpolation, attribute arithmetic. Works with every genzoo VAE.

Attribute arithmetic is the "glasses" experiment of VAE tutorials: the mean latent of faces with glasses minus
the mean latent of faces without, added to the latent of a face without glasses, decodes to that face with
glasses. `latent_arithmetic(model, with_glasses, without_glasses, faces)` does exactly that.
"""
from __future__ import annotations

import torch

from ..errors import ConfigError


@torch.no_grad()
def encode_mean(model, images: torch.Tensor, batch_size: int = 64, **kwargs) -> torch.Tensor:
    """Posterior means of `images` (N, C, H, W) in [-1, 1], in batches, on the model's device and dtype."""
    param = next(model.parameters())
    images = images.to(device=param.device, dtype=param.dtype)
    return torch.cat([model.encode(chunk, **kwargs)[0] for chunk in images.split(batch_size)])


@torch.no_grad()
def decode(model, z: torch.Tensor, batch_size: int = 64, **kwargs) -> torch.Tensor:
    return torch.cat([model.decode(chunk, **kwargs) for chunk in z.split(batch_size)]).clamp(-1, 1)


def sample_prior(model, n: int = 64, seed=None, generator=None, **kwargs) -> torch.Tensor:
    """n images decoded from z ~ N(0, I); same seed, same images."""
    return model.sample(n, seed=seed, generator=generator, **kwargs)


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation, per example: keeps the norm a Gaussian draw typically has (linear mixing shrinks it)."""
    a, b = z0.flatten(1), z1.flatten(1)
    cos = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1 + 1e-7, 1 - 1e-7)).unsqueeze(1)
    so = torch.sin(omega)
    mixed = torch.where(so.abs() < 1e-6, (1 - t) * a + t * b,
                        torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b)
    return mixed.view_as(z0)


@torch.no_grad()
def interpolate(model, a: torch.Tensor, b: torch.Tensor, steps: int = 8, method: str = "linear", **kwargs) -> torch.Tensor:
    """Decode `steps` latents on the path from a's posterior mean to b's: (steps, C, H, W), a first, b last.

    a, b: single images (C, H, W) or (1, C, H, W) in [-1, 1]. method: "linear" or "slerp".
    """
    if steps < 2:
        raise ConfigError(f"steps must be at least 2 (the two end points), got {steps}")
    if method not in ("linear", "slerp"):
        raise ConfigError(f"method must be 'linear' or 'slerp', not {method!r}")
    a, b = (x.unsqueeze(0) if x.dim() == 3 else x for x in (a, b))
    if a.shape[0] != 1 or b.shape[0] != 1:
        raise ConfigError(f"interpolate takes one image at each end, got batches of {a.shape[0]} and {b.shape[0]}")
    z = encode_mean(model, torch.cat([a, b]), **kwargs)
    z0, z1 = z[:1], z[1:]
    path = [(1 - t) * z0 + t * z1 if method == "linear" else slerp(z0, z1, t)
            for t in torch.linspace(0, 1, steps).tolist()]
    return decode(model, torch.cat(path), **kwargs)


@torch.no_grad()
def attribute_vector(model, with_attribute: torch.Tensor, without_attribute: torch.Tensor) -> torch.Tensor:
    """Mean latent of images with an attribute minus mean latent of images without it: (1, *latent_shape)."""
    return (encode_mean(model, with_attribute).mean(0, keepdim=True)
            - encode_mean(model, without_attribute).mean(0, keepdim=True))


@torch.no_grad()
def latent_arithmetic(model, group_a: torch.Tensor, group_b: torch.Tensor, group_c: torch.Tensor,
                      scales=(1.0,), average_c: bool = True) -> torch.Tensor:
    """Decode mean(z_A) - mean(z_B) + z_C: e.g. men with glasses - men without + women without = women with glasses.

    average_c=True uses the mean latent of group C (one image per scale, the book's version); False applies the
    attribute to every image of C. `scales` multiplies the attribute vector (0 gives C back, 1 the full attribute),
    so scales=(0, .25, .5, .75, 1) shows the attribute fading in. Returns (len(scales) * n_C, C, H, W).
    """
    for name, group in (("group_a", group_a), ("group_b", group_b), ("group_c", group_c)):
        if group.dim() != 4 or group.shape[0] == 0:
            raise ConfigError(f"{name} must be a non-empty batch of images (N, C, H, W), got {tuple(group.shape)}")
    vector = attribute_vector(model, group_a, group_b)
    z_c = encode_mean(model, group_c)
    if average_c:
        z_c = z_c.mean(0, keepdim=True)
    return decode(model, torch.cat([z_c + s * vector for s in scales]))
