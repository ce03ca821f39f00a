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

# Trained by genzoo itself (scripts/train_embedded_gpt2.py) and shipped in weights/: works offline.
register(ModelEntry("shakespeare-char", "gpt2",
                    "character-level GPT (4 layers, width 128, context 64) trained on Tiny Shakespeare by genzoo",
                    embedded=True, files=_FILES, params=809_856))
