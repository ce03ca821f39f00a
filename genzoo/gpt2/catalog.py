"""GPT-2 models in genzoo's catalog (imports only the registry: `genzoo list` stays fast)."""
from ..registry import ModelEntry, register

_FILES = ("config.json", "model.safetensors")

register(ModelEntry("gpt2", "gpt2", "GPT-2 small, 124M parameters (OpenAI, 2019)",
                    repo="openai-community/gpt2", files=_FILES, params=124_439_808))
register(ModelEntry("gpt2-medium", "gpt2", "GPT-2 medium, 355M parameters",
                    repo="openai-community/gpt2-medium", files=_FILES, params=354_823_168))
register(ModelEntry("gpt2-large", "gpt2", "GPT-2 large, 774M parameters",
                    repo="openai-community/gpt2-large", files=_FILES, params=774_030_080))
register(ModelEntry("gpt2-xl", "gpt2", "GPT-2 XL, 1.5B parameters",
                    repo="openai-community/gpt2-xl", files=_FILES, params=1_557_611_200))
