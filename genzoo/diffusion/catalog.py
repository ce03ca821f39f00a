"""The diffusion family's catalog (imports only genzoo.registry: `genzoo list` must stay fast)."""
from ..registry import ModelEntry, register

_DIFFUSERS_FILES = ("config.json", "diffusion_pytorch_model.safetensors|diffusion_pytorch_model.bin",
                    "scheduler_config.json")

register(ModelEntry(
    name="ddpm-cifar10-32", family="diffusion", repo="google/ddpm-cifar10-32", files=_DIFFUSERS_FILES,
    params=35_746_307, description="DDPM (Ho et al. 2020) on CIFAR-10, 32x32, 4 levels, attention at 16x16"))

for _name, _what in (("ddpm-celebahq-256", "CelebA-HQ faces"), ("ddpm-ema-church-256", "LSUN churches, EMA weights"),
                     ("ddpm-ema-bedroom-256", "LSUN bedrooms, EMA weights"), ("ddpm-ema-cat-256", "LSUN cats, EMA weights")):
    register(ModelEntry(
        name=_name, family="diffusion", repo=f"google/{_name}", files=_DIFFUSERS_FILES, params=113_673_219,
        description=f"DDPM (Ho et al. 2020) on {_what}, 256x256, 6 levels, attention at 16x16"))

register(ModelEntry(
    name="mnist-ddpm", family="diffusion", embedded=True, files=("config.json", "model.safetensors"), params=686_769,
    description="small DDPM trained by genzoo on MNIST digits (28x28), sampled with DDIM "
                "(scripts/train_embedded_diffusion.py)"))
