"""How well a GPT predicts a text (perplexity, bits per character), and how a text is cut into tokens.

    from genzoo import gpt2
    model = gpt2.from_pretrained("shakespeare-char")
    gpt2.perplexity(model, "path/to/text.txt", stride=32)     # or the text itself
    gpt2.show_tokens("Hello world!")                           # [15496 'Hello'] [995 ' world'] [0 '!']

Perplexity follows the sliding-window procedure of transformers' perplexity guide: windows of max_length tokens
start every `stride` tokens; each window scores only the targets the previous window did not (the others are
context, the guide's -100 labels), so each token is scored at most once, with up to max_length - 1 tokens of
context. perplexity = exp(summed negative log-likelihood / number of scored tokens). With stride < max_length
every token after the first is scored. A stride equal to max_length (the default) gives windows side by side:
fastest, but each window's first token has no context in its window and is not scored, as in the guide.
(The guide's loop also weights each overlapping window's mean loss by one token fewer than it scored; here each
token counts once, so with overlap the two numbers differ slightly; tests/gpt2/test_perplexity.py shows both.)
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

from ..errors import ConfigError


def read_text(text_or_path) -> str:
    """A Path, or a str naming an existing file (one line, no newline), is read as UTF-8; any other str is the text."""
    if isinstance(text_or_path, Path) or (isinstance(text_or_path, str) and "\n" not in text_or_path
                                          and len(text_or_path) < 4096 and Path(text_or_path).is_file()):
        path = Path(text_or_path)
        if not path.is_file():
            raise ConfigError(f"no text file at {path}")
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise ConfigError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    if not isinstance(text_or_path, str):
        raise ConfigError(f"expected a text or the path of a text file, not {type(text_or_path).__name__}")
    return text_or_path


def _windows(n_tokens: int, max_length: int, stride: int):
    """(begin, end, scored) for each window: tokens[begin:end] is read, its last `scored` targets are scored."""
    windows, prev_end = [], 0
    for begin in range(0, n_tokens, stride):
        end = min(begin + max_length, n_tokens)
        window_len = end - begin
        scored = min(end - prev_end, window_len - 1)  # the window's first token has no prediction in the window
        windows.append((begin, end, scored))
        prev_end = end
        if end == n_tokens:
            break
    return windows


@torch.inference_mode()
def token_nll(model, ids, stride: int | None = None, max_length: int | None = None, batch_size: int = 8,
              progress: bool | None = None):
    """Summed negative log-likelihood (nats, float64) of the scored tokens given what precedes them in their window,
    and how many were scored (see the module docstring)."""
    ids = torch.as_tensor(ids, dtype=torch.long).flatten()
    max_length = model.config.n_positions if max_length is None else max_length
    stride = max_length if stride is None else stride
    window = model.config.n_positions
    if isinstance(max_length, bool) or not isinstance(max_length, int) or not 2 <= max_length <= window:
        raise ConfigError(f"max_length must be an integer in 2..{model.config.n_positions} (the context window), "
                          f"not {max_length!r}")
    if isinstance(stride, bool) or not isinstance(stride, int) or not 1 <= stride <= max_length:
        raise ConfigError(f"stride must be an integer in 1..max_length ({max_length}), not {stride!r}")
    if ids.numel() < 2:
        raise ConfigError(f"perplexity needs at least 2 tokens, the text has {ids.numel()}")
    from tqdm.auto import tqdm

    ids = ids.to(model.device)
    total, count = torch.zeros((), dtype=torch.float64), 0
    windows = _windows(ids.numel(), max_length, stride)
    # windows of the same length go through the model together
    batches = []
    for length in sorted({end - begin for begin, end, _ in windows}, reverse=True):
        same = [w for w in windows if w[1] - w[0] == length]
        batches += [same[i:i + batch_size] for i in range(0, len(same), batch_size)]
    bar = tqdm(batches, desc="perplexity", unit="batch", leave=False,
               disable=None if progress is None else not progress)
    for chunk in bar:
        batch = torch.stack([ids[begin:end] for begin, end, _ in chunk])
        log_probs = model(batch).float().log_softmax(dim=-1)[:, :-1]
        target_lp = log_probs.gather(-1, batch[:, 1:].unsqueeze(-1)).squeeze(-1)   # (n, length - 1)
        for row, (_, _, scored) in zip(target_lp, chunk):
            total -= row[row.numel() - scored:].double().sum().cpu()
            count += scored
    return total.item(), count


def perplexity(model, text_or_path, stride: int | None = None, max_length: int | None = None, tokenizer=None,
               batch_size: int = 8) -> float:
    """exp(mean negative log-likelihood per token) of a text (or a text file) under the model; see the module doc.

    max_length: tokens per window (default: the model's context window). stride: tokens between window starts
    (default: max_length). tokenizer: default the model's.
    """
    return evaluate_text(model, text_or_path, stride, max_length, tokenizer, batch_size)["perplexity"]


def evaluate_text(model, text_or_path, stride=None, max_length=None, tokenizer=None, batch_size: int = 8) -> dict:
    """Perplexity, mean loss (nats per token) and bits per character of a text, with the counts behind them.

    bits_per_char = summed negative log-likelihood / ln 2 / the number of characters of the scored tokens (for a
    character-level model that is loss / ln 2).
    """
    text = read_text(text_or_path)
    tokenizer = tokenizer or model.tokenizer
    ids = tokenizer.encode(text)
    nll, count = token_nll(model, ids, stride, max_length, batch_size)
    max_length = max_length or model.config.n_positions
    scored_runs = [ids[end - scored:end] for _, end, scored in _windows(len(ids), max_length, stride or max_length)]
    chars = sum(len(tokenizer.decode(run)) for run in scored_runs)
    return {"perplexity": math.exp(nll / count), "loss": nll / count,
            "bits_per_char": nll / math.log(2) / max(chars, 1),
            "tokens": count, "chars": chars}


def token_pieces(text: str, tokenizer=None) -> list[tuple[int, str]]:
    """(id, text piece) for each token of `text`. A piece that is only part of a UTF-8 character shows its bytes."""
    tokenizer = _as_tokenizer(tokenizer)
    if not isinstance(text, str):
        raise ConfigError(f"show_tokens takes a str, not {type(text).__name__}")
    pieces = []
    for token in tokenizer.encode(text):
        raw = tokenizer.decode_bytes([token])
        try:
            piece = raw.decode("utf-8")
        except UnicodeDecodeError:
            piece = str(raw)  # b'\xe2\x80': a character split across tokens
        pieces.append((token, piece))
    return pieces


def show_tokens(text: str, tokenizer=None, file=None) -> list[tuple[int, str]]:
    """Print how `text` is tokenized, one [id 'piece'] per token, and return the (id, piece) pairs.

    tokenizer: a Tokenizer/CharTokenizer or a model (its tokenizer); default GPT-2's BPE.
    """
    pieces = token_pieces(text, tokenizer)
    out = file or sys.stdout
    print(" ".join(f"[{token} {piece!r}]" for token, piece in pieces), file=out)
    print(f"{len(pieces)} tokens, {len(text)} characters", file=out)
    return pieces


def _as_tokenizer(tokenizer):
    if tokenizer is None:
        from .tokenizer import Tokenizer

        return Tokenizer()
    if hasattr(tokenizer, "encode") and hasattr(tokenizer, "decode_bytes"):
        return tokenizer
    if hasattr(tokenizer, "tokenizer"):  # a model
        return tokenizer.tokenizer
    raise ConfigError(f"tokenizer must be a genzoo Tokenizer, CharTokenizer or GPT model, "
                      f"not {type(tokenizer).__name__}")
