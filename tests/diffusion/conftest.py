"""Tiny diffusers UNet2DModel configs and checkpoints written exactly as the Hub stores them."""
import json

import pytest
import torch

diffusers = pytest.importorskip("diffusers")

# Shaped like google/ddpm-cifar10-32 / ddpm-*-256 (single-head attention, TF-style downsample padding, sin-first
# time embedding with freq_shift 1, attention in different down/up levels), only tiny.
TINY_DDPM = dict(
    sample_size=16, in_channels=3, out_channels=3, block_out_channels=(8, 16, 16), layers_per_block=2,
    down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
    attention_head_dim=None, norm_num_groups=4, norm_eps=1e-6, downsample_padding=0, flip_sin_to_cos=False,
    freq_shift=1, center_input_sample=False, time_embedding_type="positional", act_fn="silu", mid_block_scale_factor=1)
# diffusers' own defaults where the DDPM ones differ: multi-head attention, symmetric padding, cos-first, etc.
TINY_MODERN = dict(
    sample_size=8, in_channels=1, out_channels=2, block_out_channels=(8, 16), layers_per_block=1,
    down_block_types=("AttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "AttnUpBlock2D"),
    attention_head_dim=4, norm_num_groups=4, norm_eps=1e-5, downsample_padding=1, flip_sin_to_cos=True,
    freq_shift=0, center_input_sample=True, mid_block_scale_factor=1.5, attn_norm_num_groups=2)

# The published configs (config.json of the google/ddpm-* repos), for shape-only checks.
CIFAR10_32 = dict(TINY_DDPM, sample_size=32, block_out_channels=(128, 256, 256, 256), norm_num_groups=32,
                  down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
                  up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D"))
DDPM_256 = dict(TINY_DDPM, sample_size=256, block_out_channels=(128, 128, 256, 256, 512, 512), norm_num_groups=32,
                down_block_types=("DownBlock2D",) * 4 + ("AttnDownBlock2D", "DownBlock2D"),
                up_block_types=("UpBlock2D", "AttnUpBlock2D") + ("UpBlock2D",) * 4)



OLD_NAMES = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}


def to_old_names(state_dict):
    """Rename attention keys back to what diffusers < 0.14 wrote (google/ddpm-cifar10-32 still ships these)."""
    out = {}
    for key, value in state_dict.items():
        for new, old in OLD_NAMES.items():
            key = key.replace(f".{new}.", f".{old}.")
        out[key] = value
    return out


def make_reference(config: dict, seed: int = 0):
    from diffusers import UNet2DModel

    torch.manual_seed(seed)
    model = UNet2DModel(**config).eval()
    # diffusers zero-inits nothing in these blocks, but randomise the norms too so they are tested
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(0.1 * torch.randn_like(p))
    return model


def save_variant(model, directory, variant: str):
    """variant: new-safetensors, new-bin (diffusers save_pretrained), old-bin, old-safetensors (renamed keys)."""
    directory.mkdir(parents=True, exist_ok=True)
    if variant == "new-safetensors":
        model.save_pretrained(directory)
    elif variant == "new-bin":
        model.save_pretrained(directory, safe_serialization=False)
    else:
        model.save_config(directory)
        state_dict = to_old_names(model.state_dict())
        if variant == "old-bin":
            torch.save(state_dict, directory / "diffusion_pytorch_model.bin")
        else:
            from safetensors.torch import save_file

            save_file({k: v.contiguous() for k, v in state_dict.items()},
                      str(directory / "diffusion_pytorch_model.safetensors"))
    return directory


@pytest.fixture(scope="session")
def tiny_ddpm_dir(tmp_path_factory):
    """A diffusers-layout tiny DDPM (old key names, .bin, + scheduler_config.json) as google/ddpm-cifar10-32 is."""
    from diffusers import DDPMScheduler

    directory = tmp_path_factory.mktemp("tiny-ddpm")
    save_variant(make_reference(TINY_DDPM), directory, "old-bin")
    DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", variance_type="fixed_large",
                  clip_sample=True).save_pretrained(directory)
    return directory


def write_json(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path
