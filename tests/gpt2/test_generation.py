"""Sampling options, stop conditions, streaming, context overflow, and every bad input -> a clear genzoo error."""
import pytest
import torch

from genzoo import checkpoint, gpt2
from genzoo.errors import CheckpointError, ConfigError, HubError, UnknownModelError


@pytest.fixture(scope="module")
def char_model(tmp_path_factory):
    """A tiny random character-level model (the embedded model's kind), saved in genzoo's format."""
    torch.manual_seed(0)
    chars = "\n !,.:;?abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    config = gpt2.GPTConfig(vocab_size=len(chars), n_positions=32, n_embd=32, n_layer=2, n_head=2,
                            bos_token_id=0, eos_token_id=None, tokenizer={"type": "char", "chars": chars})
    model = gpt2.GPT(config).eval()
    directory = tmp_path_factory.mktemp("char")
    model.save_pretrained(directory)
    return gpt2.from_pretrained(directory, device="cpu"), directory


@pytest.fixture(scope="module")
def bpe_model():
    """A tiny random model over GPT-2's full vocabulary (for the BPE tokenizer and <|endoftext|>)."""
    torch.manual_seed(0)
    return gpt2.GPT(gpt2.GPTConfig(n_positions=48, n_embd=16, n_layer=1, n_head=2)).eval()


def test_same_seed_same_output(char_model):
    model, _ = char_model
    a = model.generate_text("to be", max_new_tokens=30, temperature=1.0, top_k=20, seed=7)
    b = model.generate_text("to be", max_new_tokens=30, temperature=1.0, top_k=20, seed=7)
    c = model.generate_text("to be", max_new_tokens=30, temperature=1.0, top_k=20, seed=8)
    assert a == b and a != c
    g = torch.Generator().manual_seed(7)
    assert model.generate_text("to be", max_new_tokens=30, top_k=20, generator=g) == a


def test_greedy_equivalents(char_model):
    model, _ = char_model
    greedy = model.generate([5, 6, 7], max_new_tokens=15, temperature=0)
    assert model.generate([5, 6, 7], max_new_tokens=15, top_k=1, seed=3) == greedy
    assert model.generate([5, 6, 7], max_new_tokens=15, top_p=1e-6, seed=3) == greedy


def test_output_forms(char_model):
    model, _ = char_model
    assert isinstance(model.generate([1, 2], max_new_tokens=3), list)
    out = model.generate(torch.tensor([1, 2]), max_new_tokens=3)
    assert out.shape == (5,) and out[:2].tolist() == [1, 2]
    assert model.generate(torch.tensor([[1, 2]]), max_new_tokens=0).tolist() == [[1, 2]]


def test_empty_prompt_starts_from_bos(char_model, bpe_model):
    model, _ = char_model
    out = model.generate([], max_new_tokens=5, seed=0)
    assert out[0] == model.config.bos_token_id and len(out) == 6
    assert len(model.generate_text("", max_new_tokens=5, seed=0)) == 5
    ids = bpe_model.generate(torch.zeros(1, 0, dtype=torch.long), max_new_tokens=3, seed=0)
    assert ids[0, 0].item() == 50256 and ids.shape == (1, 4)  # GPT-2: <|endoftext|>


def test_stops_at_endoftext_and_pads_finished_rows(bpe_model):
    # Make <|endoftext|> the most likely token after any input: the row ends at once, the token is kept.
    model = gpt2.GPT(bpe_model.config).eval()
    model.load_state_dict(bpe_model.state_dict())
    with torch.no_grad():
        model.ln_f.weight.zero_()
        model.ln_f.bias.copy_(model.wte.weight[50256] * 10)
    assert model.generate([15496, 995], max_new_tokens=10, temperature=0) == [15496, 995, 50256]
    assert model.generate([15496, 995], max_new_tokens=10, temperature=0, eos_token_id=None)[-1] == 50256
    assert len(model.generate([15496, 995], max_new_tokens=10, temperature=0, eos_token_id=None)) == 12
    assert model.generate_text("Hello world", max_new_tokens=10, temperature=0) == "Hello world"


def test_stop_strings_and_streaming(char_model):
    model, _ = char_model
    full = model.generate_text("abc", max_new_tokens=40, temperature=0)
    completion = full[3:]
    stop = completion[10:12]
    stopped = model.generate_text("abc", max_new_tokens=40, temperature=0, stop=[stop])
    assert stopped == "abc" + completion[:completion.find(stop)]
    pieces = list(model.stream_text("abc", max_new_tokens=40, temperature=0))
    assert "".join(pieces) == completion and len(pieces) > 1
    assert "".join(model.stream_text("abc", max_new_tokens=40, temperature=0, stop=stop)) == stopped[3:]
    batch = model.generate_text(["abc", "xy z"], max_new_tokens=40, temperature=0, stop=[stop])
    assert batch[0] == stopped


def test_stream_text_with_bpe(bpe_model):
    tok = gpt2.Tokenizer()
    text = bpe_model.generate_text("Hello", max_new_tokens=12, seed=1, eos_token_id=None)
    streamed = "".join(bpe_model.stream_text("Hello", max_new_tokens=12, seed=1, eos_token_id=None))
    assert "Hello" + streamed == text
    assert tok.encode("Hello")[0] == 15496


def test_prompt_longer_than_the_window_slides(char_model):
    model, _ = char_model  # n_positions = 32
    prompt = list(range(1, 41)) + list(range(1, 11))  # 50 tokens
    out = model.generate(prompt, max_new_tokens=30, temperature=0)
    assert out[:50] == prompt and len(out) == 80
    # sliding means: the first new token is what the model predicts from the last 3/4 window (24 tokens)
    expected_first = model(torch.tensor([prompt[-24:]]))[0, -1].argmax().item()
    assert out[50] == expected_first
    with pytest.raises(ConfigError, match="context window"):
        model.generate(prompt, max_new_tokens=3, overflow="error")
    with pytest.raises(ConfigError, match="context window"):
        model(torch.tensor([prompt]))


@pytest.mark.parametrize("kwargs", [dict(temperature=-0.1), dict(temperature=float("nan")), dict(top_k=0),
                                    dict(top_k=1.5), dict(top_p=0.0), dict(top_p=1.5), dict(top_p=-0.2),
                                    dict(max_new_tokens=-1)])
def test_bad_sampling_arguments(char_model, kwargs):
    model, _ = char_model
    kwargs = {"max_new_tokens": 3, **kwargs}
    with pytest.raises(ConfigError):
        model.generate([1, 2], **kwargs)
    with pytest.raises(ConfigError):
        model.generate_text("ab", **kwargs)


def test_bad_prompts(char_model):
    model, _ = char_model
    with pytest.raises(ConfigError, match=r"0\.\.59"):
        model.generate([1, 999], max_new_tokens=2)
    with pytest.raises(ConfigError, match="alphabet"):
        model.generate_text("ÆØÅ", max_new_tokens=2)
    with pytest.raises(ConfigError, match="integer"):
        model.generate(torch.tensor([[0.5, 1.0]]), max_new_tokens=2)
    with pytest.raises(ConfigError, match="left padding"):
        model.generate(torch.tensor([[1, 2, 3]]), attention_mask=torch.tensor([[1, 1, 0]]), max_new_tokens=2)


def test_unknown_names_and_paths():
    with pytest.raises(UnknownModelError, match="gpt2"):
        gpt2.from_pretrained("gpt-2")
    with pytest.raises(HubError):
        gpt2.from_pretrained("/nonexistent/folder/for/genzoo")
    with pytest.raises(HubError):  # offline in tests: a Hub name gives a clear error, not a traceback
        gpt2.from_pretrained("gpt2")


def test_url_of_one_weights_file(tmp_path, monkeypatch):
    """A URL is downloaded once into genzoo's cache (here: already there, offline). A nanoGPT ckpt.pt carries its
    sizes; a bare weights file of a non-OpenAI size cannot say its n_head or tokenizer and is refused, not guessed."""
    from safetensors.torch import save_file

    from genzoo import hub

    torch.manual_seed(0)
    source = gpt2.GPT(gpt2.GPTConfig(vocab_size=50, n_positions=16, n_embd=128, n_layer=1, n_head=2,
                                     activation="gelu")).eval()   # nanoGPT's exact GELU
    monkeypatch.setenv("GENZOO_CACHE", str(tmp_path))
    url = "https://example.com/tiny-gpt2/ckpt.pt"
    cached = hub.url_cache_path(url)
    cached.parent.mkdir(parents=True)
    args = dict(n_layer=1, n_head=2, n_embd=128, block_size=16, bias=True, vocab_size=50)
    torch.save({"model": source.state_dict(), "model_args": args}, cached)
    (cached.parent / "config.json").write_text('{"genzoo_family": "vae"}')  # not beside the URL: never read
    model = gpt2.from_pretrained(url, device="cpu")
    assert model.config.n_head == 2 and model.config.vocab_size == 50
    x = torch.randint(0, 50, (2, 16))
    assert torch.equal(model(x), source(x))

    bare = "https://example.com/tiny-gpt2/model.safetensors"
    hub.url_cache_path(bare).parent.mkdir(parents=True)
    save_file(source.state_dict(), str(hub.url_cache_path(bare)))
    with pytest.raises(CheckpointError, match="no config.json beside it.*can be known"):
        gpt2.from_pretrained(bare, device="cpu")


def test_checkpoint_of_another_family(tmp_path, char_model):
    _, directory = char_model
    vae_dir = tmp_path / "vae"
    checkpoint.save_pretrained(vae_dir, {"encoder.conv.weight": torch.zeros(4, 1, 3, 3)}, {"latent": 8}, family="vae")
    with pytest.raises(CheckpointError, match="'vae'"):
        gpt2.from_pretrained(vae_dir)
    diffusers_dir = tmp_path / "unet"
    diffusers_dir.mkdir()
    (diffusers_dir / "config.json").write_text('{"_class_name": "UNet2DModel"}')
    with pytest.raises(CheckpointError, match="diffusers"):
        gpt2.from_pretrained(diffusers_dir)
    bert_dir = tmp_path / "bert"
    bert_dir.mkdir()
    (bert_dir / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(CheckpointError, match="bert"):
        gpt2.from_pretrained(bert_dir)
    from safetensors.torch import save_file

    save_file({"encoder.weight": torch.zeros(2, 2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError, match="not a GPT-2 checkpoint"):
        gpt2.from_pretrained(tmp_path / "other.safetensors")


def _copy_with(directory, target, change):
    from safetensors.torch import load_file, save_file

    sd = dict(load_file(str(directory / "model.safetensors")))
    change(sd)
    target.mkdir()
    save_file(sd, str(target / "model.safetensors"))
    (target / "config.json").write_text((directory / "config.json").read_text())
    return target


def test_missing_and_misshaped_keys(tmp_path, char_model):
    _, directory = char_model
    missing = _copy_with(directory, tmp_path / "missing", lambda sd: sd.pop("h.1.mlp.c_fc.bias"))
    with pytest.raises(CheckpointError, match=r"missing keys: h\.1\.mlp\.c_fc\.bias"):
        gpt2.from_pretrained(missing)
    shaped = _copy_with(directory, tmp_path / "shaped", lambda sd: sd.update({"h.0.attn.c_proj.weight": torch.zeros(32, 30)}))
    with pytest.raises(CheckpointError, match=r"h\.0\.attn\.c_proj\.weight: checkpoint \(32, 30\) vs model \(32, 32\)"):
        gpt2.from_pretrained(shaped)
    extra = _copy_with(directory, tmp_path / "extra", lambda sd: sd.update({"h.5.attn.c_attn.weight": torch.zeros(1)}))
    with pytest.raises(CheckpointError, match="unexpected keys"):
        gpt2.from_pretrained(extra)


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_truncated_file(tmp_path, char_model, fmt):
    model, directory = char_model
    target = tmp_path / "cut"
    target.mkdir()
    if fmt == "safetensors":
        data = (directory / "model.safetensors").read_bytes()
        name = "model.safetensors"
    else:
        torch.save({k: v for k, v in model.state_dict().items()}, tmp_path / "full.bin")
        data = (tmp_path / "full.bin").read_bytes()
        name = "pytorch_model.bin"
    (target / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        gpt2.from_pretrained(target / name)


class _Payload:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("name", ["pytorch_model.bin", "ckpt.pt"])
def test_code_pickle_is_refused_and_nothing_runs(tmp_path, char_model, name):
    model, _ = char_model
    marker = tmp_path / "pwned"
    target = tmp_path / "evil"
    target.mkdir()
    payload = {"model": {k: v for k, v in model.state_dict().items()}, "model_args": {"n_layer": 2}, "x": _Payload(marker)}
    torch.save(payload, target / name)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="refused"):
        gpt2.from_pretrained(target / name)
    assert not marker.exists()


def test_untied_output_layer_is_kept(tmp_path, char_model):
    _, directory = char_model
    from safetensors.torch import load_file, save_file

    sd = dict(load_file(str(directory / "model.safetensors")))
    sd["lm_head.weight"] = sd["wte.weight"] + 1
    save_file(sd, str(tmp_path / "model.safetensors"))
    n_head = checkpoint.read_config(directory)["n_head"]   # a foreign file: its size from a transformers config.json
    (tmp_path / "config.json").write_text(f'{{"model_type": "gpt2", "n_head": {n_head}}}')
    model = gpt2.from_pretrained(tmp_path / "model.safetensors", device="cpu")
    assert model.config.tie_embeddings is False
    torch.testing.assert_close(model.lm_head.weight, sd["lm_head.weight"])
