"""GPT exports: transformers and a re-creation of nanoGPT load them and compute the same logits; genzoo reads them back."""

import dataclasses

import pytest
import torch

from genzoo import gpt2
from genzoo.errors import ConfigError
from genzoo.export import export
from genzoo.gpt2.convert import _PlainDataUnpickler
from genzoo.gpt2.model import GPT, GPTConfig

from .nanogpt_reference import NanoGPT, load_like_nanogpt_sample

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
    model = tiny(vocab_size=len(chars), tokenizer={"type": "char", "chars": chars}, bos_token_id=0, eos_token_id=None,
                 activation="gelu")
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


@pytest.mark.filterwarnings("ignore:this model's MLP uses activation='gelu_tanh'")  # tested elsewhere
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


def scaled_up(model, std=0.3, seed=0):
    """Weights large enough that the tanh and the exact GELU give logits far more than 1e-5 apart."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return model.eval()


def write_nanogpt_ckpt(model: NanoGPT, model_args: dict, path, prefix="_orig_mod."):
    """ckpt.pt as nanoGPT's train.py writes it: raw_model.state_dict() (under torch.compile's prefix), model_args."""
    torch.save({"model": {prefix + k: v for k, v in model.state_dict().items()}, "model_args": model_args,
                "iter_num": 10, "best_val_loss": torch.tensor(2.0), "config": {"dataset": "openwebtext"}}, path)


@pytest.mark.parametrize("bias", [True, False])
def test_nanogpt_ckpt_loads_with_nanogpts_own_outputs(tmp_path, bias):
    """nanoGPT's MLP is nn.GELU() (exact): genzoo's import equals nanoGPT's model on the same ckpt.pt."""
    args = dict(n_layer=2, n_head=4, n_embd=32, block_size=16, bias=bias, vocab_size=50304, dropout=0.0)
    torch.manual_seed(0)
    ref = scaled_up(NanoGPT(**args))
    write_nanogpt_ckpt(ref, args, tmp_path / "ckpt.pt")
    model = gpt2.from_pretrained(tmp_path / "ckpt.pt", device="cpu")
    assert model.config.activation == "gelu"
    x = ids(50304, n=16)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), atol=1e-5, rtol=1e-5)
        # the test can tell the two GELUs apart: the same weights with the tanh form are far off
        tanh = GPT(dataclasses.replace(model.config, activation="gelu_tanh")).eval()
        tanh.load_state_dict(model.state_dict())
        assert (tanh(x) - ref(x)).abs().max() > 1e-4


def test_tanh_gelu_model_to_nanogpt_warns_and_says_what_differs(tmp_path):
    model = tiny()  # GPT-2's tanh GELU, as every Hugging Face GPT-2
    with pytest.warns(UserWarning, match="tanh approximation.*exact GELU.*'huggingface' or 'genzoo'"):
        export(model, tmp_path, "nanogpt")
    ref = load_like_nanogpt_sample(tmp_path / "ckpt.pt")   # what nanoGPT runs: the same weights, exact GELU
    back = gpt2.from_pretrained(tmp_path / "ckpt.pt", device="cpu")
    assert back.config.activation == "gelu"
    x = ids(model.config.vocab_size)
    with torch.no_grad():
        torch.testing.assert_close(back(x), ref(x), atol=1e-5, rtol=1e-5)


def test_exact_gelu_model_to_nanogpt_does_not_warn(tmp_path, recwarn):
    export(tiny(activation="gelu"), tmp_path, "nanogpt")
    assert not [w for w in recwarn if "GELU" in str(w.message)]
