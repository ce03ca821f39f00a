import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genzoo.errors import ConfigError
from genzoo.gpt2 import EOT_ID, CharTokenizer, Tokenizer
from genzoo.gpt2.tokenizer import VOCAB_FILE


def test_hello_world_and_endoftext():
    tok = Tokenizer()
    assert tok.encode("Hello world") == [15496, 995]
    assert tok.encode("<|endoftext|>") == [EOT_ID] == [50256]
    assert tok.vocab_size == 50257
    assert tok.decode([15496, 995]) == "Hello world"


def test_vocabulary_ships_with_the_package():
    assert VOCAB_FILE.is_file() and VOCAB_FILE.parent.name == "gpt2"


@pytest.mark.parametrize("text", ["héllo wörld", "日本語のテキスト", "emoji 🎉🐍 and ZWJ 👩‍💻", "tabs\tand\nnewlines  ",
                                  "Ελληνικά, русский, العربية"])
def test_unicode_round_trip(text):
    tok = Tokenizer()
    assert tok.decode(tok.encode(text)) == text


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=40))
def test_round_trip_any_text(text):
    tok = Tokenizer()
    assert tok.decode(tok.encode(text, allowed_special=())) == text


def test_stream_decoder_holds_back_partial_characters():
    tok = Tokenizer()
    text = "a🎉b日本"
    ids = tok.encode(text)
    assert any(tok.decode([i]).count("\ufffd") for i in ids)  # some token is half a character
    decoder = tok.stream_decoder()
    pieces = [decoder.add(i) for i in ids] + [decoder.flush()]
    assert "".join(pieces) == text and not any("\ufffd" in p for p in pieces)


def test_char_tokenizer():
    tok = CharTokenizer.from_text("hello world")
    assert tok.decode(tok.encode("low")) == "low"
    with pytest.raises(ConfigError, match="alphabet"):
        tok.encode("HELLO")
    with pytest.raises(ConfigError):
        tok.decode([99])


# ---- ill-typed ids and invalid text: one ConfigError, never a raw exception -------------------------------------

@pytest.mark.parametrize("ids, message", [
    (["a"], "not an integer"), ([1.5], "not an integer"), ([True], "a bool"), ("abc", "not a str"),
    ([[1]], "not an integer"), ([-1], "out of the vocabulary"), ([10 ** 30], "out of the vocabulary"),
    (None, "not NoneType"), (5, "not int"),
])
def test_decode_refuses_bad_ids(ids, message):
    from genzoo.errors import ConfigError
    from genzoo.gpt2.tokenizer import CharTokenizer, Tokenizer

    for tokenizer in (Tokenizer(), CharTokenizer("abc")):
        with pytest.raises(ConfigError, match=message):
            tokenizer.decode(ids)


def test_decode_takes_any_integer_sequence():
    import numpy as np
    import torch

    from genzoo.gpt2.tokenizer import Tokenizer

    tok = Tokenizer()
    for ids in ([15496, 995], torch.tensor([15496, 995]), np.array([15496, 995], dtype=np.int32),
                [np.int64(15496), torch.tensor(995)]):
        assert tok.decode(ids) == "Hello world"


def test_lone_surrogates_are_refused_or_replaced_on_request():
    from genzoo.errors import ConfigError
    from genzoo.gpt2.tokenizer import CharTokenizer, Tokenizer

    tok = Tokenizer()
    with pytest.raises(ConfigError, match="lone surrogate '\\\\ud800' at index 1"):
        tok.encode("a\ud800b")
    assert tok.encode("a\ud800b", errors="replace") == tok.encode("a\ufffdb")
    with pytest.raises(ConfigError, match="lone surrogate"):
        CharTokenizer("ab").encode("a\udc80")


def test_decode_fuzz_never_raises_raw():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from genzoo.errors import ConfigError
    from genzoo.gpt2.tokenizer import CharTokenizer, Tokenizer

    tokenizers = (Tokenizer(), CharTokenizer("abc\n"))
    items = st.one_of(st.integers(-2 ** 70, 2 ** 70), st.floats(), st.text(max_size=3), st.booleans(), st.none(),
                      st.lists(st.integers(), max_size=2))

    @settings(max_examples=300, deadline=None)
    @given(st.one_of(st.lists(items, max_size=6), items), st.text(max_size=20))
    def check(ids, text):
        for tokenizer in tokenizers:
            for call in (lambda: tokenizer.decode(ids), lambda: tokenizer.encode(text)):
                try:
                    call()
                except ConfigError:
                    pass

    check()
