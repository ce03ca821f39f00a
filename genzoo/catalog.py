"""The catalog as plain data: every model name genzoo knows, its family and where its files live.

Importing this module imports nothing but the standard library (no torch), so `genzoo list` is instant. Three
kinds of source:
  * `repo`: a Hugging Face Hub repo id (+ revision), fetched and cached by huggingface_hub;
  * `url`: one file on a web server, checked against `sha256` when one is pinned;
  * `embedded`: a folder under weights/ that ships with genzoo (trained by genzoo's own scripts), always offline.

junyanz's CycleGAN generators (scripts/download_cyclegan_model.sh in junyanz/pytorch-CycleGAN-and-pix2pix) have no
published checksums and genzoo was written without network access, so their entries are UNPINNED: genzoo prints
the sha256 of what it downloads (compare it with a trusted source), and reads the file with
torch.load(weights_only=True) either way. To pin one, put its digest in CYCLEGAN_SHA256.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ModelEntry:
    name: str
    family: str
    description: str = ""
    repo: str | None = None          # Hugging Face repo id
    revision: str | None = None      # pinned commit or branch for `repo`
    url: str | None = None           # plain URL (one file)
    sha256: str | None = None        # pinned digest for `url`
    embedded: bool = False           # lives in weights/<name>/
    files: tuple = ()                # the files that matter, for `genzoo list` and pre-download
    params: int | None = None        # parameter count, for `genzoo list`
    config: dict = field(default_factory=dict)  # family-specific hints (e.g. the generator's n_blocks)

    @property
    def source(self) -> str:
        """What the family's from_pretrained reads: a weights/ folder, a repo id or a URL."""
        if self.embedded:
            return str(embedded_dir() / self.name)
        return self.repo or self.url

    @property
    def where(self) -> str:
        if self.embedded:
            return "embedded (weights/)"
        if self.repo:
            return f"hf:{self.repo}" + (f"@{self.revision}" if self.revision else "")
        return self.url

    @property
    def offline(self) -> bool:
        return self.embedded


def embedded_dir() -> Path:
    """weights/ of a source checkout, $GENZOO_WEIGHTS, or the copy installed under <prefix>/share/genzoo/weights."""
    if os.environ.get("GENZOO_WEIGHTS"):
        return Path(os.environ["GENZOO_WEIGHTS"])
    checkout = Path(__file__).resolve().parent.parent / "weights"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "genzoo" / "weights"


HF_FILES = ("config.json", "model.safetensors")
DIFFUSERS_FILES = ("config.json", "diffusion_pytorch_model.safetensors|diffusion_pytorch_model.bin",
                   "scheduler_config.json")
GENZOO_FILES = ("config.json", "model.safetensors")

GPT2 = [
    ModelEntry("gpt2", "gpt2", "GPT-2 small, 124M parameters (OpenAI, 2019)",
               repo="openai-community/gpt2", files=HF_FILES, params=124_439_808),
    ModelEntry("gpt2-medium", "gpt2", "GPT-2 medium, 355M parameters",
               repo="openai-community/gpt2-medium", files=HF_FILES, params=354_823_168),
    ModelEntry("gpt2-large", "gpt2", "GPT-2 large, 774M parameters",
               repo="openai-community/gpt2-large", files=HF_FILES, params=774_030_080),
    ModelEntry("gpt2-xl", "gpt2", "GPT-2 XL, 1.5B parameters",
               repo="openai-community/gpt2-xl", files=HF_FILES, params=1_557_611_200),
    ModelEntry("shakespeare-char", "gpt2",
               "character-level GPT (4 layers, width 128, context 64) trained on Tiny Shakespeare by genzoo "
               "(scripts/train_embedded_gpt2.py)", embedded=True, files=GENZOO_FILES, params=809_856),
]

DIFFUSION = [
    ModelEntry("ddpm-cifar10-32", "diffusion", "DDPM (Ho et al. 2020) on CIFAR-10, 32x32, 4 levels, attention at 16x16",
               repo="google/ddpm-cifar10-32", files=DIFFUSERS_FILES, params=35_746_307),
    *[ModelEntry(name, "diffusion", f"DDPM (Ho et al. 2020) on {what}, 256x256, 6 levels, attention at 16x16",
                 repo=f"google/{name}", files=DIFFUSERS_FILES, params=113_673_219)
      for name, what in (("ddpm-celebahq-256", "CelebA-HQ faces"), ("ddpm-ema-church-256", "LSUN churches, EMA weights"),
                         ("ddpm-ema-bedroom-256", "LSUN bedrooms, EMA weights"), ("ddpm-ema-cat-256", "LSUN cats, EMA weights"))],
    ModelEntry("mnist-ddpm", "diffusion", "small DDPM trained by genzoo on MNIST digits (28x28), sampled with DDIM "
               "(scripts/train_embedded_diffusion.py)", embedded=True, files=GENZOO_FILES, params=686_769),
]

_SD_VAE = dict(block_out_channels=[128, 256, 512, 512], layers_per_block=2, latent_channels=4, scaling_factor=0.18215)
VAE = [
    ModelEntry("sd-vae-ft-mse", "vae", "Stable Diffusion's VAE (AutoencoderKL, f=8, 4 latent channels), decoder "
               "fine-tuned with MSE+LPIPS: smoother outputs", repo="stabilityai/sd-vae-ft-mse",
               files=("config.json", "diffusion_pytorch_model.safetensors"), params=83_653_863, config=_SD_VAE),
    ModelEntry("sd-vae-ft-ema", "vae", "Stable Diffusion's VAE, decoder fine-tuned with L1+LPIPS (EMA weights): "
               "sharper outputs", repo="stabilityai/sd-vae-ft-ema",
               files=("config.json", "diffusion_pytorch_model.safetensors"), params=83_653_863, config=_SD_VAE),
    ModelEntry("mnist-vae", "vae", "Small convolutional VAE on MNIST digits (28x28, 1 channel), trained by genzoo "
               "(scripts/train_embedded_vae.py)", embedded=True, files=GENZOO_FILES, params=220_641),
]

GAN = [  # No official weights exist for these layouts: the loaders serve users' own checkpoints.
    ModelEntry("mnist-dcgan", "gan", "conditional DCGAN, 28x28 MNIST digits (labels 0-9), trained by "
               "scripts/train_embedded_gan.py", embedded=True, files=GENZOO_FILES,
               params=259_008),  # the generator (the file also holds D: 114,560)
]

JUNYANZ_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/{}.pth"
# Every published CycleGAN model: ResnetGenerator, 9 residual blocks, ngf 64, instance norm, 3 -> 3 channels.
RESNET_9BLOCKS = {"arch": "resnet", "n_blocks": 9, "ngf": 64, "norm": "instance", "input_nc": 3, "output_nc": 3}
CYCLEGAN_PUBLISHED = {
    "horse2zebra": "horses -> zebras (ImageNet wild horses / zebras)",
    "zebra2horse": "zebras -> horses",
    "apple2orange": "apples -> oranges (ImageNet)",
    "orange2apple": "oranges -> apples",
    "summer2winter_yosemite": "Yosemite in summer -> winter (Flickr)",
    "winter2summer_yosemite": "Yosemite in winter -> summer",
    "monet2photo": "Monet paintings -> photos",
    "style_monet": "photos -> Monet paintings",
    "style_cezanne": "photos -> Cezanne paintings",
    "style_ukiyoe": "photos -> Ukiyo-e prints",
    "style_vangogh": "photos -> Van Gogh paintings",
    "sat2map": "satellite images -> Google maps",
    "map2sat": "Google maps -> satellite images",
    "cityscapes_photo2label": "Cityscapes photos -> semantic label maps",
    "cityscapes_label2photo": "Cityscapes label maps -> photos",
    "facades_photo2label": "CMP facades photos -> label maps",
    "facades_label2photo": "CMP facades label maps -> photos",
    "iphone2dslr_flower": "iPhone flower photos -> DSLR (shallow depth of field)",
}
CYCLEGAN_SHA256: dict[str, str] = {}   # none published (see above): keep None rather than inventing one
CYCLEGAN = [
    *[ModelEntry(name, "cyclegan", f"junyanz CycleGAN generator: {what}", url=JUNYANZ_URL.format(name),
                 sha256=CYCLEGAN_SHA256.get(name), files=(f"{name}.pth",), params=11_378_179, config=RESNET_9BLOCKS)
      for name, what in CYCLEGAN_PUBLISHED.items()],
    ModelEntry("mnist-cyclegan", "cyclegan", "MNIST digits <-> colour-inverted digits, trained unpaired by genzoo "
               "(scripts/train_embedded_cyclegan.py); from_pretrained gives G_A (normal -> inverted), "
               "direction='BtoA' gives G_B", embedded=True, files=GENZOO_FILES, params=67_873,
               config={"arch": "resnet", "n_blocks": 3, "ngf": 8, "input_nc": 1, "output_nc": 1}),
]

ENTRIES = [*GPT2, *DIFFUSION, *VAE, *GAN, *CYCLEGAN]
