"""Published GPT-2 state dicts -> genzoo's, as pure functions (no model is built here).

Formats in the wild:
  * Hugging Face (openai-community/gpt2 ...): `model.safetensors` or `pytorch_model.bin`. The Hub's files use keys
    without a prefix ("h.0.attn.c_attn.weight"); GPT2LMHeadModel.save_pretrained writes "transformer.h.0...".
    Weights of Conv1D layers are stored (in, out) and need a transpose; old files carry the causal-mask buffers
    `attn.bias` / `attn.masked_bias`; `lm_head.weight` (if present) is the token embedding again.
  * nanoGPT `ckpt.pt`: {"model": state_dict, "model_args": {...}, ...}, nn.Linear layout, keys under
    "transformer." and, after torch.compile, "_orig_mod.".
  * genzoo's own save_pretrained: already genzoo's keys and layout.
"""
from __future__ import annotations

import dataclasses
import pickle
import re
from pathlib import Path

import torch

from ..checkpoint import rename_keys, strip_common_prefix, unwrap_state_dict
from ..errors import CheckpointError
from .model import GPTConfig

# foreign key pattern -> genzoo key (applied in order). nanoGPT's keys are Hugging Face's GPT2LMHeadModel's, under
# the wrappers that strip_common_prefix removes (torch.compile's "_orig_mod.", DDP's "module.").
RENAMES = [(r"^transformer\.", "")]
# keys that hold nothing genzoo needs: causal-mask buffers, and the output matrix that is tied to wte
DROPPED = [r"\.attn\.bias$", r"\.attn\.masked_bias$", r"^lm_head\.weight$"]
# Conv1D weights, stored (in, out), transposed to nn.Linear's (out, in)
CONV1D_WEIGHTS = [r"^h\.\d+\.attn\.c_attn\.weight$", r"^h\.\d+\.attn\.c_proj\.weight$",
                  r"^h\.\d+\.mlp\.c_fc\.weight$", r"^h\.\d+\.mlp\.c_proj\.weight$"]
# HF activation names that are GPT-2's tanh-approximated GELU (up to float rounding), and the exact one
HF_ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu_fast": "gelu_tanh",
                  "gelu": "gelu"}


def drop(state_dict: dict, patterns=DROPPED) -> dict:
    return {k: v for k, v in state_dict.items() if not any(re.search(p, k) for p in patterns)}


def has_conv1d_layout(state_dict: dict) -> bool:
    """True when the attention input projection is stored (in, out) = (n_embd, 3 n_embd), as Conv1D does."""
    w = state_dict.get("h.0.attn.c_attn.weight")
    n_embd = state_dict["wte.weight"].shape[1]
    return w is not None and tuple(w.shape) == (n_embd, 3 * n_embd)


def transpose_conv1d(state_dict: dict) -> dict:
    # .t() is a view: on a memory-mapped checkpoint no copy is made (nn.Linear accepts a transposed weight).
    return {k: (v.t() if any(re.match(p, k) for p in CONV1D_WEIGHTS) else v) for k, v in state_dict.items()}


def require_gpt2_keys(state_dict: dict, path) -> None:
    if "wte.weight" not in state_dict or "h.0.attn.c_attn.weight" not in state_dict:
        shown = ", ".join(list(state_dict)[:8])
        raise CheckpointError(f"{path} is not a GPT-2 checkpoint: it has no wte.weight / h.0.attn.c_attn.weight "
                              f"(its keys begin: {shown or 'none'}). Load it with the family it belongs to.")


def check_tied(state_dict: dict, path) -> None:
    """genzoo ties the output matrix to wte; a checkpoint whose lm_head differs cannot be represented."""
    head, wte = state_dict.get("lm_head.weight"), state_dict.get("wte.weight")
    if head is not None and wte is not None and head.data_ptr() != wte.data_ptr() and not torch.equal(head, wte):
        raise CheckpointError(f"{path}: lm_head.weight differs from wte.weight (an untied output layer); genzoo's "
                              f"GPT-2 ties them, as OpenAI's checkpoints do")


def from_huggingface(state_dict: dict, path="<checkpoint>") -> dict:
    """transformers' GPT2LMHeadModel / GPT2Model state dict (either key variant) -> genzoo's."""
    state_dict = rename_keys(state_dict, RENAMES)
    check_tied(state_dict, path)
    state_dict = drop(state_dict)
    require_gpt2_keys(state_dict, path)
    return transpose_conv1d(state_dict) if has_conv1d_layout(state_dict) else state_dict


def from_nanogpt(state_dict: dict, path="<checkpoint>") -> dict:
    """nanoGPT's model state dict (ckpt.pt["model"]) -> genzoo's: only renames, its layout is already nn.Linear."""
    state_dict = rename_keys(strip_common_prefix(state_dict), RENAMES)
    check_tied(state_dict, path)
    state_dict = drop(state_dict)
    require_gpt2_keys(state_dict, path)
    return state_dict


NANOGPT_ACTIVATION = "gelu"   # nanoGPT's model.py: MLP.gelu = nn.GELU()


# n_head cannot be read from shapes. OpenAI's four sizes are known (64-wide heads); any other width needs a config.
OPENAI_HEADS = {768: 12, 1024: 16, 1280: 20, 1600: 25}


class _Unsized(Exception):
    """The weights (and the config beside them) do not say how big the model is."""


def infer_config(state_dict: dict, **known) -> GPTConfig:
    """A config from tensor shapes, and from `known` what shapes cannot tell (n_head, unless the width is one of
    OpenAI's). Nothing is guessed: a model whose size is ambiguous is refused."""
    missing = [k for k in ("wte.weight", "wpe.weight", "h.0.mlp.c_fc.weight") if k not in state_dict]
    if missing:
        raise KeyError(missing[0])
    vocab_size, n_embd = state_dict["wte.weight"].shape
    layers = sorted({int(m.group(1)) for k in state_dict if (m := re.match(r"^h\.(\d+)\.", k))})
    if layers != list(range(len(layers))):   # so n_layer is bounded by the keys the file holds
        gaps = sorted(set(range(layers[-1] + 1)) - set(layers))[:5] if len(layers) < 100_000 else "many"
        raise _Unsized(f"its layers are not numbered 0..{len(layers) - 1} (h.{layers[-1]}.* is there, h.N.* is "
                       f"missing for N in {gaps}): a damaged or foreign checkpoint")
    n_head = known.get("n_head") or OPENAI_HEADS.get(int(n_embd))
    if n_head is None:
        raise _Unsized(f"its width n_embd={n_embd} is not one of OpenAI's GPT-2 sizes, so its number of attention "
                       f"heads cannot be known. Put the config.json it was saved with (with n_head) beside the weights")
    fc = state_dict["h.0.mlp.c_fc.weight"]
    mlp_width = fc.shape[0] if fc.shape[1] == n_embd else fc.shape[1]
    inferred = dict(vocab_size=vocab_size, n_positions=state_dict["wpe.weight"].shape[0], n_embd=n_embd,
                    n_layer=len(layers), n_inner=None if mlp_width == 4 * n_embd else mlp_width,
                    bias="ln_f.bias" in state_dict, n_head=n_head)
    inferred.update({k: v for k, v in known.items() if v is not None})
    return GPTConfig(**inferred)


def config_from_huggingface(hf_config: dict | None, state_dict: dict, path="<checkpoint>") -> GPTConfig:
    """GPT2Config (config.json) + shapes -> GPTConfig. Refuses the options genzoo does not implement."""
    hf_config = hf_config or {}
    if hf_config.get("model_type", "gpt2") != "gpt2":
        raise CheckpointError(f"{path} is a {hf_config['model_type']!r} checkpoint (config.json model_type), "
                              f"not GPT-2")
    unsupported = [k for k in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn") if hf_config.get(k)]
    if hf_config.get("scale_attn_weights", True) is False:
        unsupported.append("scale_attn_weights=False")
    if unsupported:
        raise CheckpointError(f"{path}: GPT-2 variants with {unsupported} are not supported by genzoo")
    activation = hf_config.get("activation_function", "gelu_new")
    if activation not in HF_ACTIVATIONS:
        raise CheckpointError(f"{path}: activation_function {activation!r} is not supported "
                              f"(one of {sorted(HF_ACTIVATIONS)})")
    vocab_size = state_dict["wte.weight"].shape[0]
    if not hf_config and vocab_size < 50257:
        raise _Unsized(f"there is no config.json beside it and its vocabulary ({vocab_size} tokens) is not GPT-2's, "
                       f"so neither its tokenizer nor its head count can be known. Put the config.json it was saved "
                       f"with beside the weights, or tell the loader: from_pretrained(path, config={{'n_head': N}})")
    eos = hf_config.get("eos_token_id", 50256)
    bos = hf_config.get("bos_token_id", 50256)
    vocab = state_dict["wte.weight"].shape[0]
    return infer_config(
        state_dict, n_head=hf_config.get("n_head"), layer_norm_epsilon=hf_config.get("layer_norm_epsilon"),
        activation=HF_ACTIVATIONS[activation], eos_token_id=eos, bos_token_id=bos if bos is not None and bos < vocab else 0)


def config_from_nanogpt(model_args: dict, state_dict: dict, chars: str | None = None) -> GPTConfig:
    """nanoGPT's model_args (n_layer, n_head, n_embd, block_size, bias, vocab_size, dropout) -> GPTConfig.

    `chars`: the alphabet of a character-level model (nanoGPT keeps it in the data folder's meta.pkl).
    A model with GPT-2's vocabulary (>= 50257 rows; nanoGPT pads to 50304) uses GPT-2's BPE.
    nanoGPT's MLP computes nn.GELU(), the exact erf form, whatever the weights were trained with: so does genzoo's
    import (activation="gelu"), and its outputs are nanoGPT's own.
    """
    vocab = state_dict["wte.weight"].shape[0]
    if chars is not None:
        tokenizer, bos, eos = {"type": "char", "chars": chars}, chars.find("\n") if "\n" in chars else 0, None
    elif vocab >= 50257:
        tokenizer, bos, eos = {"type": "gpt2"}, 50256, 50256
    else:
        tokenizer, bos, eos = {"type": "unknown"}, 0, None
    return infer_config(state_dict, n_head=model_args.get("n_head"), n_positions=model_args.get("block_size"),
                        bias=model_args.get("bias"), bos_token_id=bos, eos_token_id=eos, tokenizer=tokenizer,
                        activation=NANOGPT_ACTIVATION)


# -- the entry point genzoo.loader calls ------------------------------------------------------------------------
def convert(obj, config: dict, path="<checkpoint>", overrides: dict | None = None) -> tuple[dict, GPTConfig]:
    """Any GPT-2 checkpoint genzoo reads (what checkpoint.load_state_dict returned + its config.json, possibly
    empty) -> (genzoo state dict, GPTConfig). `overrides`: config.json values for a foreign file saved without one
    (what shapes cannot tell, such as n_head)."""
    if config.get("genzoo_family") == "gpt2":
        state_dict = unwrap_state_dict(obj, path)
        require_gpt2_keys(state_dict, path)
        return state_dict, GPTConfig.from_dict(config, where=str(path))
    if isinstance(obj, dict) and isinstance(obj.get("model_args"), dict):  # nanoGPT's ckpt.pt
        raw, head = split_untied_head(unwrap_state_dict(obj["model"], path))
        state_dict = from_nanogpt(raw, path)
        config = _sized(config_from_nanogpt, {**obj["model_args"], **(overrides or {})}, state_dict, nanogpt_chars(Path(path).parent), path=path)
        return with_book_parts(state_dict, config, head, path)
    raw, head = split_untied_head(unwrap_state_dict(obj, path))
    state_dict = from_huggingface(raw, path)
    config = _sized(config_from_huggingface, {**config, **(overrides or {})}, state_dict, path, path=path)
    return with_book_parts(state_dict, config, head, path)


def with_book_parts(state_dict: dict, config: GPTConfig, head, path) -> tuple[dict, GPTConfig]:
    """An untied lm_head (the book's ch. 12 GPT) and the book's word vocabulary pickled beside the weights."""
    from .tokenizer import read_book_vocabulary

    if head is not None:
        state_dict = {**state_dict, "lm_head.weight": head}
        config = dataclasses.replace(config, tie_embeddings=False)
    words = read_book_vocabulary(Path(path).parent)
    if words is not None:
        # the book generates from the prompt "UNK" when it has no text to start from
        config = dataclasses.replace(config, tokenizer={"type": "word", "words": words},
                                     bos_token_id=words.index("UNK") if "UNK" in words else 0, eos_token_id=None)
    return state_dict, config


def _sized(make_config, *args, path):
    try:
        return make_config(*args)
    except KeyError as e:
        raise CheckpointError(f"{path} lacks {e.args[0]!r}, which GPT-2 needs to size the model") from None
    except _Unsized as e:
        raise CheckpointError(f"{path}: {e}") from None


class _PlainDataUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings and numbers only: any class or function reference is refused."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refused to load {module}.{name} (genzoo unpickles plain data only)")


def nanogpt_chars(folder: Path) -> str | None:
    """nanoGPT keeps a character model's alphabet in meta.pkl ({"itos": {0: "\\n", ...}}) beside the data.

    Each entry must be one character, so the alphabet is never longer than the file (a pickle can repeat one long
    string by reference and make a 250 KB file join into gigabytes).
    """
    meta = folder / "meta.pkl"
    if not meta.is_file():
        return None
    try:
        with open(meta, "rb") as f:
            itos = _PlainDataUnpickler(f).load()["itos"]
        if not isinstance(itos, (dict, list)):
            raise TypeError(f"'itos' is a {type(itos).__name__}, not a dict or list")
        chars = [itos[i] for i in range(len(itos))]
    except Exception as e:   # a damaged pickle raises nearly anything: it is the file's fault either way
        raise CheckpointError(f"{meta} is not a nanoGPT meta.pkl with a plain 'itos' table: "
                              f"{type(e).__name__}: {str(e)[:200]}") from None
    bad = next((i for i, c in enumerate(chars) if not (isinstance(c, str) and len(c) == 1)), None)
    if bad is not None:
        raise CheckpointError(f"{meta}: itos[{bad}] is {str(chars[bad])[:40]!r} ({type(chars[bad]).__name__}), not "
                              f"one character: a character model's alphabet maps each id to a single character")
    return "".join(chars)


# -- untied output layers (the book's ch. 12 GPT) -----------------------------------------------------------------
def split_untied_head(state_dict: dict) -> tuple[dict, "torch.Tensor | None"]:
    """(state dict without lm_head.weight, lm_head.weight) when the head differs from wte; (state dict, None) when
    it is absent or tied (then the converters drop it as before)."""
    flat = rename_keys(strip_common_prefix(state_dict), RENAMES)
    head, wte = flat.get("lm_head.weight"), flat.get("wte.weight")
    if head is None or wte is None or head.data_ptr() == wte.data_ptr() or torch.equal(head, wte):
        return state_dict, None
    return {k: v for k, v in state_dict.items() if not k.endswith("lm_head.weight")}, head


# -- genzoo -> Hugging Face transformers (GPT2LMHeadModel) -------------------------------------------------------
GENZOO_TO_HF_ACTIVATION = {"gelu_tanh": "gelu_new", "gelu": "gelu"}


def with_zero_biases(state_dict: dict, config: GPTConfig) -> dict:
    """A bias-free model (nanoGPT's default) as one with zero biases: the same function, in GPT-2's layout."""
    if config.bias:
        return state_dict
    out = dict(state_dict)
    for key, value in state_dict.items():
        if key.endswith(".weight") and not key.startswith(("wte.", "wpe.", "lm_head.")):
            out.setdefault(key[:-len("weight")] + "bias", torch.zeros(value.shape[0], dtype=value.dtype))
    return out


def to_huggingface(state_dict: dict, config: GPTConfig) -> dict:
    """genzoo's state dict -> what GPT2LMHeadModel.save_pretrained writes: "transformer." keys, Conv1D (in, out)
    weights, no lm_head when tied (transformers re-ties it), lm_head.weight when untied."""
    out = {}
    for key, value in with_zero_biases(state_dict, config).items():
        if any(re.match(p, key) for p in CONV1D_WEIGHTS):
            value = value.t()
        out[key if key.startswith("lm_head.") else "transformer." + key] = value.contiguous()
    return out


def config_to_huggingface(config: GPTConfig) -> dict:
    """GPTConfig -> the config.json of a transformers GPT2LMHeadModel."""
    return {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        "vocab_size": config.vocab_size, "n_positions": config.n_positions, "n_ctx": config.n_positions,
        "n_embd": config.n_embd, "n_layer": config.n_layer, "n_head": config.n_head, "n_inner": config.n_inner,
        "activation_function": GENZOO_TO_HF_ACTIVATION[config.activation],
        "layer_norm_epsilon": config.layer_norm_epsilon,
        "resid_pdrop": config.dropout, "embd_pdrop": config.dropout, "attn_pdrop": config.dropout,
        "bos_token_id": config.bos_token_id, "eos_token_id": config.eos_token_id,
        "tie_word_embeddings": config.tie_embeddings, "initializer_range": 0.02,
        "scale_attn_weights": True, "use_cache": True,
    }


# -- genzoo -> nanoGPT (ckpt.pt) ----------------------------------------------------------------------------------
def nanogpt_refusals(config: GPTConfig) -> list[str]:
    """What nanoGPT's model cannot hold (its GPTConfig has no field for it)."""
    reasons = []
    if not config.tie_embeddings:
        reasons.append("an untied lm_head (nanoGPT always ties it to wte)")
    if config.mlp_width != 4 * config.n_embd:
        reasons.append(f"an MLP width of {config.mlp_width} (nanoGPT's is 4 * n_embd = {4 * config.n_embd})")
    if config.layer_norm_epsilon != 1e-5:
        reasons.append(f"layer_norm_epsilon={config.layer_norm_epsilon} (nanoGPT's LayerNorm uses 1e-5)")
    if config.tokenizer.get("type") not in ("gpt2", "char"):
        reasons.append(f"a {config.tokenizer.get('type')!r} tokenizer (nanoGPT knows GPT-2's BPE and meta.pkl "
                       f"character alphabets)")
    return reasons


def to_nanogpt(state_dict: dict, config: GPTConfig) -> tuple[dict, dict]:
    """-> (nanoGPT's model state dict, its model_args). nanoGPT's GPT holds lm_head.weight as the same tensor as
    transformer.wte.weight, and its load_state_dict is strict, so both keys are written."""
    model = {"transformer." + k: v.contiguous() for k, v in state_dict.items()}
    model["lm_head.weight"] = model["transformer.wte.weight"]
    model_args = dict(n_layer=config.n_layer, n_head=config.n_head, n_embd=config.n_embd,
                      block_size=config.n_positions, bias=config.bias, vocab_size=config.vocab_size,
                      dropout=config.dropout)
    return model, model_args
