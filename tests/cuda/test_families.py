"""Every family x device x {fp32, bf16, fp16}: placement, parity with its fp32 CPU self and with the reference."""
import pytest
import torch

from .families import FAMILIES, REFERENCED, assert_close, forward, load, reference_forward


@pytest.fixture
def dirs(gpt2_dir, unet_dir, vae_dir, gan_dir, cyclegan_dir):
    return {"gpt2": gpt2_dir, "diffusion": unet_dir, "vae": vae_dir, "gan": gan_dir, "cyclegan": cyclegan_dir}


@pytest.mark.parametrize("family", FAMILIES)
def test_placement(family, dirs, device, dtype):
    model = load(family, dirs, device, dtype)
    assert model.device.type == device.type and model.dtype == dtype
    for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        assert tensor.device.type == device.type, name
        assert not tensor.is_floating_point() or tensor.dtype == dtype, (name, tensor.dtype)
    out = forward(family, model)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_matches_fp32_on_the_cpu(family, dirs, device, dtype):
    reference = forward(family, load(family, dirs, "cpu", torch.float32))
    out = forward(family, load(family, dirs, device, dtype))
    assert_close(family, out, reference, dtype, f"{family} on {device} vs fp32 CPU")


@pytest.mark.parametrize("family", REFERENCED)
def test_matches_the_reference_library(family, dirs, device, dtype):
    reference = reference_forward(family, dirs, device, dtype)   # fp16 VAE: upcast as diffusers' pipelines do
    out = forward(family, load(family, dirs, device, dtype))
    assert_close(family, out, reference, dtype, f"{family} vs the reference library on {device}")
