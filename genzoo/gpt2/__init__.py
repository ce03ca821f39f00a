"""GPT-2 from scratch: load OpenAI's (Hugging Face) and nanoGPT checkpoints, generate text, train small GPTs.

    from genzoo import gpt2
    model = gpt2.from_pretrained("gpt2", device="auto")          # or "shakespeare-char", offline
    print(model.generate_text("Hello, I'm a language model,", max_new_tokens=30, top_k=50, seed=0))
    for piece in model.stream_text("ROMEO:", max_new_tokens=200, temperature=0.8):
        print(piece, end="", flush=True)

    tok = gpt2.Tokenizer()                                       # GPT-2's BPE, shipped: no download
    ids = model.generate(tok.encode("Hello"), max_new_tokens=20, temperature=0)   # prompt + new ids
"""
from .generate import generate, generate_text, sample_next, stream_text
from .loading import from_pretrained
from .model import GPT, SIZES, GPTConfig, KVCache, config_for
from .tokenizer import EOT_ID, CharTokenizer, Tokenizer

__all__ = ["GPT", "GPTConfig", "KVCache", "SIZES", "config_for", "from_pretrained", "generate", "generate_text",
           "stream_text", "sample_next", "Tokenizer", "CharTokenizer", "EOT_ID"]
