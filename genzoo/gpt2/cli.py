"""`genzoo generate ...` and `genzoo train gpt2 ...` (called by genzoo.cli), and the offline demo."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EMBEDDED = "shakespeare-char"


def generate(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="genzoo generate", description="Generate text with a GPT-2 model, streamed to stdout.",
        epilog=f"The default model, {EMBEDDED}, ships with genzoo (a small character-level model of Tiny "
               f"Shakespeare) and works offline; gpt2, gpt2-medium, gpt2-large and gpt2-xl come from the Hub.")
    parser.add_argument("prompt", nargs="?", default="",
                        help="text to continue (default: empty, which starts from <|endoftext|> / a newline)")
    parser.add_argument("--model", default=EMBEDDED, help=f"catalog name, Hub repo id or local path (default {EMBEDDED})")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    parser.add_argument("--dtype", default="auto",
                        help="float32, bfloat16, float16, checkpoint (its own), or auto (default): on a CPU, fp16 weights "
                             "over an fp32 residual stream where torch's fbgemm runs them (--quantize fp16), else bf16 "
                             "weights where bf16 is native (--quantize bf16), else the checkpoint's; on CUDA bf16")
    parser.add_argument("--quantize", choices=("int8", "bf16", "fp16"), default=None,
                        help="int8, bf16 or fp16 weight-only Linear layers and vocabulary projection (faster CPU "
                             "decoding)")
    parser.add_argument("--decode", choices=("eager", "static", "compile", "cuda_graph"), default="eager",
                        help="decode step: eager (default), or a fixed-shape one: static, compile (on a CPU, weights "
                             "frozen in: fp32 ~1.3x and int8/fp16 ~1.1x faster per token, after ~20 s of "
                             "compiling), cuda_graph (CUDA)")
    parser.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit)")
    parser.add_argument("--max-new-tokens", type=int, default=100)
    parser.add_argument("--temperature", type=float, default=None,
                        help="0 means greedy (default 0.8; beam search does not sample: 0)")
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--top-p", type=float, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--stop", action="append", default=None, help="stop at this string (repeatable)")
    parser.add_argument("--num-samples", type=int, default=1, help="independent samples, one after another")
    parser.add_argument("--overflow", choices=("slide", "error"), default="slide",
                        help="past the context window: slide it (default) or stop with an error")
    parser.add_argument("--repetition-penalty", type=float, default=None,
                        help="> 1 makes tokens already in the text less likely (1.2-1.3 is typical)")
    parser.add_argument("--no-repeat-ngram-size", type=int, default=None, help="never repeat an n-gram of this size")
    parser.add_argument("--min-new-tokens", type=int, default=None, help="no end-of-text before this many tokens")
    parser.add_argument("--max-time", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--num-beams", type=int, default=1,
                        help="beam search with this many beams (deterministic; the text is printed at the end)")
    parser.add_argument("--length-penalty", type=float, default=1.0, help="beam search: score = log-prob / length ** this")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads (torch.set_num_threads); 1 is fastest for small models on a busy CPU")
    args = parser.parse_args(argv)
    from ..cli import MAX_NEW_TOKENS, check_range, check_threads

    check_threads(args.threads)
    check_range("--max-new-tokens", args.max_new_tokens, 0, MAX_NEW_TOKENS)
    check_range("--num-samples", args.num_samples, 1, 1000)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from ..errors import ConfigError
    from . import from_pretrained
    from .beam import check_beam_options
    from .generate import build_criteria, build_processors, check_sampling

    # bad values fail here, before a long load
    beams = args.num_beams != 1
    if args.num_beams < 1:
        raise ConfigError(f"--num-beams must be >= 1, not {args.num_beams}")
    if beams and (args.temperature not in (None, 0, 1) or args.top_k is not None or args.top_p is not None):
        raise ConfigError("beam search (--num-beams > 1) does not sample: leave out --temperature, --top-k and "
                          "--top-p, or use --num-beams 1 to sample")
    if beams:
        check_beam_options(args.length_penalty, True)
    temperature = (0 if beams else 0.8) if args.temperature is None else args.temperature
    check_sampling(args.max_new_tokens, temperature, args.top_k, args.top_p)
    controls = dict(repetition_penalty=args.repetition_penalty, no_repeat_ngram_size=args.no_repeat_ngram_size,
                    min_new_tokens=args.min_new_tokens, max_time=args.max_time)
    build_processors(temperature, args.top_k, args.top_p, args.repetition_penalty, args.no_repeat_ngram_size,
                     args.min_new_tokens, eos_token_id=0)
    build_criteria(max_time=args.max_time)
    dtype, quantize = _decode_precision(args.dtype, args.quantize, args.device)
    model = from_pretrained(args.model, device=args.device, dtype=dtype, revision=args.revision,
                            quantize=quantize).set_decode_mode(args.decode)
    if args.num_beams != 1:
        text = model.generate_text(args.prompt, max_new_tokens=args.max_new_tokens, stop=args.stop,
                                   num_beams=args.num_beams, length_penalty=args.length_penalty,
                                   temperature=temperature, overflow=args.overflow, **controls)
        sys.stdout.write(text + "\n")
        return 0
    for i in range(args.num_samples):
        if i:
            sys.stdout.write("\n" + "-" * 40 + "\n")
        sys.stdout.write(args.prompt)
        sys.stdout.flush()
        seed = None if args.seed is None else args.seed + i
        for piece in model.stream_text(args.prompt, max_new_tokens=args.max_new_tokens, temperature=temperature,
                                       top_k=args.top_k, top_p=args.top_p, seed=seed, stop=args.stop,
                                       overflow=args.overflow, **controls):
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
    return 0


def eval(argv: list[str]) -> int:  # noqa: A001 (the command's name)
    parser = argparse.ArgumentParser(
        prog="genzoo eval", description="Perplexity and bits per character of a GPT model on a text file.")
    parser.add_argument("model", help="catalog name, Hub repo id or local path")
    parser.add_argument("data", nargs="?", default="shakespeare",
                        help="a UTF-8 text file, or 'shakespeare' (default: Tiny Shakespeare's validation split, "
                             "the last 10%%, which the embedded model did not train on)")
    parser.add_argument("--stride", type=int, default=None, help="tokens between windows (default: --max-length)")
    parser.add_argument("--max-length", type=int, default=None, help="tokens per window (default: the context)")
    parser.add_argument("--weighting", choices=("guide", "token"), default="guide",
                        help="guide: transformers' perplexity guide's number (each window's mean loss times its "
                             "targets - 1); token: every scored token counts once (differs with overlap)")
    parser.add_argument("--max-chars", type=int, default=None, help="only the first this many characters")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    from .. import datasets
    from ..evaluation import print_result
    from . import from_pretrained
    from .evaluate import evaluate_text, read_text

    if args.data == "shakespeare" and not Path(args.data).exists():
        text, source = datasets.shakespeare("val"), "tiny shakespeare (val)"
    else:
        if not Path(args.data).is_file():
            from ..errors import ConfigError

            raise ConfigError(f"no text file at {args.data} (DATA is a UTF-8 text file or 'shakespeare')")
        text, source = read_text(Path(args.data)), args.data
    if args.max_chars is not None:
        text = text[:args.max_chars]
    model = from_pretrained(args.model, device=args.device, dtype=args.dtype)
    result = {"model": args.model, "family": "gpt2", "data": source,
              **evaluate_text(model, text, stride=args.stride, max_length=args.max_length, weighting=args.weighting)}
    return print_result(result, args.json)


def tokens(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="genzoo tokens", description="Show how a text is cut into tokens.")
    parser.add_argument("text")
    parser.add_argument("--model", default=None, help="use this model's tokenizer (default: GPT-2's BPE)")
    args = parser.parse_args(argv)
    from .evaluate import show_tokens

    tokenizer = None
    if args.model:
        from . import from_pretrained

        tokenizer = from_pretrained(args.model, device="cpu").tokenizer
    show_tokens(args.text, tokenizer)
    return 0
def _decode_precision(dtype, quantize, device):
    """(from_pretrained's dtype, quantize) for --dtype/--quantize; "auto" follows genzoo.gpt2.kernels: on the CPU
    its default_quantize (fp16 or bf16 weights over an fp32 residual stream, where they run fast), elsewhere its
    default_dtype."""
    if dtype == "checkpoint":
        return None, quantize
    if dtype != "auto":
        from ..cli import check_dtype

        return check_dtype(dtype, device), quantize  # one message for a bad --dtype in every family
    import torch

    from ..runtime import resolve_device
    from .kernels import default_dtype, default_quantize

    device = resolve_device(device)
    if device.type == "cpu":
        return None, quantize or default_quantize(device)
    if default_dtype(device) != torch.bfloat16:
        return None, quantize
    return torch.bfloat16, quantize


def train(argv: list[str]) -> int:
    from ..training import HelpFormatter, add_common_arguments, config_from_args, parse_args, summary
    from .train import TrainConfig
    from .train import train as run_training

    defaults = TrainConfig()
    parser = argparse.ArgumentParser(prog="genzoo train gpt2", formatter_class=HelpFormatter,
                                     description="Train a small GPT on a text file (default: Tiny Shakespeare, "
                                                 "characters). Runs under torchrun for DDP.")
    add_common_arguments(parser, defaults)
    parser.add_argument("--data", default=defaults.data, help="'shakespeare' or a path to a UTF-8 text file")
    parser.add_argument("--tokenizer", choices=("char", "gpt2"), default=defaults.tokenizer)
    parser.add_argument("--init-from", dest="init_from", default=None, help="fine-tune this model (name or path)")
    for name in ("n_layer", "n_head", "n_embd", "block_size", "warmup_steps", "eval_every", "eval_iters"):
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=int, default=getattr(defaults, name))
    for name in ("dropout", "min_lr", "weight_decay", "grad_clip", "val_fraction"):
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=float, default=getattr(defaults, name))
    parser.add_argument("--no-bias", dest="bias", action="store_false", help="no biases in Linear and LayerNorm")
    args = parse_args(parser, argv)
    result = run_training(config_from_args(TrainConfig, args))
    if int(os.environ.get("RANK", "0")) == 0 and not result.eval_only:  # an evaluation (--steps 0) printed itself
        print(summary(result, f"genzoo generate {result.out_dir}"))
    return 0


def demo(out_dir: Path) -> list[Path]:
    """Write text from the embedded Shakespeare model into out_dir/gpt2_shakespeare.txt; returns [that path]."""
    import torch

    from . import from_pretrained

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = from_pretrained(EMBEDDED, device="cpu")
    prompts = ["ROMEO:\n", "First Citizen:\n", "KING HENRY:\n"]
    # A 0.8M-parameter model gains nothing from several threads, and on a busy CPU their synchronisation
    # costs far more than the arithmetic (measured: ~0.6 s per step with 2 threads under load vs ~10 ms with 1).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        texts = model.generate_text(prompts, max_new_tokens=300, temperature=0.8, seed=0, progress=True)
    finally:
        torch.set_num_threads(threads)
    path = out_dir / "gpt2_shakespeare.txt"
    header = (f"genzoo demo: {EMBEDDED} ({model.num_parameters() / 1e6:.2f}M parameters, character-level GPT "
              f"trained on Tiny Shakespeare), temperature 0.8, seed 0\n\n")
    path.write_text(header + "\n\n----\n\n".join(texts) + "\n", encoding="utf-8")
    return [path]
