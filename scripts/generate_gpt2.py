"""Generate text with GPT-2 (or genzoo's offline Shakespeare model) from Python: a batch, then a stream.

    python scripts/generate_gpt2.py                                   # shakespeare-char, offline
    python scripts/generate_gpt2.py --model gpt2 --device cuda --dtype bfloat16 "The meaning of life is"
"""
import argparse

from genzoo import gpt2


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("prompts", nargs="*", default=["ROMEO:\n", "JULIET:\n"])
    parser.add_argument("--model", default="shakespeare-char")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--max-new-tokens", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    model = gpt2.from_pretrained(args.model, device=args.device, dtype=args.dtype)
    print(f"{args.model}: {model.num_parameters() / 1e6:.1f}M parameters on {model.device} ({model.dtype})\n")

    # A batch of prompts of different lengths (left-padded inside), sampled with top-k and nucleus filtering.
    for text in model.generate_text(args.prompts, max_new_tokens=args.max_new_tokens, temperature=0.8, top_k=50,
                                    top_p=0.95, seed=args.seed):
        print(text, "\n" + "-" * 40)

    # The same model, streamed piece by piece, greedy, stopping at the first blank line.
    print(args.prompts[0], end="", flush=True)
    for piece in model.stream_text(args.prompts[0], max_new_tokens=args.max_new_tokens, temperature=0, stop="\n\n"):
        print(piece, end="", flush=True)
    print()


if __name__ == "__main__":
    main()
