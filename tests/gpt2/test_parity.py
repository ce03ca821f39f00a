"""genzoo's GPT-2 against transformers' GPT2LMHeadModel on every published file layout, plus nanoGPT and genzoo's own."""
import copy
import pickle

import pytest
import torch

from genzoo import gpt2
from genzoo.errors import CheckpointError, ConfigError

from .conftest import hub_state_dict, write_hub_checkpoint

VARIANTS = [  # (file format, "transformer." prefix, legacy attn.bias/masked_bias/lm_head tensors)
    ("safetensors", True, False),   # GPT2LMHeadModel.save_pretrained today
    ("safetensors", False, True),   # openai-community/gpt2 model.safetensors
    ("bin", False, True),           # openai-community/gpt2 pytorch_model.bin
    ("bin", True, False),
]


def _ids(batch=2, length=24, vocab=320, seed=1):
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("fmt,prefix,legacy", VARIANTS)
def test_logits_match_transformers(hf_model, tmp_path, fmt, prefix, legacy):
    write_hub_checkpoint(hf_model, tmp_path, fmt, prefix, legacy)
    model = gpt2.from_pretrained(tmp_path, device="cpu")
    x = _ids()
    with torch.no_grad():
        expected = hf_model(x).logits
    got = model(x)
    assert isinstance(got, torch.Tensor) and got.shape == (2, 24, 320)
    assert (got - expected).abs().max().item() <= 1e-4


def test_checkpoint_mixing_both_key_spellings_is_refused(hf_model, tmp_path):
    from safetensors.torch import save_file

    sd = hub_state_dict(hf_model, prefix=True, legacy_buffers=False)
    sd["wte.weight"] = sd["transformer.wte.weight"] + 1  # the same weight under both names: which one is meant?
    save_file(sd, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="wte.weight"):
        gpt2.from_pretrained(tmp_path / "model.safetensors", device="cpu")


def test_save_pretrained_output_and_single_file_path(hf_model, hf_dir):
    model = gpt2.from_pretrained(hf_dir / "model.safetensors", device="cpu")  # a file: its config.json is beside it
    assert model.config.n_head == 4 and model.config.n_layer == 2
    x = _ids(seed=3)
    with torch.no_grad():
        assert (model(x) - hf_model(x).logits).abs().max().item() <= 1e-4


def test_loss_matches_transformers(hf_model, genzoo_model):
    x = _ids(seed=2)
    with torch.no_grad():
        expected = hf_model(x, labels=x).loss  # transformers shifts inside; genzoo takes the shifted targets
    logits, loss = genzoo_model(x[:, :-1], targets=x[:, 1:])
    assert logits.shape == (2, 23, 320)
    assert abs(loss.item() - expected.item()) < 1e-4


def test_greedy_32_tokens_match_transformers_generate(hf_model, genzoo_model):
    prompt = _ids(batch=1, length=10, seed=4)
    expected = hf_model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=32, do_sample=False,
                                 pad_token_id=0)
    got = genzoo_model.generate(prompt, max_new_tokens=32, temperature=0)
    assert got.shape == (1, 42)
    assert torch.equal(got, expected)


def test_batched_generation_equals_one_by_one(hf_model, genzoo_model):
    prompts = [_ids(1, n, seed=10 + n)[0].tolist() for n in (3, 11, 7)]
    batched = genzoo_model.generate(prompts, max_new_tokens=20, temperature=0)
    for prompt, row in zip(prompts, batched):
        alone = genzoo_model.generate(prompt, max_new_tokens=20, temperature=0)
        assert row == alone
        reference = hf_model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                                      max_new_tokens=20, do_sample=False, pad_token_id=0)
        assert row == reference[0].tolist()


def test_left_padded_tensor_with_mask_matches_unpadded(genzoo_model):
    a, b = _ids(1, 5, seed=20)[0], _ids(1, 9, seed=21)[0]
    ids = torch.stack([torch.cat([torch.full((4,), -1), a]), b])  # whatever sits under the padding is ignored
    mask = torch.tensor([[0] * 4 + [1] * 5, [1] * 9])
    out = genzoo_model.generate(ids, attention_mask=mask, max_new_tokens=8, temperature=0)
    assert out.shape == (2, 17)
    assert torch.equal(out[0, 4:], genzoo_model.generate(a, max_new_tokens=8, temperature=0))
    assert torch.equal(out[1], genzoo_model.generate(b, max_new_tokens=8, temperature=0))


def test_kv_cache_decoding_equals_full_recompute(genzoo_model):
    x = _ids(2, 30, seed=5)
    full = genzoo_model(x)
    cache = genzoo_model.new_cache(2)
    steps = [genzoo_model(x[:, :12], cache=cache)]  # a prompt, then one token at a time
    steps += [genzoo_model(x[:, t:t + 1], cache=cache) for t in range(12, 30)]
    assert cache.length == 30
    assert (torch.cat(steps, dim=1) - full).abs().max().item() <= 1e-5


def test_decoding_with_the_head_copy_batched_left_padded(genzoo_model):
    """CPU fp32 decoding reads the output embedding from the cache's (n_embd, vocab) copy: its logits must be
    F.linear(hidden, wte)'s, row by row, with left padding (a full recompute without a cache is the reference)."""
    lengths, width, steps = (4, 9, 1), 9, 6
    ids = _ids(3, width + steps, seed=7)
    mask = torch.ones_like(ids)
    for row, n in enumerate(lengths):
        mask[row, :width - n] = 0
    cache = genzoo_model.new_cache(3)
    wte = genzoo_model.wte.weight
    assert cache.head.shape == (64, 320) and torch.equal(cache.head, wte.t())
    assert cache.head.is_contiguous() and cache.head.data_ptr() != wte.data_ptr()  # a copy, not a view
    got = [genzoo_model(ids[:, :width], attention_mask=mask[:, :width], cache=cache, last_only=True)]
    for t in range(width, width + steps):  # one token per row: the head copy's path
        got.append(genzoo_model(ids[:, t:t + 1], attention_mask=mask[:, :t + 1], cache=cache))
    for t, logits in zip(range(width, width + steps + 1), got):
        expected = genzoo_model(ids[:, :t], attention_mask=mask[:, :t])[:, -1:]
        assert (logits - expected).abs().max().item() <= 1e-5, t
    # no copy where it buys nothing (GPUs, or dtypes other than fp32)
    assert copy.deepcopy(genzoo_model).to(torch.bfloat16).new_cache(1).head is None


def test_sampling_matches_transformers_with_the_same_filters(genzoo_model):
    """top-k / top-p / temperature keep the same token sets as transformers' logits processors."""
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    logits = torch.randn(4, 320, generator=torch.Generator().manual_seed(0)) * 3
    ref = TopPLogitsWarper(0.7)(None, TopKLogitsWarper(40)(None, TemperatureLogitsWarper(0.9)(None, logits.clone())))
    allowed = torch.isfinite(ref)
    for seed in range(20):
        tokens = gpt2.sample_next(logits, 0.9, top_k=40, top_p=0.7, generator=torch.Generator().manual_seed(seed))
        assert allowed.gather(1, tokens[:, None]).all()
    assert torch.equal(gpt2.sample_next(logits, 1.0, top_k=1), logits.argmax(-1))


def _nanogpt_checkpoint(model, path, wrapper="_orig_mod.", with_mask_buffer=True):
    """A ckpt.pt as nanoGPT's train.py writes it (keys under transformer., lm_head tied, under `wrapper`:
    torch.compile's "_orig_mod.", DDP's "module.", both, or none)."""
    cfg = model.config
    sd = {"transformer." + k: v.clone() for k, v in model.state_dict().items()}
    sd["lm_head.weight"] = sd["transformer.wte.weight"]
    if with_mask_buffer:  # nanoGPT registers this buffer when flash attention is unavailable
        n = cfg.n_positions
        for i in range(cfg.n_layer):
            sd[f"transformer.h.{i}.attn.bias"] = torch.tril(torch.ones(n, n)).view(1, 1, n, n)
    sd = {wrapper + k: v for k, v in sd.items()}
    model_args = dict(n_layer=cfg.n_layer, n_head=cfg.n_head, n_embd=cfg.n_embd, block_size=cfg.n_positions,
                      bias=cfg.bias, vocab_size=cfg.vocab_size, dropout=0.0)
    opt = torch.optim.AdamW(model.parameters())
    torch.save({"model": sd, "optimizer": opt.state_dict(), "model_args": model_args, "iter_num": 100,
                "best_val_loss": torch.tensor(1.5), "config": {"dataset": "shakespeare_char", "bias": cfg.bias}}, path)


@pytest.mark.parametrize("bias,wrapper", [(True, "_orig_mod."), (False, ""), (False, "module._orig_mod.")])
def test_nanogpt_ckpt(tmp_path, bias, wrapper):
    torch.manual_seed(0)
    source = gpt2.GPT(gpt2.GPTConfig(vocab_size=65, n_positions=32, n_embd=48, n_layer=2, n_head=3, bias=bias,
                                     activation="gelu", tokenizer={"type": "char", "chars": "x"})).eval()
    _nanogpt_checkpoint(source, tmp_path / "ckpt.pt", wrapper, with_mask_buffer=bias)
    model = gpt2.from_pretrained(tmp_path, device="cpu")
    assert model.config.bias is bias and model.config.n_head == 3
    x = torch.randint(0, 65, (2, 32))
    with torch.no_grad():
        assert (model(x) - source(x)).abs().max().item() <= 1e-6
    # without meta.pkl the alphabet is unknown: ids work, text helpers explain what is missing
    assert len(model.generate([1, 2], max_new_tokens=3, temperature=0)) == 5
    with pytest.raises(ConfigError, match="tokenizer"):
        model.generate_text("x", max_new_tokens=2)


def test_nanogpt_char_alphabet_from_meta_pkl(tmp_path):
    chars = "\n !abc"
    source = gpt2.GPT(gpt2.GPTConfig(vocab_size=len(chars), n_positions=16, n_embd=16, n_layer=1, n_head=2))
    _nanogpt_checkpoint(source, tmp_path / "ckpt.pt")
    with open(tmp_path / "meta.pkl", "wb") as f:
        pickle.dump({"vocab_size": len(chars), "itos": dict(enumerate(chars)),
                     "stoi": {c: i for i, c in enumerate(chars)}}, f)
    model = gpt2.from_pretrained(tmp_path / "ckpt.pt", device="cpu")
    assert model.tokenizer.chars == chars
    text = model.generate_text("ab", max_new_tokens=5, seed=0)
    assert text.startswith("ab") and len(text) == 7 and set(text) <= set(chars)


def test_genzoo_round_trip(genzoo_model, tmp_path):
    genzoo_model.save_pretrained(tmp_path / "saved")
    reloaded = gpt2.from_pretrained(tmp_path / "saved", device="cpu")
    assert reloaded.config == genzoo_model.config
    original = genzoo_model.state_dict()
    assert set(reloaded.state_dict()) == set(original)
    for k, v in reloaded.state_dict().items():
        assert torch.equal(v, original[k]), k
    x = _ids(seed=6)
    assert torch.equal(reloaded(x), genzoo_model(x))
    assert gpt2.GPT.from_pretrained(tmp_path / "saved", device="cpu").config == genzoo_model.config


def test_dtype_and_device_arguments(hf_dir):
    model = gpt2.from_pretrained(hf_dir, device="cpu", dtype="bfloat16")
    assert model.dtype == torch.bfloat16 and model.device.type == "cpu"
    out = model.generate([1, 2, 3], max_new_tokens=4, temperature=0)
    assert len(out) == 7
    assert all(p.device.type != "meta" for p in model.parameters())
    # cast copies go straight to nn.Linear's contiguous layout; fp32 on the CPU keeps zero-copy views of the file
    assert all(p.is_contiguous() for p in model.parameters())
    assert not gpt2.from_pretrained(hf_dir, device="cpu").h[0].mlp.c_fc.weight.is_contiguous()


def test_fresh_model_has_four_gpt2_sizes():
    with torch.device("meta"):
        counts = {name: gpt2.GPT(gpt2.config_for(name)).num_parameters() for name in gpt2.SIZES}
    assert counts == {"gpt2": 124_439_808, "gpt2-medium": 354_823_168, "gpt2-large": 774_030_080,
                      "gpt2-xl": 1_557_611_200}
