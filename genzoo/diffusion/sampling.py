"""Sampling: any U-Net (anything called as `unet(x, t) -> eps`) with any scheduler (genzoo's or diffusers')."""
from __future__ import annotations

import inspect

import torch

from ..errors import ConfigError
from ..runtime import make_generator
from .schedulers import gaussian_noise

MAX_SEED = 2 ** 63 - 1


def _model_attr(unet, name, default=None):
    config = getattr(unet, "config", None)
    if isinstance(config, dict):
        return config.get(name, default)
    return getattr(config, name, default)


def trajectory_indices(steps: int, points: int) -> list[int]:
    """Which of the steps+1 states x_T, ..., x_0 to keep: `points` of them, evenly spaced, both ends included."""
    points = max(2, min(points, steps + 1))
    return sorted({round(i * steps / (points - 1)) for i in range(points)})


def sample_generators(n: int, seed: int | None = None, generator=None) -> list[torch.Generator]:
    """One CPU generator per image: image i's noise (initial and per step) comes from generator i only, so
    `seed` gives image i the same noise whatever the batch size or device.

    Image i's generator is seeded with the i-th number drawn from `seed` (or from `generator`, or from torch's
    global RNG when neither is given). The list works with diffusers' pipelines too: `pipe(generator=
    sample_generators(n, seed=0))` draws the same noise as `sample(..., n=n, seed=0)`.
    """
    source = make_generator(seed, generator, "cpu")
    seeds = [int(torch.randint(MAX_SEED, (1,), generator=source, device=source.device if source is not None else "cpu"))
             for _ in range(n)]
    return [torch.Generator().manual_seed(s) for s in seeds]


def check_scheduler(scheduler) -> None:
    """Refuse an object that is not a scheduler, naming what the Scheduler protocol requires."""
    for name in ("set_timesteps", "step"):
        if not callable(getattr(scheduler, name, None)):
            raise ConfigError(f"{type(scheduler).__name__} is not a scheduler: it has no {name}() method (the "
                              f"Scheduler protocol: set_timesteps(n), timesteps, step(model_output, t, sample))")


def _visited_timesteps(scheduler, steps) -> torch.Tensor:
    scheduler.set_timesteps(steps)  # diffusers returns None: read .timesteps afterwards
    timesteps = getattr(scheduler, "timesteps", None)
    if timesteps is None:
        raise ConfigError(f"{type(scheduler).__name__}.set_timesteps({steps}) left no .timesteps (the Scheduler "
                          f"protocol: a tensor of the timesteps to visit)")
    timesteps = torch.as_tensor(timesteps).cpu()
    if timesteps.dim() != 1 or len(timesteps) == 0:
        raise ConfigError(f"{type(scheduler).__name__}.timesteps must be a non-empty 1-D tensor, got shape "
                          f"{tuple(timesteps.shape)}")
    return timesteps


def _predict(unet, x, t, batch_size, dtype):
    """The U-Net on x in chunks of batch_size (memory), output as float32 for the scheduler's arithmetic."""
    chunks = []
    for chunk in x.split(batch_size):
        out = unet(chunk.to(dtype), t)
        chunks.append((out if torch.is_tensor(out) else out.sample).float())  # a diffusers U-Net returns .sample
    return torch.cat(chunks)


def sample(unet, scheduler, n: int = 16, steps: int = 50, seed: int | None = None, generator=None,
           size: int | None = None, eta: float | None = None, noise: torch.Tensor | None = None,
           batch_size: int | None = None, return_trajectory: bool = False, trajectory_points: int = 8,
           progress: bool = True):
    """Draw `n` images: x_T ~ N(0, init_noise_sigma^2 I), then the scheduler's steps down to x_0.

    `scheduler`: genzoo's (DDPM, DDIM, DPM-Solver++, Euler ancestral, or any registered one) or any diffusers
    scheduler object. Each image's noise comes from its own generator (`sample_generators`), so a seed gives
    the same images whatever `n`, `batch_size` or device: sample(n=4, seed=0) is the first 4 of
    sample(n=8, seed=0). `generator` may be one torch.Generator (image seeds are drawn from it) or a list of n.
    Schedulers that draw noise in step() get the list as `generator=` (diffusers' schedulers draw per image from
    such a list too). `noise`: the initial N(0, I) noise (n, C, H, W) instead of drawing it (it is multiplied by
    init_noise_sigma). `batch_size`: images per U-Net call (default all n); the result does not depend on it.
    `eta` is passed to the scheduler's step (DDIM's).

    Returns images (n, C, H, W) float32 on the U-Net's device, clamped to [-1, 1]; with return_trajectory=True,
    (images, trajectory) where trajectory is a list of (t, x_t) pairs (CPU tensors, `trajectory_points` of them)
    from the initial noise (t = the first timestep visited) to the result (labelled t = 0), for a denoising strip.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"n (the number of images) must be an integer >= 1, got {n!r}")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ConfigError(f"the number of sampling steps must be an integer >= 1, got {steps!r}")
    batch_size = n if batch_size is None else batch_size
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    check_scheduler(scheduler)
    step_parameters = inspect.signature(scheduler.step).parameters
    if eta is not None and "eta" not in step_parameters:
        raise ConfigError(f"{type(scheduler).__name__} takes no eta (DDIM has one)")
    if isinstance(generator, (list, tuple)):
        if seed is not None:
            raise ConfigError("pass either seed or generator, not both")
        if len(generator) != n:
            raise ConfigError(f"{len(generator)} generators for n={n} images: pass one per image")
        generators = list(generator)
    else:
        generators = sample_generators(n, seed, generator)
    device, dtype = unet.device, unet.dtype
    size = size or _model_attr(unet, "sample_size")
    channels = _model_attr(unet, "in_channels")
    if not size or not channels:
        raise ConfigError("pass size=: this U-Net has no config.sample_size / config.in_channels")
    shape = (n, channels, size, size)
    if hasattr(unet, "check_input"):
        unet.check_input(torch.empty(1, *shape[1:], device="meta"))
    if noise is not None and tuple(noise.shape) != shape:
        raise ConfigError(f"noise has shape {tuple(noise.shape)}, expected {shape} (n, channels, size, size)")
    timesteps = _visited_timesteps(scheduler, steps)

    step_kwargs = {} if eta is None else {"eta": eta}
    if "generator" in step_parameters:
        step_kwargs["generator"] = generators
    scale_input = getattr(scheduler, "scale_model_input", None)
    keep = set(trajectory_indices(len(timesteps), trajectory_points)) if return_trajectory else set()
    trajectory = []
    # The scheduler's arithmetic stays in float32 even when the U-Net runs in fp16/bf16.
    x = noise.float() if noise is not None else gaussian_noise(shape, generators, dtype=torch.float32)
    x = x.to(device) * getattr(scheduler, "init_noise_sigma", 1.0)
    if 0 in keep:
        trajectory.append((int(timesteps[0]), x.cpu()))

    from tqdm.auto import tqdm

    with torch.inference_mode():
        for i, t in enumerate(tqdm(timesteps, desc="sampling", disable=not progress, leave=False)):
            model_input = scale_input(x, t) if scale_input is not None else x
            eps = _predict(unet, model_input, t.to(device), batch_size, dtype)
            out = scheduler.step(eps, t, x, **step_kwargs)
            x = getattr(out, "prev_sample", None)
            if x is None:
                raise ConfigError(f"{type(scheduler).__name__}.step() returned {type(out).__name__}, which has no "
                                  f".prev_sample (the Scheduler protocol)")
            if i + 1 in keep:
                trajectory.append((int(timesteps[i + 1]) if i + 1 < len(timesteps) else 0, x.cpu()))
    images = x.clamp(-1, 1)
    return (images, trajectory) if return_trajectory else images


def denoising_strip(trajectory, max_images: int = 4) -> torch.Tensor:
    """Trajectory from sample(..., return_trajectory=True) -> (rows*cols, C, H, W): one row per image, x_T at
    the left to x_0 at the right (the book's ch. 15 figure). Save with genzoo.images.save_image(nrow=cols)."""
    columns = [x[:max_images].clamp(-1, 1) for _, x in trajectory]
    return torch.stack(columns, dim=1).flatten(0, 1)
