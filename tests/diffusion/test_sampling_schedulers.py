"""sample() with any scheduler: diffusers' objects, genzoo's own, a registered one; same seed, same images
whatever the batch size (library and CLI)."""
import numpy as np
import pytest
import torch

from genzoo import ConfigError, diffusion
from genzoo.cli import main as genzoo_main
from genzoo.diffusion.schedulers import SCHEDULERS, make_scheduler, register_scheduler

import diffusers
from diffusers.utils.torch_utils import randn_tensor

STEPS = 6


@pytest.fixture(scope="module")
def tiny(tiny_ddpm_dir):
    return diffusion.from_pretrained(tiny_ddpm_dir, device="cpu")


@pytest.fixture(scope="module")
def reference(tiny_ddpm_dir):
    return diffusers.UNet2DModel.from_pretrained(tiny_ddpm_dir).eval()


def diffusers_loop(unet, scheduler, generators, steps):
    """diffusers' sampling loop as its pipelines write it (StableDiffusionPipeline's order of calls), with a
    diffusers U-Net; one generator per image, as diffusers' pipelines accept."""
    size, channels = unet.config.sample_size, unet.config.in_channels
    scheduler.set_timesteps(steps)  # first: Euler's init_noise_sigma depends on the timesteps chosen
    latents = randn_tensor((len(generators), channels, size, size), generator=generators) * scheduler.init_noise_sigma
    takes_generator = "generator" in __import__("inspect").signature(scheduler.step).parameters
    with torch.no_grad():
        for t in scheduler.timesteps:
            eps = unet(scheduler.scale_model_input(latents, t), t).sample
            extra = {"generator": generators} if takes_generator else {}
            latents = scheduler.step(eps, t, latents, **extra).prev_sample
    return latents.clamp(-1, 1)


DIFFUSERS_SCHEDULERS = {"dpm": diffusers.DPMSolverMultistepScheduler,
                        "euler_a": diffusers.EulerAncestralDiscreteScheduler, "pndm": diffusers.PNDMScheduler}


@pytest.mark.parametrize("name", list(DIFFUSERS_SCHEDULERS))
def test_diffusers_scheduler_objects_drive_sample(tiny_ddpm_dir, tiny, reference, name):
    """genzoo's U-Net + a diffusers scheduler through sample() == diffusers' U-Net + the same scheduler in
    diffusers' loop, same seed (init_noise_sigma, scale_model_input and per-image generators all used)."""
    cls = DIFFUSERS_SCHEDULERS[name]
    got = diffusion.sample(tiny, cls.from_pretrained(tiny_ddpm_dir), n=2, steps=STEPS, seed=7, progress=False)
    want = diffusers_loop(reference, cls.from_pretrained(tiny_ddpm_dir), diffusion.sample_generators(2, seed=7),
                          STEPS)
    assert (got - want).abs().max().item() <= 1e-4
    if name == "euler_a":  # the test means something: Euler's input scaling and sigma-sized noise are in play
        assert cls.from_pretrained(tiny_ddpm_dir).init_noise_sigma > 10


def test_diffusers_dpm_solver_matches_its_pipeline(tiny_ddpm_dir, tiny, reference):
    """DDPMPipeline accepts any scheduler that needs no input scaling: DPM-Solver++ through it == through sample()."""
    scheduler = diffusers.DPMSolverMultistepScheduler.from_pretrained(tiny_ddpm_dir)
    pipe = diffusers.DDPMPipeline(reference, scheduler)
    pipe.set_progress_bar_config(disable=True)
    want = pipe(batch_size=3, generator=diffusion.sample_generators(3, seed=5), num_inference_steps=STEPS,
                output_type="np").images
    got = diffusion.sample(tiny, diffusers.DPMSolverMultistepScheduler.from_pretrained(tiny_ddpm_dir), n=3,
                           steps=STEPS, seed=5, progress=False)
    assert np.abs((got / 2 + 0.5).permute(0, 2, 3, 1).numpy() - want).max() <= 1e-4


@pytest.mark.parametrize("kind,theirs", [("dpm++2m", diffusers.DPMSolverMultistepScheduler),
                                         ("euler_a", diffusers.EulerAncestralDiscreteScheduler)])
def test_genzoo_schedulers_equal_diffusers_end_to_end(tiny_ddpm_dir, tiny, reference, kind, theirs):
    """genzoo's own DPM-Solver++ / Euler ancestral, configured from the checkpoint == diffusers' from the same file."""
    ours = diffusion.load_scheduler(tiny_ddpm_dir, kind=kind)
    got = diffusion.sample(tiny, ours, n=2, steps=STEPS, seed=3, progress=False)
    want = diffusers_loop(reference, theirs.from_pretrained(tiny_ddpm_dir), diffusion.sample_generators(2, seed=3),
                          STEPS)
    assert (got - want).abs().max().item() <= 1e-4


def test_initial_noise_can_be_given(tiny):
    noise = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    scheduler = diffusion.DDIMScheduler()
    a = diffusion.sample(tiny, scheduler, n=2, steps=3, noise=noise, progress=False)
    b = diffusion.sample(tiny, scheduler, n=2, steps=3, noise=noise.clone(), seed=99, progress=False)
    assert torch.equal(a, b)  # DDIM eta=0: the initial noise decides everything
    with pytest.raises(ConfigError, match="noise has shape"):
        diffusion.sample(tiny, scheduler, n=3, steps=3, noise=noise, progress=False)


# --- a scheduler of one's own --------------------------------------------------------------------------------
def test_registered_scheduler_works_with_make_scheduler_and_sample(tiny_ddpm_dir, tiny):
    """A from-scratch deterministic DDIM (no genzoo base class): one class + one decorator."""

    @register_scheduler("test-plain-ddim")
    class PlainDDIM:
        def __init__(self, num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02):
            betas = torch.linspace(beta_start, beta_end, num_train_timesteps)
            self.alphas_cumprod = torch.cumprod(1 - betas, 0)
            self.T = num_train_timesteps
            self.timesteps = torch.arange(num_train_timesteps - 1, -1, -1)

        def set_timesteps(self, n, device=None):
            self.timesteps = torch.arange(n - 1, -1, -1) * (self.T // n)
            self.gap = self.T // n

        def step(self, eps, t, x):
            a, prev = self.alphas_cumprod[int(t)], int(t) - self.gap
            a_prev = self.alphas_cumprod[prev] if prev >= 0 else torch.tensor(1.0)
            x0 = (x - (1 - a) ** 0.5 * eps) / a ** 0.5
            return diffusion.StepOutput(a_prev ** 0.5 * x0 + (1 - a_prev) ** 0.5 * eps, x0)

    try:
        scheduler = diffusion.load_scheduler(tiny_ddpm_dir, kind="TEST-plain-ddim")  # config keys it lacks: ignored
        assert isinstance(scheduler, PlainDDIM) and isinstance(scheduler, diffusion.Scheduler)
        assert make_scheduler("test-plain-ddim", {"beta_end": 0.03}, num_train_timesteps=10).T == 10
        with pytest.raises(ConfigError, match="PlainDDIM has no option eta"):
            make_scheduler("test-plain-ddim", eta=0.5)
        got = diffusion.sample(tiny, scheduler, n=2, steps=4, seed=0, progress=False)
        want = diffusion.sample(tiny, make_scheduler("ddim", clip_sample=False), n=2, steps=4, seed=0,
                                progress=False)
        assert (got - want).abs().max().item() <= 1e-5
    finally:
        SCHEDULERS.pop("test-plain-ddim", None)


def test_objects_that_are_not_schedulers_are_refused(tiny):
    class NoStep:
        def set_timesteps(self, n, device=None):
            self.timesteps = torch.arange(n)

    class NoTimesteps(NoStep):
        def set_timesteps(self, n, device=None):
            pass

        def step(self, eps, t, x):
            return x

    class NoPrevSample(NoStep):
        def step(self, eps, t, x):
            return x

    with pytest.raises(ConfigError, match="no step\\(\\) method"):
        diffusion.sample(tiny, NoStep(), n=1, steps=2, progress=False)
    with pytest.raises(ConfigError, match="left no .timesteps"):
        diffusion.sample(tiny, NoTimesteps(), n=1, steps=2, progress=False)
    with pytest.raises(ConfigError, match="no .prev_sample"):
        diffusion.sample(tiny, NoPrevSample(), n=1, steps=2, progress=False)


# --- same seed, same images, whatever the batch size ---------------------------------------------------------
def stochastic_schedulers(tiny_ddpm_dir):
    return {"ddpm": lambda: diffusion.load_scheduler(tiny_ddpm_dir, kind="ddpm"),
            "ddim-eta1": lambda: diffusion.load_scheduler(tiny_ddpm_dir, kind="ddim", eta=1.0),
            "euler_a": lambda: diffusion.load_scheduler(tiny_ddpm_dir, kind="euler_a"),
            "dpm++2m": lambda: diffusion.load_scheduler(tiny_ddpm_dir, kind="dpm++2m"),
            "diffusers-euler_a": lambda: diffusers.EulerAncestralDiscreteScheduler.from_pretrained(tiny_ddpm_dir)}


@pytest.mark.parametrize("name", ["ddpm", "ddim-eta1", "euler_a", "dpm++2m", "diffusers-euler_a"])
def test_same_seed_same_images_whatever_the_batch(tiny_ddpm_dir, tiny, name):
    """Initial and per-step noise are drawn per image: n=4 is the first 4 of n=8, and batch_size changes nothing."""
    make = stochastic_schedulers(tiny_ddpm_dir)[name]
    steps = 4
    eight = diffusion.sample(tiny, make(), n=8, steps=steps, seed=0, progress=False)
    four = diffusion.sample(tiny, make(), n=4, steps=steps, seed=0, progress=False)
    in_twos = diffusion.sample(tiny, make(), n=4, steps=steps, seed=0, batch_size=2, progress=False)
    # equal up to the float rounding of convolutions over batches of another size (not bit for bit)
    assert (four - eight[:4]).abs().max().item() <= 1e-4
    assert (in_twos - four).abs().max().item() <= 1e-4
    assert not torch.allclose(eight[:4], eight[4:])
    # a passed generator works the same way: image seeds are drawn from it in order
    gen4 = diffusion.sample(tiny, make(), n=4, steps=steps, generator=torch.Generator().manual_seed(0),
                            progress=False)
    assert torch.equal(gen4, four)


def test_sample_generators_and_batch_size_errors(tiny):
    a, b = diffusion.sample_generators(3, seed=1), diffusion.sample_generators(5, seed=1)
    assert [g.initial_seed() for g in a] == [g.initial_seed() for g in b[:3]]
    assert len({g.initial_seed() for g in b}) == 5
    with pytest.raises(ConfigError, match="batch_size"):
        diffusion.sample(tiny, diffusion.DDIMScheduler(), n=2, steps=2, batch_size=0)
    with pytest.raises(ConfigError, match="one per image"):
        diffusion.sample(tiny, diffusion.DDIMScheduler(), n=2, steps=2, generator=diffusion.sample_generators(3))


def test_cli_batch_size_does_not_change_the_images(tmp_path, capsys):
    """issue 16: `genzoo sample mnist-ddpm --batch-size 2` gave other digits than one batch of all n."""
    from PIL import Image

    grids = {}
    for batch in ("2", "4"):
        out = tmp_path / f"batch{batch}.png"
        code = genzoo_main(["sample", "mnist-ddpm", "--scheduler", "euler_a", "--steps", "3", "--n", "4",
                            "--batch-size", batch, "--seed", "5", "--device", "cpu", "--out", str(out)])
        assert code == 0, capsys.readouterr().err
        grids[batch] = np.asarray(Image.open(out), dtype=np.int16)
    assert np.abs(grids["2"] - grids["4"]).max() <= 1  # PNG bytes: 1/255 allows a rounding flip, no more
    assert grids["2"].std() > 0
    out = tmp_path / "bad.png"
    assert genzoo_main(["sample", "mnist-ddpm", "--batch-size", "0", "--out", str(out)]) == 2
    assert "--batch-size must be >= 1" in capsys.readouterr().err and not out.exists()
