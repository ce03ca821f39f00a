"""DDPM and DDIM samplers behind one protocol, so a user swaps one for the other:

    scheduler.set_timesteps(steps)            # which timesteps to visit, descending
    for t in scheduler.timesteps:
        eps = unet(x, t)
        x = scheduler.step(eps, t, x, generator=g).prev_sample
    x_t = scheduler.add_noise(x0, noise, t)   # the forward process, for training

Both share the noise schedule: beta_t for t = 0..T-1 and alpha_bar_t = prod_{s<=t} (1 - beta_s), so that
x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps. Constructor arguments use diffusers' scheduler_config.json
names, so `from_config(json)` reads a published scheduler as-is. The arithmetic follows diffusers' (float32,
same formulas) so that the two agree step for step.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ..errors import ConfigError
from ..runtime import randn

BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
PREDICTION_TYPES = ("epsilon", "sample", "v_prediction")
SPACINGS = ("leading", "trailing", "linspace")


class StepOutput(NamedTuple):
    prev_sample: torch.Tensor            # x_{t-1} (or x at the previous visited timestep)
    pred_original_sample: torch.Tensor   # the model's current estimate of x_0


def make_betas(schedule: str, num_train_timesteps: int, beta_start: float, beta_end: float) -> torch.Tensor:
    if schedule == "linear":  # DDPM
        return torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float32)
    if schedule == "scaled_linear":  # latent diffusion: linear in sqrt(beta)
        return torch.linspace(beta_start ** 0.5, beta_end ** 0.5, num_train_timesteps, dtype=torch.float32) ** 2
    if schedule == "squaredcos_cap_v2":  # improved DDPM's cosine schedule: alpha_bar(t) = cos^2, betas capped
        def alpha_bar(s):
            return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2
        T = num_train_timesteps
        return torch.tensor([min(1 - alpha_bar((i + 1) / T) / alpha_bar(i / T), 0.999) for i in range(T)],
                            dtype=torch.float32)
    raise ConfigError(f"unknown beta_schedule {schedule!r}: one of {', '.join(BETA_SCHEDULES)}")


def randn_like_generator(shape, generator, device, dtype) -> torch.Tensor:
    """Gaussian noise from `generator` (made on its own device, then moved): same seed, same noise, any device."""
    return randn(shape, generator, device=device, dtype=dtype)


class _Scheduler:
    """The shared part: the noise schedule, the timesteps to visit, the forward process."""

    config_names = ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas",
                    "clip_sample", "clip_sample_range", "prediction_type", "timestep_spacing", "steps_offset")

    def __init__(self, num_train_timesteps: int = 1000, beta_start: float = 0.0001, beta_end: float = 0.02,
                 beta_schedule: str = "linear", trained_betas=None, clip_sample: bool = True,
                 clip_sample_range: float = 1.0, prediction_type: str = "epsilon", timestep_spacing: str = "leading",
                 steps_offset: int = 0, thresholding: bool = False):
        if prediction_type not in PREDICTION_TYPES:
            raise ConfigError(f"unknown prediction_type {prediction_type!r}: one of {', '.join(PREDICTION_TYPES)}")
        if timestep_spacing not in SPACINGS:
            raise ConfigError(f"unknown timestep_spacing {timestep_spacing!r}: one of {', '.join(SPACINGS)}")
        if thresholding:
            raise ConfigError("dynamic thresholding (thresholding=True) is not implemented; use clip_sample")
        if int(num_train_timesteps) < 1:
            raise ConfigError(f"num_train_timesteps must be >= 1, got {num_train_timesteps}")
        self.num_train_timesteps = int(num_train_timesteps)
        self.beta_start, self.beta_end, self.beta_schedule = float(beta_start), float(beta_end), beta_schedule
        self.trained_betas = list(trained_betas) if trained_betas is not None else None
        self.clip_sample, self.clip_sample_range = bool(clip_sample), float(clip_sample_range)
        self.prediction_type, self.timestep_spacing, self.steps_offset = prediction_type, timestep_spacing, int(steps_offset)

        if trained_betas is not None:
            self.betas = torch.tensor(trained_betas, dtype=torch.float32)
        else:
            self.betas = make_betas(beta_schedule, self.num_train_timesteps, self.beta_start, self.beta_end)
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)
        self.init_noise_sigma = 1.0  # x_T ~ N(0, I)
        self.num_inference_steps = None
        self.timesteps = torch.arange(self.num_train_timesteps - 1, -1, -1)

    # --- configuration -------------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: dict, **overrides):
        """Build from a scheduler_config.json dict (diffusers names; unknown keys are ignored)."""
        names = set(cls.config_names) | {"thresholding"}
        return cls(**{**{k: v for k, v in config.items() if k in names}, **overrides})

    @property
    def config(self) -> dict:
        return {"_class_name": type(self).__name__, **{k: getattr(self, k) for k in self.config_names}}

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.config.items() if k[0] != '_')})"

    # --- the protocol --------------------------------------------------------------------------------------
    def set_timesteps(self, num_inference_steps: int, device=None) -> torch.Tensor:
        """Choose `num_inference_steps` timesteps in [0, T), descending (diffusers' spacing rules)."""
        steps, T = num_inference_steps, self.num_train_timesteps
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise ConfigError(f"the number of sampling steps must be an integer >= 1, got {steps!r}")
        if steps > T:
            raise ConfigError(f"{steps} sampling steps asked for, but this model was trained with {T} timesteps: "
                              f"use at most {T}")
        if self.timestep_spacing == "leading":
            timesteps = torch.arange(steps - 1, -1, -1, dtype=torch.int64) * (T // steps) + self.steps_offset
        elif self.timestep_spacing == "trailing":
            ratio = T / steps
            timesteps = torch.tensor([round(T - i * ratio) - 1 for i in range(steps)], dtype=torch.int64)
        else:  # linspace
            timesteps = torch.linspace(0, T - 1, steps, dtype=torch.float64).round().flip(0).to(torch.int64)
        self.num_inference_steps = steps
        self.timesteps = timesteps.to(device) if device is not None else timesteps
        return self.timesteps

    def add_noise(self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps) -> torch.Tensor:
        """The forward process q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I), per sample."""
        abar = self.alphas_cumprod.to(device=original_samples.device, dtype=original_samples.dtype)
        abar = abar[torch.as_tensor(timesteps, device=original_samples.device).reshape(-1)]
        abar = abar.view(-1, *([1] * (original_samples.dim() - 1)))
        return abar ** 0.5 * original_samples + (1 - abar) ** 0.5 * noise

    def _split_prediction(self, model_output, sample, alpha_prod_t):
        """The model's output -> (estimate of x_0, estimate of eps), whatever it was trained to predict."""
        beta_prod_t = 1 - alpha_prod_t
        if self.prediction_type == "epsilon":
            x0 = (sample - beta_prod_t ** 0.5 * model_output) / alpha_prod_t ** 0.5
            eps = model_output
        elif self.prediction_type == "sample":
            x0 = model_output
            eps = (sample - alpha_prod_t ** 0.5 * x0) / beta_prod_t ** 0.5
        else:  # v_prediction
            x0 = alpha_prod_t ** 0.5 * sample - beta_prod_t ** 0.5 * model_output
            eps = alpha_prod_t ** 0.5 * model_output + beta_prod_t ** 0.5 * sample
        if self.clip_sample:
            x0 = x0.clamp(-self.clip_sample_range, self.clip_sample_range)
        return x0, eps

    @staticmethod
    def _as_int(timestep) -> int:
        return int(timestep.item()) if isinstance(timestep, torch.Tensor) else int(timestep)

    def _check_ready(self):
        if self.num_inference_steps is None:
            raise ConfigError(f"call {type(self).__name__}.set_timesteps(steps) before step()")


class DDPMScheduler(_Scheduler):
    """Ancestral sampling (Ho et al. 2020): x_{t-1} ~ q(x_{t-1} | x_t, x0_hat), stochastic at every step.

    variance_type: "fixed_small" (the posterior variance beta~_t, DDPM's choice for CelebA-HQ/LSUN),
    "fixed_large" (beta_t, its choice for CIFAR-10), or "fixed_small_log" (fixed_small, computed in log space).
    """

    config_names = _Scheduler.config_names + ("variance_type",)
    VARIANCE_TYPES = ("fixed_small", "fixed_small_log", "fixed_large")

    def __init__(self, *args, variance_type: str = "fixed_small", **kwargs):
        super().__init__(*args, **kwargs)
        if variance_type not in self.VARIANCE_TYPES:
            raise ConfigError(f"variance_type {variance_type!r} is not supported: one of "
                              f"{', '.join(self.VARIANCE_TYPES)} (learned variances need a 2x-channel model)")
        self.variance_type = variance_type
        self._prev = {}

    def set_timesteps(self, num_inference_steps: int, device=None) -> torch.Tensor:
        timesteps = super().set_timesteps(num_inference_steps, device)
        listed = timesteps.tolist()
        self._prev = dict(zip(listed, listed[1:] + [-1]))  # each visited timestep -> the next one down
        return timesteps

    def previous_timestep(self, t: int) -> int:
        if self.num_inference_steps is None:
            return t - 1
        if t not in self._prev:
            raise ConfigError(f"timestep {t} is not one of the {len(self._prev)} set by set_timesteps")
        return self._prev[t]

    def step(self, model_output, timestep, sample, generator=None, noise=None) -> StepOutput:
        t = self._as_int(timestep)
        prev_t = self.previous_timestep(t)
        one = torch.tensor(1.0)
        alpha_prod_t = self.alphas_cumprod[t]
        alpha_prod_t_prev = self.alphas_cumprod[prev_t] if prev_t >= 0 else one
        beta_prod_t, beta_prod_t_prev = 1 - alpha_prod_t, 1 - alpha_prod_t_prev
        current_alpha_t = alpha_prod_t / alpha_prod_t_prev
        current_beta_t = 1 - current_alpha_t

        x0, _ = self._split_prediction(model_output, sample, alpha_prod_t)
        # mean of the posterior q(x_{t-1} | x_t, x_0): a blend of x0_hat and x_t (DDPM eq. 7)
        x0_coeff = alpha_prod_t_prev ** 0.5 * current_beta_t / beta_prod_t
        xt_coeff = current_alpha_t ** 0.5 * beta_prod_t_prev / beta_prod_t
        prev_sample = x0_coeff * x0 + xt_coeff * sample

        if t > 0:
            if noise is None:
                noise = randn_like_generator(model_output.shape, generator, model_output.device, model_output.dtype)
            small = torch.clamp(beta_prod_t_prev / beta_prod_t * current_beta_t, min=1e-20)
            if self.variance_type == "fixed_small":
                std = small ** 0.5
            elif self.variance_type == "fixed_small_log":
                std = torch.exp(0.5 * torch.log(small))
            else:  # fixed_large
                std = current_beta_t ** 0.5
            prev_sample = prev_sample + std * noise
        return StepOutput(prev_sample, x0)


class DDIMScheduler(_Scheduler):
    """Denoising diffusion implicit models (Song et al. 2021): any subset of timesteps, deterministic at eta=0,
    as noisy as DDPM at eta=1. `eta` set here is the default for every step(); step(eta=...) overrides it."""

    config_names = _Scheduler.config_names + ("set_alpha_to_one",)

    def __init__(self, *args, set_alpha_to_one: bool = True, eta: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.set_alpha_to_one = bool(set_alpha_to_one)
        # alpha_bar "before" t = 0: 1 (a clean image) or alpha_bar_0
        self.final_alpha_cumprod = torch.tensor(1.0) if set_alpha_to_one else self.alphas_cumprod[0]
        self.eta = float(eta)

    def step(self, model_output, timestep, sample, generator=None, noise=None, eta: float | None = None) -> StepOutput:
        self._check_ready()
        eta = self.eta if eta is None else float(eta)
        if eta < 0:
            raise ConfigError(f"eta must be >= 0, got {eta}")
        t = self._as_int(timestep)
        # as diffusers: the previous timestep is t - T // steps (equal to the next listed one for "leading")
        prev_t = t - self.num_train_timesteps // self.num_inference_steps
        alpha_prod_t = self.alphas_cumprod[t]
        alpha_prod_t_prev = self.alphas_cumprod[prev_t] if prev_t >= 0 else self.final_alpha_cumprod

        x0, eps = self._split_prediction(model_output, sample, alpha_prod_t)
        # sigma_t (DDIM eq. 16): eta * sqrt of the DDPM posterior variance
        variance = (1 - alpha_prod_t_prev) / (1 - alpha_prod_t) * (1 - alpha_prod_t / alpha_prod_t_prev)
        std = eta * variance ** 0.5
        direction = (1 - alpha_prod_t_prev - std ** 2) ** 0.5 * eps  # "direction pointing to x_t"
        prev_sample = alpha_prod_t_prev ** 0.5 * x0 + direction
        if eta > 0:
            if noise is None:
                noise = randn_like_generator(model_output.shape, generator, model_output.device, model_output.dtype)
            prev_sample = prev_sample + std * noise
        return StepOutput(prev_sample, x0)


SCHEDULERS = {"ddpm": DDPMScheduler, "ddim": DDIMScheduler}


def make_scheduler(kind: str, config: dict | None = None, **overrides) -> _Scheduler:
    """"ddpm" or "ddim" from a scheduler config (diffusers names; keys the other sampler lacks are ignored)."""
    cls = SCHEDULERS.get(str(kind).lower())
    if cls is None:
        raise ConfigError(f"unknown scheduler {kind!r}: one of {', '.join(SCHEDULERS)}")
    return cls.from_config(config or {}, **overrides)
