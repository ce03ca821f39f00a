"""Tiny GPT-2 checkpoints written exactly as they are published, for offline parity tests."""
import pytest
import torch
from safetensors.torch import save_file

# Large enough initial weights that greedy decoding has clear winners (no near-ties to flip on rounding).
HF_CONFIG = dict(vocab_size=320, n_positions=64, n_embd=64, n_layer=2, n_head=4, initializer_range=0.2,
                 bos_token_id=None, eos_token_id=None, pad_token_id=None)


@pytest.fixture(scope="session")
def hf_model():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(**HF_CONFIG)).eval()
    return model


def hub_state_dict(model, prefix: bool, legacy_buffers: bool):
    """GPT2LMHeadModel's tensors as the Hub files hold them.

    prefix=True: "transformer.h.0..." (what GPT2LMHeadModel.save_pretrained writes); False: "h.0..." (the keys of
    openai-community/gpt2's model.safetensors and pytorch_model.bin). legacy_buffers: add the causal-mask buffers
    attn.bias / attn.masked_bias and lm_head.weight that the original pytorch_model.bin files carry.
    """
    sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    if legacy_buffers:
        n = model.config.n_positions
        for i in range(model.config.n_layer):
            sd[f"transformer.h.{i}.attn.bias"] = torch.tril(torch.ones(n, n, dtype=torch.uint8)).view(1, 1, n, n)
            sd[f"transformer.h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
        sd["lm_head.weight"] = sd["transformer.wte.weight"].clone()
    if not prefix:
        sd = {k.removeprefix("transformer."): v for k, v in sd.items()}
    return sd


def write_hub_checkpoint(model, directory, fmt="safetensors", prefix=True, legacy_buffers=False):
    directory.mkdir(parents=True, exist_ok=True)
    model.config.to_json_file(directory / "config.json")
    sd = hub_state_dict(model, prefix, legacy_buffers)
    if fmt == "safetensors":
        save_file(sd, str(directory / "model.safetensors"), metadata={"format": "pt"})
    else:
        torch.save(sd, directory / "pytorch_model.bin")
    return directory


@pytest.fixture(scope="session")
def hf_dir(hf_model, tmp_path_factory):
    """transformers' own save_pretrained output (safetensors, "transformer." keys)."""
    directory = tmp_path_factory.mktemp("hf")
    hf_model.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def genzoo_model(hf_dir):
    from genzoo import gpt2

    return gpt2.from_pretrained(hf_dir, device="cpu")


