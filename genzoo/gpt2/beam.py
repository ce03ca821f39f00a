"""Beam search, batched over prompts: each prompt keeps `num_beams` running sequences and `num_beams` finished ones.

One step, for each prompt (transformers' algorithm, so the same weights give the same beams and scores):
  1. every running beam scores every next token: its summed log-probability so far + log_softmax of the model's
     scores (then the logits processors, which see log-probabilities here);
  2. the best 2 * num_beams (beam, token) pairs are the candidates (two per beam, so that num_beams remain even
     if half of them end);
  3. a candidate among the best num_beams that ends (end-of-text, a stopping criterion, or the last allowed
     token) is a finished hypothesis scored  sum of log-probs / new_length ** length_penalty; it replaces the
     worst finished one if it is better;
  4. the best num_beams candidates that did not end are the next running beams: the sequences and the KV cache
     rows are reordered in place to follow their parents.
The search ends when no running beam can still beat the worst finished hypothesis (early_stopping=False: judged
at the current length; "never": at the longest allowed length when length_penalty > 0), when every prompt has
num_beams finished hypotheses and early_stopping=True, or after max_new_tokens.
"""
from __future__ import annotations

import math

import torch

from ..errors import ConfigError

NEG = -1.0e9  # "impossible", kept finite so that sums and comparisons stay well defined


def check_beam_options(length_penalty, early_stopping) -> None:
    number = isinstance(length_penalty, (int, float)) and not isinstance(length_penalty, bool)
    if not number or not math.isfinite(length_penalty):
        raise ConfigError(f"length_penalty must be a finite number (1.0: average log-prob, 0: sum), "
                          f"not {length_penalty!r}")
    if early_stopping not in (True, False, "never"):
        raise ConfigError(f"early_stopping must be True, False or 'never', not {early_stopping!r}")


@torch.inference_mode()
def beam_search(model, ids, mask, max_new_tokens, num_beams, processors, criteria, length_penalty=1.0,
                early_stopping=False, num_return_sequences=1, pad_id=0, keep_logits=False):
    """ids (B, T), mask (B, T) or None -> (sequences (B*n, T+L), token scores (B*n, L), end column per row,
    sequence scores (B*n,), per-step processed log-probs) for the best n = num_return_sequences beams of each
    prompt, best first; L is the longest returned beam's new length; rows are padded with pad_id after their end."""
    check_beam_options(length_penalty, early_stopping)
    early_stopping = early_stopping if early_stopping == "never" else bool(early_stopping)  # 1 -> True
    B, T = ids.shape
    K, total = num_beams, T + max_new_tokens
    if total > model.config.n_positions:
        raise ConfigError(f"beam search needs the prompt ({T} tokens) + max_new_tokens ({max_new_tokens}) to fit "
                          f"the context window ({model.config.n_positions} positions)")
    device = ids.device
    if max_new_tokens == 0:
        n = num_return_sequences
        return (ids.repeat_interleave(n, dim=0), torch.zeros(B * n, 0, device=device), [T] * (B * n),
                torch.zeros(B * n, device=device), [])
    rows = torch.arange(B, device=device).view(B, 1)
    history = torch.full((B * K, total), pad_id, dtype=torch.long, device=device)
    history[:, :T] = ids.repeat_interleave(K, dim=0)
    history_mask = None
    if mask is not None and not bool(mask.all()):
        history_mask = torch.ones(B * K, total, dtype=torch.long, device=device)
        history_mask[:, :T] = mask.repeat_interleave(K, dim=0)
    cache = model.new_cache(B * K, max_len=total)

    running = torch.zeros(B, K, device=device)
    running[:, 1:] = NEG                   # all beams start equal: only the first one may spread
    running_token_scores = torch.zeros(B * K, max_new_tokens, device=device)
    done_seqs = history.view(B, K, total).clone()
    done_scores = torch.full((B, K), NEG, device=device)
    done_token_scores = torch.zeros(B, K, max_new_tokens, device=device)
    done_lengths = torch.full((B, K), T, dtype=torch.long, device=device)
    is_done = torch.zeros(B, K, dtype=torch.bool, device=device)
    improvable = torch.ones(B, dtype=torch.bool, device=device)
    all_logits = []
    length = T

    for step in range(max_new_tokens):
        window_mask = None if history_mask is None else history_mask[:, :length]
        logits = model(history[:, cache.length:length], attention_mask=window_mask, cache=cache, last_only=True)
        log_probs = logits[:, -1].float().log_softmax(dim=-1)
        if processors:
            log_probs = processors(history[:, :length], log_probs)
        if keep_logits:
            all_logits.append(log_probs)
        V = log_probs.size(-1)

        # 2. the 2K best (beam, token) continuations of each prompt
        totals = (log_probs.view(B, K, V) + running.unsqueeze(-1)).view(B, K * V)
        cand_scores, cand_index = totals.topk(2 * K, dim=1)
        parent = rows * K + cand_index // V                        # (B, 2K) row of history each one extends
        token = cand_index % V
        cand_seqs = torch.cat([history[parent.flatten(), :length], token.view(-1, 1)], dim=1)
        ends = criteria(cand_seqs, log_probs[parent.flatten()]).view(B, 2 * K) if criteria else \
            torch.zeros(B, 2 * K, dtype=torch.bool, device=device)
        if step == max_new_tokens - 1:
            ends = torch.ones_like(ends)                           # the last allowed token ends every candidate
        cand_token_scores = running_token_scores[parent.flatten()].view(B, 2 * K, -1).clone()
        cand_token_scores[:, :, step] = log_probs[parent.flatten(), token.flatten()].view(B, 2 * K)

        # 3. finished hypotheses: keep the best K of the old ones and the new ones
        new_len = step + 1
        final = cand_scores / (new_len ** length_penalty)
        just_done = ends & (torch.arange(2 * K, device=device) < K)
        if early_stopping is True:
            final = final + NEG * is_done.all(dim=1, keepdim=True)
        final = final + NEG * (~improvable).unsqueeze(1) + NEG * (~just_done)
        cand_full = history[parent.flatten()].view(B, 2 * K, total).clone()
        cand_full[:, :, length] = token
        merged = torch.cat([done_scores, final], dim=1)
        keep = merged.topk(K, dim=1).indices
        done_scores = merged.gather(1, keep)
        done_seqs = _pick(torch.cat([done_seqs, cand_full], dim=1), keep)
        done_token_scores = _pick(torch.cat([done_token_scores, cand_token_scores], dim=1), keep)
        done_lengths = torch.cat([done_lengths, torch.full_like(token, length + 1)], dim=1).gather(1, keep)
        is_done = torch.cat([is_done, just_done], dim=1).gather(1, keep)

        # 4. the next running beams: the best K candidates that did not end
        open_scores = cand_scores + NEG * ends
        best = open_scores.topk(K, dim=1).indices
        running = open_scores.gather(1, best)
        beam_idx = parent.gather(1, best).flatten()
        history.copy_(history.index_select(0, beam_idx))
        history[:, length] = token.gather(1, best).flatten()
        running_token_scores = cand_token_scores.view(B * 2 * K, -1)[(rows * 2 * K + best).flatten()]
        cache.reorder(beam_idx)
        length += 1

        improvable = improvable & _can_improve(running, done_scores, is_done, new_len, max_new_tokens,
                                               length_penalty, early_stopping)
        all_full = bool(is_done.all()) and early_stopping is True
        if not bool(improvable.any()) or all_full or bool(ends.all()):
            break

    n = num_return_sequences
    lengths = done_lengths[:, :n].flatten()
    width = int(lengths.max())
    sequences = done_seqs[:, :n].reshape(B * n, total)[:, :width]
    token_scores = done_token_scores[:, :n].reshape(B * n, -1)[:, :width - T]
    new_cols = torch.arange(width - T, device=device).view(1, -1)
    token_scores = token_scores.masked_fill(new_cols >= (lengths - T).view(-1, 1), 0.0)
    sequence_scores = done_scores[:, :n].flatten()
    return sequences, token_scores, lengths.tolist(), sequence_scores, all_logits


def _pick(t: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """t (B, M, ...) -> t[b, index[b, j], ...] for index (B, K)."""
    return t[torch.arange(t.size(0), device=t.device).view(-1, 1), index]


def _can_improve(running, done_scores, is_done, new_len, max_new_tokens, length_penalty, early_stopping):
    """(B,) bool: can the best running beam still beat the worst finished hypothesis?"""
    best_len = max_new_tokens if early_stopping == "never" and length_penalty > 0 else new_len
    best_possible = running[:, :1] / (best_len ** length_penalty)
    worst_done = torch.where(is_done, done_scores.min(dim=1, keepdim=True).values, torch.full_like(done_scores, NEG))
    return (best_possible > worst_done).any(dim=1)
