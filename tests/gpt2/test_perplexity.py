"""Sliding-window perplexity against transformers on the same weights, and the tokenization helper."""
import io
import math
import operator

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from genzoo import gpt2
from genzoo.errors import ConfigError
from genzoo.gpt2.evaluate import _scored, _windows, token_nll


def _text_ids(n=300, seed=1):
    return torch.randint(0, 320, (n,), generator=torch.Generator().manual_seed(seed))


def _guide_loop(hf_model, ids, max_length, stride):
    """transformers' perplexity guide, step for step: labels -100 on the context part of each window, each
    window's loss weighted by its valid labels minus one. Returns its perplexity."""
    input_all = ids.unsqueeze(0)
    seq_len = input_all.size(1)
    nll_sum, n_tokens, prev_end_loc = 0.0, 0, 0
    for begin_loc in range(0, seq_len, stride):
        end_loc = min(begin_loc + max_length, seq_len)
        trg_len = end_loc - prev_end_loc
        input_ids = input_all[:, begin_loc:end_loc]
        target_ids = input_ids.clone()
        target_ids[:, :-trg_len] = -100
        with torch.no_grad():
            outputs = hf_model(input_ids, labels=target_ids)
        num_loss_tokens = (target_ids != -100).sum().item() - target_ids.size(0)
        nll_sum += outputs.loss * num_loss_tokens
        n_tokens += num_loss_tokens
        prev_end_loc = end_loc
        if end_loc == seq_len:
            break
    return torch.exp(nll_sum / n_tokens).item()


def _once_per_token(hf_model, ids, max_length, stride):
    """The same windows with every scored target counted once: (perplexity, how many were scored)."""
    total, count, prev_end = 0.0, 0, 0
    for begin in range(0, len(ids), stride):
        end = min(begin + max_length, len(ids))
        window = ids[begin:end].unsqueeze(0)
        with torch.no_grad():
            log_probs = hf_model(window).logits[0, :-1].double().log_softmax(-1)
        target_lp = log_probs.gather(-1, window[0, 1:, None]).squeeze(-1)
        scored = min(end - prev_end, end - begin - 1)
        total -= target_lp[len(target_lp) - scored:].sum().item()
        count += scored
        prev_end = end
        if end == len(ids):
            break
    return math.exp(total / count), count


# (text length, max_length, stride): windows side by side, overlapping windows, a text shorter than one window
WINDOWS = [(300, 40, 40), (300, 64, 64), (300, 64, 24), (300, 64, 1), (300, 17, 5), (50, 64, 64), (50, 64, 16),
           (64, 64, 32)]


@pytest.mark.parametrize("n,max_length,stride", WINDOWS)
def test_perplexity_is_the_guides_number(hf_model, hf_dir, n, max_length, stride):
    """The guide's loop run with transformers' GPT2LMHeadModel, and gpt2.perplexity on the same weights (the
    folder GPT2LMHeadModel.save_pretrained wrote, loaded by genzoo)."""
    ids = _text_ids(n)
    genzoo_model = gpt2.from_pretrained(hf_dir, device="cpu")
    nll, count = token_nll(genzoo_model, ids, stride=stride, max_length=max_length)
    assert math.exp(nll / count) == pytest.approx(_guide_loop(hf_model, ids, max_length, stride), rel=1e-4)


@pytest.mark.parametrize("n,max_length,stride", WINDOWS)
def test_perplexity_counting_each_token_once(hf_model, genzoo_model, n, max_length, stride):
    ids = _text_ids(n)
    reference, count = _once_per_token(hf_model, ids, max_length, stride)
    nll, scored = token_nll(genzoo_model, ids, stride=stride, max_length=max_length, weighting="token")
    assert scored == count
    if stride < max_length or n <= max_length:  # overlapping windows (or one window) score every token but the first
        assert scored == n - 1
    assert math.exp(nll / scored) == pytest.approx(reference, rel=1e-4)
    guide = math.exp(operator.truediv(*token_nll(genzoo_model, ids, stride=stride, max_length=max_length)))
    if stride == max_length or n <= max_length:  # no overlap: the two countings are the same
        assert guide == pytest.approx(math.exp(nll / scored), rel=1e-12)
    else:  # with overlap the guide weighs each later window one token short: a different number
        assert abs(guide / math.exp(nll / scored) - 1) > 1e-6


def test_perplexity_with_a_one_token_last_window(hf_model, genzoo_model):
    """130 tokens in windows of 64: the last window is one token, with nothing to predict. The guide's loop gives
    NaN there (the mean of no losses, times 0); genzoo leaves that window out, which is the guide's number for
    the other windows."""
    ids = _text_ids(129)
    assert math.isnan(_guide_loop(hf_model, ids, 64, 64))
    nll, count = token_nll(genzoo_model, ids, stride=64, max_length=64)
    assert count == 126 and math.exp(nll / count) == pytest.approx(_guide_loop(hf_model, ids[:128], 64, 64), rel=1e-4)


def test_perplexity_of_a_text_and_of_its_file(tmp_path):
    torch.manual_seed(0)
    chars = "\n abcdefghijklmnopqrstuvwxyz.,"
    model = gpt2.GPT(gpt2.GPTConfig(vocab_size=len(chars), n_positions=32, n_embd=16, n_layer=1, n_head=2,
                                    tokenizer={"type": "char", "chars": chars})).eval()
    text = "to be, or not to be.\nthat is the question.\n" * 5
    path = tmp_path / "t.txt"
    path.write_text(text, encoding="utf-8")
    direct = gpt2.perplexity(model, text, stride=16)
    assert gpt2.perplexity(model, path, stride=16) == direct == gpt2.perplexity(model, str(path), stride=16)
    result = gpt2.evaluate_text(model, text, stride=16)
    assert result["tokens"] == result["chars"] == len(text) - 1 and result["weighting"] == "guide"
    side_by_side = gpt2.evaluate_text(model, text)  # 7 windows of 32: each one's first token is not scored
    assert side_by_side["tokens"] == side_by_side["chars"] == len(text) - 7
    for weighting in ("guide", "token"):
        result = gpt2.evaluate_text(model, text, stride=16, weighting=weighting)
        assert result["bits_per_char"] == pytest.approx(result["loss"] / math.log(2))  # characters are tokens
        assert result["perplexity"] == pytest.approx(math.exp(result["loss"]))
    once = gpt2.evaluate_text(model, text, stride=16, weighting="token")
    assert once["perplexity"] != direct and once["perplexity"] == pytest.approx(direct, rel=0.01)
    # more context can only be given by overlapping windows: same tokens scored, a different number
    assert gpt2.perplexity(model, text, stride=32) != direct
    with pytest.raises(ConfigError, match="weighting"):
        gpt2.perplexity(model, text, weighting="mean")


def test_bits_per_char_with_bpe():
    """A BPE token covers several characters: bits per char = bits per token * tokens / characters."""
    from genzoo.gpt2 import Tokenizer

    torch.manual_seed(0)
    model = gpt2.GPT(gpt2.GPTConfig(vocab_size=50257, n_positions=32, n_embd=16, n_layer=1, n_head=2)).eval()
    text = "The quick brown fox jumps over the lazy dog. " * 4
    result = gpt2.evaluate_text(model, text, max_length=16, stride=8)
    ids = Tokenizer().encode(text)
    assert result["tokens"] == len(ids) - 1
    assert result["chars"] == len(text) - len(Tokenizer().decode(ids[:1]))
    assert result["bits_per_char"] == pytest.approx(result["loss"] / math.log(2) * result["tokens"] / result["chars"])


@given(n=st.integers(2, 200), max_length=st.integers(2, 40), data=st.data())
def test_windows_score_every_token_once(n, max_length, data):
    stride = data.draw(st.integers(1, max_length))
    windows = _windows(n, max_length, stride)
    scored = [t for begin, end, targets in windows for t in range(end - _scored(begin, end, targets), end)]
    assert scored == sorted(set(scored)) and set(scored) <= set(range(1, n))  # each token at most once, in order
    if stride < max_length:
        assert scored == list(range(1, n))
    else:  # windows side by side: a window's first token has no context in it, as in transformers' guide
        assert len(scored) == n - len(windows)
    assert all(end - begin <= max_length for begin, end, _ in windows)
    assert sum(targets for _, _, targets in windows) == n  # the targets cover the text once


@pytest.mark.parametrize("kwargs,match", [
    (dict(stride=0), "stride"), (dict(stride=65, max_length=64), "stride"), (dict(max_length=65), "max_length"),
    (dict(max_length=1), "max_length"),
])
def test_bad_windows(genzoo_model, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        token_nll(genzoo_model, _text_ids(), **kwargs)


def test_bad_texts(genzoo_model, tmp_path):
    with pytest.raises(ConfigError, match="vocabulary"):  # GPT-2's BPE ids on a model with 320 tokens
        gpt2.perplexity(genzoo_model, "Hello world", tokenizer=gpt2.Tokenizer())
    with pytest.raises(ConfigError, match="at least 2 tokens"):
        token_nll(genzoo_model, [5])
    with pytest.raises(ConfigError, match="no text file"):
        gpt2.perplexity(genzoo_model, tmp_path / "missing.txt")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00abc")
    with pytest.raises(ConfigError, match="not UTF-8"):
        gpt2.perplexity(genzoo_model, tmp_path / "bin.txt")


def test_show_tokens():
    out = io.StringIO()
    pieces = gpt2.show_tokens("Hello world!", file=out)
    assert pieces == [(15496, "Hello"), (995, " world"), (0, "!")]
    assert out.getvalue().splitlines() == ["[15496 'Hello'] [995 ' world'] [0 '!']", "3 tokens, 12 characters"]
    split = gpt2.token_pieces("日本語")  # characters split across tokens show their bytes
    assert any(piece.startswith("b'") for _, piece in split)
    assert gpt2.Tokenizer().decode([t for t, _ in split]) == "日本語"
    chars = gpt2.CharTokenizer("ab c")
    assert gpt2.token_pieces("ab c", chars) == [(0, "a"), (1, "b"), (2, " "), (3, "c")]
    with pytest.raises(ConfigError):
        gpt2.token_pieces(b"bytes")
