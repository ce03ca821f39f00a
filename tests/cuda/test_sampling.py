"""Randomness and numerical guards on every device: one generator rule, seeded determinism, no NaN let through."""
import dataclasses

import pytest
import torch

import genzoo
from genzoo.errors import NumericalError
from genzoo.images import save_image

from .families import load

SAMPLERS = ["gpt2", "diffusion", "vae", "gan"]   # cyclegan translates deterministically: nothing to seed


@pytest.fixture
def dirs(gpt2_dir, unet_dir, vae_dir, gan_dir):
    return {"gpt2": gpt2_dir, "diffusion": unet_dir, "vae": vae_dir, "gan": gan_dir}


def draw(family, model, dirs, **randomness):
    """One call of the family's sampler: float32 CPU result (token ids for gpt2)."""
    if family == "gpt2":
        prompt = torch.tensor([[1, 2, 3, 4]])
        return model.generate(prompt, max_new_tokens=12, temperature=1.0, top_k=50, **randomness).cpu()
    if family == "diffusion":
        scheduler = genzoo.diffusion.load_scheduler(dirs["diffusion"], kind="ddim")
        return genzoo.diffusion.sample(model, scheduler, n=2, steps=3, eta=1.0, progress=False, **randomness).cpu()
    if family == "vae":
        return model.sample(2, image_size=16, **randomness).float().cpu()
    return model.sample(3, **randomness).float().cpu()


def same(family, a, b, exact):
    if exact or family == "gpt2":
        return torch.equal(a, b)
    return torch.allclose(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("family", SAMPLERS)
def test_same_seed_same_output(family, dirs, device, dtype):
    model = load(family, dirs, device, dtype)
    first = draw(family, model, dirs, seed=3)
    assert torch.equal(first, draw(family, model, dirs, seed=3))
    assert not torch.equal(first, draw(family, model, dirs, seed=4))


@pytest.mark.parametrize("family", SAMPLERS)
def test_a_generator_on_either_device_works(family, dirs, device):
    """A CPU generator with a device model, and a generator on the model's device: the noise is drawn where the
    generator lives, so the same generator state gives the same output as on the CPU model."""
    model = load(family, dirs, device, torch.float32)
    on_cpu = load(family, dirs, "cpu", torch.float32)
    cpu_gen = lambda: torch.Generator().manual_seed(11)  # noqa: E731
    assert same(family, draw(family, model, dirs, generator=cpu_gen()),
                draw(family, on_cpu, dirs, generator=cpu_gen()), exact=device.type == "cpu")
    device_gen = lambda: torch.Generator(device=device).manual_seed(11)  # noqa: E731
    assert torch.equal(draw(family, model, dirs, generator=device_gen()),
                       draw(family, model, dirs, generator=device_gen()))


@pytest.mark.parametrize("family", ["diffusion", "vae", "gan"])
def test_a_seed_gives_the_same_images_on_every_device(family, dirs, device):
    images = draw(family, load(family, dirs, device, torch.float32), dirs, seed=5)
    on_cpu = draw(family, load(family, dirs, "cpu", torch.float32), dirs, seed=5)
    assert torch.allclose(images, on_cpu, atol=1e-4, rtol=1e-4)


def test_vae_reparameterize_takes_a_generator_on_either_device(dirs, device):
    model = load("vae", dirs, device, torch.float32)
    mean = torch.zeros(2, 4, 2, 2, device=device)
    for where in ("cpu", device):
        a = model.reparameterize(mean, mean, torch.Generator(device=where).manual_seed(0))
        b = model.reparameterize(mean, mean, torch.Generator(device=where).manual_seed(0))
        assert a.device.type == device.type and torch.equal(a, b)
    expected = torch.randn(mean.shape, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(model.reparameterize(mean, mean, torch.Generator().manual_seed(0)).cpu(), expected)


def test_a_temperature_that_underflows_is_greedy_not_nan(dirs, device, dtype):
    model = load("gpt2", dirs, device, dtype)
    prompt = torch.tensor([[5, 6, 7]])
    greedy = model.generate(prompt, max_new_tokens=8, temperature=0)
    assert torch.equal(model.generate(prompt, max_new_tokens=8, temperature=1e-38, seed=0), greedy)


def test_overflowing_logits_are_an_error_not_tokens(dirs, device, dtype):
    """Logits past the dtype's range: fp16 and bf16 turn them into inf, then NaN; sampling and greedy refuse."""
    model = load("gpt2", dirs, device, dtype)
    with torch.no_grad():
        model.ln_f.weight.fill_(torch.finfo(dtype).max)   # every logit overflows to +-inf
    for temperature in (0, 1.0):
        with pytest.raises(NumericalError, match="NaN or infinite"):
            model.generate(torch.tensor([[5, 6, 7]]), max_new_tokens=2, temperature=temperature, seed=0)


def test_without_stop_criteria_overflow_is_still_an_error_but_checked_once(dirs, device, dtype, monkeypatch):
    """No EOS and no stop strings: nothing reads the device per token, so the NaN check is deferred to the end
    (one host sync per call instead of one per token) and still raises, for greedy and sampled decoding."""
    import importlib

    from genzoo import runtime

    gen = importlib.import_module("genzoo.gpt2.generate")  # the module (genzoo.gpt2.generate is also a function)

    calls = {"check_logits": 0, "watch.check": 0}
    real_check, real_watch_check = gen.check_logits, runtime.NonFiniteWatch.check

    def counting_check(*args, **kwargs):
        calls["check_logits"] += 1
        return real_check(*args, **kwargs)

    def counting_watch_check(self):
        calls["watch.check"] += 1
        return real_watch_check(self)

    monkeypatch.setattr(gen, "check_logits", counting_check)
    monkeypatch.setattr(runtime.NonFiniteWatch, "check", counting_watch_check)
    model = load("gpt2", dirs, device, dtype)
    prompt = torch.tensor([[5, 6, 7]])
    fine = model.generate(prompt, max_new_tokens=6, temperature=0, eos_token_id=None)
    assert calls == {"check_logits": 0, "watch.check": 1}
    assert torch.equal(fine, model.generate(prompt, max_new_tokens=6, temperature=0))  # same tokens as checked
    with torch.no_grad():
        model.ln_f.weight.fill_(torch.finfo(dtype).max)
    for temperature in (0, 1.0):
        with pytest.raises(NumericalError, match="NaN or infinite values at some step"):
            model.generate(prompt, max_new_tokens=4, temperature=temperature, seed=0, eos_token_id=None)
    steps = gen.iter_tokens(model, prompt.to(device), max_new_tokens=3, greedy=True, check_each_step=True)
    with pytest.raises(NumericalError, match="NaN or infinite"):  # stream_text's way: checked at the first step
        next(steps)


def test_a_nan_image_is_an_error_not_a_black_file(tmp_path, device):
    images = torch.zeros(2, 3, 4, 4, device=device)
    images[1, 0, 0, 0] = float("nan")
    with pytest.raises(NumericalError, match="1 NaN"):
        save_image(images, tmp_path / "grid.png")
    assert not list(tmp_path.iterdir())


def _vae_that_overflows_fp16(vae_dir, device, dtype, force_upcast):
    """The tiny SD VAE with decoder.conv_in scaled so one activation passes fp16's 65504 (GroupNorm after it keeps
    the output as it was: float32 and bf16 do not notice)."""
    model = genzoo.vae.from_pretrained(vae_dir, device="cpu", dtype=torch.float32)
    with torch.no_grad():
        model.decoder.conv_in.weight.mul_(1e5)  # max |activation| 7.8e4 with the z below
        model.decoder.conv_in.bias.mul_(1e5)
    model.config = dataclasses.replace(model.config, force_upcast=force_upcast)
    return model.to(device, dtype)


def test_sd_vae_fp16_upcasts_as_diffusers_does(vae_dir, device):
    z = torch.randn(1, 4, 2, 2, generator=torch.Generator().manual_seed(0))
    exact = _vae_that_overflows_fp16(vae_dir, "cpu", torch.float32, True).decode(z)
    assert exact.abs().max() < 10 and torch.isfinite(exact).all()

    raw = _vae_that_overflows_fp16(vae_dir, device, torch.float16, force_upcast=False)
    assert torch.isnan(raw.decode(z)).all()   # the failure force_upcast exists for: all NaN, a black image
    with pytest.raises(NumericalError):
        save_image(raw.decode(z), "never-written.png")

    model = _vae_that_overflows_fp16(vae_dir, device, torch.float16, force_upcast=True)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    image = model.decode(z)
    assert image.dtype == torch.float16 and image.device.type == device.type
    assert torch.allclose(image.float().cpu(), exact, atol=2e-2)
    mean, logvar = model.encode(image.float().cpu())           # encode upcasts too, and moves its input
    assert mean.dtype == torch.float16 and torch.isfinite(mean).all() and torch.isfinite(logvar).all()
    tiled = model.decode(z, tiled=True, tile_size=8)
    assert tiled.dtype == torch.float16 and torch.allclose(tiled.float().cpu(), exact, atol=2e-2)
    after = model.state_dict()   # back to the same fp16 weights after each call
    assert all(after[k].dtype == v.dtype and torch.equal(after[k], v) for k, v in weights.items())
    bf16 = _vae_that_overflows_fp16(vae_dir, device, torch.bfloat16, force_upcast=True)
    assert torch.allclose(bf16.decode(z).float().cpu(), exact, atol=0.1)   # bf16 has float32's range


def test_force_upcast_is_read_from_the_diffusers_config(tmp_path):
    import json
    import shutil

    from diffusers import AutoencoderKL

    AutoencoderKL(block_out_channels=(8,), down_block_types=("DownEncoderBlock2D",),
                  up_block_types=("UpDecoderBlock2D",), layers_per_block=1, norm_num_groups=8,
                  force_upcast=False).save_pretrained(tmp_path / "sdxl-fix-like")
    assert genzoo.vae.from_pretrained(tmp_path / "sdxl-fix-like", device="cpu").config.force_upcast is False
    config = json.loads((tmp_path / "sdxl-fix-like" / "config.json").read_text())
    del config["force_upcast"]    # sd-vae-ft-mse's config.json predates the field: diffusers' default, True
    shutil.copytree(tmp_path / "sdxl-fix-like", tmp_path / "old")
    (tmp_path / "old" / "config.json").write_text(json.dumps(config))
    model = genzoo.vae.from_pretrained(tmp_path / "old", device="cpu")
    assert model.config.force_upcast is True
    model.save_pretrained(tmp_path / "genzoo")
    assert genzoo.vae.from_pretrained(tmp_path / "genzoo", device="cpu").config.force_upcast is True
