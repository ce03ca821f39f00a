"""Sampling: any U-Net (anything called as `unet(x, t) -> eps`) with any scheduler (DDPM, DDIM)."""
from __future__ import annotations

import inspect

import torch

from ..errors import ConfigError
from ..runtime import make_generator, randn


def _model_attr(unet, name, default=None):
    config = getattr(unet, "config", None)
    if isinstance(config, dict):
        return config.get(name, default)
    return getattr(config, name, default)


def trajectory_indices(steps: int, points: int) -> list[int]:
    """Which of the steps+1 states x_T, ..., x_0 to keep: `points` of them, evenly spaced, both ends included."""
    points = max(2, min(points, steps + 1))
    return sorted({round(i * steps / (points - 1)) for i in range(points)})


def sample(unet, scheduler, n: int = 16, steps: int = 50, seed: int | None = None, generator=None,
           size: int | None = None, eta: float | None = None, return_trajectory: bool = False,
           trajectory_points: int = 8, progress: bool = True):
    """Draw `n` images: x_T ~ N(0, I), then `steps` scheduler steps down to x_0.

    Returns images (n, C, H, W) float32 on the U-Net's device, clamped to [-1, 1]; with return_trajectory=True,
    (images, trajectory) where trajectory is a list of (t, x_t) pairs (CPU tensors, `trajectory_points` of them)
    from the initial noise (t = the first timestep visited) to the result (labelled t = 0), for a denoising strip.
    Noise is drawn where the generator lives (a seed makes a CPU one), then moved: a seed gives the same images
    on any device (up to floating-point differences), and a CUDA generator works too. `eta` is passed to DDIM's
    step (DDPM has none).
    """
    if not isinstance(n, int) or n < 1:
        raise ConfigError(f"n (the number of images) must be an integer >= 1, got {n!r}")
    generator = make_generator(seed, generator, "cpu") if (seed is not None or generator is not None) else None
    device, dtype = unet.device, unet.dtype
    size = size or _model_attr(unet, "sample_size")
    channels = _model_attr(unet, "in_channels")
    if not size or not channels:
        raise ConfigError("pass size=: this U-Net has no config.sample_size / config.in_channels")
    if eta is not None and "eta" not in inspect.signature(scheduler.step).parameters:
        raise ConfigError(f"{type(scheduler).__name__} takes no eta (only DDIM has one)")
    if hasattr(unet, "check_input"):
        unet.check_input(torch.empty(1, channels, size, size, device="meta"))
    timesteps = scheduler.set_timesteps(steps)  # raises a clear error for steps < 1 or > T

    step_kwargs = {} if eta is None else {"eta": eta}
    keep = set(trajectory_indices(len(timesteps), trajectory_points)) if return_trajectory else set()
    trajectory = []
    # The scheduler's arithmetic stays in float32 even when the U-Net runs in fp16/bf16.
    x = randn((n, channels, size, size), generator, device=device, dtype=torch.float32, draw_on="cpu")
    x = x * scheduler.init_noise_sigma
    if 0 in keep:
        trajectory.append((int(timesteps[0]), x.cpu()))

    from tqdm.auto import tqdm

    with torch.inference_mode():
        for i, t in enumerate(tqdm(timesteps.tolist(), desc="sampling", disable=not progress, leave=False)):
            eps = unet(x.to(dtype), torch.full((n,), t, device=device, dtype=torch.long)).float()
            x = scheduler.step(eps, t, x, generator=generator, **step_kwargs).prev_sample
            if i + 1 in keep:
                trajectory.append((int(timesteps[i + 1]) if i + 1 < len(timesteps) else 0, x.cpu()))
    images = x.clamp(-1, 1)
    return (images, trajectory) if return_trajectory else images


def denoising_strip(trajectory, max_images: int = 4) -> torch.Tensor:
    """Trajectory from sample(..., return_trajectory=True) -> (rows*cols, C, H, W): one row per image, x_T at
    the left to x_0 at the right (the book's ch. 15 figure). Save with genzoo.images.save_image(nrow=cols)."""
    columns = [x[:max_images].clamp(-1, 1) for _, x in trajectory]
    return torch.stack(columns, dim=1).flatten(0, 1)
