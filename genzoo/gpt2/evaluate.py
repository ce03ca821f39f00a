"""How well a GPT predicts a text (perplexity, bits per character), and how a text is cut into tokens.

    from genzoo import gpt2
    model = gpt2.from_pretrained("shakespeare-char")
    gpt2.perplexity(model, "path/to/text.txt", stride=32)     # or the text itself
    gpt2.show_tokens("Hello world!")                           # [15496 'Hello'] [995 ' world'] [0 '!']

Perplexity is the sliding-window procedure of transformers' perplexity guide ("Perplexity of fixed-length
models"), and gives its number. Windows of max_length tokens start every `stride` tokens. A window's targets are
the tokens the previous window did not reach (its last end - previous end tokens; the rest of it is context, the
guide's -100 labels); the model predicts each target from the tokens before it in the window, so a window's first
token, which has nothing before it, is never scored. Then, with weighting="guide" (the default), as the guide's
loop does: perplexity = exp(sum over windows of (its mean loss) * (its number of targets - 1) / sum of those
counts). The "- 1" is exact for a window whose first token is a target (the first window, and every window when
stride == max_length); with overlapping windows (stride < max_length) each later window scores all its targets
but counts one fewer, so a window's loss weighs a little less than its tokens. weighting="token" counts every
scored token once instead: exp(summed negative log-likelihood / number of scored tokens), the plain definition.
The two agree when stride == max_length; with overlap they differ, more as the stride shrinks (on a random tiny
model: 0.14% at stride 24 of 64, 0.67% at 5 of 17; Tiny Shakespeare, shakespeare-char, 32 of 64: 0.014%). A window
with a single target weighs 0 and adds nothing (also when it has nothing to score, where the guide's loop gives
NaN), so with stride=1 the guide's number is the first window's alone (7% off the per-token one in that test).
With stride < max_length every token after the first is scored, with up to max_length - 1 tokens of context;
stride == max_length (the default) puts windows side by side: fastest, less context, each window's first token
unscored.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

from ..errors import ConfigError

WEIGHTINGS = ("guide", "token")


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
    """(begin, end, targets) for each window: tokens[begin:end] is read, its last `targets` tokens are the ones the
    previous window did not reach (the guide's trg_len)."""
    windows, prev_end = [], 0
    for begin in range(0, n_tokens, stride):
        end = min(begin + max_length, n_tokens)
        windows.append((begin, end, end - prev_end))
        prev_end = end
        if end == n_tokens:
            break
    return windows


def _scored(begin: int, end: int, targets: int) -> int:
    """How many of a window's targets are scored: all but its first token, which has no prediction in the window."""
    return min(targets, end - begin - 1)


def _check_windows(model, stride, max_length) -> tuple[int, int]:
    max_length = model.config.n_positions if max_length is None else max_length
    stride = max_length if stride is None else stride
    window = model.config.n_positions
    if isinstance(max_length, bool) or not isinstance(max_length, int) or not 2 <= max_length <= window:
        raise ConfigError(f"max_length must be an integer in 2..{model.config.n_positions} (the context window), "
                          f"not {max_length!r}")
    if isinstance(stride, bool) or not isinstance(stride, int) or not 1 <= stride <= max_length:
        raise ConfigError(f"stride must be an integer in 1..max_length ({max_length}), not {stride!r}")
    return stride, max_length


@torch.inference_mode()
def window_nll(model, ids, stride: int | None = None, max_length: int | None = None, batch_size: int = 8,
               progress: bool | None = None) -> list[tuple[float, int, int]]:
    """For each window (see the module docstring): (summed negative log-likelihood of its scored targets in nats,
    how many it scored, its number of targets)."""
    ids = torch.as_tensor(ids, dtype=torch.long).flatten()
    stride, max_length = _check_windows(model, stride, max_length)
    if ids.numel() < 2:
        raise ConfigError(f"perplexity needs at least 2 tokens, the text has {ids.numel()}")
    if int(ids.min()) < 0 or int(ids.max()) >= model.config.vocab_size:
        raise ConfigError(f"token ids must be in 0..{model.config.vocab_size - 1} (the model's vocabulary); these "
                          f"reach {int(ids.min())}..{int(ids.max())}: use the model's own tokenizer")
    from tqdm.auto import tqdm

    ids = ids.to(model.device)
    windows = _windows(ids.numel(), max_length, stride)
    nll = [0.0] * len(windows)
    # windows of the same length go through the model together
    batches = []
    for length in sorted({end - begin for begin, end, _ in windows}, reverse=True):
        same = [i for i, (begin, end, _) in enumerate(windows) if end - begin == length]
        batches += [same[i:i + batch_size] for i in range(0, len(same), batch_size)]
    bar = tqdm(batches, desc="perplexity", unit="batch", leave=False,
               disable=None if progress is None else not progress)
    for chunk in bar:
        batch = torch.stack([ids[windows[i][0]:windows[i][1]] for i in chunk])
        log_probs = model(batch).float().log_softmax(dim=-1)[:, :-1]
        target_lp = log_probs.gather(-1, batch[:, 1:].unsqueeze(-1)).squeeze(-1)   # (n, length - 1)
        for row, i in zip(target_lp, chunk):
            scored = _scored(*windows[i])
            nll[i] = -row[row.numel() - scored:].double().sum().item()
    return [(nll[i], _scored(*w), w[2]) for i, w in enumerate(windows)]


def token_nll(model, ids, stride: int | None = None, max_length: int | None = None, batch_size: int = 8,
              progress: bool | None = None, weighting: str = "guide") -> tuple[float, int]:
    """(negative log-likelihood in nats, token count): their ratio is the mean loss, exp of it the perplexity.

    weighting="guide": each window's mean loss times its targets - 1, and the sum of those counts, as the guide's
    loop adds them up. weighting="token": the summed loss of the scored tokens and how many they are (each once).
    """
    if weighting not in WEIGHTINGS:
        raise ConfigError(f"weighting must be one of {WEIGHTINGS}, not {weighting!r}")
    windows = window_nll(model, ids, stride, max_length, batch_size, progress)
    if weighting == "token":
        return sum(nll for nll, _, _ in windows), sum(scored for _, scored, _ in windows)
    total = sum(nll / scored * (targets - 1) for nll, scored, targets in windows if targets > 1)
    return total, sum(targets - 1 for _, _, targets in windows)


def perplexity(model, text_or_path, stride: int | None = None, max_length: int | None = None, tokenizer=None,
               batch_size: int = 8, weighting: str = "guide") -> float:
    """exp(mean negative log-likelihood per token) of a text (or a text file) under the model; see the module doc.

    max_length: tokens per window (default: the model's context window). stride: tokens between window starts
    (default: max_length). tokenizer: default the model's. weighting: "guide" (transformers' perplexity guide, its
    number) or "token" (every scored token counts once).
    """
    return evaluate_text(model, text_or_path, stride, max_length, tokenizer, batch_size, weighting)["perplexity"]


def evaluate_text(model, text_or_path, stride=None, max_length=None, tokenizer=None, batch_size: int = 8,
                  weighting: str = "guide") -> dict:
    """Perplexity, mean loss (nats per token) and bits per character of a text, with the counts behind them.

    loss: the mean negative log-likelihood per token as `weighting` adds it up (see the module docstring);
    perplexity = exp(loss). tokens: how many tokens were scored (each once); chars: their characters.
    bits_per_char = loss / ln 2 * tokens / chars: the bits per token spread over the characters of the scored
    tokens (for a character-level model, loss / ln 2).
    """
    text = read_text(text_or_path)
    tokenizer = tokenizer or model.tokenizer
    ids = tokenizer.encode(text)
    nll, count = token_nll(model, ids, stride, max_length, batch_size, weighting=weighting)
    stride, max_length = _check_windows(model, stride, max_length)
    scored_runs = [ids[end - _scored(begin, end, targets):end]
                   for begin, end, targets in _windows(len(ids), max_length, stride)]
    tokens = sum(len(run) for run in scored_runs)
    chars = sum(len(tokenizer.decode(run)) for run in scored_runs)
    loss = nll / count
    return {"perplexity": math.exp(loss), "loss": loss, "bits_per_char": loss / math.log(2) * tokens / max(chars, 1),
            "tokens": tokens, "chars": chars, "weighting": weighting}


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
