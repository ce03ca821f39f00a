"""`genzoo generate ...` and `genzoo train gpt2 ...` (called by genzoo.cli), and the offline demo."""
from __future__ import annotations

import argparse
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
                        help="float32, bfloat16, float16, checkpoint (its own), or auto (default): bf16 where this "
                             "machine computes it natively (CUDA; on CPUs with AVX-512 bf16 as bf16 weights over an "
                             "fp32 residual stream, i.e. --quantize bf16), else the checkpoint's")
    parser.add_argument("--quantize", choices=("int8", "bf16"), default=None,
                        help="int8 or bf16 weight-only Linear layers and vocabulary projection (faster CPU decoding)")
    parser.add_argument("--decode", choices=("eager", "static", "compile", "cuda_graph"), default="eager",
                        help="decode step: eager (default), or a fixed-shape one: static, compile, cuda_graph (CUDA)")
    parser.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit)")
    parser.add_argument("--max-new-tokens", type=int, default=100)
    parser.add_argument("--temperature", type=float, default=0.8, help="0 means greedy (default 0.8)")
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--top-p", type=float, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--stop", action="append", default=None, help="stop at this string (repeatable)")
    parser.add_argument("--num-samples", type=int, default=1, help="independent samples, one after another")
    parser.add_argument("--overflow", choices=("slide", "error"), default="slide",
                        help="past the context window: slide it (default) or stop with an error")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads (torch.set_num_threads); 1 is fastest for small models on a busy CPU")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from . import from_pretrained
    from .generate import check_sampling

    check_sampling(args.max_new_tokens, args.temperature, args.top_k, args.top_p)  # fail before a long load
    dtype, quantize = _decode_precision(args.dtype, args.quantize, args.device)
    model = from_pretrained(args.model, device=args.device, dtype=dtype, revision=args.revision,
                            quantize=quantize).set_decode_mode(args.decode)
    for i in range(args.num_samples):
        if i:
            sys.stdout.write("\n" + "-" * 40 + "\n")
        sys.stdout.write(args.prompt)
        sys.stdout.flush()
        seed = None if args.seed is None else args.seed + i
        for piece in model.stream_text(args.prompt, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                                       top_k=args.top_k, top_p=args.top_p, seed=seed, stop=args.stop,
                                       overflow=args.overflow):
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
    return 0


def _decode_precision(dtype, quantize, device):
    """(from_pretrained's dtype, quantize) for --dtype/--quantize; "auto" follows genzoo.gpt2.kernels.default_dtype."""
    if dtype == "checkpoint":
        return None, quantize
    if dtype != "auto":
        return dtype, quantize
    import torch

    from ..runtime import resolve_device
    from .kernels import default_dtype

    device = resolve_device(device)
    if default_dtype(device) != torch.bfloat16:
        return None, quantize
    if device.type == "cpu":  # bf16 weights, fp32 elsewhere: as fast, closer to fp32 (see gpt2/quantize.py)
        return None, quantize or "bf16"
    return torch.bfloat16, quantize


def train(argv: list[str]) -> int:
    from .train import TrainConfig, config_from_args
    from .train import train as run_training

    defaults = TrainConfig()
    parser = argparse.ArgumentParser(prog="genzoo train gpt2",
                                     description="Train a small GPT on a text file (default: Tiny Shakespeare, "
                                                 "characters). Runs under torchrun for DDP.")
    parser.add_argument("--out", dest="out_dir", default=defaults.out_dir, help="checkpoint folder")
    parser.add_argument("--data", default=defaults.data, help="'shakespeare' or a path to a UTF-8 text file")
    parser.add_argument("--tokenizer", choices=("char", "gpt2"), default=defaults.tokenizer)
    parser.add_argument("--init-from", dest="init_from", default=None, help="fine-tune this model (name or path)")
    parser.add_argument("--resume", action="store_true", help="continue from --out's checkpoint")
    for name in ("n_layer", "n_head", "n_embd", "block_size", "batch_size", "max_iters", "warmup_iters",
                 "eval_interval", "eval_iters", "seed"):
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=int, default=getattr(defaults, name))
    for name in ("dropout", "learning_rate", "min_lr", "weight_decay", "grad_clip", "val_fraction"):
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=float, default=getattr(defaults, name))
    parser.add_argument("--no-bias", dest="bias", action="store_false", help="no biases in Linear and LayerNorm")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default=None, help="autocast dtype on CUDA: bfloat16 or float16")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    run_training(config_from_args(**vars(args)))
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
