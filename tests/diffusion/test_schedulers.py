"""DDPM and DDIM against diffusers' schedulers on the same inputs, step by step and over whole chains."""
import pytest
import torch

from genzoo import ConfigError, diffusion
from genzoo.diffusion.schedulers import make_scheduler

import diffusers  # noqa: F401  (test-only dependency; conftest skips the folder without it)

T = 100  # training timesteps: short chains keep the tests fast, the formulas do not depend on T
SCHEDULES = [dict(beta_schedule="linear"), dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012),
             dict(beta_schedule="squaredcos_cap_v2")]
IDS = ["linear", "scaled_linear", "squaredcos_cap_v2"]


def fake_eps(x, t):
    """A deterministic stand-in for a U-Net, so that chains exercise large and small predictions."""
    return 0.7 * torch.tanh(x) + 0.01 * (t % 17)


def run_chain(scheduler, steps, x, seed, step_kwargs=None, reference=False):
    scheduler.set_timesteps(steps)
    generator = torch.Generator().manual_seed(seed)
    x0s = []
    for t in scheduler.timesteps:
        out = scheduler.step(fake_eps(x, int(t)), t, x, generator=generator, **(step_kwargs or {}))
        x, x0 = (out.prev_sample, out.pred_original_sample)
        x0s.append(x0)
    return x, torch.stack(x0s)


def assert_same_chain(ours, theirs, steps, step_kwargs=None, seed=0):
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 1.5
    got, got_x0 = run_chain(ours, steps, x.clone(), seed, step_kwargs)
    want, want_x0 = run_chain(theirs, steps, x.clone(), seed, step_kwargs)
    assert torch.equal(ours.timesteps, theirs.timesteps)
    assert (got_x0 - want_x0).abs().max().item() <= 1e-5
    assert (got - want).abs().max().item() <= 1e-5


@pytest.mark.parametrize("schedule", SCHEDULES, ids=IDS)
@pytest.mark.parametrize("clip_sample", [True, False])
@pytest.mark.parametrize("eta", [0.0, 0.6])
def test_ddim_matches_diffusers(schedule, clip_sample, eta):
    config = dict(num_train_timesteps=T, clip_sample=clip_sample, **schedule)
    ours = diffusion.DDIMScheduler(**config)
    theirs = diffusers.DDIMScheduler(**config)
    assert torch.allclose(ours.alphas_cumprod, theirs.alphas_cumprod)
    assert_same_chain(ours, theirs, steps=13, step_kwargs={"eta": eta})  # 13: T // steps does not divide T


# every schedule x clip_sample with DDPM's default variance, and the other variance types on the linear schedule
DDPM_CASES = ([(schedule, clip, "fixed_small") for schedule in SCHEDULES for clip in (True, False)]
              + [(SCHEDULES[0], clip, variance) for clip in (True, False) for variance in ("fixed_large", "fixed_small_log")])


@pytest.mark.parametrize("schedule,clip_sample,variance_type", DDPM_CASES,
                         ids=[f"{s['beta_schedule']}-clip{int(c)}-{v}" for s, c, v in DDPM_CASES])
def test_ddpm_matches_diffusers(schedule, clip_sample, variance_type):
    config = dict(num_train_timesteps=T, clip_sample=clip_sample, variance_type=variance_type, **schedule)
    assert_same_chain(diffusion.DDPMScheduler(**config), diffusers.DDPMScheduler(**config), steps=T)


@pytest.mark.parametrize("kind", ["ddpm", "ddim"])
@pytest.mark.parametrize("options", [dict(timestep_spacing="trailing"), dict(timestep_spacing="linspace"),
                                     dict(steps_offset=1), dict(prediction_type="v_prediction"),
                                     dict(prediction_type="sample", clip_sample_range=0.8)],
                         ids=["trailing", "linspace", "offset", "v", "sample"])
def test_spacing_and_prediction_types(kind, options):
    cls = {"ddpm": diffusers.DDPMScheduler, "ddim": diffusers.DDIMScheduler}[kind]
    config = dict(num_train_timesteps=T, **options)
    assert_same_chain(make_scheduler(kind, config), cls(**config), steps=20, step_kwargs={"eta": 0.3} if kind == "ddim" else None)


@pytest.mark.parametrize("kind", ["ddpm", "ddim"])
def test_trained_betas_match_diffusers(kind):
    """An explicit beta list (scheduler_config.json's trained_betas) replaces beta_schedule / beta_start / beta_end."""
    cls = {"ddpm": diffusers.DDPMScheduler, "ddim": diffusers.DDIMScheduler}[kind]
    config = dict(num_train_timesteps=T, trained_betas=(torch.linspace(0.01, 0.2, T) ** 2).tolist())
    ours, theirs = make_scheduler(kind, config), cls(**config)
    assert not torch.allclose(ours.alphas_cumprod, diffusion.DDPMScheduler(num_train_timesteps=T).alphas_cumprod)
    assert torch.allclose(ours.alphas_cumprod, theirs.alphas_cumprod)
    assert_same_chain(ours, theirs, steps=10)


def test_ddim_without_set_alpha_to_one_and_explicit_noise():
    config = dict(num_train_timesteps=T, set_alpha_to_one=False)
    ours, theirs = diffusion.DDIMScheduler(**config), diffusers.DDIMScheduler(**config)
    ours.set_timesteps(10), theirs.set_timesteps(10)
    x, noise = torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 4)
    for t in (int(ours.timesteps[0]), 0):
        got = ours.step(fake_eps(x, t), t, x, eta=1.0, noise=noise).prev_sample
        want = theirs.step(fake_eps(x, t), t, x, eta=1.0, variance_noise=noise).prev_sample
        assert (got - want).abs().max().item() <= 1e-6


@pytest.mark.parametrize("schedule", SCHEDULES, ids=IDS)
def test_add_noise_matches_diffusers(schedule):
    ours, theirs = diffusion.DDPMScheduler(**schedule), diffusers.DDPMScheduler(**schedule)
    x0, noise = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    t = torch.tensor([0, 10, 500, 999])
    assert (ours.add_noise(x0, noise, t) - theirs.add_noise(x0, noise, t)).abs().max().item() <= 1e-6


def test_swappable_and_configured_from_diffusers_json(tiny_ddpm_dir):
    ddpm = diffusion.load_scheduler(tiny_ddpm_dir, kind="ddpm")
    assert isinstance(ddpm, diffusion.DDPMScheduler) and ddpm.variance_type == "fixed_large"
    ddim = diffusion.load_scheduler(tiny_ddpm_dir, kind="DDIM", eta=0.5)
    assert isinstance(ddim, diffusion.DDIMScheduler) and ddim.eta == 0.5
    assert torch.equal(ddim.alphas_cumprod, ddpm.alphas_cumprod)
    assert ddpm.config["variance_type"] == "fixed_large" and ddim.config["clip_sample"] is True


def test_bad_arguments():
    scheduler = diffusion.DDIMScheduler(num_train_timesteps=T)
    with pytest.raises(ConfigError, match=">= 1"):
        scheduler.set_timesteps(0)
    with pytest.raises(ConfigError, match="at most 100"):
        scheduler.set_timesteps(T + 1)
    with pytest.raises(ConfigError, match="set_timesteps"):
        diffusion.DDIMScheduler().step(torch.zeros(1), 10, torch.zeros(1))
    with pytest.raises(ConfigError, match="unknown scheduler 'euler'"):
        make_scheduler("euler")
    with pytest.raises(ConfigError, match="unknown beta_schedule"):
        diffusion.DDPMScheduler(beta_schedule="sqrt")
    with pytest.raises(ConfigError, match="learned"):
        diffusion.DDPMScheduler(variance_type="learned_range")
    with pytest.raises(ConfigError, match="thresholding"):
        make_scheduler("ddim", {"thresholding": True})
    with pytest.raises(ConfigError, match="unknown scheduler"):
        diffusion.load_scheduler("/definitely/not/here", kind="pndm")  # fails before touching the path
