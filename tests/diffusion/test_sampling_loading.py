"""Sampling end to end against diffusers' pipelines, loading layouts, and clear errors on bad input."""
import numpy as np
import pytest
import torch

from genzoo import CheckpointError, ConfigError, HubError, UnknownModelError, diffusion, registry
from genzoo.checkpoint import save_pretrained

from .conftest import TINY_DDPM, make_reference, save_variant, write_json


@pytest.fixture(scope="module")
def tiny(tiny_ddpm_dir):
    return diffusion.from_pretrained(tiny_ddpm_dir, device="cpu")


@pytest.mark.parametrize("kind,eta", [("ddim", 0.0), ("ddim", 1.0), ("ddpm", None)])
def test_sample_matches_diffusers_pipeline(tiny_ddpm_dir, tiny, kind, eta):
    """Same seed -> the same images as DDIMPipeline / DDPMPipeline on the same checkpoint, given the per-image
    generators sample() uses (diffusers draws per image from a list of generators, initial and step noise)."""
    import diffusers

    reference = diffusers.UNet2DModel.from_pretrained(tiny_ddpm_dir).eval()
    steps = 8
    if kind == "ddim":
        pipe = diffusers.DDIMPipeline(reference, diffusers.DDIMScheduler.from_pretrained(tiny_ddpm_dir))
        kwargs = dict(eta=eta)
    else:
        pipe = diffusers.DDPMPipeline(reference, diffusers.DDPMScheduler.from_pretrained(tiny_ddpm_dir))
        kwargs = {}
    pipe.set_progress_bar_config(disable=True)
    want = pipe(batch_size=2, generator=diffusion.sample_generators(2, seed=7), num_inference_steps=steps,
                output_type="np", **kwargs).images  # (2, H, W, C) in [0, 1]
    scheduler = diffusion.load_scheduler(tiny_ddpm_dir, kind=kind)
    got = diffusion.sample(tiny, scheduler, n=2, steps=steps, seed=7, eta=eta, progress=False)
    got = (got / 2 + 0.5).permute(0, 2, 3, 1).numpy()
    assert np.abs(got - want).max() <= 1e-4


def test_sample_is_seeded_and_returns_a_trajectory(tiny):
    scheduler = diffusion.DDIMScheduler(eta=0.5)
    a = diffusion.sample(tiny, scheduler, n=2, steps=5, seed=3, progress=False)
    b, trajectory = diffusion.sample(tiny, scheduler, n=2, steps=5, seed=3, progress=False, return_trajectory=True,
                                     trajectory_points=4)
    assert torch.equal(a, b) and a.shape == (2, 3, 16, 16) and a.abs().max() <= 1
    assert not torch.equal(a, diffusion.sample(tiny, scheduler, n=2, steps=5, seed=4, progress=False))
    assert [t for t, _ in trajectory][0] == int(scheduler.timesteps[0]) and trajectory[-1][0] == 0
    assert len(trajectory) == 4 and torch.equal(trajectory[-1][1].clamp(-1, 1), b)
    strip = diffusion.denoising_strip(trajectory)
    assert strip.shape == (2 * 4, 3, 16, 16)
    generator = torch.Generator().manual_seed(3)
    assert torch.equal(diffusion.sample(tiny, scheduler, n=2, steps=5, generator=generator, progress=False), a)


def test_sample_bad_input(tiny):
    with pytest.raises(ConfigError, match=">= 1"):
        diffusion.sample(tiny, diffusion.DDIMScheduler(), n=1, steps=0)
    with pytest.raises(ConfigError, match="n \\(the number of images\\)"):
        diffusion.sample(tiny, diffusion.DDIMScheduler(), n=0, steps=2)
    with pytest.raises(ConfigError, match="multiples of 4"):
        diffusion.sample(tiny, diffusion.DDIMScheduler(), n=1, steps=2, size=30)
    with pytest.raises(ConfigError, match="no eta"):
        diffusion.sample(tiny, diffusion.DDPMScheduler(), n=1, steps=2, eta=0.5)


def test_pipeline_layout_with_unet_and_scheduler_subfolders(tmp_path):
    """DDPMPipeline.save_pretrained: model_index.json, unet/, scheduler/."""
    import diffusers

    reference = make_reference(TINY_DDPM)
    diffusers.DDPMPipeline(reference, diffusers.DDPMScheduler(beta_schedule="squaredcos_cap_v2")).save_pretrained(tmp_path)
    unet = diffusion.from_pretrained(tmp_path, device="cpu")
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        assert (unet(x, 9) - reference(x, 9).sample).abs().max() <= 1e-4
    assert diffusion.load_scheduler(tmp_path, kind="ddim").beta_schedule == "squaredcos_cap_v2"
    # a weights file path works too (its config.json is next to it)
    assert diffusion.from_pretrained(tmp_path / "unet" / "diffusion_pytorch_model.safetensors", device="cpu")


def test_catalog_and_load(tiny_ddpm_dir):
    names = {e.name for e in registry.list_models("diffusion")}
    assert {"ddpm-cifar10-32", "ddpm-celebahq-256", "ddpm-ema-church-256", "ddpm-ema-bedroom-256",
            "ddpm-ema-cat-256", "mnist-ddpm"} <= names
    assert registry.find("ddpm-cifar10-32").repo == "google/ddpm-cifar10-32"
    assert registry.detect_family(tiny_ddpm_dir) == "diffusion"
    assert isinstance(registry.load(str(tiny_ddpm_dir), device="cpu"), diffusion.UNet)


def test_offline_hub_name_gives_a_clear_error():
    with pytest.raises(HubError, match="offline"):
        diffusion.from_pretrained("ddpm-cifar10-32")


def test_checkpoints_of_other_families_are_refused(tmp_path):
    save_pretrained(tmp_path / "vae", {"w": torch.zeros(1)}, {"latent_dim": 2}, family="vae")
    with pytest.raises(CheckpointError, match="genzoo 'vae' checkpoint"):
        diffusion.from_pretrained(tmp_path / "vae")
    write_json(tmp_path / "kl" / "config.json", {"_class_name": "AutoencoderKL", "latent_channels": 4})
    with pytest.raises(CheckpointError, match="AutoencoderKL"):
        diffusion.from_pretrained(tmp_path / "kl")
    write_json(tmp_path / "gpt" / "config.json", {"model_type": "gpt2", "n_layer": 2})
    with pytest.raises(CheckpointError, match="gpt2"):
        diffusion.from_pretrained(tmp_path / "gpt")
    other = [e.name for e in registry.list_models() if e.family != "diffusion"]
    assert other, "the catalog lists no model of another family to refuse"
    with pytest.raises(UnknownModelError, match="not diffusion"):
        diffusion.from_pretrained(other[0])
    with pytest.raises(UnknownModelError, match="unknown model"):
        diffusion.from_pretrained("ddpm-cifar-32")


def test_broken_checkpoints(tmp_path):
    reference = make_reference(TINY_DDPM)
    directory = save_variant(reference, tmp_path / "missing-key", "new-bin")
    sd = torch.load(directory / "diffusion_pytorch_model.bin", weights_only=True)
    del sd["mid_block.attentions.0.to_q.weight"]
    torch.save(sd, directory / "diffusion_pytorch_model.bin")
    with pytest.raises(CheckpointError, match="missing keys: mid_block.attentions.0.to_q.weight"):
        diffusion.from_pretrained(directory)
    directory = save_variant(reference, tmp_path / "wrong-config", "new-safetensors")
    write_json(directory / "config.json", {**reference.config, "block_out_channels": [8, 16, 32]})
    with pytest.raises(CheckpointError, match="shape mismatches"):
        diffusion.from_pretrained(directory)
    (tmp_path / "empty").mkdir()
    with pytest.raises(HubError, match="no config.json"):
        diffusion.from_pretrained(tmp_path / "empty")
    write_json(tmp_path / "noweights" / "config.json", dict(reference.config))
    with pytest.raises(HubError, match="diffusion_pytorch_model"):
        diffusion.from_pretrained(tmp_path / "noweights")
