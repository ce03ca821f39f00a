"""genzoo's schedulers against diffusers' on the same inputs, step by step and over whole chains; the registry."""
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
        model_input = scheduler.scale_model_input(x, t) if hasattr(scheduler, "scale_model_input") else x
        out = scheduler.step(fake_eps(model_input, float(t)), t, x, generator=generator, **(step_kwargs or {}))
        x = out.prev_sample
        x0s.append(getattr(out, "pred_original_sample", None))
    return x, (torch.stack(x0s) if x0s[0] is not None else None)


def assert_same_chain(ours, theirs, steps, step_kwargs=None, seed=0, tolerance=1e-5):
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 1.5
    got, got_x0 = run_chain(ours, steps, x.clone(), seed, step_kwargs)
    want, want_x0 = run_chain(theirs, steps, x.clone(), seed, step_kwargs)
    assert torch.equal(ours.timesteps, theirs.timesteps)
    if want_x0 is not None:
        assert (got_x0 - want_x0).abs().max().item() <= tolerance
    assert (got - want).abs().max().item() <= tolerance
    assert torch.isfinite(got).all()


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


# --- DPM-Solver++ (2M) and Euler ancestral ------------------------------------------------------------------------
NEW_KINDS = {"dpm++2m": diffusers.DPMSolverMultistepScheduler, "euler_a": diffusers.EulerAncestralDiscreteScheduler}


@pytest.mark.parametrize("kind", list(NEW_KINDS))
@pytest.mark.parametrize("schedule", SCHEDULES + [dict(trained_betas=(torch.linspace(0.01, 0.2, T) ** 2).tolist())],
                         ids=IDS + ["trained_betas"])
@pytest.mark.parametrize("steps", [7, 20])  # fewer / more than 15: lower_order_final matters for DPM-Solver++
def test_dpm_and_euler_match_diffusers(kind, schedule, steps):
    config = dict(num_train_timesteps=T, **schedule)
    assert_same_chain(make_scheduler(kind, config), NEW_KINDS[kind](**config), steps=steps)


@pytest.mark.parametrize("kind", list(NEW_KINDS))
@pytest.mark.parametrize("options", [dict(timestep_spacing="leading"), dict(timestep_spacing="trailing"),
                                     dict(timestep_spacing="leading", steps_offset=1),
                                     dict(prediction_type="v_prediction")],
                         ids=["leading", "trailing", "offset", "v"])
def test_dpm_and_euler_spacing_and_prediction_types(kind, options):
    config = dict(num_train_timesteps=T, **options)
    assert_same_chain(make_scheduler(kind, config), NEW_KINDS[kind](**config), steps=9)


@pytest.mark.parametrize("options", [dict(solver_order=1), dict(solver_type="heun"), dict(euler_at_final=True),
                                     dict(lower_order_final=False), dict(final_sigmas_type="sigma_min"),
                                     dict(prediction_type="sample"), dict(lambda_min_clipped=-1.0)],
                         ids=["order1", "heun", "euler_at_final", "no_lower_order_final", "sigma_min", "sample",
                              "lambda_min_clipped"])
def test_dpm_solver_options_match_diffusers(options):
    config = dict(num_train_timesteps=T, **options)
    ours, theirs = make_scheduler("dpmsolver++", config), diffusers.DPMSolverMultistepScheduler(**config)
    assert_same_chain(ours, theirs, steps=8)


@pytest.mark.parametrize("kind", list(NEW_KINDS))
def test_dpm_and_euler_at_full_size(kind):
    """The published default (T = 1000, linear betas): sigma_max is ~157, so compare relative to the size."""
    ours, theirs = make_scheduler(kind, {}), NEW_KINDS[kind]()
    assert ours.init_noise_sigma == pytest.approx(float(theirs.init_noise_sigma), rel=1e-6)
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    got, _ = run_chain(ours, 25, x * ours.init_noise_sigma, seed=0)
    want, _ = run_chain(theirs, 25, x * theirs.init_noise_sigma, seed=0)
    assert torch.equal(ours.timesteps, theirs.timesteps)
    assert torch.allclose(ours.sigmas, theirs.sigmas)
    assert (got - want).abs().max().item() <= 1e-4


def test_euler_scale_model_input_and_add_noise_match_diffusers():
    ours, theirs = make_scheduler("euler_ancestral", {}), diffusers.EulerAncestralDiscreteScheduler()
    ours.set_timesteps(10)
    x = torch.randn(2, 3, 4, 4)
    for t in ours.timesteps[[0, 5, 9]]:
        theirs.set_timesteps(10)  # diffusers finds the step on its first call only, then counts steps
        assert torch.allclose(ours.scale_model_input(x, t), theirs.scale_model_input(x, t))
    t = ours.timesteps[[0, 3]]
    assert torch.allclose(ours.add_noise(x, x, t), theirs.add_noise(x, x, t))


def test_new_kinds_read_a_ddpm_scheduler_config(tiny_ddpm_dir):
    """One checkpoint's scheduler_config.json (written by diffusers' DDPMScheduler) configures every kind."""
    for kind, cls in [("dpm++2m", diffusion.DPMSolverMultistepScheduler),
                      ("euler_a", diffusion.EulerAncestralDiscreteScheduler)]:
        ours = diffusion.load_scheduler(tiny_ddpm_dir, kind=kind)
        theirs = NEW_KINDS[kind].from_pretrained(tiny_ddpm_dir)
        assert isinstance(ours, cls) and ours.timestep_spacing == theirs.config.timestep_spacing
        ours.set_timesteps(10), theirs.set_timesteps(10)
        assert torch.equal(ours.timesteps, theirs.timesteps)


def test_new_kinds_refuse_what_they_do_not_implement():
    with pytest.raises(ConfigError, match="use_karras_sigmas"):
        make_scheduler("dpm++2m", {"use_karras_sigmas": True})
    with pytest.raises(ConfigError, match="algorithm_type"):
        make_scheduler("dpm++2m", algorithm_type="sde-dpmsolver++")
    with pytest.raises(ConfigError, match="solver_order"):
        make_scheduler("dpm++2m", solver_order=3)
    with pytest.raises(ConfigError, match="prediction_type"):
        make_scheduler("euler_a", prediction_type="sample")
    with pytest.raises(ConfigError, match="no option clip_sample"):
        make_scheduler("euler_a", clip_sample=True)
    scheduler = make_scheduler("dpm++2m", {"num_train_timesteps": T})
    scheduler.set_timesteps(5)
    x = torch.zeros(1, 3, 4, 4)
    with pytest.raises(ConfigError, match="in order"):
        scheduler.step(x, scheduler.timesteps[2], x)
    euler = make_scheduler("euler_a", {"num_train_timesteps": T})
    euler.set_timesteps(5)
    with pytest.raises(ConfigError, match="not one of"):
        euler.step(x, 3.5, x)


# --- DDIM's use_clipped_model_output ------------------------------------------------------------------------------
@pytest.mark.parametrize("eta", [0.0, 0.5])
def test_ddim_use_clipped_model_output_matches_diffusers(eta):
    config = dict(num_train_timesteps=T, clip_sample=True, clip_sample_range=0.5)
    ours, theirs = diffusion.DDIMScheduler(**config), diffusers.DDIMScheduler(**config)
    kwargs = {"eta": eta, "use_clipped_model_output": True}
    assert_same_chain(ours, theirs, steps=10, step_kwargs=kwargs)
    # it changes the result when x_0 is clipped, and the constructor default applies to every step
    plain, _ = run_chain(diffusion.DDIMScheduler(**config), 10, torch.full((1, 3, 4, 4), 2.0), 0, {"eta": eta})
    clipped, _ = run_chain(diffusion.DDIMScheduler(**config), 10, torch.full((1, 3, 4, 4), 2.0), 0, kwargs)
    default, _ = run_chain(diffusion.DDIMScheduler(use_clipped_model_output=True, **config), 10,
                           torch.full((1, 3, 4, 4), 2.0), 0, {"eta": eta})
    assert not torch.allclose(plain, clipped) and torch.equal(clipped, default)


# --- the registry -------------------------------------------------------------------------------------------------
def test_registry_names_and_aliases():
    from genzoo.diffusion.schedulers import scheduler_kinds

    assert {"ddpm", "ddim", "dpm++2m", "dpmsolver++", "euler_a", "euler_ancestral"} <= set(scheduler_kinds())
    assert type(make_scheduler("DPMSolver++")) is diffusion.DPMSolverMultistepScheduler
    assert type(make_scheduler("dpm++2m")) is diffusion.DPMSolverMultistepScheduler
    assert type(make_scheduler("euler_ancestral")) is diffusion.EulerAncestralDiscreteScheduler
    assert isinstance(make_scheduler("euler_a"), diffusion.Scheduler)
    with pytest.raises(ConfigError, match="taken by DDIMScheduler"):
        diffusion.register_scheduler("ddim")(type("Other", (), {}))


@pytest.mark.parametrize("bad, match", [
    ({"num_train_timesteps": 10 ** 9}, r"num_train_timesteps must be an integer in \[1, 100000\]"),
    ({"num_train_timesteps": 1e3}, "num_train_timesteps must be an integer"),
    ({"num_train_timesteps": "1000"}, "num_train_timesteps must be an integer"),
    ({"beta_end": float("nan")}, r"beta_end must be a number in \[0, 1\)"),
    ({"beta_start": "0.0001"}, "beta_start must be a number"),
    ({"steps_offset": -1}, "steps_offset must be an integer"),
])
def test_hostile_scheduler_configs_are_refused_before_allocating(bad, match):
    for kind in ("ddpm", "ddim", "dpm++2m", "euler_a"):
        with pytest.raises(ConfigError, match=match):
            make_scheduler(kind, {"num_train_timesteps": 1000, **bad})
