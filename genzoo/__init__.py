"""genzoo: a zoo of generative models (GPT-2, GAN, CycleGAN, VAE, diffusion) written from scratch in PyTorch.

    from genzoo import gpt2
    model = gpt2.from_pretrained("gpt2", device="auto")

Families are imported on first use, so `import genzoo` stays cheap.
"""
import importlib

from .errors import CheckpointError, ConfigError, GenzooError, HubError, UnknownModelError
from .registry import list_models, load

__version__ = "0.1.0"
__all__ = ["gpt2", "gan", "cyclegan", "vae", "diffusion", "list_models", "load",
           "GenzooError", "CheckpointError", "ConfigError", "HubError", "UnknownModelError"]

_FAMILIES = ("gpt2", "gan", "cyclegan", "vae", "diffusion")


def __getattr__(name):
    if name in _FAMILIES:
        module = importlib.import_module(f"genzoo.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'genzoo' has no attribute {name!r}")
