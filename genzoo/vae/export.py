"""Write a VAE in the formats its ecosystem loads.

  * "diffusers" (AutoencoderKL): config.json + diffusion_pytorch_model.safetensors, what
    diffusers.AutoencoderKL.from_pretrained(OUT) reads.
  * "pytorch-examples" (the MLP VAE): vae.pth, torch.save of the state dict of pytorch/examples vae/main.py's
    VAE (fc1, fc21, fc22, fc3, fc4); its VAE class is built 784-400-20, as genzoo's MNIST VAE.
  * "genzoo": genzoo's own save_pretrained.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ..export import prepare_directory, write_json, write_safetensors, write_torch
from . import convert

FORMATS = ("genzoo", "diffusers", "pytorch-examples")
EXAMPLES_FILE = "vae.pth"


def export(model, directory, format: str, overwrite: bool = False) -> Path:
    kind = model.config.model_type
    if format == "genzoo":
        prepare_directory(directory, ("model.safetensors", "config.json"), overwrite)
        return Path(model.save_pretrained(directory))
    if format == "diffusers":
        if kind != "autoencoder_kl":
            raise ConfigError(f"only an AutoencoderKL can be exported as 'diffusers' (this is a {kind!r} VAE): "
                              f"export it as 'genzoo'" + (" or 'pytorch-examples'" if kind == "mlp" else ""))
        directory = prepare_directory(directory, ("config.json", "diffusion_pytorch_model.safetensors"), overwrite)
        write_safetensors(directory / "diffusion_pytorch_model.safetensors",
                          convert.to_diffusers_autoencoder_kl(model.state_dict()))
        write_json(directory / "config.json", convert.config_to_diffusers_autoencoder_kl(model.config))
        return directory
    if format == "pytorch-examples":
        if kind != "mlp" or not getattr(model.config, "variational", True):
            what = "a plain (non-variational) autoencoder" if kind == "mlp" else f"a {kind!r} VAE"
            raise ConfigError(f"only a variational MLP VAE can be exported as 'pytorch-examples' (this is {what}; "
                              f"pytorch/examples' VAE is fc1, fc21, fc22, fc3, fc4): export it as 'genzoo'"
                              + (" or 'diffusers'" if kind == "autoencoder_kl" else ""))
        directory = prepare_directory(directory, (EXAMPLES_FILE,), overwrite)
        write_torch(directory / EXAMPLES_FILE, convert.to_pytorch_examples_mlp(model.state_dict()))
        return directory
    raise ConfigError(f"a VAE cannot be exported as {format!r}: one of {', '.join(FORMATS)}")
