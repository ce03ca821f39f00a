"""A diffusion model's denoising loss at fixed timesteps (its training loss, measured the same way every time)."""
from __future__ import annotations

import torch

from ..errors import ConfigError


def default_timesteps(num_train_timesteps: int, count: int = 10) -> list[int]:
    """`count` timesteps spread evenly over 0 .. num_train_timesteps - 1 (both ends included)."""
    return torch.linspace(0, num_train_timesteps - 1, count).round().long().tolist()


@torch.inference_mode()
def denoising_loss(unet, scheduler, images: torch.Tensor, timesteps=None, seed: int = 0, batch_size: int = 64,
                   progress: bool | None = None) -> dict:
    """Mean squared error of the model's prediction on x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, for every
    image at every one of `timesteps`, with noise eps drawn from `seed` (so the number is repeatable).

    The target is what the model was trained to predict (scheduler.prediction_type): eps, x_0, or v.
    Returns {"denoising_loss": mean over timesteps, "loss_at_t": {t: loss}}.
    """
    num_train = scheduler.num_train_timesteps
    timesteps = default_timesteps(num_train) if timesteps is None else [int(t) for t in timesteps]
    if not timesteps or min(timesteps) < 0 or max(timesteps) >= num_train:
        raise ConfigError(f"timesteps must be in 0..{num_train - 1}, not {timesteps}")
    param = next(unet.parameters())
    generator = torch.Generator().manual_seed(seed)
    abar_all = scheduler.alphas_cumprod.float()
    from tqdm.auto import tqdm

    per_t = {}
    for t in tqdm(timesteps, desc="denoising loss", unit="timestep", leave=False,
                  disable=None if progress is None else not progress):
        total, count = 0.0, 0
        for x0 in images.split(batch_size):
            x0 = x0.float()
            noise = torch.randn(x0.shape, generator=generator)
            xt = scheduler.add_noise(x0, noise, torch.full((len(x0),), t))
            prediction = unet(xt.to(param.device, param.dtype), torch.full((len(x0),), t, device=param.device))
            abar = abar_all[t]
            target = {"epsilon": noise, "sample": x0,
                      "v_prediction": abar.sqrt() * noise - (1 - abar).sqrt() * x0}[scheduler.prediction_type]
            total += (prediction.float().cpu() - target).pow(2).mean(dim=(1, 2, 3)).sum().item()
            count += len(x0)
        per_t[t] = total / count
    return {"denoising_loss": sum(per_t.values()) / len(per_t), "loss_at_t": per_t}
