"""from_pretrained: a catalog name, a folder, a file, a Hub repo id or a URL -> a ready VAE on its device.

What can be read (the layout is told from config.json, else from the tensor names; see convert.convert):
  * genzoo's own format (save_pretrained: model.safetensors + config.json with "genzoo_family": "vae");
  * diffusers AutoencoderKL folders/repos (config.json + diffusion_pytorch_model.safetensors or .bin), also the
    vae/ subfolder of a Stable Diffusion pipeline folder or repo;
  * a pytorch/examples VAE state dict saved with torch.save (fc1 ... fc4);
  * the original latent-diffusion layout (sd-vae-ft-mse-original, or the first_stage_model of an SD checkpoint).
The steps are genzoo.loader's; the VAE family adds its file names, the pipeline sub-folder and its converter.
"""
from __future__ import annotations

import torch

from .. import loader
from . import convert
from .autoencoder_kl import AutoencoderKL, AutoencoderKLConfig
from .book import BookConvVAE, BookConvVAEConfig
from .model import FAMILY, ConvVAE, ConvVAEConfig, MLPVAE, MLPVAEConfig

WEIGHT_NAMES = ("model.safetensors", "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin",
                "pytorch_model.bin")
MODELS = {MLPVAEConfig: MLPVAE, ConvVAEConfig: ConvVAE, AutoencoderKLConfig: AutoencoderKL,
          BookConvVAEConfig: BookConvVAE}   # the book's ch. 7 face VAE


def build_model(config):
    """The model for a config dataclass (randomly initialised, on the current default device)."""
    return MODELS[type(config)](config)


def from_pretrained(name_or_path, device="auto", dtype=None, revision=None, subfolder: str | None = None,
                    image_shape=None, allow_nonfinite: bool = False, channels_last: bool = True):
    """Load any genzoo VAE: `encode(x) -> (mean, logvar)`, `decode(z) -> images`, both in genzoo's [-1, 1].

    name_or_path: "sd-vae-ft-mse", "sd-vae-ft-ema", "mnist-vae" (see `genzoo list --family vae`), a local folder or
    file, a Hub repo id ("stabilityai/sd-vae-ft-mse") or a URL. `subfolder` reads e.g. the "vae" folder of a
    pipeline repo (tried automatically for local pipeline folders). `image_shape` (C, H, W) is only needed for a
    pytorch/examples MLP whose input size is not a square gray or RGB image. channels_last stores the conv weights
    NHWC (CPU and CUDA), so activations flow NHWC: faster convolutions (mnist-vae 25%, the SD-VAE decoder 5-9%
    on the CPU, benchmarks/results/vae.md); values agree to float rounding.
    """
    subfolders = (subfolder.strip("/") + "/",) if subfolder else ("", "vae/")
    model = loader.load(FAMILY, name_or_path, convert=convert.convert, build=build_model, weight_names=WEIGHT_NAMES,
                        device=device, dtype=dtype, revision=revision, subfolders=subfolders, config_required=True,
                        image_shape=image_shape, allow_nonfinite=allow_nonfinite)
    if channels_last and model.device.type in ("cpu", "cuda"):
        model = model.to(memory_format=torch.channels_last)
    return model


__all__ = ["from_pretrained", "build_model"]
