"""Text generation: greedy, temperature, top-k, top-p; batches of prompts; streaming; stop tokens and strings.

Conventions
  * `generate` returns the prompt followed by the new ids, in the form it was given: a tensor (B, T) -> a tensor
    (B, T + n), a list of ids -> a list, a list of lists -> a list of lists (each row unpadded).
  * temperature=0 is greedy decoding (argmax); otherwise logits / temperature, then top-k, then top-p (nucleus).
  * Same seed (or the same torch.Generator state), same output. seed=None uses torch's global RNG.
  * A row finishes at the end-of-text token (config.eos_token_id, <|endoftext|> for GPT-2; the token is kept)
    or when its new text contains one of the `stop` strings; its later positions in a tensor are padded with
    the end-of-text id. Generation ends when every row has finished or after max_new_tokens.
  * An empty prompt starts from config.bos_token_id (<|endoftext|> for GPT-2, the newline for the embedded
    Shakespeare model), which is then part of the returned ids.
  * Prompts of different lengths are left-padded and masked, so each row generates what it would alone.
  * Context overflow (prompt + new tokens longer than config.n_positions): with overflow="slide" (default) the
    window slides: the model re-reads the most recent 3/4 of its window and continues, forgetting older tokens
    (a prompt longer than the window is read from its last 3/4 window); the returned ids still hold the whole
    prompt. overflow="error" raises ConfigError instead.
"""
from __future__ import annotations

import math

import torch

from ..errors import ConfigError
from ..runtime import make_generator

_DEFAULT = object()


def check_sampling(max_new_tokens, temperature, top_k, top_p) -> None:
    if not isinstance(max_new_tokens, int) or isinstance(max_new_tokens, bool) or max_new_tokens < 0:
        raise ConfigError(f"max_new_tokens must be an integer >= 0, not {max_new_tokens!r}")
    if not isinstance(temperature, (int, float)) or math.isnan(temperature) or temperature < 0:
        raise ConfigError(f"temperature must be a number >= 0 (0 means greedy), not {temperature!r}")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
        raise ConfigError(f"top_k must be an integer >= 1 (or None to keep every token), not {top_k!r}")
    if top_p is not None and (not isinstance(top_p, (int, float)) or not 0 < top_p <= 1):
        raise ConfigError(f"top_p must be in (0, 1] (or None), not {top_p!r}")


def sample_next(logits: torch.Tensor, temperature: float, top_k: int | None = None, top_p: float | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, V) float logits -> (B,) token ids."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        # drop a token when the tokens before it already reach top_p (the most likely token always stays)
        drop = (probs.cumsum(dim=-1) - probs) >= top_p
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


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
def iter_tokens(model, ids, mask=None, max_new_tokens=100, temperature=1.0, top_k=None, top_p=None,
                generator=None, eos_token_id=None, should_stop=None, overflow="slide"):
    """The decoding loop. Yields (new ids (B,), finished (B,) bool) once per step.

    ids (B, T), mask (B, T) left-padding mask or None. Rows that have finished get eos_token_id (or 0) as
    their further "new" ids. `should_stop(new_ids) -> (B,) bool` adds stop conditions (e.g. stop strings).
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
    pad_id = eos_token_id if eos_token_id is not None else 0
    finished = torch.zeros(B, dtype=torch.bool, device=ids.device)
    length, window_start, read_up_to = T, 0, 0  # history[:, read_up_to:length] is not in the cache yet

    for _ in range(max_new_tokens):
        if cache.length + (length - read_up_to) > cache.max_len:  # the window is full: slide it
            cache.reset()
            window_start = read_up_to = length - keep
        window_mask = None if history_mask is None else history_mask[:, window_start:length]
        logits = model(history[:, read_up_to:length], attention_mask=window_mask, cache=cache, last_only=True)
        read_up_to = length
        new = sample_next(logits[:, -1].float(), temperature, top_k, top_p, generator)
        new = new.masked_fill(finished, pad_id)
        history[:, length] = new
        length += 1
        if eos_token_id is not None:
            finished = finished | (new == eos_token_id)
        if should_stop is not None:
            finished = finished | should_stop(new)
        yield new, finished
        if (eos_token_id is not None or should_stop is not None) and bool(finished.all()):
            return


class _StopStrings:
    """Per-row text of the new tokens, checked for stop strings as tokens arrive."""

    def __init__(self, tokenizer, stop, batch_size):
        self.stop = [s for s in stop if s]
        self.decoders = [tokenizer.stream_decoder() for _ in range(batch_size)]
        self.texts = [""] * batch_size
        self.eot_id = getattr(tokenizer, "eot_id", None)
        self.longest = max((len(s) for s in self.stop), default=0)

    def __call__(self, new: torch.Tensor) -> torch.Tensor:
        hits = []
        for i, token in enumerate(new.tolist()):
            piece = "" if token == self.eot_id else self.decoders[i].add(token)
            self.texts[i] += piece
            tail = self.texts[i][-(len(piece) + self.longest):] if piece else ""
            hits.append(any(s in tail for s in self.stop))
        return torch.tensor(hits, dtype=torch.bool, device=new.device)


def _resolve_eos(model, eos_token_id):
    return model.config.eos_token_id if eos_token_id is _DEFAULT else eos_token_id


def generate(model, input_ids, max_new_tokens: int = 100, temperature: float = 1.0, top_k: int | None = None,
             top_p: float | None = None, seed: int | None = None, generator: torch.Generator | None = None,
             attention_mask=None, eos_token_id=_DEFAULT, stop=None, tokenizer=None, overflow: str = "slide",
             progress: bool | None = None):
    """Prompt ids + up to `max_new_tokens` new ids (see the module docstring for the conventions).

    input_ids: a tensor (T,) or (B, T) (with an optional left-padding attention_mask), a list of ids, or a list of
      lists of ids (of any lengths). eos_token_id: defaults to the model's; None never stops early.
    stop: strings that end a row once its new text contains one (needs the model's tokenizer, or `tokenizer=`).
    progress: a tqdm bar over the steps (None: only on a terminal).
    """
    check_sampling(max_new_tokens, temperature, top_k, top_p)
    ids, mask, form, pads = _prepare(model, input_ids, attention_mask)
    eos = _resolve_eos(model, eos_token_id)
    stop = [stop] if isinstance(stop, str) else list(stop or [])
    should_stop = _StopStrings(tokenizer or model.tokenizer, stop, ids.size(0)) if stop else None
    generator = make_generator(seed, generator, model.device)

    from tqdm.auto import tqdm

    B, T = ids.shape
    steps = iter_tokens(model, ids, mask, max_new_tokens, temperature, top_k, top_p, generator, eos, should_stop,
                        overflow)
    new_ids, ends = [], [None] * B
    for new, finished in tqdm(steps, total=max_new_tokens, desc="generating", unit="tok", leave=False,
                              disable=None if progress is None else not progress):
        new_ids.append(new)
        if eos is None and should_stop is None:
            continue  # nothing can finish a row: no read-back to the host per token (GPU decoding)
        for i in (finished.nonzero().flatten().tolist() if finished.any() else []):
            if ends[i] is None:
                ends[i] = T + len(new_ids)
    out = torch.cat([ids] + [n.unsqueeze(1) for n in new_ids], dim=1) if new_ids else ids
    if form == "tensor":
        return out
    if form == "tensor1d":
        return out[0]
    rows = [out[i, pads[i]:ends[i]].tolist() for i in range(B)]
    return rows if form == "lists" else rows[0]


def _cut_at_stop(text: str, stop) -> str:
    cuts = [text.find(s) for s in stop if s and s in text]
    return text[:min(cuts)] if cuts else text


def generate_text(model, prompt, max_new_tokens: int = 100, tokenizer=None, stop=None, **kwargs):
    """Text in, text out: prompt + completion for one prompt (str), or a list of them for a list of prompts.

    The completion ends before the first stop string (which is not included) or the end-of-text token.
    kwargs: everything generate() takes (temperature, top_k, top_p, seed, ...).
    """
    tokenizer = tokenizer or model.tokenizer
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    if not all(isinstance(p, str) for p in prompts):
        raise ConfigError("prompt must be a str or a list of str")
    encoded = [tokenizer.encode(p) for p in prompts]
    rows = generate(model, encoded, max_new_tokens=max_new_tokens, stop=stop, tokenizer=tokenizer, **kwargs)
    stop = [stop] if isinstance(stop, str) else list(stop or [])
    texts = []
    for p, enc, row in zip(prompts, encoded, rows):
        start = len(enc) if enc else 1  # an empty prompt was started from bos_token_id
        completion = tokenizer.decode(row[start:], skip_special=True)
        texts.append(p + _cut_at_stop(completion, stop))
    return texts[0] if isinstance(prompt, str) else texts


def stream_text(model, prompt: str, max_new_tokens: int = 100, tokenizer=None, stop=None, temperature: float = 1.0,
                top_k=None, top_p=None, seed=None, generator=None, eos_token_id=_DEFAULT, overflow="slide"):
    """Yield the completion of one prompt in pieces of text as tokens are generated (the prompt is not repeated).

    Bytes of a character split across tokens are held back until it is complete; text that could be the start
    of a stop string is held back until it is known not to be; the stop string itself is never yielded.
    """
    check_sampling(max_new_tokens, temperature, top_k, top_p)
    if not isinstance(prompt, str):
        raise ConfigError("stream_text takes one prompt (a str); use generate_text for a batch")
    tokenizer = tokenizer or model.tokenizer
    ids, mask, _, _ = _prepare(model, [tokenizer.encode(prompt)], None)
    eos = _resolve_eos(model, eos_token_id)
    stop = [stop] if isinstance(stop, str) else [s for s in (stop or []) if s]
    generator = make_generator(seed, generator, model.device)
    decoder = tokenizer.stream_decoder()
    pending = ""  # decoded text not yet yielded
    for new, _ in iter_tokens(model, ids, mask, max_new_tokens, temperature, top_k, top_p, generator, eos, None,
                              overflow):
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
