"""Published VAE checkpoints -> genzoo state dicts, and configs inferred from tensor shapes.

Pure functions on dicts of tensors: nothing here builds a model. One converter per layout found in the wild:

* pytorch/examples `vae/main.py` (`torch.save(model.state_dict())`): fc1, fc21, fc22, fc3, fc4. Same names in
  genzoo; sizes (784-400-20) are read from the shapes.
* diffusers AutoencoderKL (stabilityai/sd-vae-ft-mse, sd-vae-ft-ema: config.json +
  diffusion_pytorch_model.safetensors / .bin), with both attention namings: the old query/key/value/proj_attn
  (diffusers < 0.14, what sd-vae-ft-mse still ships) and the new to_q/to_k/to_v/to_out.0.
* the original latent-diffusion layout (CompVis / stabilityai/sd-vae-ft-mse-original `.ckpt`/`.safetensors`, and
  the `first_stage_model.` part of a full Stable Diffusion checkpoint): encoder.down.0.block.0, mid.attn_1.q
  stored as 1x1 convs, decoder.up.N counted from the lowest resolution.
"""
from __future__ import annotations

import math
import re

from ..checkpoint import rename_keys, strip_common_prefix, unwrap_state_dict
from ..errors import CheckpointError, ConfigError
from ..nn.spatial import RENAMES, squeeze_conv_projections
from .autoencoder_kl import AutoencoderKLConfig
from .book import BookConvVAEConfig, convert_book_conv_vae, is_book_conv_vae
from .model import ConvVAEConfig, MLPVAEConfig

CONFIG_CLASSES = {"mlp": MLPVAEConfig, "conv": ConvVAEConfig, "autoencoder_kl": AutoencoderKLConfig,
                  "book_conv": BookConvVAEConfig}


# -- the pytorch/examples MLP ----------------------------------------------------------------------------------
EXAMPLES_MLP_KEYS = {f"{layer}.{p}" for layer in ("fc1", "fc21", "fc22", "fc3", "fc4") for p in ("weight", "bias")}


def is_pytorch_examples_mlp(state_dict: dict) -> bool:
    return set(strip_common_prefix(state_dict)) == EXAMPLES_MLP_KEYS


def convert_pytorch_examples_mlp(state_dict: dict, path="<checkpoint>", image_shape=None):
    """-> (MLPVAEConfig, state dict). The names already match; sizes come from fc1 (in x hidden) and fc21 (latent)."""
    state_dict = strip_common_prefix(state_dict)
    missing = sorted(EXAMPLES_MLP_KEYS - set(state_dict))
    if missing:
        raise CheckpointError(f"{path} is not a pytorch/examples VAE state dict: missing {missing}")
    hidden, in_features = state_dict["fc1.weight"].shape
    latent_dim = state_dict["fc21.weight"].shape[0]
    expected = {"fc1.weight": (hidden, in_features), "fc21.weight": (latent_dim, hidden),
                "fc22.weight": (latent_dim, hidden), "fc3.weight": (hidden, latent_dim),
                "fc4.weight": (in_features, hidden)}
    wrong = [f"{k}: {tuple(state_dict[k].shape)} (expected {v})" for k, v in expected.items()
             if tuple(state_dict[k].shape) != v]
    if wrong:
        raise CheckpointError(f"{path}: the fc layers do not chain ({in_features}-{hidden}-{latent_dim}): {', '.join(wrong)}")
    config = MLPVAEConfig(in_features=in_features, hidden=hidden, latent_dim=latent_dim,
                          image_shape=image_shape or _guess_image_shape(in_features, path))
    return config, state_dict


def _guess_image_shape(in_features: int, path) -> tuple:
    for channels in (1, 3):
        side = math.isqrt(in_features // channels)
        if in_features % channels == 0 and side * side * channels == in_features:
            return (channels, side, side)
    raise CheckpointError(f"{path}: cannot tell the image shape of {in_features} inputs (not C x S x S for C = 1 or "
                          f"3): pass image_shape=(C, H, W) to from_pretrained")


# -- diffusers AutoencoderKL -----------------------------------------------------------------------------------



def convert_diffusers_autoencoder_kl(state_dict: dict, config_json: dict | None = None, path="<checkpoint>"):
    """-> (AutoencoderKLConfig, state dict) from diffusers' layout (either attention naming)."""
    state_dict = rename_keys(strip_common_prefix(state_dict), RENAMES)
    state_dict = squeeze_conv_projections(state_dict)
    return infer_autoencoder_kl_config(state_dict, config_json, path), state_dict


def check_diffusers_config(config_json: dict, path) -> None:
    """Refuse diffusers AutoencoderKL variants this implementation does not build (rather than load them wrong)."""
    unsupported = []
    for key in ("down_block_types", "up_block_types"):
        expected = "DownEncoderBlock2D" if key.startswith("down") else "UpDecoderBlock2D"
        if any(t != expected for t in config_json.get(key, [expected])):
            unsupported.append(f"{key}={config_json[key]}")
    if config_json.get("act_fn", "silu") != "silu":
        unsupported.append(f"act_fn={config_json['act_fn']!r}")
    if config_json.get("latents_mean") or config_json.get("latents_std"):
        unsupported.append("latents_mean/latents_std")
    if unsupported:
        raise CheckpointError(f"{path}: this AutoencoderKL uses {', '.join(unsupported)}; genzoo builds the Stable "
                              f"Diffusion VAE (DownEncoderBlock2D/UpDecoderBlock2D, SiLU) only")


def infer_autoencoder_kl_config(state_dict: dict, config_json: dict | None = None, path="<checkpoint>"):
    """Architecture from tensor shapes; norm groups, sample size and scaling factor from config.json if there is one."""
    config_json = dict(config_json or {})
    if config_json:
        check_diffusers_config(config_json, path)
    required = ["encoder.conv_in.weight", "decoder.conv_in.weight", "decoder.conv_out.weight",
                "encoder.down_blocks.0.resnets.0.conv1.weight"]
    missing = [k for k in required if k not in state_dict]
    if missing:
        raise CheckpointError(f"{path} is not an AutoencoderKL checkpoint: no {missing} "
                              f"(first keys: {list(state_dict)[:6]})")
    levels = _count(state_dict, r"^encoder\.down_blocks\.(\d+)\.")
    block_out_channels = tuple(state_dict[f"encoder.down_blocks.{i}.resnets.0.conv1.weight"].shape[0]
                               for i in range(levels))
    inferred = dict(
        in_channels=state_dict["encoder.conv_in.weight"].shape[1],
        out_channels=state_dict["decoder.conv_out.weight"].shape[0],
        block_out_channels=block_out_channels,
        layers_per_block=_count(state_dict, r"^encoder\.down_blocks\.0\.resnets\.(\d+)\."),
        latent_channels=state_dict["decoder.conv_in.weight"].shape[1],
        use_quant_conv="quant_conv.weight" in state_dict,
        use_post_quant_conv="post_quant_conv.weight" in state_dict,
        mid_block_add_attention="encoder.mid_block.attentions.0.to_q.weight" in state_dict,
    )
    for key in ("block_out_channels", "layers_per_block", "latent_channels", "in_channels", "out_channels"):
        if key in config_json and _as_tuple(config_json[key]) != _as_tuple(inferred[key]):
            raise CheckpointError(f"{path}: config.json says {key}={config_json[key]} but the weights have "
                                  f"{inferred[key]}: the config and the weights do not belong together")
    sample_size = config_json.get("sample_size", AutoencoderKLConfig.sample_size)
    if isinstance(sample_size, (list, tuple)):
        sample_size = sample_size[0]
    scaling_factor = config_json.get("scaling_factor")
    try:
        return AutoencoderKLConfig(
            **inferred,
            norm_num_groups=config_json.get("norm_num_groups", 32),
            sample_size=int(sample_size),
            # diffusers' default: sd-vae-ft-mse's config.json predates the field and relies on it.
            scaling_factor=float(scaling_factor) if scaling_factor is not None else 0.18215,
            shift_factor=config_json.get("shift_factor"),
            force_upcast=config_json.get("force_upcast", True),  # diffusers' default, as for scaling_factor
        )
    except ConfigError as e:
        raise CheckpointError(f"{path}: {e}") from e


# -- the original latent-diffusion layout ----------------------------------------------------------------------
LDM_PREFIXES = ("first_stage_model.", "vae.")   # a full SD checkpoint; some VAE exports
LDM_RENAMES = [
    (r"^encoder\.down\.(\d+)\.block\.(\d+)\.", r"encoder.down_blocks.\1.resnets.\2."),
    (r"^encoder\.down\.(\d+)\.downsample\.conv\.", r"encoder.down_blocks.\1.downsamplers.0.conv."),
    (r"^(encoder|decoder)\.mid\.block_1\.", r"\1.mid_block.resnets.0."),
    (r"^(encoder|decoder)\.mid\.block_2\.", r"\1.mid_block.resnets.1."),
    (r"^(encoder|decoder)\.mid\.attn_1\.norm\.", r"\1.mid_block.attentions.0.group_norm."),
    (r"^(encoder|decoder)\.mid\.attn_1\.(q|k|v)\.", r"\1.mid_block.attentions.0.to_\2."),
    (r"^(encoder|decoder)\.mid\.attn_1\.proj_out\.", r"\1.mid_block.attentions.0.to_out."),
    (r"^(encoder|decoder)\.norm_out\.", r"\1.conv_norm_out."),
    (r"\.nin_shortcut\.", r".conv_shortcut."),
    # decoder.up.K counts from the lowest resolution, up_blocks from the top: up.K -> up_blocks.(levels-1-K)
    (r"^decoder\.up\.(\d+)\.block\.(\d+)\.", r"decoder.up_blocks.{flip:\1}.resnets.\2."),
    (r"^decoder\.up\.(\d+)\.upsample\.conv\.", r"decoder.up_blocks.{flip:\1}.upsamplers.0.conv."),
]
LDM_KEPT = ("encoder.", "decoder.", "quant_conv.", "post_quant_conv.")  # drops loss.* (discriminator, LPIPS)


def is_ldm_layout(state_dict: dict) -> bool:
    return any(re.match(r"^(first_stage_model\.|vae\.)?encoder\.down\.\d+\.block\.", k) for k in state_dict)


def convert_ldm_autoencoder_kl(state_dict: dict, config_json: dict | None = None, path="<checkpoint>"):
    """-> (AutoencoderKLConfig, state dict) from the CompVis latent-diffusion layout."""
    state_dict = strip_common_prefix(state_dict)
    for prefix in LDM_PREFIXES:
        if any(k.startswith(prefix + "encoder.") for k in state_dict):
            state_dict = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
            break
    state_dict = {k: v for k, v in state_dict.items() if k.startswith(LDM_KEPT)}
    levels = _count(state_dict, r"^decoder\.up\.(\d+)\.")
    flip = (r"\{flip:(\d+)\}", lambda m: str(levels - 1 - int(m.group(1))))
    renamed = squeeze_conv_projections(rename_keys(state_dict, [*LDM_RENAMES, flip]))
    return infer_autoencoder_kl_config(renamed, config_json, path), renamed


# -- genzoo's own format ---------------------------------------------------------------------------------------
def config_from_genzoo(config_json: dict, path="<checkpoint>"):
    """config.json written by save_pretrained -> the config dataclass it names ("model"; genzoo 0.1 said "kind")."""
    config_json = dict(config_json)
    model_type = config_json.pop("model", None) or config_json.get("kind")
    config_json.pop("kind", None)
    if not isinstance(model_type, str) or model_type not in CONFIG_CLASSES:
        raise CheckpointError(f"{path}: genzoo VAE config has model={model_type!r}; expected one of "
                              f"{sorted(CONFIG_CLASSES)}")
    try:
        return CONFIG_CLASSES[model_type].from_dict(config_json, where=str(path))
    except ConfigError as e:
        raise CheckpointError(f"{path}: invalid {model_type} config: {e}") from e


# -- the entry point genzoo.loader calls ------------------------------------------------------------------------
def convert(obj, config: dict, path="<checkpoint>", image_shape=None):
    """Any VAE checkpoint genzoo reads + its config.json ({} when none) -> (genzoo state dict, config).

    The layout is told from config.json, else from the tensor names."""
    state_dict = unwrap_state_dict(obj, path)
    if "genzoo_family" in config:
        return state_dict, config_from_genzoo(config, path)
    book = convert_book_layout(state_dict, path, image_shape)   # the book's ch. 7 autoencoder and conv VAE
    if book is not None:
        found, state_dict = book
    elif is_pytorch_examples_mlp(state_dict):
        found, state_dict = convert_pytorch_examples_mlp(state_dict, path, image_shape=image_shape)
    elif is_ldm_layout(state_dict):
        found, state_dict = convert_ldm_autoencoder_kl(state_dict, config, path)
    elif config.get("_class_name") == "AutoencoderKL" or any(k.startswith("encoder.down_blocks.") for k in state_dict):
        found, state_dict = convert_diffusers_autoencoder_kl(state_dict, config, path)
    else:
        raise CheckpointError(
            f"{path} is not a VAE checkpoint genzoo can read (first keys: {list(state_dict)[:8]}). Readable: genzoo's "
            f"save_pretrained folders, diffusers AutoencoderKL, pytorch/examples vae/main.py state dicts "
            f"(fc1..fc4) and latent-diffusion first_stage_model weights.")
    return state_dict, found


# -- helpers ---------------------------------------------------------------------------------------------------



def _count(state_dict: dict, pattern: str) -> int:
    indices = {int(m.group(1)) for k in state_dict for m in [re.match(pattern, k)] if m}
    return max(indices) + 1 if indices else 0


def _as_tuple(value):
    return tuple(value) if isinstance(value, (list, tuple)) else value


# -- genzoo -> diffusers AutoencoderKL, pytorch/examples ----------------------------------------------------------
DIFFUSERS_NAMES = [(r"^(?P<block>.*\.attentions\.\d+)\.to_out\.", r"\g<block>.to_out.0.")]


def to_diffusers_autoencoder_kl(state_dict: dict) -> dict:
    """genzoo AutoencoderKL keys -> AutoencoderKL.save_pretrained's (attention output as to_out.0)."""
    return {k: v.contiguous() for k, v in rename_keys(state_dict, DIFFUSERS_NAMES).items()}


def config_to_diffusers_autoencoder_kl(config: AutoencoderKLConfig) -> dict:
    levels = len(config.block_out_channels)
    out = {"_class_name": "AutoencoderKL", "in_channels": config.in_channels, "out_channels": config.out_channels,
           "down_block_types": ["DownEncoderBlock2D"] * levels, "up_block_types": ["UpDecoderBlock2D"] * levels,
           "block_out_channels": list(config.block_out_channels), "layers_per_block": config.layers_per_block,
           "act_fn": "silu", "latent_channels": config.latent_channels, "norm_num_groups": config.norm_num_groups,
           "sample_size": config.sample_size, "scaling_factor": config.scaling_factor,
           "use_quant_conv": config.use_quant_conv, "use_post_quant_conv": config.use_post_quant_conv,
           "mid_block_add_attention": config.mid_block_add_attention, "force_upcast": True}
    if config.shift_factor is not None:
        out["shift_factor"] = config.shift_factor
    return out


def to_pytorch_examples_mlp(state_dict: dict) -> dict:
    """genzoo MLPVAE -> pytorch/examples vae/main.py's VAE state dict: the names are the same (fc1 ... fc4)."""
    missing = sorted(EXAMPLES_MLP_KEYS - set(state_dict))
    if missing:
        raise CheckpointError(f"not a variational MLP VAE state dict (missing {missing}): pytorch/examples' VAE "
                              f"needs fc21 (mean) and fc22 (log-variance)")
    return {k: state_dict[k].contiguous() for k in sorted(EXAMPLES_MLP_KEYS)}


# -- the book's layouts (Learn Generative AI with PyTorch) ---------------------------------------------------------
# ch. 7's MNIST autoencoder: common (in -> hidden), encoded (hidden -> z), l1 (z -> hidden), decode (hidden -> in),
# ReLU between, sigmoid out, trained on [0, 1] pixels: genzoo's MLPVAE without the log-variance head.
BOOK_AE_RENAMES = {"common": "fc1", "encoded": "fc21", "l1": "fc3", "decode": "fc4"}
BOOK_AE_KEYS = {f"{layer}.{p}" for layer in BOOK_AE_RENAMES for p in ("weight", "bias")}


def convert_book_layout(state_dict: dict, path="<checkpoint>", image_shape=None):
    """-> (config, genzoo state dict) for a layout of the book's ch. 7, or None if the keys are not one of them."""
    state_dict = strip_common_prefix(state_dict)
    if is_book_conv_vae(state_dict):
        return convert_book_conv_vae(state_dict, path)
    if set(state_dict) != BOOK_AE_KEYS:
        return None
    renamed = {f"{BOOK_AE_RENAMES[k.split('.')[0]]}.{k.split('.')[1]}": v for k, v in state_dict.items()}
    hidden, in_features = renamed["fc1.weight"].shape
    latent_dim = renamed["fc21.weight"].shape[0]
    if renamed["fc4.weight"].shape != (in_features, hidden) or renamed["fc3.weight"].shape != (hidden, latent_dim):
        raise CheckpointError(f"{path}: the book's autoencoder layers do not chain ({in_features}-{hidden}-{latent_dim})")
    config = MLPVAEConfig(in_features=in_features, hidden=hidden, latent_dim=latent_dim, variational=False,
                          image_shape=image_shape or _guess_image_shape(in_features, path))
    return config, renamed

