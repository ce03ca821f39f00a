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
