"""Write a GPT in the formats its ecosystem loads.

  * "huggingface": config.json + model.safetensors exactly as transformers' GPT2LMHeadModel.save_pretrained
    writes them (Conv1D weights, "transformer." keys), plus GPT-2's tokenizer files (vocab.json, merges.txt,
    tokenizer_config.json) when the model uses GPT-2's BPE. An untied lm_head is kept (tie_word_embeddings=false).
  * "nanogpt": ckpt.pt with "model" and "model_args", as nanoGPT's train.py writes it (its sample.py loads it),
    plus meta.pkl (stoi/itos) for a character-level model: sample.py looks for it in data/<dataset>/meta.pkl, where
    <dataset> is ckpt["config"]["dataset"] (set to the output folder's name). nanoGPT's MLP computes GELU exactly
    (nn.GELU(), erf) and its model_args have no field to say otherwise: a model with GPT-2's tanh GELU (any Hugging
    Face GPT-2) is still written, as nanoGPT's own GPT.from_pretrained("gpt2") puts those weights into exact-GELU
    blocks, but with a warning, because nanoGPT's logits then differ slightly from genzoo's. genzoo reads a
    ckpt.pt back as nanoGPT runs it (activation="gelu"). "huggingface" and "genzoo" keep the tanh GELU exactly.
  * "genzoo": genzoo's own save_pretrained.
"""
from __future__ import annotations

import pickle
import warnings
from functools import lru_cache
from pathlib import Path

from ..errors import ConfigError
from ..export import prepare_directory, write_json, write_safetensors, write_text, write_torch
from . import convert

FORMATS = ("genzoo", "huggingface", "nanogpt")
HF_TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json")


def export(model, directory, format: str, overwrite: bool = False) -> Path:
    config = model.config
    if format == "genzoo":
        prepare_directory(directory, ("model.safetensors", "config.json"), overwrite)
        return Path(model.save_pretrained(directory))
    if format == "huggingface":
        return _export_huggingface(model, config, directory, overwrite)
    if format == "nanogpt":
        return _export_nanogpt(model, config, directory, overwrite)
    raise ConfigError(f"GPT cannot be exported as {format!r}: one of {', '.join(FORMATS)}")


def _export_huggingface(model, config, directory, overwrite) -> Path:
    kind = config.tokenizer.get("type")
    if kind != "gpt2":
        raise ConfigError(f"a model with a {kind!r} tokenizer cannot be exported as 'huggingface': transformers' GPT-2 "
                          f"folders carry GPT-2's BPE tokenizer, and this model's vocabulary would be lost. Export it "
                          f"as 'genzoo' (keeps the tokenizer in config.json)"
                          + (" or 'nanogpt' (keeps the alphabet in meta.pkl)" if kind == "char" else ""))
    names = ("config.json", "model.safetensors") + HF_TOKENIZER_FILES
    directory = prepare_directory(directory, names, overwrite)
    write_safetensors(directory / "model.safetensors", convert.to_huggingface(model.state_dict(), config))
    write_json(directory / "config.json", convert.config_to_huggingface(config))
    vocab, merges = gpt2_vocab_and_merges()
    write_json(directory / "vocab.json", vocab)
    write_text(directory / "merges.txt", "#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")
    eot = "<|endoftext|>"
    write_json(directory / "tokenizer_config.json", {"tokenizer_class": "GPT2Tokenizer", "model_max_length":
                                                     config.n_positions, "bos_token": eot, "eos_token": eot,
                                                     "unk_token": eot, "add_prefix_space": False})
    write_json(directory / "special_tokens_map.json", {"bos_token": eot, "eos_token": eot, "unk_token": eot})
    return directory


def _export_nanogpt(model, config, directory, overwrite) -> Path:
    refusals = convert.nanogpt_refusals(config)
    if refusals:
        raise ConfigError(f"this model cannot be exported as 'nanogpt': nanoGPT's model has no room for "
                          f"{'; '.join(refusals)}. Export it as 'genzoo'"
                          + (" or 'huggingface'" if config.tokenizer.get("type") == "gpt2" else ""))
    char = config.tokenizer.get("type") == "char"
    directory = prepare_directory(directory, ("ckpt.pt",) + (("meta.pkl",) if char else ()), overwrite)
    if config.activation != convert.NANOGPT_ACTIVATION:
        warnings.warn(f"this model's MLP uses activation={config.activation!r} (GPT-2's tanh approximation of GELU); "
                      f"nanoGPT's computes the exact GELU (nn.GELU()), so in nanoGPT its logits will differ slightly "
                      f"from genzoo's, as with nanoGPT's own GPT-2 import. Export as 'huggingface' or 'genzoo' to keep "
                      f"the tanh GELU exactly", UserWarning, stacklevel=4)
    state_dict, model_args = convert.to_nanogpt(model.state_dict(), config)
    write_torch(directory / "ckpt.pt", {"model": state_dict, "model_args": model_args, "iter_num": 0,
                                        "best_val_loss": float("inf"),
                                        "config": {"dataset": directory.name} if char else {}})
    if char:  # nanoGPT's data/shakespeare_char/prepare.py writes the alphabet this way
        chars = config.tokenizer["chars"]
        meta = {"vocab_size": len(chars), "itos": dict(enumerate(chars)), "stoi": {c: i for i, c in enumerate(chars)}}
        with open(directory / "meta.pkl", "wb") as f:
            pickle.dump(meta, f)
    return directory


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters (vocab.json spells tokens with them)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


@lru_cache(maxsize=1)
def gpt2_vocab_and_merges() -> tuple[dict, list]:
    """vocab.json and merges.txt of GPT-2, rebuilt from the merge ranks genzoo ships (gpt2.tiktoken).

    Every multi-byte token was made by merging two lower-ranked tokens; the merge of rank r is the split of token r
    into two tokens of the vocabulary (every such split is listed, lower ranks first, as transformers' own
    tiktoken converter does)."""
    from .tokenizer import EOT, EOT_ID, _gpt2_encoding

    ranks = _gpt2_encoding()._mergeable_ranks
    to_char = bytes_to_unicode()
    spell = lambda token: "".join(to_char[b] for b in token)  # noqa: E731
    vocab = {spell(token): rank for token, rank in ranks.items()}
    vocab[EOT] = EOT_ID
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
        if len(token) < 2:
            continue
        splits = [(token[:i], token[i:]) for i in range(1, len(token)) if token[:i] in ranks and token[i:] in ranks]
        splits.sort(key=lambda pair: (ranks[pair[0]], ranks[pair[1]]))
        merges += [(spell(a), spell(b)) for a, b in splits]
    return vocab, merges
