"""Sliding-window perplexity against transformers on the same weights, and the tokenization helper."""
import io
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from genzoo import gpt2
from genzoo.errors import ConfigError
from genzoo.gpt2.evaluate import _windows, token_nll


def _text_ids(n=300, seed=1):
    return torch.randint(0, 320, (n,), generator=torch.Generator().manual_seed(seed))


def _guide_loop(hf_model, ids, max_length, stride):
    """transformers' perplexity guide, as written there (labels -100 on the context part of each window)."""
    ids = ids.unsqueeze(0)
    seq_len = ids.size(1)
    nll_sum, n_tokens, prev_end_loc = 0.0, 0, 0
    exact_sum, exact_tokens = 0.0, 0
    for begin_loc in range(0, seq_len, stride):
        end_loc = min(begin_loc + max_length, seq_len)
        trg_len = end_loc - prev_end_loc
        input_ids = ids[:, begin_loc:end_loc]
        target_ids = input_ids.clone()
        target_ids[:, :-trg_len] = -100
        with torch.no_grad():
            outputs = hf_model(input_ids, labels=target_ids)
        num_loss_tokens = (target_ids != -100).sum().item() - 1  # the guide's count
        nll_sum += outputs.loss.item() * num_loss_tokens
        n_tokens += num_loss_tokens
        # the same window, each scored target's log-prob summed exactly
        labels = target_ids[:, 1:]
        scored = labels != -100
        log_probs = outputs.logits[:, :-1].float().log_softmax(-1).gather(-1, labels.clamp(min=0).unsqueeze(-1))
        exact_sum -= log_probs.squeeze(-1)[scored].double().sum().item()
        exact_tokens += int(scored.sum())
        prev_end_loc = end_loc
        if end_loc == seq_len:
            break
    return math.exp(nll_sum / n_tokens), math.exp(exact_sum / exact_tokens), exact_tokens


@pytest.mark.parametrize("max_length,stride", [(64, 24), (40, 40), (64, 1), (17, 5)])
def test_perplexity_matches_transformers(hf_model, genzoo_model, max_length, stride):
    ids = _text_ids()
    guide, exact, count = _guide_loop(hf_model, ids, max_length, stride)
    nll, scored = token_nll(genzoo_model, ids, stride=stride, max_length=max_length)
    assert scored == count
    if stride < max_length:  # overlapping windows score every token after the first
        assert scored == len(ids) - 1
    assert math.exp(nll / scored) == pytest.approx(exact, rel=1e-4)
    if stride == max_length:  # without overlap the guide's token count is exact too
        assert math.exp(nll / scored) == pytest.approx(guide, rel=1e-4)


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
    assert result["tokens"] == result["chars"] == len(text) - 1
    side_by_side = gpt2.evaluate_text(model, text)  # 7 windows of 32: each one's first token is not scored
    assert side_by_side["tokens"] == side_by_side["chars"] == len(text) - 7
    assert result["bits_per_char"] == pytest.approx(result["loss"] / math.log(2))  # characters are tokens
    assert result["perplexity"] == pytest.approx(math.exp(result["loss"]))
    # more context can only be given by overlapping windows: same tokens scored, a different number
    assert gpt2.perplexity(model, text, stride=32) != direct


@given(n=st.integers(2, 200), max_length=st.integers(2, 40), data=st.data())
def test_windows_score_every_token_once(n, max_length, data):
    stride = data.draw(st.integers(1, max_length))
    windows = _windows(n, max_length, stride)
    scored = [t for begin, end, k in windows for t in range(end - k, end)]
    assert scored == sorted(set(scored)) and set(scored) <= set(range(1, n))  # each token at most once, in order
    if stride < max_length:
        assert scored == list(range(1, n))
    else:  # windows side by side: a window's first token has no context in it, as in transformers' guide
        assert len(scored) == n - len(windows)
    assert all(end - begin <= max_length for begin, end, _ in windows)


@pytest.mark.parametrize("kwargs,match", [
    (dict(stride=0), "stride"), (dict(stride=65, max_length=64), "stride"), (dict(max_length=65), "max_length"),
    (dict(max_length=1), "max_length"),
])
def test_bad_windows(genzoo_model, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        token_nll(genzoo_model, _text_ids(), **kwargs)


def test_bad_texts(genzoo_model, tmp_path):
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
