"""Schedulers: the part of a diffusion sampler that turns the U-Net's prediction into the next, less noisy sample.

Any object with this shape drives `diffusion.sample` (genzoo's, diffusers', or yours; see `Scheduler`):

    scheduler.set_timesteps(steps)                  # which timesteps to visit, in order
    x = noise * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        eps = unet(scheduler.scale_model_input(x, t), t)
        x = scheduler.step(eps, t, x, generator=g).prev_sample

genzoo's own (DDPM, DDIM here; DPM-Solver++ in dpm_solver.py, Euler ancestral in euler.py) share the noise schedule:
beta_t for t = 0..T-1 and alpha_bar_t = prod_{s<=t} (1 - beta_s), so that x_t = sqrt(alpha_bar_t) x_0 +
sqrt(1 - alpha_bar_t) eps. Constructor arguments use diffusers' scheduler_config.json names, so `from_config(json)`
reads a published scheduler as-is, and the arithmetic follows diffusers' (float32, same formulas, same timestep
grids) so that the two agree step for step. A new scheduler is one class plus `@register_scheduler("name")`.
"""
from __future__ import annotations

import inspect
import math
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np
import torch

from ..errors import ConfigError
from ..runtime import randn

BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
PREDICTION_TYPES = ("epsilon", "sample", "v_prediction")
SPACINGS = ("leading", "trailing", "linspace")


@runtime_checkable
class Scheduler(Protocol):
    """What `diffusion.sample` needs from a scheduler. diffusers' schedulers fit it as they are.

    - `set_timesteps(num_inference_steps, device=None)`: choose the timesteps to visit; the return value is ignored
      (diffusers returns None), `timesteps` is read afterwards.
    - `timesteps`: 1-D tensor, the timesteps in the order they are visited (high noise first).
    - `step(model_output, timestep, sample, generator=None)`: one step down; returns an object with
      `.prev_sample` (and usually `.pred_original_sample`, the current estimate of x_0). `generator` is None, a
      torch.Generator, or a list of them, one per sample (diffusers' convention: `sample` passes a list so that
      each image's noise is its own, whatever the batch size). `sample` passes `generator` only to a step that
      names it.
    - `init_noise_sigma` (optional, 1 when absent): the initial noise is N(0, init_noise_sigma^2).
    - `scale_model_input(sample, timestep)` (optional): what the U-Net sees instead of `sample` (Euler-type
      samplers divide by sqrt(sigma^2 + 1)).
    """

    timesteps: torch.Tensor

    def set_timesteps(self, num_inference_steps: int, device=None): ...

    def step(self, model_output: torch.Tensor, timestep, sample: torch.Tensor, generator=None): ...


# --- the registry ----------------------------------------------------------------------------------------------
SCHEDULERS: dict[str, type] = {}


def register_scheduler(*names: str, overwrite: bool = False):
    """Class decorator: `make_scheduler(name, config)` and `load_scheduler(model, kind=name)` then build the class.

    The class needs `from_config(config: dict, **overrides)` (genzoo's BaseScheduler and diffusers' schedulers
    have one) or a constructor taking the config's keys by name. Names are case-insensitive; taking a name another
    class holds needs overwrite=True.
    """
    if not names:
        raise ConfigError("register_scheduler needs at least one name, e.g. @register_scheduler('my-sampler')")

    def register(cls):
        for name in names:
            key = name.lower()
            held = SCHEDULERS.get(key)
            same = held is not None and (held.__module__, held.__qualname__) == (cls.__module__, cls.__qualname__)
            if held is not None and not same and not overwrite:  # `same`: the module was imported again
                raise ConfigError(f"scheduler name {name!r} is taken by {held.__name__}: pick another name or "
                                  f"pass overwrite=True")
            SCHEDULERS[key] = cls
        return cls

    return register


def scheduler_kinds() -> list[str]:
    """Every registered name (aliases included), sorted."""
    return sorted(SCHEDULERS)


def make_scheduler(kind: str, config: dict | None = None, **overrides):
    """A registered scheduler from a scheduler config (diffusers names; keys this kind does not use are ignored,
    so one checkpoint's scheduler_config.json serves every kind). `overrides` replace config values."""
    cls = SCHEDULERS.get(str(kind).lower())
    if cls is None:
        raise ConfigError(f"unknown scheduler {kind!r}: one of {', '.join(scheduler_kinds())}")
    config = dict(config or {})
    if hasattr(cls, "from_config"):
        return cls.from_config(config, **overrides)
    accepted = inspect.signature(cls).parameters
    unknown = sorted(set(overrides) - set(accepted))
    if unknown and not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        raise ConfigError(f"{cls.__name__} has no option {', '.join(unknown)}; its options: {', '.join(accepted)}")
    return cls(**{**{k: v for k, v in config.items() if k in accepted}, **overrides})


# --- shared pieces ---------------------------------------------------------------------------------------------
class StepOutput(NamedTuple):
    prev_sample: torch.Tensor            # x at the next timestep visited (one step less noisy)
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


def gaussian_noise(shape, generator=None, device=None, dtype=torch.float32) -> torch.Tensor:
    """N(0, I) noise of `shape`, drawn where the generator lives, then moved: same seed, same noise, any device.

    `generator` may be a list with one generator per sample (shape[0] of them): sample i's noise then depends
    only on generator i, so a batch of 8 starts with the same 4 images as a batch of 4 (as diffusers' randn_tensor).
    """
    if isinstance(generator, (list, tuple)):
        if len(generator) != shape[0]:
            raise ConfigError(f"{len(generator)} generators for a batch of {shape[0]}: pass one per sample")
        return torch.cat([gaussian_noise((1, *shape[1:]), g, device, dtype) for g in generator])
    target = device if device is not None else (generator.device if generator is not None else "cpu")
    return randn(shape, generator, device=target, dtype=dtype)   # genzoo.runtime's one rule


def predict_x0_and_eps(model_output, sample, alpha_prod_t, prediction_type: str):
    """The model's output at a timestep with alpha_bar_t -> (estimate of x_0, estimate of eps)."""
    beta_prod_t = 1 - alpha_prod_t
    if prediction_type == "epsilon":
        return (sample - beta_prod_t ** 0.5 * model_output) / alpha_prod_t ** 0.5, model_output
    if prediction_type == "sample":
        return model_output, (sample - alpha_prod_t ** 0.5 * model_output) / beta_prod_t ** 0.5
    # v_prediction: v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x_0
    return (alpha_prod_t ** 0.5 * sample - beta_prod_t ** 0.5 * model_output,
            alpha_prod_t ** 0.5 * model_output + beta_prod_t ** 0.5 * sample)


def as_number(timestep):
    """A timestep given as a Python number or a 0-d tensor -> a Python number."""
    return timestep.item() if isinstance(timestep, torch.Tensor) else timestep


MAX_TRAIN_TIMESTEPS = 100_000   # published schedules use 1,000; a bigger one is a broken config, not a model


def check_schedule_values(num_train_timesteps, beta_start, beta_end, steps_offset) -> None:
    """Types and ranges of a scheduler config's numbers, checked before any table is allocated."""
    if isinstance(num_train_timesteps, bool) or not isinstance(num_train_timesteps, int) or \
            not 1 <= num_train_timesteps <= MAX_TRAIN_TIMESTEPS:
        raise ConfigError(f"num_train_timesteps must be an integer in [1, {MAX_TRAIN_TIMESTEPS}], got "
                          f"{num_train_timesteps!r}")
    for name, value in (("beta_start", beta_start), ("beta_end", beta_end)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise ConfigError(f"{name} must be a number in [0, 1), got {value!r}")
    if isinstance(steps_offset, bool) or not isinstance(steps_offset, int) or \
            not 0 <= steps_offset < num_train_timesteps:
        raise ConfigError(f"steps_offset must be an integer in [0, num_train_timesteps), got {steps_offset!r}")


class BaseScheduler:
    """The part every genzoo scheduler shares: the noise schedule, configuration, the forward process.

    Subclasses list the scheduler_config.json keys they read in `config_names`, the options that are not config
    keys in `extra_options` (e.g. DDIM's eta), and the diffusers options they do not implement, with the value
    that means "off", in `unsupported` (a config asking for one is refused rather than silently ignored).
    """

    config_names = ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas",
                    "prediction_type", "timestep_spacing", "steps_offset")
    extra_options: tuple = ()
    unsupported = {"thresholding": False, "rescale_betas_zero_snr": False}
    prediction_types = PREDICTION_TYPES

    def __init__(self, num_train_timesteps: int = 1000, beta_start: float = 0.0001, beta_end: float = 0.02,
                 beta_schedule: str = "linear", trained_betas=None, prediction_type: str = "epsilon",
                 timestep_spacing: str = "leading", steps_offset: int = 0):
        if prediction_type not in self.prediction_types:
            raise ConfigError(f"{type(self).__name__}: unknown prediction_type {prediction_type!r}: one of "
                              f"{', '.join(self.prediction_types)}")
        if timestep_spacing not in SPACINGS:
            raise ConfigError(f"unknown timestep_spacing {timestep_spacing!r}: one of {', '.join(SPACINGS)}")
        check_schedule_values(num_train_timesteps, beta_start, beta_end, steps_offset)
        self.num_train_timesteps = int(num_train_timesteps)
        self.beta_start, self.beta_end, self.beta_schedule = float(beta_start), float(beta_end), beta_schedule
        self.trained_betas = list(trained_betas) if trained_betas is not None else None
        self.prediction_type, self.timestep_spacing = prediction_type, timestep_spacing
        self.steps_offset = int(steps_offset)

        if trained_betas is not None:
            self.betas = torch.tensor(trained_betas, dtype=torch.float32)
            if self.betas.shape != (self.num_train_timesteps,):
                raise ConfigError(f"trained_betas has {self.betas.numel()} values, num_train_timesteps is "
                                  f"{self.num_train_timesteps}: they must agree")
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
        """Build from a scheduler_config.json dict (diffusers names; keys this scheduler does not read are
        ignored, options it does not implement are refused); `overrides` must be options it has."""
        options = set(cls.config_names) | set(cls.extra_options)
        unknown = sorted(set(overrides) - options - set(cls.unsupported))
        if unknown:
            raise ConfigError(f"{cls.__name__} has no option {', '.join(unknown)}; its options: "
                              f"{', '.join(sorted(options))}")
        merged = {**config, **overrides}
        for name, off in cls.unsupported.items():
            if merged.get(name, off) != off:
                raise ConfigError(f"{cls.__name__}: {name}={merged[name]!r} is not implemented (only {off!r})")
        return cls(**{k: v for k, v in merged.items() if k in options})

    @property
    def config(self) -> dict:
        return {"_class_name": type(self).__name__, **{k: getattr(self, k) for k in self.config_names}}

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.config.items() if k[0] != '_')})"

    # --- helpers for subclasses ----------------------------------------------------------------------------
    def check_steps(self, steps) -> int:
        """A number of sampling steps, refused unless 1 <= steps <= the training timesteps."""
        T = self.num_train_timesteps
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise ConfigError(f"the number of sampling steps must be an integer >= 1, got {steps!r}")
        if steps > T:
            raise ConfigError(f"{steps} sampling steps asked for, but this model was trained with {T} timesteps: "
                              f"use at most {T}")
        return steps

    def index_of(self, timestep) -> int:
        """Position of `timestep` in the visited grid (each timestep is visited once)."""
        self.check_ready()
        matches = (self.timesteps.cpu() == as_number(timestep)).nonzero()
        if len(matches) == 0:
            raise ConfigError(f"timestep {as_number(timestep)} is not one of the {self.num_inference_steps} set by "
                              f"set_timesteps: step through scheduler.timesteps")
        return int(matches[0])

    def check_ready(self):
        if self.num_inference_steps is None:
            raise ConfigError(f"call {type(self).__name__}.set_timesteps(steps) before step()")

    def add_noise(self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps) -> torch.Tensor:
        """The forward process q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I), per sample."""
        abar = self.alphas_cumprod.to(device=original_samples.device, dtype=original_samples.dtype)
        abar = abar[torch.as_tensor(timesteps, device=original_samples.device).reshape(-1)]
        abar = abar.view(-1, *([1] * (original_samples.dim() - 1)))
        return abar ** 0.5 * original_samples + (1 - abar) ** 0.5 * noise


class _PosteriorScheduler(BaseScheduler):
    """DDPM and DDIM: integer timesteps spaced by diffusers' rules, x_0 estimates optionally clipped."""

    config_names = BaseScheduler.config_names + ("clip_sample", "clip_sample_range")

    def __init__(self, *, clip_sample: bool = True, clip_sample_range: float = 1.0, **schedule):
        super().__init__(**schedule)
        self.clip_sample, self.clip_sample_range = bool(clip_sample), float(clip_sample_range)

    def set_timesteps(self, num_inference_steps: int, device=None) -> torch.Tensor:
        """Choose `num_inference_steps` timesteps in [0, T), descending (diffusers' spacing rules)."""
        steps, T = self.check_steps(num_inference_steps), self.num_train_timesteps
        if self.timestep_spacing == "leading":
            timesteps = np.arange(steps - 1, -1, -1, dtype=np.int64) * (T // steps) + self.steps_offset
        elif self.timestep_spacing == "trailing":
            timesteps = np.round(np.arange(T, 0, -T / steps)).astype(np.int64) - 1
        else:  # linspace (numpy's grid, which torch.linspace does not always reproduce to the last bit)
            timesteps = np.linspace(0, T - 1, steps).round()[::-1].astype(np.int64)
        self.num_inference_steps = steps
        self.timesteps = torch.from_numpy(timesteps.copy()).to(device)
        return self.timesteps

    def split_prediction(self, model_output, sample, alpha_prod_t):
        """-> (x_0 estimate, clipped to +-clip_sample_range if clip_sample, eps estimate from the raw output)."""
        x0, eps = predict_x0_and_eps(model_output, sample, alpha_prod_t, self.prediction_type)
        if self.clip_sample:
            x0 = x0.clamp(-self.clip_sample_range, self.clip_sample_range)
        return x0, eps


@register_scheduler("ddpm")
class DDPMScheduler(_PosteriorScheduler):
    """Ancestral sampling (Ho et al. 2020): x_{t-1} ~ q(x_{t-1} | x_t, x0_hat), stochastic at every step.

    variance_type: "fixed_small" (the posterior variance beta~_t, DDPM's choice for CelebA-HQ/LSUN),
    "fixed_large" (beta_t, its choice for CIFAR-10), or "fixed_small_log" (fixed_small, computed in log space).
    """

    config_names = _PosteriorScheduler.config_names + ("variance_type",)
    VARIANCE_TYPES = ("fixed_small", "fixed_small_log", "fixed_large")

    def __init__(self, *, variance_type: str = "fixed_small", **kwargs):
        super().__init__(**kwargs)
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
        t = int(as_number(timestep))
        prev_t = self.previous_timestep(t)
        one = torch.tensor(1.0)
        alpha_prod_t = self.alphas_cumprod[t]
        alpha_prod_t_prev = self.alphas_cumprod[prev_t] if prev_t >= 0 else one
        beta_prod_t, beta_prod_t_prev = 1 - alpha_prod_t, 1 - alpha_prod_t_prev
        current_alpha_t = alpha_prod_t / alpha_prod_t_prev
        current_beta_t = 1 - current_alpha_t

        x0, _ = self.split_prediction(model_output, sample, alpha_prod_t)
        # mean of the posterior q(x_{t-1} | x_t, x_0): a blend of x0_hat and x_t (DDPM eq. 7)
        x0_coeff = alpha_prod_t_prev ** 0.5 * current_beta_t / beta_prod_t
        xt_coeff = current_alpha_t ** 0.5 * beta_prod_t_prev / beta_prod_t
        prev_sample = x0_coeff * x0 + xt_coeff * sample

        if t > 0:
            if noise is None:
                noise = gaussian_noise(model_output.shape, generator, model_output.device, model_output.dtype)
            small = torch.clamp(beta_prod_t_prev / beta_prod_t * current_beta_t, min=1e-20)
            if self.variance_type == "fixed_small":
                std = small ** 0.5
            elif self.variance_type == "fixed_small_log":
                std = torch.exp(0.5 * torch.log(small))
            else:  # fixed_large
                std = current_beta_t ** 0.5
            prev_sample = prev_sample + std * noise
        return StepOutput(prev_sample, x0)


@register_scheduler("ddim")
class DDIMScheduler(_PosteriorScheduler):
    """Denoising diffusion implicit models (Song et al. 2021): any subset of timesteps, deterministic at eta=0,
    as noisy as DDPM at eta=1. `eta` and `use_clipped_model_output` set here are the defaults for every step();
    step(eta=..., use_clipped_model_output=...) overrides them.

    use_clipped_model_output: when clip_sample clips the x_0 estimate, re-derive eps from the clipped x_0 (as
    GLIDE does) so that x_0 and the direction to x_t stay consistent; without clipping it changes nothing.
    """

    config_names = _PosteriorScheduler.config_names + ("set_alpha_to_one",)
    extra_options = ("eta", "use_clipped_model_output")

    def __init__(self, *, set_alpha_to_one: bool = True, eta: float = 0.0, use_clipped_model_output: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        self.set_alpha_to_one = bool(set_alpha_to_one)
        # alpha_bar "before" t = 0: 1 (a clean image) or alpha_bar_0
        self.final_alpha_cumprod = torch.tensor(1.0) if set_alpha_to_one else self.alphas_cumprod[0]
        self.eta = float(eta)
        self.use_clipped_model_output = bool(use_clipped_model_output)

    def step(self, model_output, timestep, sample, generator=None, noise=None, eta: float | None = None,
             use_clipped_model_output: bool | None = None) -> StepOutput:
        self.check_ready()
        eta = self.eta if eta is None else float(eta)
        if eta < 0:
            raise ConfigError(f"eta must be >= 0, got {eta}")
        if use_clipped_model_output is None:
            use_clipped_model_output = self.use_clipped_model_output
        t = int(as_number(timestep))
        # as diffusers: the previous timestep is t - T // steps (equal to the next listed one for "leading")
        prev_t = t - self.num_train_timesteps // self.num_inference_steps
        alpha_prod_t = self.alphas_cumprod[t]
        alpha_prod_t_prev = self.alphas_cumprod[prev_t] if prev_t >= 0 else self.final_alpha_cumprod

        x0, eps = self.split_prediction(model_output, sample, alpha_prod_t)
        if use_clipped_model_output:
            eps = (sample - alpha_prod_t ** 0.5 * x0) / (1 - alpha_prod_t) ** 0.5
        # sigma_t (DDIM eq. 16): eta * sqrt of the DDPM posterior variance
        variance = (1 - alpha_prod_t_prev) / (1 - alpha_prod_t) * (1 - alpha_prod_t / alpha_prod_t_prev)
        std = eta * variance ** 0.5
        direction = (1 - alpha_prod_t_prev - std ** 2) ** 0.5 * eps  # "direction pointing to x_t"
        prev_sample = alpha_prod_t_prev ** 0.5 * x0 + direction
        if eta > 0:
            if noise is None:
                noise = gaussian_noise(model_output.shape, generator, model_output.device, model_output.dtype)
            prev_sample = prev_sample + std * noise
        return StepOutput(prev_sample, x0)
