"""Pure functions: diffusers UNet2DModel checkpoint (config.json + state dict) -> genzoo's UNetConfig + state dict.

genzoo's module names are diffusers' except in the attention blocks, where two spellings exist in the wild:
  * old (diffusers < 0.14, still what google/ddpm-cifar10-32 and the other google/ddpm-* repos ship):
      attentions.N.query / key / value / proj_attn
  * new (what `UNet2DModel.save_pretrained` writes today):
      attentions.N.to_q / to_k / to_v / to_out.0
Both map onto genzoo's to_q / to_k / to_v / to_out; `group_norm` is the same everywhere.
"""
from __future__ import annotations

from ..checkpoint import rename_keys, strip_common_prefix, unwrap_state_dict
from ..errors import CheckpointError, ConfigError, HubError
from ..nn.spatial import RENAMES, squeeze_conv_projections
from .unet import UNetConfig

DOWN_TYPES = {"DownBlock2D": False, "AttnDownBlock2D": True}
UP_TYPES = {"UpBlock2D": False, "AttnUpBlock2D": True}
# diffusers config keys -> (the only value genzoo supports, what to say otherwise)
FIXED = {
    "time_embedding_type": ("positional", "positional (sinusoidal) time embeddings"),
    "act_fn": ("silu", "SiLU activations"),
    "resnet_time_scale_shift": ("default", "resnet_time_scale_shift='default' (the time embedding is added)"),
    "class_embed_type": (None, "unconditional models (no class_embed_type)"),
    "num_class_embeds": (None, "unconditional models (no num_class_embeds)"),
    "downsample_type": ("conv", "downsample_type='conv'"),
    "upsample_type": ("conv", "upsample_type='conv'"),
    "mid_block_type": ("UNetMidBlock2D", "a UNetMidBlock2D middle block"),
}


def convert_diffusers_state_dict(state_dict: dict) -> dict:
    """diffusers UNet2DModel keys (old or new attention names) -> genzoo UNet keys. Pure: builds no model.

    A checkpoint mixing the old and new spellings of one weight raises CheckpointError (from rename_keys)."""
    return squeeze_conv_projections(rename_keys(state_dict, RENAMES))


def config_from_diffusers(config: dict, path="<config.json>") -> UNetConfig:
    """A diffusers UNet2DModel config.json -> UNetConfig (raises ConfigError for what genzoo does not implement)."""
    for key, (value, what) in FIXED.items():
        if key in config and config[key] != value:
            raise ConfigError(f"{path}: {key}={config[key]!r} is not supported; genzoo's DDPM U-Net implements "
                              f"{what}")
    defaults = dict(  # diffusers UNet2DModel's own defaults, for keys a config.json leaves out
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(224, 448, 672, 896), layers_per_block=2, attention_head_dim=8, norm_num_groups=32,
        norm_eps=1e-5, downsample_padding=1, flip_sin_to_cos=True, freq_shift=0, in_channels=3, out_channels=3,
        center_input_sample=False, mid_block_scale_factor=1, dropout=0.0, add_attention=True, sample_size=None,
        attn_norm_num_groups=None, time_embedding_dim=None)
    c = {**defaults, **{k: v for k, v in config.items() if v is not None or k in ("attention_head_dim",)}}
    down, up = list(c["down_block_types"]), list(c["up_block_types"])
    unknown = [b for b in down if b not in DOWN_TYPES] + [b for b in up if b not in UP_TYPES]
    if unknown:
        raise ConfigError(f"{path}: block types {unknown} are not supported; genzoo's DDPM U-Net implements "
                          f"{sorted(DOWN_TYPES)} and {sorted(UP_TYPES)}")
    if not len(down) == len(up) == len(c["block_out_channels"]):
        raise ConfigError(f"{path}: down_block_types, up_block_types and block_out_channels differ in length")
    sample_size = c["sample_size"]
    if isinstance(sample_size, (list, tuple)):
        if len(set(sample_size)) != 1:
            raise ConfigError(f"{path}: only square sample sizes are supported, got {sample_size}")
        sample_size = sample_size[0]
    return UNetConfig(
        sample_size=int(sample_size or 2 ** (len(down) + 2)),
        in_channels=c["in_channels"], out_channels=c["out_channels"],
        block_out_channels=tuple(c["block_out_channels"]),
        down_attention=tuple(DOWN_TYPES[b] for b in down),
        up_attention=tuple(UP_TYPES[b] for b in reversed(up)),  # diffusers lists up blocks deepest first
        mid_attention=bool(c["add_attention"]),
        layers_per_block=c["layers_per_block"],
        attention_head_dim=c["attention_head_dim"],
        norm_num_groups=c["norm_num_groups"],
        mid_attention_norm_groups=c["attn_norm_num_groups"],
        norm_eps=float(c["norm_eps"]),
        downsample_padding=c["downsample_padding"],
        flip_sin_to_cos=bool(c["flip_sin_to_cos"]),
        freq_shift=c["freq_shift"],
        time_embed_dim=c["time_embedding_dim"],
        center_input_sample=bool(c["center_input_sample"]),
        mid_block_scale_factor=float(c["mid_block_scale_factor"]),
        dropout=float(c["dropout"]),
    )



# -- the entry point genzoo.loader calls ------------------------------------------------------------------------
def convert(obj, config: dict, path="<checkpoint>") -> tuple[dict, UNetConfig]:
    """A U-Net checkpoint (genzoo's own or diffusers' UNet2DModel) + its config.json -> (state dict, UNetConfig)."""
    state_dict = unwrap_state_dict(obj, path)
    if "genzoo_family" not in config and is_book_unet(strip_common_prefix(state_dict)):
        raise CheckpointError(BOOK_UNET_MESSAGE.format(path=path))
    if "genzoo_family" in config:
        if config.get("model", "unet") != "unet":
            raise CheckpointError(f"{path} holds a genzoo diffusion {config.get('model')!r}, not a U-Net")
        return state_dict, UNetConfig.from_dict({k: v for k, v in config.items() if k != "scheduler"}, where=str(path))
    if not config:   # a bare weights file: the U-Net's shape cannot be read from its tensors alone
        raise HubError(f"{path} has no config.json beside it (nor unet/config.json): pass the folder that holds both")
    if config.get("_class_name") != "UNet2DModel":
        raise CheckpointError(f"{path}: config.json is neither genzoo's nor a diffusers UNet2DModel's "
                              f"(no genzoo_family, no _class_name)")
    return convert_diffusers_state_dict(state_dict), config_from_diffusers(config, path)
# -- genzoo -> diffusers ------------------------------------------------------------------------------------------
DIFFUSERS_NAMES = [(r"^(?P<block>.*\.attentions\.\d+)\.to_out\.", r"\g<block>.to_out.0.")]


def to_diffusers(state_dict: dict) -> dict:
    """genzoo UNet keys -> what UNet2DModel.save_pretrained writes today (attention output as to_out.0)."""
    return {k: v.contiguous() for k, v in rename_keys(state_dict, DIFFUSERS_NAMES).items()}


def config_to_diffusers(config: UNetConfig) -> dict:
    """UNetConfig -> a UNet2DModel config.json (the inverse of config_from_diffusers)."""
    down = ["AttnDownBlock2D" if a else "DownBlock2D" for a in config.down_attention]
    up = ["AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(config.up_attention)]  # deepest first
    return {
        "_class_name": "UNet2DModel", "sample_size": config.sample_size,
        "in_channels": config.in_channels, "out_channels": config.out_channels,
        "center_input_sample": config.center_input_sample, "time_embedding_type": "positional",
        "time_embedding_dim": config.time_embed_dim, "freq_shift": config.freq_shift,
        "flip_sin_to_cos": config.flip_sin_to_cos, "down_block_types": down, "up_block_types": up,
        "mid_block_type": "UNetMidBlock2D", "block_out_channels": list(config.block_out_channels),
        "layers_per_block": config.layers_per_block, "mid_block_scale_factor": config.mid_block_scale_factor,
        "downsample_padding": config.downsample_padding, "downsample_type": "conv", "upsample_type": "conv",
        "dropout": config.dropout, "act_fn": "silu", "attention_head_dim": config.attention_head_dim,
        "norm_num_groups": config.norm_num_groups, "attn_norm_num_groups": config.mid_attention_norm_groups,
        "norm_eps": config.norm_eps, "resnet_time_scale_shift": "default", "add_attention": config.mid_attention,
        "class_embed_type": None, "num_class_embeds": None,
    }


# -- the book's ch. 15 U-Net (Learn Generative AI with PyTorch) ----------------------------------------------------
def is_book_unet(state_dict: dict) -> bool:
    """The book's U-Net (adapted from filipbasara0/simple-diffusion): init_conv, mid_block1, mid_attn, out_block."""
    return "init_conv.weight" in state_dict and "mid_block1.conv1.weight" in state_dict


BOOK_UNET_MESSAGE = (
    "{path} is the U-Net of the book's ch. 15 (markhliu/DGAI utils/unet_util.py, adapted from simple-diffusion). "
    "genzoo's DDPM U-Net (diffusers' UNet2DModel) cannot compute it, so its weights are refused rather than mapped "
    "onto a different function: the book's residual blocks normalise after each conv (conv -> GroupNorm -> SiLU, "
    "the time embedding added after the first, SiLU again before the skip) where genzoo's normalise before "
    "(GroupNorm -> SiLU -> conv); it downsamples by pixel-unshuffle and a 1x1 conv, attends through 1x1-conv "
    "projections (4 heads of 32 channels) after a bias-free channel LayerNorm, and embeds timesteps with its own "
    "sinusoid. Sample it with the book's UNet class (utils/unet_util.py) and its DDIM scheduler (utils/ch14util.py)")
