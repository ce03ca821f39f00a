"""Text generation: greedy, sampling, beam search; logits processors and stopping criteria; streaming; scores.

Conventions
  * `generate` returns the prompt followed by the new ids, in the form it was given: a tensor (B, T) -> a tensor
    (B, T + n), a list of ids -> a list, a list of lists -> a list of lists (each row unpadded).
    With num_return_sequences=n > 1 each prompt gives n rows, next to each other (prompt 0's n rows first);
    one prompt (a list of ids, or a 1-D tensor) then gives a list of lists (or a 2-D tensor).
  * Each step: the model's next-token scores (fp32) go through the logits processors, in this order:
    repetition_penalty, no_repeat_ngram_size, the caller's `logits_processor`s, min_new_tokens, then (when
    sampling) temperature, top-k, top-p (see processors.py). temperature=0 is greedy decoding (argmax of
    the processed scores); otherwise the next token is drawn from their softmax.
  * num_beams > 1 is beam search (beam.py): deterministic, transformers' algorithm and scores.
  * Same seed (or the same torch.Generator state), same output. seed=None uses torch's global RNG.
  * A row finishes at the end-of-text token (config.eos_token_id, <|endoftext|> for GPT-2; the token is kept),
    when its new text contains one of the `stop` strings, after max_time seconds, or when one of the caller's
    `stopping_criteria` says so; its later positions in a tensor are padded with the end-of-text id.
    Generation ends when every row has finished or after max_new_tokens.
  * return_scores=True returns a GenerateOutput: the sequences, and for each new token the log-probability the
    decoding gave it: log_softmax of the processed scores at the chosen id (what transformers'
    compute_transition_scores(..., normalize_logits=True) gives; for beams, the beam's processed log-probs, as
    compute_transition_scores(..., beam_indices) gives). Padding after a finished row scores 0.
  * An empty prompt starts from config.bos_token_id (<|endoftext|> for GPT-2, the newline for the embedded
    Shakespeare model), which is then part of the returned ids.
  * Prompts of different lengths are left-padded and masked, so each row generates what it would alone
    (logits processors see each row without its padding; stopping criteria see the padded batch).
  * Context overflow (prompt + new tokens longer than config.n_positions): with overflow="slide" (default) the
    window slides: the model re-reads the most recent 3/4 of its window and continues, forgetting older tokens
    (a prompt longer than the window is read from its last 3/4 window); the returned ids still hold the whole
    prompt. overflow="error" raises ConfigError instead (beam search always does).
"""
from __future__ import annotations

import difflib
import inspect
import math
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from ..runtime import NonFiniteWatch, check_logits, make_generator, multinomial
from .processors import (EosStop, LogitsProcessorList, MaxTime, MinNewTokens, NoRepeatNGram, RepetitionPenalty,
                         StoppingCriteriaList, StopStrings, Temperature, TopK, TopP, WithoutPadding, as_list)
_DEFAULT = object()


@dataclass
class GenerateOutput:
    """What generate(..., return_scores=True) returns.

    sequences: prompt + new ids, in the form generate() returns them.
    scores: log-probability of each new token, the same form as the new ids (a (rows, new) tensor, or lists).
    sequences_scores: beam search only, each returned beam's score: sum of its scores / length ** length_penalty.
    logits: with return_logits=True, the processed scores of every step, a tuple of (rows, vocab) tensors.
    """
    sequences: object
    scores: object = None
    sequences_scores: object = None
    logits: tuple | None = None


MAX_NEW_TOKENS = 1_000_000


# transformers' generate() options that genzoo spells differently: a clear error instead of a TypeError
TRANSFORMERS_OPTIONS = {
    "do_sample": "genzoo samples when temperature > 0 and decodes greedily with temperature=0",
    "max_length": "use max_new_tokens (new tokens, the prompt not counted)",
    "pad_token_id": "finished rows are padded with eos_token_id",
    "output_scores": "use return_scores=True (return_logits=True for the processed logits)",
    "return_dict_in_generate": "use return_scores=True or return_logits=True to get a GenerateOutput",
    "stop_strings": "use stop=[...]",
    "streamer": "use model.stream_text(prompt, ...)",
}


def check_options(function, options: dict) -> None:
    """Refuse an option `function` (generate, generate_text or stream_text) does not take, naming the option and
    what to use instead."""
    names = set(inspect.signature(function).parameters) - {"model", "kwargs"}
    if any(p.kind is p.VAR_KEYWORD for p in inspect.signature(function).parameters.values()):
        names |= set(inspect.signature(generate).parameters) - {"model"}  # it passes the rest on to generate()
    for name in options:
        if name in names:
            continue
        close = difflib.get_close_matches(name, sorted(names), n=1)
        hint = TRANSFORMERS_OPTIONS.get(name) or (f"did you mean {close[0]!r}?" if close else
                                                  f"its options: {', '.join(sorted(names))}")
        raise ConfigError(f"{function.__name__}() has no option {name!r}: {hint}")


def check_sampling(max_new_tokens, temperature, top_k, top_p) -> None:
    if not isinstance(max_new_tokens, int) or isinstance(max_new_tokens, bool) or max_new_tokens < 0:
        raise ConfigError(f"max_new_tokens must be an integer >= 0, not {max_new_tokens!r}")
    if max_new_tokens > MAX_NEW_TOKENS:   # days of decoding: a typo, not a request
        raise ConfigError(f"max_new_tokens must be <= {MAX_NEW_TOKENS:,}, not {max_new_tokens:,}")
    if not isinstance(temperature, (int, float)) or math.isnan(temperature) or temperature < 0:
        raise ConfigError(f"temperature must be a number >= 0 (0 means greedy), not {temperature!r}")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
        raise ConfigError(f"top_k must be an integer >= 1 (or None to keep every token), not {top_k!r}")
    if top_p is not None and (not isinstance(top_p, (int, float)) or not 0 < top_p <= 1):
        raise ConfigError(f"top_p must be in (0, 1] (or None), not {top_p!r}")


def sampling_filters(temperature, top_k=None, top_p=None) -> LogitsProcessorList:
    """Temperature, top-k, top-p as processors (none for greedy decoding: they never change the argmax)."""
    if temperature == 0:
        return LogitsProcessorList()
    filters = LogitsProcessorList()
    if temperature != 1:
        filters.append(Temperature(temperature))
    if top_k is not None:
        filters.append(TopK(top_k))
    if top_p is not None and top_p < 1:
        filters.append(TopP(top_p))
    return filters


def choose_next(scores: torch.Tensor, greedy: bool, generator: torch.Generator | None = None,
                watch: NonFiniteWatch | None = None) -> torch.Tensor:
    """(B, V) processed scores -> (B,) ids: the argmax, or a draw from their softmax. NaN/inf scores raise
    NumericalError (never a token chosen from garbage): now, or, with a `watch`, when the loop calls watch.check()."""
    if watch is None:
        check_logits(scores)
    else:
        scores = watch.record(scores)
    if greedy:
        return scores.argmax(dim=-1)
    return multinomial(scores.softmax(dim=-1), generator)  # drawn where the generator lives (runtime's one rule)


def sample_next(logits: torch.Tensor, temperature: float, top_k: int | None = None, top_p: float | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, V) float logits -> (B,) token ids."""
    scores = sampling_filters(temperature, top_k, top_p)(None, logits)
    return choose_next(scores, temperature == 0, generator)


def build_processors(temperature=1.0, top_k=None, top_p=None, repetition_penalty=None, no_repeat_ngram_size=None,
                     min_new_tokens=None, eos_token_id=None, prompt_length=0, logits_processor=None, row_pads=None):
    """The processors of one generate() call, in the order the module docstring gives.

    row_pads: the left padding of each row; the processors that read the text then see each row without it.
    """
    processors = LogitsProcessorList()
    if repetition_penalty is not None and repetition_penalty != 1:
        processors.append(RepetitionPenalty(repetition_penalty))
    if no_repeat_ngram_size:  # 0 or None: off
        processors.append(NoRepeatNGram(no_repeat_ngram_size))
    elif no_repeat_ngram_size is not None and (not isinstance(no_repeat_ngram_size, int) or no_repeat_ngram_size < 0):
        raise ConfigError(f"no_repeat_ngram_size must be an integer >= 0 (0: off), not {no_repeat_ngram_size!r}")
    processors.extend(as_list(logits_processor, LogitsProcessorList, "logits_processor"))
    if row_pads is not None and any(row_pads) and processors:
        processors = LogitsProcessorList([WithoutPadding(processors, row_pads)])
    # min_new_tokens counts columns after the (padded) prompt, so it runs on the padded batch
    if min_new_tokens is not None and (isinstance(min_new_tokens, bool) or not isinstance(min_new_tokens, int)
                                       or min_new_tokens < 0):
        raise ConfigError(f"min_new_tokens must be an integer >= 0, not {min_new_tokens!r}")
    if min_new_tokens:
        if eos_token_id is None:
            raise ConfigError("min_new_tokens needs an end-of-text id (eos_token_id) to hold back")
        processors.append(MinNewTokens(min_new_tokens, eos_token_id, prompt_length))
    processors.extend(sampling_filters(temperature, top_k, top_p))  # these never read the ids
    return processors


def build_criteria(eos_token_id=None, stop=None, tokenizer=None, prompt_length=0, max_time=None,
                   stopping_criteria=None) -> StoppingCriteriaList:
    criteria = StoppingCriteriaList()
    if eos_token_id is not None:
        criteria.append(EosStop(eos_token_id))
    if stop:
        criteria.append(StopStrings(tokenizer, stop, prompt_length))
    if max_time is not None:
        criteria.append(MaxTime(max_time))
    criteria.extend(as_list(stopping_criteria, StoppingCriteriaList, "stopping_criteria"))
    return criteria


def _prepare(model, input_ids, attention_mask):
    """Any accepted prompt form -> (ids (B, T) long, mask (B, T) long or None, form, left padding per row)."""
    config, device = model.config, model.device
    eos = config.eos_token_id
    pad_id = eos if eos is not None and 0 <= eos < config.vocab_size else 0  # masked out: any valid id does
    if isinstance(input_ids, torch.Tensor):
        form = "tensor1d" if input_ids.dim() == 1 else "tensor"
        ids = input_ids.unsqueeze(0) if input_ids.dim() == 1 else input_ids
        if ids.dim() != 2:
            raise ConfigError(f"input_ids must be shaped (T,) or (B, T), not {tuple(input_ids.shape)}")
        if ids.is_floating_point() or ids.dtype == torch.bool:
            raise ConfigError(f"input_ids must hold integer token ids, not {ids.dtype}")
        ids = ids.to(device=device, dtype=torch.long)
        mask = None
        if attention_mask is not None:
            mask = torch.as_tensor(attention_mask, device=device).long().view(ids.shape)
            if bool((mask[:, 1:] < mask[:, :-1]).any()):
                raise ConfigError("attention_mask must be left padding (0s, then 1s): pad prompts on the left")
        if ids.size(1) == 0:
            ids = torch.full((ids.size(0), 1), config.bos_token_id, device=device, dtype=torch.long)
            mask = None
        elif mask is not None and bool((mask.sum(1) == 0).any()):
            raise ConfigError("a row of attention_mask is all padding: give every prompt at least one token")
        pads = [0] * ids.size(0) if mask is None else (mask == 0).sum(1).tolist()
    else:
        rows = list(input_ids)
        form = "list"
        if rows and all(isinstance(r, (list, tuple)) for r in rows):
            form = "lists"
        elif any(isinstance(r, (list, tuple)) for r in rows):
            raise ConfigError("input_ids must be a list of ids or a list of lists of ids, not a mix")
        else:
            rows = [rows]
        if not rows:
            raise ConfigError("input_ids is an empty batch (an empty prompt is [], not a batch of none)")
        rows = [[int(i) for i in r] or [config.bos_token_id] for r in rows]
        width = max(len(r) for r in rows)
        pads = [width - len(r) for r in rows]
        ids = torch.tensor([[pad_id] * p + r for p, r in zip(pads, rows)], dtype=torch.long, device=device)
        mask = None
        if any(pads):
            mask = torch.tensor([[0] * p + [1] * len(r) for p, r in zip(pads, rows)], dtype=torch.long, device=device)
    if mask is not None:  # whatever the caller put under the padding, feed a valid id there
        ids = ids.masked_fill(mask == 0, pad_id)
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= config.vocab_size:
        raise ConfigError(f"token ids must be in 0..{config.vocab_size - 1} for this model, found {low if low < 0 else high}")
    return ids, mask, form, pads


@torch.inference_mode()
def iter_tokens(model, ids, mask=None, max_new_tokens=100, processors=None, greedy=False, generator=None,
                criteria=None, pad_id=0, overflow="slide", check_each_step=False):
    """The decoding loop. Yields (new ids (B,), finished (B,) bool, processed scores (B, V)) once per step.

    ids (B, T), mask (B, T) left-padding mask or None. processors: a LogitsProcessorList (None: raw scores);
    criteria: a StoppingCriteriaList. Rows that have finished get pad_id as their further "new" ids.
    Non-finite logits raise NumericalError at their step when the loop reads the device every step anyway
    (stopping criteria, or check_each_step for a caller that reads each token); otherwise once, after the last
    step, so that a GPU is never made to wait per token. Either way no result built from them is returned.
    """
    if overflow not in ("slide", "error"):
        raise ConfigError(f"overflow must be 'slide' or 'error', not {overflow!r}")
    B, T = ids.shape
    window = model.config.n_positions
    total = T + max_new_tokens
    if total > window and overflow == "error":
        raise ConfigError(f"prompt ({T} tokens) + max_new_tokens ({max_new_tokens}) exceeds the context window "
                          f"of {window} positions (use overflow='slide', or a shorter prompt)")
    keep = max(1, window - window // 4)
    history = torch.empty(B, total, dtype=torch.long, device=ids.device)
    history[:, :T] = ids
    history_mask = None
    if mask is not None and not bool(mask.all()):
        history_mask = torch.ones(B, total, dtype=torch.long, device=ids.device)
        history_mask[:, :T] = mask
    cache = model.new_cache(B, max_len=min(window, total))
    finished = torch.zeros(B, dtype=torch.bool, device=ids.device)
    length, window_start, read_up_to = T, 0, 0  # history[:, read_up_to:length] is not in the cache yet
    watch = None if criteria or check_each_step else NonFiniteWatch(ids.device)

    for _ in range(max_new_tokens):
        if cache.length + (length - read_up_to) > cache.max_len:  # the window is full: slide it
            cache.reset()
            window_start = read_up_to = length - keep
        window_mask = None if history_mask is None else history_mask[:, window_start:length]
        logits = model(history[:, read_up_to:length], attention_mask=window_mask, cache=cache, last_only=True)
        read_up_to = length
        scores = logits[:, -1].float()
        if processors:
            scores = processors(history[:, :length], scores)
        new = choose_next(scores, greedy, generator, watch).masked_fill(finished, pad_id)
        history[:, length] = new
        length += 1
        if criteria:
            finished = finished | criteria(history[:, :length], scores)
        yield new, finished, scores
        if criteria and bool(finished.all()):
            return
    if watch is not None:
        watch.check()


def _resolve_eos(model, eos_token_id):
    return model.config.eos_token_id if eos_token_id is _DEFAULT else eos_token_id


def _pad_id(model, eos):
    """What finished rows are padded with: the end-of-text id, or 0 when there is none in the vocabulary."""
    return eos if eos is not None and 0 <= eos < model.config.vocab_size else 0


def _check_count(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, not {value!r}")


def generate(model, input_ids, max_new_tokens: int = 100, temperature: float = 1.0, top_k: int | None = None,
             top_p: float | None = None, seed: int | None = None, generator: torch.Generator | None = None,
             attention_mask=None, eos_token_id=_DEFAULT, stop=None, tokenizer=None, overflow: str = "slide",
             progress: bool | None = None, *, repetition_penalty: float | None = None,
             no_repeat_ngram_size: int | None = None, min_new_tokens: int | None = None, logits_processor=None,
             stopping_criteria=None, max_time: float | None = None, num_return_sequences: int = 1,
             num_beams: int = 1, length_penalty: float = 1.0, early_stopping=False, return_scores: bool = False,
             return_logits: bool = False):
    """Prompt ids + up to `max_new_tokens` new ids (see the module docstring for the conventions).

    input_ids: a tensor (T,) or (B, T) (with an optional left-padding attention_mask), a list of ids, or a list of
      lists of ids (of any lengths). eos_token_id: defaults to the model's; None never stops early.
    stop: strings that end a row once its new text contains one (needs the model's tokenizer, or `tokenizer=`).
    repetition_penalty (> 0, 1 = off), no_repeat_ngram_size (0 = off), min_new_tokens: see processors.py.
    logits_processor / stopping_criteria: one callable or a list of them (see processors.py for the protocol).
    max_time: seconds after which every row stops. num_return_sequences: rows per prompt (samples, or best beams).
    num_beams > 1: beam search (temperature must stay 0 or 1, no top_k/top_p), with length_penalty (the score is
      the summed log-probability / new length ** length_penalty) and early_stopping (True, False or "never",
      as in transformers).
    return_scores / return_logits: return a GenerateOutput (see its docstring) instead of the ids alone.
    progress: a tqdm bar over the steps (None: only on a terminal).
    """
    check_sampling(max_new_tokens, temperature, top_k, top_p)
    _check_count("num_return_sequences", num_return_sequences)
    _check_count("num_beams", num_beams)
    if num_beams > 1 and (temperature not in (0, 1) or top_k is not None or top_p is not None):
        raise ConfigError("beam search (num_beams > 1) does not sample: leave temperature at 0 or 1 and top_k, "
                          "top_p unset, or use num_beams=1 to sample")
    if num_beams > 1 and num_return_sequences > num_beams:
        raise ConfigError(f"num_return_sequences ({num_return_sequences}) cannot exceed num_beams ({num_beams})")
    if num_beams == 1 and temperature == 0 and num_return_sequences > 1:
        raise ConfigError("num_return_sequences > 1 with greedy decoding (temperature=0) gives identical copies: "
                          "sample (temperature > 0) or use num_beams")
    ids, mask, form, pads = _prepare(model, input_ids, attention_mask)
    eos = _resolve_eos(model, eos_token_id)
    pad_id = _pad_id(model, eos)
    B, T = ids.shape
    greedy = temperature == 0 or num_beams > 1
    copies = num_beams if num_beams > 1 else num_return_sequences  # rows per prompt in the decoding batch
    row_pads = [p for p in pads for _ in range(copies)]
    processors = build_processors(0 if greedy else temperature, top_k, top_p, repetition_penalty,
                                  no_repeat_ngram_size, min_new_tokens, eos, T, logits_processor, row_pads)
    stop = [stop] if isinstance(stop, str) else list(stop or [])
    criteria = build_criteria(eos, stop, tokenizer or (model.tokenizer if stop else None), T, max_time,
                              stopping_criteria)
    generator = make_generator(seed, generator, model.device)

    if num_beams > 1:
        from .beam import beam_search

        result = beam_search(model, ids, mask, max_new_tokens, num_beams, processors, criteria, length_penalty,
                             early_stopping, num_return_sequences, pad_id, keep_logits=return_logits)
        out, new_scores, ends, sequences_scores, all_logits = result
        pads = [p for p in pads for _ in range(num_return_sequences)]
    else:
        if num_return_sequences > 1:  # n copies of each prompt, sampled independently in one batch
            ids = ids.repeat_interleave(num_return_sequences, dim=0)
            mask = None if mask is None else mask.repeat_interleave(num_return_sequences, dim=0)
            pads = [p for p in pads for _ in range(num_return_sequences)]
        out, new_scores, ends, all_logits = _decode(model, ids, mask, max_new_tokens, processors, greedy, generator,
                                                    criteria, pad_id, overflow, progress, return_scores,
                                                    return_logits)
        sequences_scores = None
    rows_form = form if num_return_sequences == 1 else {"tensor1d": "tensor", "list": "lists"}.get(form, form)
    sequences = _in_form(out, rows_form, pads, ends)
    if not (return_scores or return_logits):
        return sequences
    scores = None
    if return_scores:
        scores = _in_form(new_scores, rows_form, [0] * len(pads), [None if e is None else e - T for e in ends])
    if sequences_scores is not None and rows_form not in ("tensor", "tensor1d"):
        sequences_scores = sequences_scores.tolist()
    return GenerateOutput(sequences, scores, sequences_scores, tuple(all_logits) if return_logits else None)


def _decode(model, ids, mask, max_new_tokens, processors, greedy, generator, criteria, pad_id, overflow, progress,
            keep_scores, keep_logits):
    """Run iter_tokens -> (ids + new ids (B, T + n), new-token log-probs (B, n), end column per row, logits)."""
    from tqdm.auto import tqdm

    B, T = ids.shape
    steps = iter_tokens(model, ids, mask, max_new_tokens, processors, greedy, generator, criteria, pad_id, overflow)
    new_ids, new_scores, all_logits, ends = [], [], [], [None] * B
    done = torch.zeros(B, dtype=torch.bool, device=ids.device)
    for new, finished, scores in tqdm(steps, total=max_new_tokens, desc="generating", unit="tok", leave=False,
                                      disable=None if progress is None else not progress):
        if keep_scores:
            chosen = scores.log_softmax(dim=-1).gather(1, new.unsqueeze(1)).squeeze(1)
            new_scores.append(chosen.masked_fill(done, 0.0))  # rows finished before this step only pad
        new_ids.append(new)
        if keep_logits:
            all_logits.append(scores)
        if not criteria:
            continue  # nothing can finish a row: no read-back to the host per token (GPU decoding)
        for i in (finished.nonzero().flatten().tolist() if finished.any() else []):
            if ends[i] is None:
                ends[i] = T + len(new_ids)
        done = finished
    out = torch.cat([ids] + [n.unsqueeze(1) for n in new_ids], dim=1) if new_ids else ids
    scores = torch.stack(new_scores, dim=1) if new_scores else torch.zeros(B, 0, device=ids.device)
    return out, scores, ends, all_logits


def _in_form(rows: torch.Tensor, form, starts, ends):
    """(B, W) tensor -> the caller's form: the tensor, its one row, or lists cut to [start:end] per row."""
    if form == "tensor":
        return rows
    if form == "tensor1d":
        return rows[0]
    lists = [rows[i, starts[i]:ends[i]].tolist() for i in range(rows.size(0))]
    return lists if form == "lists" else lists[0]


def _cut_at_stop(text: str, stop) -> str:
    cuts = [text.find(s) for s in stop if s and s in text]
    return text[:min(cuts)] if cuts else text


def generate_text(model, prompt, max_new_tokens: int = 100, tokenizer=None, stop=None, **kwargs):
    """Text in, text out: prompt + completion for one prompt (str), or a list of them for a list of prompts.

    The completion ends before the first stop string (which is not included) or the end-of-text token.
    With num_return_sequences=n > 1 each prompt gives a list of n texts.
    kwargs: everything generate() takes (temperature, top_k, top_p, seed, repetition_penalty, num_beams, ...).
    """
    tokenizer = tokenizer or model.tokenizer
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    if not all(isinstance(p, str) for p in prompts):
        raise ConfigError("prompt must be a str or a list of str")
    if kwargs.get("return_scores") or kwargs.get("return_logits"):
        raise ConfigError("generate_text returns text only: call generate(..., return_scores=True) for scores")
    n = kwargs.get("num_return_sequences", 1)
    encoded = [tokenizer.encode(p) for p in prompts]
    rows = generate(model, encoded, max_new_tokens=max_new_tokens, stop=stop, tokenizer=tokenizer, **kwargs)
    stop = [stop] if isinstance(stop, str) else list(stop or [])
    texts = []
    for i, row in enumerate(rows):
        p, enc = prompts[i // n], encoded[i // n]
        start = len(enc) if enc else 1  # an empty prompt was started from bos_token_id
        if enc and hasattr(tokenizer, "continuation"):   # words: separated from the prompt as within a text
            completion = tokenizer.continuation(row[start:], enc)
        else:
            completion = tokenizer.decode(row[start:], skip_special=True)
        texts.append(p + _cut_at_stop(completion, stop))
    if n > 1:
        texts = [texts[i:i + n] for i in range(0, len(texts), n)]
    return texts[0] if isinstance(prompt, str) else texts


def stream_text(model, prompt: str, max_new_tokens: int = 100, tokenizer=None, stop=None, temperature: float = 1.0,
                top_k=None, top_p=None, seed=None, generator=None, eos_token_id=_DEFAULT, overflow="slide", *,
                repetition_penalty=None, no_repeat_ngram_size=None, min_new_tokens=None, logits_processor=None,
                stopping_criteria=None, max_time=None):
    """Yield the completion of one prompt in pieces of text as tokens are generated (the prompt is not repeated).

    Bytes of a character split across tokens are held back until it is complete; text that could be the start
    of a stop string is held back until it is known not to be; the stop string itself is never yielded.
    The processor and criteria options are generate()'s (beam search and several sequences do not stream).
    """
    check_sampling(max_new_tokens, temperature, top_k, top_p)
    if not isinstance(prompt, str):
        raise ConfigError("stream_text takes one prompt (a str); use generate_text for a batch")
    tokenizer = tokenizer or model.tokenizer
    ids, mask, _, _ = _prepare(model, [tokenizer.encode(prompt)], None)
    eos = _resolve_eos(model, eos_token_id)
    stop = [stop] if isinstance(stop, str) else [s for s in (stop or []) if s]
    processors = build_processors(temperature, top_k, top_p, repetition_penalty, no_repeat_ngram_size,
                                  min_new_tokens, eos, ids.size(1), logits_processor)
    criteria = build_criteria(eos, None, None, ids.size(1), max_time, stopping_criteria)
    generator = make_generator(seed, generator, model.device)
    decoder = tokenizer.stream_decoder()
    pending = ""  # decoded text not yet yielded
    steps = iter_tokens(model, ids, mask, max_new_tokens, processors, temperature == 0, generator, criteria,
                        _pad_id(model, eos), overflow, check_each_step=True)
    for new, finished, _ in steps:
        token = int(new[0])
        if eos is not None and token == eos:
            break
        pending += decoder.add(token)
        cut = _cut_at_stop(pending, stop)
        if cut != pending:  # a stop string is complete
            if cut:
                yield cut
            return
        safe = len(pending) - _partial_stop_suffix(pending, stop)
        if safe > 0:
            yield pending[:safe]
            pending = pending[safe:]
        if bool(finished[0]):
            break
    pending += decoder.flush()
    if pending:
        yield _cut_at_stop(pending, stop)


def _partial_stop_suffix(text: str, stop) -> int:
    """Length of the longest end of `text` that is the beginning of a stop string."""
    best = 0
    for s in stop:
        for n in range(min(len(s) - 1, len(text)), best, -1):
            if text.endswith(s[:n]):
                best = n
                break
    return best
