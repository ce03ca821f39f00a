"""from_pretrained: a catalog name, Hub repo id, URL or local path -> a GPT on the requested device, no random init.

The steps are genzoo.loader's (locate, refuse other families, read, convert, build on the meta device); GPT-2
adds only its file names and its converter (convert.convert: Hugging Face, nanoGPT or genzoo's own format).
"""
from __future__ import annotations

from .. import loader
from ..errors import ConfigError
from . import convert
from .model import GPT
from .quantize import MODES as QUANTIZE_MODES

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "ckpt.pt")


def from_pretrained(name_or_path, device="auto", dtype=None, revision=None, allow_nonfinite: bool = False,
                    config: dict | None = None, quantize: str | None = None) -> GPT:
    """Load GPT-2 weights.

    name_or_path: a catalog name ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "shakespeare-char"), a Hub repo
      id ("openai-community/gpt2"), or a local folder or file in any of these formats: Hugging Face
      (model.safetensors / pytorch_model.bin, with or without the "transformer." prefix), nanoGPT (ckpt.pt), or
      genzoo's save_pretrained; or the URL of one weights file (downloaded once into genzoo's cache).
    device: "auto" (cuda, then mps, then cpu), "cpu", "cuda", ... dtype: None keeps the checkpoint's; or
      torch.float16/"bfloat16"/... The returned model is in eval() mode.
    quantize: None, "int8", "bf16" or "fp16": weight-only reduced precision for decoding (see quantize.py).
    allow_nonfinite: load weights holding NaN/inf (refused by default, naming the tensors).
    config: config.json values for a foreign file saved without one, for what its shapes cannot tell (e.g.
      {"n_head": 4}; genzoo never guesses the number of heads).
    """
    if quantize is not None and quantize not in QUANTIZE_MODES:   # refused before anything is read or downloaded
        raise ConfigError(f"unknown quantization {quantize!r}: one of {', '.join(QUANTIZE_MODES)}")
    model = loader.load("gpt2", name_or_path, convert=convert.convert, build=GPT, weight_names=WEIGHT_FILES,
                        device=device, dtype=dtype, revision=revision, allow_nonfinite=allow_nonfinite,
                        overrides=config)
    return model.quantize(quantize) if quantize else model
