"""Euler ancestral sampling (Karras et al. 2022's "k-diffusion" Euler sampler with ancestral noise).

The sampler works in sigma space: x_sigma = x_0 + sigma * eps with sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t),
which is the variance-preserving x_t divided by sqrt(alpha_bar_t). So the U-Net, trained on x_t, is shown
x_sigma / sqrt(sigma^2 + 1) (`scale_model_input`), and sampling starts from noise of std sigma_max
(`init_noise_sigma`). Each step goes from sigma to the next sigma' in two parts:
  - deterministic: an Euler step of the probability-flow ODE dx/dsigma = (x - x0_hat) / sigma down to sigma_down;
  - ancestral: fresh noise of std sigma_up added back, with sigma_down^2 + sigma_up^2 = sigma'^2.
Same maths, timestep grid and float32 arithmetic as diffusers' EulerAncestralDiscreteScheduler.
"""
from __future__ import annotations

import numpy as np
import torch

from .schedulers import BaseScheduler, StepOutput, gaussian_noise, register_scheduler


@register_scheduler("euler_a", "euler_ancestral")
class EulerAncestralDiscreteScheduler(BaseScheduler):
    """Euler ancestral: stochastic, good images in 20-50 steps. Timesteps are fractional (floats)."""

    prediction_types = ("epsilon", "v_prediction")

    def __init__(self, *, timestep_spacing: str = "linspace", **schedule):
        super().__init__(timestep_spacing=timestep_spacing, **schedule)
        # sigma for every training timestep, and the full-chain grid until set_timesteps picks one
        self.train_sigmas = (((1 - self.alphas_cumprod) / self.alphas_cumprod) ** 0.5).numpy()
        self.timesteps = torch.arange(self.num_train_timesteps - 1, -1, -1, dtype=torch.float32)
        self.sigmas = torch.from_numpy(np.append(self.train_sigmas[::-1], 0.0).astype(np.float32))
        self.init_noise_sigma = self.initial_sigma()

    def initial_sigma(self) -> float:
        """Std of the starting noise. With "leading" spacing the grid misses the last training timestep, so the
        start is given the extra unit variance a variance-preserving x_T would have."""
        sigma_max = float(self.sigmas.max())
        return sigma_max if self.timestep_spacing in ("linspace", "trailing") else (sigma_max ** 2 + 1) ** 0.5

    def set_timesteps(self, num_inference_steps: int, device=None) -> torch.Tensor:
        steps, T = self.check_steps(num_inference_steps), self.num_train_timesteps
        if self.timestep_spacing == "linspace":
            timesteps = np.linspace(0, T - 1, steps, dtype=np.float32)[::-1]
        elif self.timestep_spacing == "leading":
            timesteps = (np.arange(steps) * (T // steps)).round()[::-1].astype(np.float32) + self.steps_offset
        else:  # trailing
            timesteps = np.arange(T, 0, -T / steps).round().astype(np.float32) - 1
        # sigma at a fractional timestep: linear interpolation between the training timesteps' sigmas
        sigmas = np.interp(timesteps, np.arange(T), self.train_sigmas)
        self.sigmas = torch.from_numpy(np.append(sigmas, 0.0).astype(np.float32))  # ends at a clean image
        self.timesteps = torch.from_numpy(timesteps.copy()).to(device)
        self.num_inference_steps = steps
        self.init_noise_sigma = self.initial_sigma()
        return self.timesteps

    def scale_model_input(self, sample: torch.Tensor, timestep) -> torch.Tensor:
        """x_sigma -> the variance-preserving x_t the U-Net was trained on."""
        sigma = self.sigmas[self.index_of(timestep)]
        return sample / (sigma ** 2 + 1) ** 0.5

    def step(self, model_output, timestep, sample, generator=None, noise=None) -> StepOutput:
        i = self.index_of(timestep)
        sigma, sigma_next = self.sigmas[i], self.sigmas[i + 1]
        sample = sample.float()
        if self.prediction_type == "epsilon":
            x0 = sample - sigma * model_output
        else:  # v_prediction, with the U-Net's input scaled by 1 / sqrt(sigma^2 + 1)
            x0 = model_output * (-sigma / (sigma ** 2 + 1) ** 0.5) + sample / (sigma ** 2 + 1)

        sigma_up = (sigma_next ** 2 * (sigma ** 2 - sigma_next ** 2) / sigma ** 2) ** 0.5
        sigma_down = (sigma_next ** 2 - sigma_up ** 2) ** 0.5
        derivative = (sample - x0) / sigma
        prev_sample = sample + derivative * (sigma_down - sigma)
        if noise is None:  # drawn at every step, the last included (sigma_up = 0 there), as diffusers does
            noise = gaussian_noise(model_output.shape, generator, model_output.device, model_output.dtype)
        prev_sample = prev_sample + noise * sigma_up
        return StepOutput(prev_sample.to(model_output.dtype), x0)

    def add_noise(self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps) -> torch.Tensor:
        """The forward process in this sampler's sigma space: x_0 + sigma_t * noise (sigma interpolated at t)."""
        t = torch.as_tensor(timesteps, dtype=torch.float64).reshape(-1).numpy()
        sigma = torch.from_numpy(np.interp(t, np.arange(self.num_train_timesteps), self.train_sigmas))
        sigma = sigma.to(original_samples.device, original_samples.dtype)
        return original_samples + noise * sigma.view(-1, *([1] * (original_samples.dim() - 1)))
