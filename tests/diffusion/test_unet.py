"""The U-Net against diffusers' UNet2DModel: every checkpoint key variant, configs, shapes, errors."""
import pytest
import torch

from genzoo import CheckpointError, ConfigError, diffusion
from genzoo.diffusion.convert import config_from_diffusers, convert_diffusers_state_dict
from genzoo.diffusion.unet import UNet

from .conftest import CIFAR10_32, DDPM_256, TINY_DDPM, TINY_MODERN, make_reference, save_variant, to_old_names

VARIANTS = ["new-safetensors", "new-bin", "old-bin", "old-safetensors"]


def reference_output(model, x, t):
    with torch.no_grad():
        return model(x, t).sample


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("config", [TINY_DDPM, TINY_MODERN], ids=["ddpm", "modern"])
def test_parity_with_diffusers(tmp_path, config, variant):
    reference = make_reference(config)
    directory = save_variant(reference, tmp_path / variant, variant)
    unet = diffusion.from_pretrained(directory, device="cpu")
    size = config["sample_size"]
    x = torch.randn(3, config["in_channels"], size, size)
    t = torch.tensor([0, 417, 999])
    expected = reference_output(reference, x, t)
    with torch.no_grad():
        got = unet(x, t)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() <= 1e-4
    # a Python int timestep is broadcast over the batch, as in diffusers
    with torch.no_grad():
        assert (unet(x, 250) - reference_output(reference, x, 250)).abs().max().item() <= 1e-4


def test_old_names_are_what_diffusers_itself_reads(tmp_path):
    """The renamed variant is a real format: diffusers loads it too (its deprecated-attention path)."""
    from diffusers import UNet2DModel

    reference = make_reference(TINY_DDPM)
    directory = save_variant(reference, tmp_path / "old", "old-bin")
    sd = torch.load(directory / "diffusion_pytorch_model.bin", weights_only=True)
    assert "down_blocks.1.attentions.0.query.weight" in sd and "mid_block.attentions.0.proj_attn.bias" in sd
    reloaded = UNet2DModel.from_pretrained(directory).eval()
    x = torch.randn(1, 3, 16, 16)
    assert torch.allclose(reference_output(reloaded, x, 3), reference_output(reference, x, 3))


def test_mixed_spellings_are_refused_and_conv_shaped_projections_load(tmp_path):
    reference = make_reference(TINY_DDPM)
    state_dict = reference.state_dict()
    mixed = {**state_dict, "mid_block.attentions.0.query.weight": state_dict["mid_block.attentions.0.to_q.weight"]}
    with pytest.raises(CheckpointError, match="mid_block.attentions.0.to_q.weight"):
        convert_diffusers_state_dict(mixed)
    # attention projections stored as 1x1 convs (C, C, 1, 1) load as the Linear layers they are
    from safetensors.torch import save_file

    as_conv = {k: (v[:, :, None, None] if ".attentions." in k and v.dim() == 2 else v).contiguous()
               for k, v in to_old_names(state_dict).items()}
    # 6 attention blocks (2 down, 3 up, 1 mid) x q/k/v/out
    assert sum(v.dim() == 4 and ".attentions." in k for k, v in as_conv.items()) == 6 * 4
    reference.save_config(tmp_path)
    save_file(as_conv, str(tmp_path / "diffusion_pytorch_model.safetensors"))
    unet = diffusion.from_pretrained(tmp_path, device="cpu")
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert (unet(x, 17) - reference_output(reference, x, 17)).abs().max().item() <= 1e-4


@pytest.mark.parametrize("published", [CIFAR10_32, DDPM_256], ids=["cifar10-32", "ddpm-256"])
def test_expresses_published_configs(published):
    """google/ddpm-cifar10-32 and the ddpm-*-256 models: same keys and shapes as diffusers builds (meta device)."""
    from diffusers import UNet2DModel

    with torch.device("meta"):
        reference = UNet2DModel(**published)
        unet = UNet(config_from_diffusers(reference.config))
    expected = {k: tuple(v.shape) for k, v in convert_diffusers_state_dict(to_old_names(reference.state_dict())).items()}
    got = {k: tuple(v.shape) for k, v in unet.state_dict().items()}
    assert got == expected
    params = {32: 35_746_307, 256: 113_673_219}[published["sample_size"]]
    assert unet.num_parameters() == sum(p.numel() for p in reference.parameters()) == params


def test_config_json_round_trip_and_save_pretrained(tmp_path):
    reference = make_reference(TINY_MODERN)
    unet = diffusion.from_pretrained(save_variant(reference, tmp_path / "d", "new-safetensors"), device="cpu")
    unet.save_pretrained(tmp_path / "genzoo", scheduler_config={"beta_schedule": "squaredcos_cap_v2"})
    again = diffusion.from_pretrained(tmp_path / "genzoo", device="cpu")
    assert again.config == unet.config
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(again(x, 5), unet(x, 5))
    assert diffusion.load_scheduler(tmp_path / "genzoo", kind="ddpm").beta_schedule == "squaredcos_cap_v2"


def test_dtype_and_inputs(tiny_ddpm_dir):
    unet = diffusion.from_pretrained(tiny_ddpm_dir, device="cpu", dtype="bfloat16")
    assert unet.dtype == torch.bfloat16
    with torch.no_grad():
        assert unet(torch.randn(1, 3, 16, 16, dtype=torch.bfloat16), 3).dtype == torch.bfloat16
    unet = diffusion.from_pretrained(tiny_ddpm_dir, device="cpu")
    with pytest.raises(ConfigError, match="multiples of 4"):
        unet(torch.randn(1, 3, 18, 18), 1)
    with pytest.raises(ConfigError, match=r"\(B, 3, H, W\)"):
        unet(torch.randn(1, 1, 16, 16), 1)
    with pytest.raises(ConfigError):
        unet(torch.randn(3, 16, 16), 1)
    with pytest.raises(ConfigError, match="one per image"):
        unet(torch.randn(2, 3, 16, 16), torch.tensor([1, 2, 3]))
    with torch.no_grad():  # any multiple of 2**(levels-1) works: the U-Net is fully convolutional
        assert unet(torch.randn(1, 3, 8, 12), 1).shape == (1, 3, 8, 12)


def test_unsupported_configs_are_refused():
    with pytest.raises(ConfigError, match="fourier"):
        config_from_diffusers(dict(TINY_DDPM, time_embedding_type="fourier"))
    with pytest.raises(ConfigError, match="SkipDownBlock2D"):
        config_from_diffusers(dict(TINY_DDPM, down_block_types=("SkipDownBlock2D", "DownBlock2D", "DownBlock2D")))
    with pytest.raises(ConfigError, match="scale_shift"):
        config_from_diffusers(dict(TINY_DDPM, resnet_time_scale_shift="scale_shift"))
    with pytest.raises(ConfigError, match="norm_num_groups"):
        config_from_diffusers(dict(TINY_DDPM, norm_num_groups=3))


def test_inference_fast_paths_match_the_training_path(tiny_ddpm_dir):
    """no_grad uses the fused upsample (transposed conv) and channels_last; with grad it is the plain form."""
    fast = diffusion.from_pretrained(tiny_ddpm_dir, device="cpu")
    plain = diffusion.from_pretrained(tiny_ddpm_dir, device="cpu", channels_last=False)
    assert fast.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        got = fast(x, 7)
    want = plain(x, 7)  # grad enabled: nearest x2 + conv, NCHW
    assert want.requires_grad and (got - want).abs().max().item() <= 1e-5
