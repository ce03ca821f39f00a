"""DPM-Solver++ (Lu et al. 2022), multistep, first or second order ("2M": diffusers' and k-diffusion's default).

Sampling is an ODE in lambda = log(alpha / sigma), the half log signal-to-noise ratio, where x_t = alpha_t x_0 +
sigma_t eps with alpha_t = sqrt(alpha_bar_t), sigma_t = sqrt(1 - alpha_bar_t). Solved exactly in its linear part,
a step from s to t (h = lambda_t - lambda_s > 0) is

    x_t = (sigma_t / sigma_s) x_s - alpha_t (e^{-h} - 1) D

with D = the model's x_0 estimate at s: first order (this is DDIM). Second order corrects D with the x_0 estimate
of the previous step (multistep: no extra U-Net call), as the midpoint rule: D = D0 + D1 / 2, where
D1 = (D0 - D0_prev) / r and r = h_prev / h. The first step (no history yet) and the last are first order.
Same maths, timestep grid and float32 arithmetic as diffusers' DPMSolverMultistepScheduler(algorithm_type=
"dpmsolver++", final_sigmas_type="zero"), the configuration it ships as default.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError
from .schedulers import BaseScheduler, StepOutput, as_number, register_scheduler


@register_scheduler("dpm++2m", "dpmsolver++")
class DPMSolverMultistepScheduler(BaseScheduler):
    """DPM-Solver++(2M): deterministic, good images in 15-25 steps.

    solver_order: 1 (DDIM-like) or 2. solver_type: "midpoint" (default) or "heun", two ways to weigh D1.
    lower_order_final: first order for the last step(s) when there are fewer than 15 (stabler for few steps).
    euler_at_final: always take the last step at first order. final_sigmas_type: "zero" (end on the x_0
    estimate) or "sigma_min" (end at the lowest trained noise level). lambda_min_clipped: never visit timesteps
    whose lambda is below it (they are dropped from the high-noise end).
    """

    config_names = BaseScheduler.config_names + (
        "solver_order", "algorithm_type", "solver_type", "lower_order_final", "euler_at_final",
        "final_sigmas_type", "lambda_min_clipped")
    unsupported = {**BaseScheduler.unsupported, "use_karras_sigmas": False, "use_exponential_sigmas": False,
                   "use_beta_sigmas": False, "use_lu_lambdas": False, "use_flow_sigmas": False,
                   "use_dynamic_shifting": False}

    def __init__(self, *, solver_order: int = 2, algorithm_type: str = "dpmsolver++", solver_type: str = "midpoint",
                 lower_order_final: bool = True, euler_at_final: bool = False, final_sigmas_type: str = "zero",
                 lambda_min_clipped: float = -float("inf"), timestep_spacing: str = "linspace", **schedule):
        super().__init__(timestep_spacing=timestep_spacing, **schedule)
        if solver_order not in (1, 2):
            raise ConfigError(f"solver_order {solver_order!r} is not implemented: 1 or 2")
        if algorithm_type != "dpmsolver++":
            raise ConfigError(f"algorithm_type {algorithm_type!r} is not implemented: only 'dpmsolver++' "
                              f"(DPM-Solver++, the diffusers default)")
        if solver_type not in ("midpoint", "heun"):
            raise ConfigError(f"solver_type {solver_type!r}: 'midpoint' or 'heun'")
        if final_sigmas_type not in ("zero", "sigma_min"):
            raise ConfigError(f"final_sigmas_type {final_sigmas_type!r}: 'zero' or 'sigma_min'")
        self.solver_order, self.algorithm_type, self.solver_type = int(solver_order), algorithm_type, solver_type
        self.lower_order_final, self.euler_at_final = bool(lower_order_final), bool(euler_at_final)
        self.final_sigmas_type, self.lambda_min_clipped = final_sigmas_type, float(lambda_min_clipped)
        # sigma here is sigma_t / alpha_t = sqrt((1 - alpha_bar) / alpha_bar), the noise level in "sigma space"
        self.train_sigmas = (((1 - self.alphas_cumprod) / self.alphas_cumprod) ** 0.5).numpy()
        self.lambdas = torch.log(self.alphas_cumprod ** 0.5) - torch.log((1 - self.alphas_cumprod) ** 0.5)
        self.history: list[torch.Tensor] = []  # x_0 estimates of the steps taken so far

    def set_timesteps(self, num_inference_steps: int, device=None) -> torch.Tensor:
        steps = self.check_steps(num_inference_steps)
        # timesteps with lambda below lambda_min_clipped are cut from the top of the chain
        clipped = int(torch.searchsorted(torch.flip(self.lambdas, [0]), self.lambda_min_clipped))
        last = self.num_train_timesteps - clipped
        # steps + 1 grid points from 0 to the top, the lowest dropped: the final step goes to sigma = 0 instead
        if self.timestep_spacing == "linspace":
            timesteps = np.linspace(0, last - 1, steps + 1).round()[::-1][:-1].astype(np.int64)
        elif self.timestep_spacing == "leading":
            ratio = last // (steps + 1)
            timesteps = (np.arange(steps + 1) * ratio).round()[::-1][:-1].astype(np.int64) + self.steps_offset
        else:  # trailing
            timesteps = np.arange(last, 0, -self.num_train_timesteps / steps).round().astype(np.int64) - 1
        if len(np.unique(timesteps)) != len(timesteps):
            raise ConfigError(f"{steps} steps with timestep_spacing={self.timestep_spacing!r} visit a timestep "
                              f"twice: use fewer steps or another spacing")
        sigmas = np.interp(timesteps, np.arange(self.num_train_timesteps), self.train_sigmas)
        final = 0.0 if self.final_sigmas_type == "zero" else float(self.train_sigmas[0])
        self.sigmas = torch.from_numpy(np.append(sigmas, final).astype(np.float32))
        self.timesteps = torch.from_numpy(timesteps.copy()).to(device)
        self.num_inference_steps = len(timesteps)
        self.history = []
        return self.timesteps

    @staticmethod
    def alpha_sigma(sigma):
        """sigma-space noise level -> (alpha_t, sigma_t) of the variance-preserving x_t = alpha_t x_0 + sigma_t eps."""
        alpha = 1 / (sigma ** 2 + 1) ** 0.5
        return alpha, sigma * alpha

    def lambda_of(self, i: int):
        alpha, sigma = self.alpha_sigma(self.sigmas[i])
        return torch.log(alpha) - torch.log(sigma)  # +inf at the final sigma = 0

    def index_of(self, timestep) -> int:
        """Position of `timestep` in the visited grid; steps must be taken in that order (the solver keeps history)."""
        i = super().index_of(timestep)
        if i != len(self.history):
            raise ConfigError(f"{type(self).__name__} steps through scheduler.timesteps in order: expected step "
                              f"{len(self.history)}, got timestep {as_number(timestep)} (step {i}); call "
                              f"set_timesteps again to restart")
        return i

    def order_at(self, i: int) -> int:
        n = self.num_inference_steps
        last_first_order = i == n - 1 and (self.euler_at_final or (self.lower_order_final and n < 15)
                                           or self.final_sigmas_type == "zero")
        if self.solver_order == 1 or i == 0 or last_first_order:
            return 1
        return 2

    def predict_x0(self, model_output, sample, alpha, sigma):
        # from alpha and sigma directly: 1 - alpha^2 loses most digits in float32 when alpha is close to 1
        if self.prediction_type == "epsilon":
            return (sample - sigma * model_output) / alpha
        if self.prediction_type == "sample":
            return model_output
        return alpha * sample - sigma * model_output  # v_prediction

    def step(self, model_output, timestep, sample, generator=None) -> StepOutput:
        """One solver step. `generator` is accepted for the protocol and unused: DPM-Solver++ is deterministic."""
        i = self.index_of(timestep)
        sample = sample.float()
        alpha_s, sigma_s = self.alpha_sigma(self.sigmas[i])
        x0 = self.predict_x0(model_output, sample, alpha_s, sigma_s)
        self.history.append(x0)

        alpha_t, sigma_t = self.alpha_sigma(self.sigmas[i + 1])
        h = self.lambda_of(i + 1) - self.lambda_of(i)
        first_order_weight = alpha_t * (torch.exp(-h) - 1.0)
        prev_sample = (sigma_t / sigma_s) * sample - first_order_weight * x0
        if self.order_at(i) == 2:
            r = (self.lambda_of(i) - self.lambda_of(i - 1)) / h
            d1 = (x0 - self.history[-2]) / r
            if self.solver_type == "midpoint":
                prev_sample = prev_sample - 0.5 * first_order_weight * d1
            else:  # heun
                prev_sample = prev_sample + alpha_t * ((torch.exp(-h) - 1.0) / h + 1.0) * d1
        return StepOutput(prev_sample.to(model_output.dtype), x0)
