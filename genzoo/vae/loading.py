"""from_pretrained: a catalog name, a folder, a file, a Hub repo id or a URL -> a ready VAE on its device.

What can be read (the layout is told from config.json, else from the tensor names):
  * genzoo's own format (save_pretrained: model.safetensors + config.json with "genzoo_family": "vae");
  * diffusers AutoencoderKL folders/repos (config.json + diffusion_pytorch_model.safetensors or .bin), also the
    vae/ subfolder of a Stable Diffusion pipeline folder or repo;
  * a pytorch/examples VAE state dict saved with torch.save (fc1 ... fc4);
  * the original latent-diffusion layout (sd-vae-ft-mse-original, or the first_stage_model of an SD checkpoint).
"""
from __future__ import annotations

import os
from pathlib import Path

from .. import checkpoint, hub, registry
from ..errors import CheckpointError, HubError
from .autoencoder_kl import AutoencoderKL, AutoencoderKLConfig
from .book import BookConvVAE, BookConvVAEConfig
from .convert import convert_book_layout  # the book's ch. 7 autoencoder and conv VAE
from .convert import (config_from_genzoo, convert_diffusers_autoencoder_kl, convert_ldm_autoencoder_kl,
                      convert_pytorch_examples_mlp, infer_autoencoder_kl_config, is_ldm_layout,
                      is_pytorch_examples_mlp)
from .model import FAMILY, ConvVAE, ConvVAEConfig, MLPVAE, MLPVAEConfig

WEIGHT_NAMES = ("model.safetensors", "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin",
                "pytorch_model.bin")
MODELS = {MLPVAEConfig: MLPVAE, ConvVAEConfig: ConvVAE, AutoencoderKLConfig: AutoencoderKL}
MODELS[BookConvVAEConfig] = BookConvVAE  # the book's ch. 7 face VAE


def build_model(config):
    """The model for a config dataclass (randomly initialised, on the current default device)."""
    return MODELS[type(config)](config)


def from_pretrained(name_or_path, device="auto", dtype=None, revision=None, subfolder: str | None = None,
                    image_shape=None):
    """Load any genzoo VAE: `encode(x) -> (mean, logvar)`, `decode(z) -> images`, both in genzoo's [-1, 1].

    name_or_path: "sd-vae-ft-mse", "sd-vae-ft-ema", "mnist-vae" (see `genzoo list --family vae`), a local folder or
    file, a Hub repo id ("stabilityai/sd-vae-ft-mse") or a URL. `subfolder` reads e.g. the "vae" folder of a
    pipeline repo (tried automatically for local pipeline folders). `image_shape` (C, H, W) is only needed for a
    pytorch/examples MLP whose input size is not a square gray or RGB image.
    """
    source, entry = registry.resolve(name_or_path, FAMILY)
    revision = revision or (entry.revision if entry else None)
    weights_path, config_json = _locate(source, entry, revision, subfolder)
    state_dict = checkpoint.unwrap_state_dict(checkpoint.load_state_dict(weights_path), weights_path)
    config, state_dict = convert_any(state_dict, config_json, weights_path, image_shape=image_shape)
    return checkpoint.build_and_load(lambda: build_model(config), state_dict, weights_path, device=device, dtype=dtype)


def convert_any(state_dict: dict, config_json: dict | None, path, image_shape=None):
    """Tell the layout from config.json (or the keys), refuse other families, -> (config, genzoo state dict)."""
    config_json = config_json or {}
    if "genzoo_family" in config_json:
        checkpoint.check_family(config_json, FAMILY, path)
        return config_from_genzoo(config_json, path), state_dict
    class_name = config_json.get("_class_name")
    if class_name is not None and class_name != "AutoencoderKL":
        family = {"UNet2DModel": "diffusion", "UNet2DConditionModel": "diffusion"}.get(class_name)
        hint = f": load it with genzoo.{family}.from_pretrained" if family else ""
        raise CheckpointError(f"{path} is a diffusers {class_name}, not a VAE (AutoencoderKL){hint}")
    if "model_type" in config_json:
        raise CheckpointError(f"{path} is a transformers {config_json['model_type']!r} checkpoint, not a VAE"
                              + (": load it with genzoo.gpt2.from_pretrained" if config_json["model_type"] == "gpt2" else ""))
    book = convert_book_layout(state_dict, path)
    if book is not None:
        return book
    if is_pytorch_examples_mlp(state_dict):
        return convert_pytorch_examples_mlp(state_dict, path, image_shape=image_shape)
    if is_ldm_layout(state_dict):
        return convert_ldm_autoencoder_kl(state_dict, config_json, path)
    if class_name == "AutoencoderKL" or any(k.startswith("encoder.down_blocks.") for k in state_dict):
        return convert_diffusers_autoencoder_kl(state_dict, config_json, path)
    raise CheckpointError(
        f"{path} is not a VAE checkpoint genzoo can read (first keys: {list(state_dict)[:8]}). Readable: genzoo's "
        f"save_pretrained folders, diffusers AutoencoderKL, pytorch/examples vae/main.py state dicts "
        f"(fc1..fc4) and latent-diffusion first_stage_model weights.")


def _locate(source: str, entry, revision, subfolder):
    """-> (weights file, parsed config.json or None)."""
    path = Path(os.path.expanduser(source))
    if path.is_file():
        config_path = hub.resolve_optional(path, checkpoint.CONFIG_NAME)
        return path, (checkpoint.read_config(config_path) if config_path else None)
    if path.is_dir():
        if subfolder:
            path = path / subfolder
        elif not (path / checkpoint.CONFIG_NAME).is_file() and (path / "vae" / checkpoint.CONFIG_NAME).is_file():
            path = path / "vae"  # a Stable Diffusion pipeline folder
        weights = checkpoint.find_weights_file(path, WEIGHT_NAMES)
        if weights is None:
            listing = sorted(p.name for p in path.iterdir())[:20] if path.is_dir() else "nothing (no such folder)"
            raise HubError(f"{path} holds none of {list(WEIGHT_NAMES)}; it holds: {listing}")
        config_path = path / checkpoint.CONFIG_NAME
        return weights, (checkpoint.read_config(config_path) if config_path.is_file() else None)
    if hub.is_url(source):
        return hub.download_url(source, sha256=entry.sha256 if entry else None), None
    # A Hub repo id: config.json first (its absence is an error: every diffusers VAE repo has one).
    prefix = f"{subfolder.strip('/')}/" if subfolder else ""
    config_path = hub.resolve_file(source, prefix + checkpoint.CONFIG_NAME, revision=revision)
    names = [f for f in (entry.files if entry else ()) if not f.endswith(".json")] or list(WEIGHT_NAMES)
    weights = hub.resolve_first(source, [prefix + n for n in names], revision=revision)
    return weights, checkpoint.read_config(config_path)


__all__ = ["from_pretrained", "build_model", "convert_any", "infer_autoencoder_kl_config"]
