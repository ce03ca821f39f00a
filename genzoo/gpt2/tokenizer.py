"""Tokenizers: GPT-2's byte-level BPE (through tiktoken, vocabulary shipped with genzoo) and a character tokenizer.

GPT-2's merge ranks live in gpt2.tiktoken next to this file, so `Tokenizer()` works offline: the tiktoken
Encoding is built directly from that file and tiktoken never downloads anything.
A character-level model (genzoo's embedded Shakespeare model) stores its alphabet in its config.json
("tokenizer": {"type": "char", "chars": "..."}); `tokenizer_from_config` returns the right one for a model.
"""
from __future__ import annotations

import codecs
import operator
import re
from functools import lru_cache
from pathlib import Path

from ..errors import ConfigError

VOCAB_FILE = Path(__file__).resolve().parent / "gpt2.tiktoken"
EOT = "<|endoftext|>"
EOT_ID = 50256
# GPT-2's pre-tokenizer split pattern (as in openai/tiktoken's gpt2 definition).
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def token_ids(ids, vocab_size: int) -> list[int]:
    """`ids` (a list, a 1-D tensor or array, any integer type) as a list of ints in 0..vocab_size-1, else one
    ConfigError that says what was wrong."""
    if isinstance(ids, (str, bytes)):
        raise ConfigError(f"decode() takes token ids, not a {type(ids).__name__}")
    if hasattr(ids, "tolist") and getattr(ids, "ndim", 1) != 1:
        raise ConfigError(f"decode() takes one sequence of token ids; got an array shaped {tuple(ids.shape)} "
                          f"(decode each row)")
    try:
        items = ids.tolist() if hasattr(ids, "tolist") else list(ids)
    except TypeError:
        raise ConfigError(f"decode() takes a sequence of token ids, not {type(ids).__name__}") from None
    out = []
    for position, item in enumerate(items):
        if isinstance(item, bool):
            raise ConfigError(f"token id at position {position} is a bool ({item}), not an integer")
        try:
            out.append(operator.index(item))   # ints, numpy/torch integers; not floats, strings or lists
        except TypeError:
            raise ConfigError(f"token id at position {position} is {item!r} ({type(item).__name__}), not an "
                              f"integer") from None
    bad = [i for i in out if not 0 <= i < vocab_size]
    if bad:
        raise ConfigError(f"token ids out of the vocabulary (0..{vocab_size - 1}): {bad[:8]}")
    return out


def check_text(text, errors: str = "strict") -> str:
    """`text` if it is a str of valid Unicode. Lone surrogates (U+D800..U+DFFF, e.g. from JSON "\\ud800" escapes
    or bytes decoded with errors="surrogateescape") cannot be tokenized: errors="strict" refuses them,
    errors="replace" turns each into U+FFFD (what tiktoken would do silently)."""
    if not isinstance(text, str):
        raise ConfigError(f"encode() takes a str, not {type(text).__name__}")
    if errors not in ("strict", "replace"):
        raise ConfigError(f"errors must be 'strict' or 'replace', not {errors!r}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        if errors == "replace":
            return re.sub("[\ud800-\udfff]", "\ufffd", text)
        raise ConfigError(f"the text holds a lone surrogate {text[e.start]!r} at index {e.start}, which is not "
                          f"valid Unicode: fix the text, or pass errors='replace' to encode it as U+FFFD") from None
    return text


@lru_cache(maxsize=1)
def _gpt2_encoding():
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    ranks = load_tiktoken_bpe(str(VOCAB_FILE))  # a local path: read directly, no download, no cache
    return tiktoken.Encoding(name="gpt2", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                             special_tokens={EOT: EOT_ID}, explicit_n_vocab=50257)


class Tokenizer:
    """GPT-2's BPE: "Hello world" -> [15496, 995]; `<|endoftext|>` is 50256.

    encode() treats "<|endoftext|>" in the text as the special token (allowed_special="all" by default);
    pass allowed_special=() to encode it as ordinary text instead.
    """

    name = "gpt2"

    def __init__(self):
        self.encoding = _gpt2_encoding()
        self.eot_id = EOT_ID
        self.vocab_size = self.encoding.n_vocab

    def encode(self, text: str, allowed_special="all", errors: str = "strict") -> list[int]:
        text = check_text(text, errors)
        allowed = allowed_special if allowed_special == "all" else set(allowed_special)
        return self.encoding.encode(text, allowed_special=allowed, disallowed_special=())

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def decode_bytes(self, ids) -> bytes:
        return self.encoding.decode_bytes(token_ids(ids, self.vocab_size))

    def decode(self, ids, skip_special: bool = False) -> str:
        ids = token_ids(ids, self.vocab_size)
        if skip_special:
            ids = [i for i in ids if i != self.eot_id]
        # A token can hold part of a UTF-8 character; only a complete sequence decodes cleanly.
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def stream_decoder(self):
        return StreamDecoder(self)

    def __repr__(self):
        return f"Tokenizer(gpt2 BPE, {self.vocab_size} tokens)"


class CharTokenizer:
    """One token per character of a fixed alphabet (nanoGPT's shakespeare_char). No special tokens."""

    name = "char"

    def __init__(self, chars: str):
        if not chars or len(set(chars)) != len(chars):
            raise ConfigError("a character tokenizer needs a non-empty alphabet without repeats")
        self.chars = chars
        self.stoi = {c: i for i, c in enumerate(chars)}
        self.vocab_size = len(chars)
        self.eot_id = None

    @classmethod
    def from_text(cls, text: str) -> "CharTokenizer":
        return cls("".join(sorted(set(text))))

    def encode(self, text: str, allowed_special=None, errors: str = "strict") -> list[int]:
        text = check_text(text, errors)
        try:
            return [self.stoi[c] for c in text]
        except KeyError:
            unknown = sorted({c for c in text if c not in self.stoi})
            raise ConfigError(f"characters not in this model's alphabet: {unknown[:10]!r}; it knows "
                              f"{self.chars!r}") from None

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def decode_bytes(self, ids) -> bytes:
        return self.decode(ids).encode("utf-8")

    def decode(self, ids, skip_special: bool = False) -> str:
        return "".join(self.chars[i] for i in token_ids(ids, self.vocab_size))

    def stream_decoder(self):
        return StreamDecoder(self)

    def to_config(self) -> dict:
        return {"type": "char", "chars": self.chars}

    def __repr__(self):
        return f"CharTokenizer({self.vocab_size} characters)"


class StreamDecoder:
    """Token ids in, text out, one token at a time, holding back bytes until a UTF-8 character is complete."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def add(self, token_id: int) -> str:
        return self._utf8.decode(self.tokenizer.decode_bytes([token_id]))

    def flush(self) -> str:
        return self._utf8.decode(b"", final=True)


def tokenizer_from_config(spec: dict | None):
    spec = spec or {"type": "gpt2"}
    kind = spec.get("type")
    if kind == "gpt2":
        return Tokenizer()
    if kind == "char":
        return CharTokenizer(spec["chars"])
    if kind == "word":
        return WordTokenizer(spec["words"])
    if kind == "unknown":
        raise ConfigError("this model's checkpoint does not say which tokenizer it was trained with (e.g. a nanoGPT "
                          "character model loaded without the meta.pkl of its data set): pass token ids to "
                          "generate(), or pass tokenizer=CharTokenizer(alphabet) to the text helpers")
    raise ConfigError(f"unknown tokenizer type {kind!r} in the model config (expected 'gpt2', 'char' or 'word')")


class WordTokenizer:
    """One token per word or punctuation mark, lower-cased: the word-level tokenizer of the book's ch. 12 GPT
    (markhliu/DGAI, ch12TrainGPTfromScratch.ipynb), with the book's rules:

      * encode: lower-case, newlines to spaces, a space on each side of every punctuation mark (a one-character
        word that is neither a letter nor a digit), split on whitespace; a word outside the vocabulary becomes
        "UNK" when the vocabulary has it (the book appends "UNK" to its words), else is refused;
      * decode: words joined by spaces, except none before a closing mark (”).:;!?,-‘’) and none after an opening
        one (“(-‘’).
    The vocabulary (token id -> word) lives in the model's config.json: {"type": "word", "words": [...]}.
    """

    name = "word"
    UNKNOWN = "UNK"
    CLOSING = frozenset("”).:;!?,-‘’")   # no space before these
    OPENING = frozenset("“(-‘’")         # no space after these

    def __init__(self, words):
        words = [str(w) for w in words]
        if not words or len(set(words)) != len(words):
            raise ConfigError("a word tokenizer needs a non-empty vocabulary without repeats")
        self.words = words
        self.stoi = {w: i for i, w in enumerate(words)}
        self.punctuation = [w for w in words if len(w) == 1 and not (w.isalpha() or w.isdigit() or w.isspace())]
        self.unknown_id = self.stoi.get(self.UNKNOWN)
        self.vocab_size = len(words)
        self.eot_id = None

    def split(self, text: str) -> list[str]:
        text = text.lower().replace("\n", " ")
        for mark in self.punctuation:
            text = text.replace(mark, f" {mark} ")
        return text.split()

    def encode(self, text: str, allowed_special=None) -> list[int]:
        if not isinstance(text, str):
            raise ConfigError(f"encode() takes a str, not {type(text).__name__}")
        pieces = self.split(text)
        if self.unknown_id is not None:
            return [self.stoi.get(p, self.unknown_id) for p in pieces]
        unknown = sorted({p for p in pieces if p not in self.stoi})
        if unknown:
            raise ConfigError(f"words not in this model's vocabulary: {unknown[:10]!r} ({self.vocab_size} words known)")
        return [self.stoi[p] for p in pieces]

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def separator(self, before: str | None, word: str) -> str:
        """What goes between two words (before=None: nothing precedes)."""
        return "" if before is None or word in self.CLOSING or before in self.OPENING else " "

    def join(self, ids, before: str | None = None) -> str:
        """The words of `ids` as text; `before`: the word they follow (the text then starts with its separator)."""
        try:
            words = [self.words[int(i)] for i in ids]
        except IndexError:
            raise ConfigError(f"token ids out of this vocabulary (0..{self.vocab_size - 1})") from None
        pieces = []
        for word in words:
            pieces += [self.separator(before, word), word]
            before = word
        return "".join(pieces)

    def decode(self, ids, skip_special: bool = False) -> str:
        return self.join(ids)

    def continuation(self, ids, prompt_ids) -> str:
        """The text of `ids` generated after a prompt: it starts with the separator from the prompt's last word."""
        return self.join(ids, before=self.words[int(prompt_ids[-1])] if len(prompt_ids) else None)

    def decode_bytes(self, ids) -> bytes:
        return self.decode(ids).encode("utf-8")

    def stream_decoder(self):
        return WordStreamDecoder(self)

    def to_config(self) -> dict:
        return {"type": "word", "words": self.words}

    def __repr__(self):
        return f"WordTokenizer({self.vocab_size} words)"


class WordStreamDecoder:
    """Streams the words that continue a prompt, each with its separator (the prompt counts as a word before)."""

    def __init__(self, tokenizer: WordTokenizer):
        self.tokenizer = tokenizer
        self.before = ""   # the prompt: not an opening mark, so the first word gets a space unless it closes

    def add(self, token_id: int) -> str:
        text = self.tokenizer.join([token_id], before=self.before)
        self.before = self.tokenizer.words[int(token_id)]
        return text

    def flush(self) -> str:
        return ""


BOOK_VOCABULARY_FILES = ("int_to_word.p", "word_to_int.p")


def read_book_vocabulary(folder) -> list[str] | None:
    """The book's ch. 12 vocabulary, pickled beside the weights as int_to_word.p or word_to_int.p (plain dicts,
    read with an unpickler that refuses every class) -> the words by id; None when neither file is there."""
    import pickle

    class PlainData(pickle.Unpickler):
        def find_class(self, module, name):
            raise pickle.UnpicklingError(f"refused to load {module}.{name} (genzoo unpickles plain data only)")

    for name in BOOK_VOCABULARY_FILES:
        path = Path(folder) / name
        if not path.is_file():
            continue
        try:
            with open(path, "rb") as f:
                table = PlainData(f).load()
            by_id = {int(v): str(k) for k, v in table.items()} if name == "word_to_int.p" else \
                {int(k): str(v) for k, v in table.items()}
            return [by_id[i] for i in range(len(by_id))]
        except (pickle.UnpicklingError, AttributeError, KeyError, TypeError, ValueError, EOFError) as e:
            raise ConfigError(f"{path} is not the book's vocabulary (a plain dict of words and ids): {e}") from e
    return None
