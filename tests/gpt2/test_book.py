"""The book's ch. 12 word-level GPT (Learn Generative AI with PyTorch): an untied lm_head, a pickled vocabulary.

The layout is re-created here from the book's code (markhliu/DGAI, ch12TrainGPTfromScratch.ipynb): a minGPT-style
model, transformer.wte/wpe/drop/h/ln_f, nn.Linear attention with a causal-mask buffer named attn.bias, an MLP
ModuleDict (c_fc, c_proj, a parameter-free tanh GELU, dropout), biases everywhere, and an lm_head without bias that
is NOT tied to wte; saved as the notebook saves it, torch.save(model.state_dict()) every few epochs (GPTe20.pth).
The notebook keeps its vocabulary in memory; the book's word-level chapters pickle word_to_int
(files/word_to_int.p), which genzoo reads beside the weights. The book's text processing is re-created in
book_tokens / book_text below.
"""
import math
import pickle

import pytest
import torch
import torch.nn as nn

from genzoo import gpt2
from genzoo.errors import CheckpointError, ConfigError
from genzoo.export import export
from genzoo.gpt2.tokenizer import WordTokenizer

WORDS = ["the", "old", "man", "and", "sea", ",", ".", "he", "was", "fished", "alone", "in", "a", "skiff", "?", "!"]


class BookAttention(nn.Module):
    def __init__(self, n_embd, n_head, block_size):
        super().__init__()
        self.n_head = n_head
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.register_buffer("bias", torch.tril(torch.ones(block_size, block_size)).view(1, 1, block_size, block_size))

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf")).softmax(dim=-1)
        return self.c_proj((att @ v).transpose(1, 2).reshape(B, T, C))


class BookBlock(nn.Module):
    def __init__(self, n_embd, n_head, block_size):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)
        self.attn = BookAttention(n_embd, n_head, block_size)
        self.mlp = nn.ModuleDict(dict(c_fc=nn.Linear(n_embd, 4 * n_embd), c_proj=nn.Linear(4 * n_embd, n_embd)))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        h = self.mlp.c_fc(self.ln_2(x))
        h = 0.5 * h * (1 + torch.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h ** 3)))
        return x + self.mlp.c_proj(h)


class BookGPT(nn.Module):
    def __init__(self, vocab_size, n_embd=64, n_head=1, n_layer=2, block_size=16):
        super().__init__()
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(vocab_size, n_embd), wpe=nn.Embedding(block_size, n_embd), drop=nn.Dropout(0.1),
            h=nn.ModuleList(BookBlock(n_embd, n_head, block_size) for _ in range(n_layer)), ln_f=nn.LayerNorm(n_embd)))
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)  # not tied to wte

    def forward(self, idx):
        x = self.transformer.wte(idx) + self.transformer.wpe(torch.arange(idx.shape[1]))
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))


@pytest.fixture
def book_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = BookGPT(len(WORDS)).eval()
    torch.save(model.state_dict(), tmp_path / "GPTe20.pth")
    with open(tmp_path / "word_to_int.p", "wb") as f:
        pickle.dump({w: i for i, w in enumerate(WORDS)}, f)
    return model, tmp_path / "GPTe20.pth"


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("torchscript", [False, True], ids=["state-dict", "torchscript"])
def test_book_word_gpt_loads_untied_with_its_vocabulary(book_checkpoint, torchscript):
    book, path = book_checkpoint
    if torchscript:
        path = path.with_suffix(".pt")
        torch.jit.script(book).save(str(path))
    with pytest.raises(CheckpointError, match=r"head count can be known.*config=\{'n_head': N\}"):
        gpt2.from_pretrained(path, device="cpu")   # saved without config.json: n_head is never guessed
    model = gpt2.from_pretrained(path, device="cpu", config={"n_head": 1})
    assert model.config.tie_embeddings is False and model.lm_head is not None
    assert model.config.tokenizer == {"type": "word", "words": WORDS}
    x = torch.tensor([[0, 1, 2, 3, 0, 4, 6, 7, 8]])
    with torch.no_grad():
        torch.testing.assert_close(model(x), book(x), atol=1e-5, rtol=1e-5)
    text = model.generate_text("The old man", max_new_tokens=5, seed=0)
    assert text.startswith("The old man ") and len(text.split()) == 3 + 5


def test_untied_model_round_trips_through_genzoo_format(book_checkpoint, tmp_path):
    _, path = book_checkpoint
    model = gpt2.from_pretrained(path, device="cpu", config={"n_head": 1})
    model.save_pretrained(tmp_path / "saved")
    back = gpt2.from_pretrained(tmp_path / "saved", device="cpu")
    assert back.config.tie_embeddings is False and back.config.tokenizer["type"] == "word"
    torch.testing.assert_close(back.lm_head.weight, model.lm_head.weight)


def test_word_model_to_huggingface_or_nanogpt_is_refused(book_checkpoint, tmp_path):
    model = gpt2.from_pretrained(book_checkpoint[1], device="cpu", config={"n_head": 1})
    with pytest.raises(ConfigError, match="'word' tokenizer cannot be exported as 'huggingface'"):
        export(model, tmp_path / "hf", "huggingface")
    with pytest.raises(ConfigError, match="untied lm_head.*'word' tokenizer"):
        export(model, tmp_path / "nano", "nanogpt")


def test_word_tokenizer_splits_punctuation_and_lowercases():
    tok = WordTokenizer(WORDS)
    ids = tok.encode("The old man, and the sea.\nHe was alone!")
    assert [WORDS[i] for i in ids] == ["the", "old", "man", ",", "and", "the", "sea", ".", "he", "was", "alone", "!"]
    assert tok.decode(ids) == "the old man, and the sea. he was alone!"
    stream = tok.stream_decoder()
    assert "".join(stream.add(i) for i in ids) == " " + tok.decode(ids)  # the words continue a prompt
    with pytest.raises(ConfigError, match="not in this model's vocabulary: \\['boat'\\]"):
        tok.encode("the boat")


def test_a_vocabulary_pickle_holding_code_is_refused(book_checkpoint):
    _, path = book_checkpoint
    with open(path.parent / "word_to_int.p", "wb") as f:
        pickle.dump({"the": WordTokenizer}, f)  # a class reference: never unpickled
    with pytest.raises(ConfigError, match="not the book's vocabulary"):
        gpt2.from_pretrained(path, device="cpu", config={"n_head": 1})


BOOK_TEXT = "He said, \"It's the (old) man's boat - or the sea?\"\n'No,' the boy said. \"Go & fish!\""
CLOSING, OPENING = "”).:;!?,-‘’", "“(-‘’"   # the book's generate(): no space before / after these


def book_typography(text):
    """The book's first step: straight quotes become curly ones, by what follows (") or precedes (')."""
    chars = list(text)
    for i, c in enumerate(chars):
        if c == '"':
            chars[i] = "”" if i + 1 == len(chars) or chars[i + 1] in " \n" else "“"
        elif c == "'" and i > 0 and chars[i - 1] not in " \n":
            chars[i] = "’"
    return "".join(chars)


def book_tokens(text):
    """The book's tokenization: lower-case, newlines to spaces, every non-letter non-digit padded by spaces, split;
    the vocabulary is the words by falling count, then "UNK"."""
    text = text.lower().replace("\n", " ")
    punctuation = [c for c in set(text) if not c.isalpha() and not c.isdigit()]
    for c in punctuation:
        text = text.replace(c, f" {c} ")
    return text.split(), punctuation


def book_text(words):
    """The book's decoding: join by spaces, then drop the space before a closing mark and after an opening one."""
    text = " ".join(words)
    for c in CLOSING:
        text = text.replace(f" {c}", c)
    for c in OPENING:
        text = text.replace(f"{c} ", c)
    return text


def test_word_tokenizer_follows_the_books_text_processing():
    from collections import Counter

    tokens, _ = book_tokens(book_typography(BOOK_TEXT))
    counts = Counter(tokens)
    words = sorted(counts, key=counts.get, reverse=True) + ["UNK"]
    tok = WordTokenizer(words)
    ids = tok.encode(book_typography(BOOK_TEXT))
    assert [words[i] for i in ids] == tokens
    assert tok.decode(ids) == book_text(tokens)
    assert "“it’s the (old) man’s boat-or the sea?”" in tok.decode(ids)   # the book's typography comes back
    # a word the book never saw is "UNK", as in its generate(): word_to_int.get(w, UNK)
    assert tok.encode("the whale") == [tok.stoi["the"], tok.stoi["UNK"]]
    # streamed words continue a prompt with the same spacing
    stream = tok.stream_decoder()
    assert "".join(stream.add(i) for i in ids) == " " + book_text(tokens)


def test_book_vocabulary_with_unk_starts_from_it(tmp_path):
    words = WORDS + ["UNK"]
    torch.manual_seed(0)
    torch.save(BookGPT(len(words)).state_dict(), tmp_path / "GPTe20.pth")
    with open(tmp_path / "word_to_int.p", "wb") as f:
        pickle.dump({w: i for i, w in enumerate(words)}, f)
    model = gpt2.from_pretrained(tmp_path / "GPTe20.pth", device="cpu", config={"n_head": 1})
    assert model.config.bos_token_id == words.index("UNK")   # the book's prompt="UNK" for unconditional text
    text = model.generate_text("The whale and the", max_new_tokens=3, seed=0)
    assert text.startswith("The whale and the")
