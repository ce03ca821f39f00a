"""GPT-2 from scratch: load OpenAI's (Hugging Face) and nanoGPT checkpoints, generate text, train small GPTs.

    from genzoo import gpt2
    model = gpt2.from_pretrained("gpt2", device="auto")          # or "shakespeare-char", offline
    print(model.generate_text("Hello, I'm a language model,", max_new_tokens=30, top_k=50, seed=0))
    for piece in model.stream_text("ROMEO:", max_new_tokens=200, temperature=0.8):
        print(piece, end="", flush=True)

    tok = gpt2.Tokenizer()                                       # GPT-2's BPE, shipped: no download
    ids = model.generate(tok.encode("Hello"), max_new_tokens=20, temperature=0)   # prompt + new ids
    model.generate_text("The", temperature=0, repetition_penalty=1.3, no_repeat_ngram_size=3)
    model.generate(ids, num_beams=4, return_scores=True)        # beam search, with per-token log-probs
    gpt2.perplexity(model, "text.txt", stride=32)                # sliding-window perplexity
    gpt2.show_tokens("Hello world")                              # [15496 'Hello'] [995 ' world']
"""
from .evaluate import evaluate_text, perplexity, show_tokens, token_pieces
from .generate import GenerateOutput, generate, generate_text, sample_next, stream_text
from .loading import from_pretrained
from .model import GPT, SIZES, GPTConfig, KVCache, config_for
from .processors import (EosStop, LogitsProcessorList, MaxTime, MinNewTokens, NoRepeatNGram, RepetitionPenalty,
                         StoppingCriteriaList, StopStrings, Temperature, TopK, TopP)
from .tokenizer import EOT_ID, CharTokenizer, Tokenizer

__all__ = ["GPT", "GPTConfig", "KVCache", "SIZES", "config_for", "from_pretrained", "generate", "generate_text",
           "stream_text", "sample_next", "Tokenizer", "CharTokenizer", "EOT_ID", "GenerateOutput", "perplexity",
           "evaluate_text", "show_tokens", "token_pieces", "LogitsProcessorList", "StoppingCriteriaList",
           "RepetitionPenalty", "NoRepeatNGram", "MinNewTokens", "Temperature", "TopK", "TopP", "EosStop",
           "StopStrings", "MaxTime"]
