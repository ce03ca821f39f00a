"""Logits processors and stopping criteria: the small pieces that shape each decoding step.

A logits processor is any callable `(input_ids, scores) -> scores`:
  input_ids (B, L) long: every row's ids so far (its prompt, then the new ids; generate() hands each row over
  without the left padding of a batch of prompts of different lengths, see WithoutPadding),
  scores (B, V) float32: the next-token scores of each row. It returns new scores (it may modify them in place).
A stopping criterion is any callable `(input_ids, scores) -> (B,) bool tensor` (or one bool for every row):
  True ends that row (input_ids are the whole batch here, left padding included). `scores` are the processed
  scores of the step that produced input_ids' last column.

    from genzoo.gpt2.processors import LogitsProcessorList, RepetitionPenalty, NoRepeatNGram
    model.generate(ids, temperature=0, logits_processor=[RepetitionPenalty(1.3), NoRepeatNGram(3)])

RepetitionPenalty and NoRepeatNGram follow the definitions in transformers' generation/logits_process.py (the
CTRL paper's penalty; the ban on repeating any n-gram of the sequence, prompt included), so the same weights give
the same tokens. Temperature, TopK and TopP are the sampling filters generate() has always applied.
"""
from __future__ import annotations

import math
import time

import torch

from ..errors import ConfigError


class LogitsProcessorList(list):
    """Processors applied in order: `scores = p(input_ids, scores)` for each p."""

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        for processor in self:
            scores = processor(input_ids, scores)
        return scores


class WithoutPadding:
    """Run `processors` on each row's ids without its left padding, so that a row of a padded batch is processed
    exactly as it would be alone (a repetition penalty must not count the padding as text).

    row_pads[i]: how many padding columns row i starts with; rows with the same padding are processed together.
    """

    def __init__(self, processors, row_pads):
        self.processors = processors
        self.row_pads = list(row_pads)

    def __call__(self, input_ids, scores):
        if not any(self.row_pads):
            return self.processors(input_ids, scores)
        out = scores.clone()
        for pad in sorted(set(self.row_pads)):
            rows = torch.tensor([i for i, p in enumerate(self.row_pads) if p == pad], device=scores.device)
            out[rows] = self.processors(input_ids[rows, pad:], scores[rows])
        return out


class StoppingCriteriaList(list):
    """A row stops when any criterion says so: (B,) bool, the OR of every criterion's answer."""

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        done = torch.zeros(input_ids.size(0), dtype=torch.bool, device=input_ids.device)
        for criterion in self:
            answer = criterion(input_ids, scores)
            if isinstance(answer, torch.Tensor) and answer.dim() > 0:
                done = done | answer.to(device=done.device, dtype=torch.bool).view(-1)
            elif bool(answer):
                done = done | True
        return done


def _positive_number(name, value, low_ok=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < 0 or (value == 0 and not low_ok):
        raise ConfigError(f"{name} must be a finite number > 0, not {value!r}")


def _count(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, not {value!r}")


# --- processors -------------------------------------------------------------------------------------------------

class RepetitionPenalty:
    """Make every token already in the sequence (prompt included) less likely (Keskar et al., 2019, CTRL).

    A seen token's score s becomes s / penalty if s > 0, s * penalty otherwise, once, however often it was seen.
    penalty > 1 discourages repeats, 1 changes nothing, < 1 encourages them.
    """

    def __init__(self, penalty: float):
        _positive_number("repetition_penalty", penalty)
        self.penalty = float(penalty)

    def __call__(self, input_ids, scores):
        seen = torch.gather(scores, 1, input_ids)
        penalized = torch.where(seen < 0, seen * self.penalty, seen / self.penalty)
        return scores.scatter(1, input_ids, penalized)


class NoRepeatNGram:
    """Forbid any n-gram that already occurs in the sequence: a token that would complete one gets -inf.

    The last n-1 ids are the prefix of the n-gram being built; every earlier position where the same n-1 ids
    occur bans the id that followed them there.
    """

    def __init__(self, ngram_size: int):
        _count("no_repeat_ngram_size", ngram_size, 1)
        self.n = ngram_size

    def __call__(self, input_ids, scores):
        length = input_ids.size(1)
        if length < self.n:
            return scores
        prefix = input_ids[:, length - (self.n - 1):]                     # (B, n-1)
        windows = input_ids.unfold(1, self.n, 1)                          # (B, L-n+1, n): every n-gram so far
        repeats = (windows[..., :-1] == prefix.unsqueeze(1)).all(dim=-1)  # (B, L-n+1): n-grams with this prefix
        banned = torch.zeros_like(scores, dtype=torch.bool)
        rows, starts = repeats.nonzero(as_tuple=True)
        banned[rows, windows[rows, starts, -1]] = True
        return scores.masked_fill(banned, float("-inf"))


class MinNewTokens:
    """The end-of-text token cannot be chosen before `min_new_tokens` new tokens exist."""

    def __init__(self, min_new_tokens: int, eos_token_id: int, prompt_length: int):
        _count("min_new_tokens", min_new_tokens, 0)
        self.min_new_tokens, self.eos_token_id, self.prompt_length = min_new_tokens, eos_token_id, prompt_length

    def __call__(self, input_ids, scores):
        if not 0 <= self.eos_token_id < scores.size(-1):
            raise ConfigError(f"min_new_tokens: the end-of-text id {self.eos_token_id} is outside this model's "
                              f"vocabulary (0..{scores.size(-1) - 1}); pass eos_token_id=")
        if input_ids.size(1) - self.prompt_length < self.min_new_tokens:
            scores = scores.clone()
            scores[:, self.eos_token_id] = float("-inf")
        return scores


class Temperature:
    """Divide the scores by the temperature: < 1 sharpens the distribution, > 1 flattens it."""

    def __init__(self, temperature: float):
        _positive_number("temperature", temperature)
        self.temperature = float(temperature)

    def __call__(self, input_ids, scores):
        # The largest score moved to 0 first (softmax is unchanged): a tiny temperature then gives -inf for every
        # other token, i.e. greedy, instead of inf - inf = NaN.
        return (scores - scores.max(dim=-1, keepdim=True).values) / self.temperature


class TopK:
    """Keep the k highest scores (ties with the k-th included); the rest get -inf."""

    def __init__(self, top_k: int):
        _count("top_k", top_k, 1)
        self.top_k = top_k

    def __call__(self, input_ids, scores):
        if self.top_k >= scores.size(-1):
            return scores
        kth = torch.topk(scores, self.top_k, dim=-1).values[:, -1:]
        return scores.masked_fill(scores < kth, float("-inf"))


class TopP:
    """Nucleus: keep the most likely tokens until their probabilities sum to top_p (the first always stays)."""

    def __init__(self, top_p: float):
        if isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], not {top_p!r}")
        self.top_p = float(top_p)

    def __call__(self, input_ids, scores):
        if self.top_p >= 1:
            return scores
        sorted_scores, order = torch.sort(scores, dim=-1, descending=True)
        probs = sorted_scores.softmax(dim=-1)
        drop = (probs.cumsum(dim=-1) - probs) >= self.top_p  # the tokens before it already reach top_p
        return scores.masked_fill(drop.scatter(-1, order, drop), float("-inf"))


# --- stopping criteria ------------------------------------------------------------------------------------------

class EosStop:
    """Stop a row when its last id is the end-of-text id."""

    def __init__(self, eos_token_id: int):
        self.eos_token_id = eos_token_id

    def __call__(self, input_ids, scores):
        return input_ids[:, -1] == self.eos_token_id


class StopStrings:
    """Stop a row once the text of its new tokens contains one of `stop`.

    Only the last few tokens are decoded each step (enough bytes to hold the longest stop string), so a check
    costs the same at token 10 and at token 1000. prompt_length: the column where new tokens start (0: anywhere).
    """

    def __init__(self, tokenizer, stop, prompt_length: int = 0):
        stop = [stop] if isinstance(stop, str) else list(stop)
        if not all(isinstance(s, str) for s in stop):
            raise ConfigError(f"stop must be a str or a list of str, not {stop!r}")
        self.stop = [s for s in stop if s]
        self.tokenizer = tokenizer
        self.prompt_length = prompt_length
        self.eot_id = getattr(tokenizer, "eot_id", None)
        # every token is at least one byte and a character at most four
        self.tail_tokens = 4 * max((len(s) for s in self.stop), default=0) + 1

    def __call__(self, input_ids, scores):
        start = max(self.prompt_length, input_ids.size(1) - self.tail_tokens)
        hits = []
        for row in input_ids[:, start:].tolist():
            text = self.tokenizer.decode([t for t in row if t != self.eot_id])
            hits.append(any(s in text for s in self.stop))
        return torch.tensor(hits, dtype=torch.bool, device=input_ids.device)


class MaxTime:
    """Stop every row once `seconds` have passed since the criterion was made (or since reset())."""

    def __init__(self, seconds: float):
        _positive_number("max_time", seconds)
        self.seconds = float(seconds)
        self.reset()

    def reset(self):
        self.start = time.monotonic()

    def __call__(self, input_ids, scores):
        return time.monotonic() - self.start > self.seconds


def as_list(items, list_type, name):
    """None, one callable or a list of callables -> list_type; anything else -> ConfigError naming the option."""
    if items is None:
        return list_type()
    if callable(items) and not isinstance(items, (list, tuple)):
        items = [items]
    items = list(items)
    for item in items:
        if not callable(item):
            raise ConfigError(f"{name} must hold callables (input_ids, scores) -> ..., not {item!r}")
    return list_type(items)
