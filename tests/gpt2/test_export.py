"""GPT exports: transformers and a re-creation of nanoGPT load them and compute the same logits; genzoo reads them back."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from genzoo import gpt2
from genzoo.errors import ConfigError
from genzoo.export import export
from genzoo.gpt2.convert import _PlainDataUnpickler
from genzoo.gpt2.model import GPT, GPTConfig

transformers = pytest.importorskip("transformers")


def tiny(**overrides) -> GPT:
    torch.manual_seed(0)
    config = GPTConfig(**{**dict(vocab_size=50257, n_positions=32, n_embd=32, n_layer=2, n_head=4), **overrides})
    model = GPT(config).eval()
    with torch.no_grad():  # non-trivial norms and biases, so that a wrong transpose or a dropped bias shows
        for name, p in model.named_parameters():
            if "ln" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    return model


def ids(vocab, n=12):
    return torch.randint(0, vocab, (2, n), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("overrides", [{}, {"tie_embeddings": False}, {"bias": False}, {"activation": "gelu"}],
                         ids=["tied", "untied", "bias-free", "exact-gelu"])
def test_huggingface_export_loads_in_transformers_with_the_same_logits(tmp_path, overrides):
    model = tiny(**overrides)
    model.save_pretrained(tmp_path, format="huggingface")
    ref = transformers.GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    x = ids(model.config.vocab_size)
    with torch.no_grad():
        torch.testing.assert_close(ref(x).logits, model(x), atol=1e-5, rtol=1e-5)
    assert ref.config.tie_word_embeddings == model.config.tie_embeddings
    back = gpt2.from_pretrained(tmp_path, device="cpu")  # genzoo reads its own export (round trip)
    assert back.config.tie_embeddings == model.config.tie_embeddings
    with torch.no_grad():
        torch.testing.assert_close(back(x), model(x), atol=1e-5, rtol=1e-5)


def test_huggingface_export_writes_gpt2s_tokenizer(tmp_path):
    export(tiny(), tmp_path, "huggingface")
    names = {p.name for p in tmp_path.iterdir()}
    assert {"config.json", "model.safetensors", "vocab.json", "merges.txt", "tokenizer_config.json"} <= names
    text = "ROMEO: But soft, what light through yonder window breaks? naïve café 😀 1234<|endoftext|>"
    expected = gpt2.Tokenizer().encode(text)
    assert transformers.GPT2TokenizerFast.from_pretrained(tmp_path).encode(text) == expected
    assert transformers.GPT2Tokenizer.from_pretrained(tmp_path).encode(text) == expected


def test_huggingface_keys_are_what_transformers_writes(tmp_path):
    from safetensors.torch import load_file

    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    export(tiny(), ours, "huggingface")
    transformers.GPT2LMHeadModel.from_pretrained(ours).save_pretrained(theirs)
    a, b = load_file(ours / "model.safetensors"), load_file(theirs / "model.safetensors")
    assert sorted(a) == sorted(b)
    assert all(a[k].shape == b[k].shape for k in a)


class NanoBlock(nn.Module):
    """nanoGPT's model.py Block, re-created for the test (nanoGPT is not a package)."""

    def __init__(self, n_embd, n_head, bias):
        super().__init__()
        self.n_head = n_head
        self.ln_1 = nn.LayerNorm(n_embd, bias=bias)
        self.attn = nn.Module()
        self.attn.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.attn.c_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.ln_2 = nn.LayerNorm(n_embd, bias=bias)
        self.mlp = nn.Module()
        self.mlp.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.mlp.c_proj = nn.Linear(4 * n_embd, n_embd, bias=bias)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.attn.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
        x = x + self.attn.c_proj(y)
        return x + self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(x))))  # nn.GELU(): the exact erf form


class NanoGPT(nn.Module):
    def __init__(self, n_layer, n_head, n_embd, block_size, bias, vocab_size, dropout):
        super().__init__()
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(vocab_size, n_embd), wpe=nn.Embedding(block_size, n_embd),
            h=nn.ModuleList(NanoBlock(n_embd, n_head, bias) for _ in range(n_layer)),
            ln_f=nn.LayerNorm(n_embd, bias=bias)))
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight

    def forward(self, idx):
        x = self.transformer.wte(idx) + self.transformer.wpe(torch.arange(idx.shape[1]))
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))


def load_like_nanogpt_sample(path) -> NanoGPT:
    """What nanoGPT's sample.py does with ckpt.pt (strict load_state_dict of checkpoint["model"])."""
    checkpoint = torch.load(path, weights_only=True)
    model = NanoGPT(**checkpoint["model_args"])
    model.load_state_dict(checkpoint["model"])
    return model.eval()


@pytest.mark.parametrize("bias", [True, False])
def test_nanogpt_export_loads_in_nanogpt_with_the_same_logits(tmp_path, bias):
    model = tiny(activation="gelu", bias=bias)
    export(model, tmp_path, "nanogpt")
    ref = load_like_nanogpt_sample(tmp_path / "ckpt.pt")
    x = ids(model.config.vocab_size)
    with torch.no_grad():
        torch.testing.assert_close(ref(x), model(x), atol=1e-5, rtol=1e-5)


def test_character_model_round_trips_through_nanogpt_with_its_alphabet(tmp_path):
    chars = "\n !',.:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    model = tiny(vocab_size=len(chars), tokenizer={"type": "char", "chars": chars}, bos_token_id=0, eos_token_id=None)
    export(model, tmp_path, "nanogpt")
    with open(tmp_path / "meta.pkl", "rb") as f:
        meta = _PlainDataUnpickler(f).load()   # plain data only, as genzoo reads nanoGPT's meta.pkl
    assert "".join(meta["itos"][i] for i in range(meta["vocab_size"])) == chars
    back = gpt2.from_pretrained(tmp_path / "ckpt.pt", device="cpu")
    assert back.config.tokenizer == {"type": "char", "chars": chars}
    x = ids(len(chars))
    with torch.no_grad():
        torch.testing.assert_close(back(x), model(x), atol=1e-5, rtol=1e-5)


def test_character_model_to_huggingface_is_refused(tmp_path):
    model = tiny(vocab_size=3, tokenizer={"type": "char", "chars": "abc"}, bos_token_id=0, eos_token_id=None)
    with pytest.raises(ConfigError, match="'char' tokenizer cannot be exported as 'huggingface'.*nanogpt"):
        export(model, tmp_path, "huggingface")
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_untied_model_to_nanogpt_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="untied lm_head"):
        export(tiny(tie_embeddings=False), tmp_path, "nanogpt")


def test_existing_files_are_not_overwritten_unless_asked(tmp_path):
    model = tiny()
    export(model, tmp_path, "nanogpt")
    before = (tmp_path / "ckpt.pt").read_bytes()
    with pytest.raises(ConfigError, match="already holds ckpt.pt.*overwrite"):
        export(model, tmp_path, "nanogpt")
    assert (tmp_path / "ckpt.pt").read_bytes() == before
    export(model, tmp_path, "nanogpt", overwrite=True)


def test_unknown_format_names_the_formats(tmp_path):
    with pytest.raises(ConfigError, match="huggingface, nanogpt"):
        export(tiny(), tmp_path, "onnx")
