"""The `genzoo` command (also `python -m genzoo`).

    genzoo list [--family F]                      the catalog: embedded and published models
    genzoo generate "prompt" [--model gpt2 ...]   GPT-2 text, streamed to stdout
    genzoo sample MODEL [--n 64 --seed 0 --out grid.png ...]   GAN, VAE or diffusion samples
    genzoo translate MODEL in.jpg out.jpg         CycleGAN image translation (a folder works too)
    genzoo reconstruct MODEL in.png out.png       VAE encode + decode
    genzoo interpolate MODEL ...                  latent interpolation strips (VAE, GAN)
    genzoo eval MODEL [DATA] [--json]             perplexity, classifier score, reconstruction/cycle/denoising error
    genzoo tokens "text" [--model M]              how a text is cut into GPT-2 tokens
    genzoo train FAMILY ...                       a family's training loop
    genzoo demo [--out DIR]                       every embedded model, offline
    genzoo export MODEL OUT --format F            write another library's format (huggingface, diffusers, ...)
    genzoo push MODEL REPO_ID [--format F]        upload to the Hugging Face Hub with a model card

`--redownload` (any command) fetches downloaded files again instead of using the cache.
The first positional argument after a model command is the model: a catalog name or a local checkpoint (its
family is read from config.json; `--family F` says it when there is none). Each family parses the rest itself,
so `genzoo sample ddpm-cifar10-32 --help` lists the diffusion options.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

from .errors import GenzooError

MODEL_COMMANDS = ("sample", "translate", "reconstruct", "interpolate", "eval")
FIXED_FAMILY = {"generate": "gpt2", "translate": "cyclegan", "reconstruct": "vae"}
USAGE = __doc__.split("\n\n")[1]


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print("usage:\n" + USAGE)
        return 0
    if argv[0] in ("-V", "--version"):
        from . import __version__

        print(f"genzoo {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    redownload = "--redownload" in rest   # any command: fetch every download again, ignoring the cache
    rest = [a for a in rest if a != "--redownload"]
    try:
        if redownload:
            from .hub import forced_download

            with forced_download():
                return _dispatch(command, rest) or 0
        return _dispatch(command, rest) or 0
    except GenzooError as e:
        print(f"genzoo {command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:   # training's Interrupted says where the run was saved and how to go on
        print(f"genzoo {command}: {e}" if str(e) else "interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `genzoo list | head`: the reader left; not an error worth a traceback
        sys.stderr.close()
        return 0


def _dispatch(command: str, rest: list[str]) -> int:
    if command == "list":
        return list_command(rest)
    if command == "demo":
        return importlib.import_module("genzoo.demo").main(rest)
    if command in ("export", "push"):
        return getattr(importlib.import_module("genzoo.export"), f"{command}_command")(rest)
    if command == "generate":
        return _family_command("gpt2", "generate", rest)
    if command == "tokens":
        return _family_command("gpt2", "tokens", rest)
    if command == "train":
        if not rest or rest[0].startswith("-"):
            print("usage: genzoo train FAMILY [options]   (FAMILY: gpt2, gan, cyclegan, vae, diffusion)", file=sys.stderr)
            return 2
        return _family_command(rest[0], "train", rest[1:])
    if command in MODEL_COMMANDS:
        family, rest = _pop_family(rest)
        if family is None:
            if command in FIXED_FAMILY:
                family = FIXED_FAMILY[command]
            elif not rest or rest[0].startswith("-"):
                print(f"usage: genzoo {command} MODEL [options]   (`genzoo {command} MODEL --help` lists the options)")
                return 0 if rest[:1] in (["-h"], ["--help"]) else 2
            else:
                from .registry import family_of

                family = family_of(rest[0])
        return _family_command(family, command, rest)
    print(f"genzoo: unknown command {command!r}\nusage:\n{USAGE}", file=sys.stderr)
    return 2


def _pop_family(rest: list[str]):
    rest = list(rest)
    for i, arg in enumerate(rest):
        if arg == "--family" and i + 1 < len(rest):
            family = rest[i + 1]
            del rest[i:i + 2]
            return family, rest
        if arg.startswith("--family="):
            del rest[i]
            return arg.split("=", 1)[1], rest
    return None, rest


def _family_command(family: str, command: str, rest: list[str]) -> int:
    from .registry import check_family_name

    check_family_name(family)
    try:
        module = importlib.import_module(f"genzoo.{family}.cli")
    except ModuleNotFoundError as e:
        if e.name in (f"genzoo.{family}", f"genzoo.{family}.cli"):
            raise GenzooError(f"the {family} family has no command-line tools yet") from e
        raise
    handler = getattr(module, command, None)
    if handler is None:
        offered = [c for c in ("generate",) + MODEL_COMMANDS + ("train",) if hasattr(module, c)]
        raise GenzooError(f"{family} models do not support `genzoo {command}`; they support: {', '.join(offered)}")
    return handler(rest)


# ---- argument checks the family commands share: run them before loading anything -------------------------------

MAX_IMAGES = 10_000        # --n: a grid of more is unreadable, and sampling it takes hours
MAX_STEPS = 10_000         # sampler or interpolation steps
MAX_NEW_TOKENS = 100_000   # generate --max-new-tokens
MAX_IMAGE_SIDE = 8192      # --size


def check_output(path, overwrite: bool = False, default_name: str | None = None) -> Path:
    """Where a command may write its file: an existing folder means `default_name` inside it (when given); an
    existing file is refused unless `overwrite` (--overwrite). Nothing is replaced without being asked."""
    from .errors import ConfigError

    path = Path(path)
    if path.is_dir():
        if default_name is None:
            raise ConfigError(f"{path} is a folder: name the output file (e.g. {path / 'out.png'})")
        path = path / default_name
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise ConfigError(f"{path} exists already: pass --overwrite to replace it, or choose another output path")
    if path.is_dir():
        raise ConfigError(f"{path} is a folder, not a file")
    return path


def check_range(option: str, value, low, high):
    """`value` itself, or a ConfigError naming the option and its bounds (None: unset, allowed)."""
    from .errors import ConfigError

    if value is not None and not (low <= value <= high):
        raise ConfigError(f"{option} must be >= {low} and <= {high}, got {value}")
    return value


DTYPE_NAMES = "auto, checkpoint, float32, bfloat16 or float16 (also fp32, bf16, fp16)"


def dtype_help(default: str) -> str:
    """--dtype's help, the same words in every family; `default` says what the command uses without it."""
    from .runtime import auto_dtype

    here = str(auto_dtype("cpu")).removeprefix("torch.")
    return (f"{DTYPE_NAMES}. auto (genzoo.runtime.auto_dtype): bfloat16 on a CPU with native bf16 (avx512_bf16 or "
            f"amx_bf16, e.g. AMD EPYC Zen 4, Intel Sapphire Rapids: convolutions about 2x faster), float32 on other "
            f"CPUs (this one: {here}); bfloat16 on CUDA, float16 where it lacks bf16. checkpoint: the checkpoint's "
            f"own. Default: {default}")


def check_dtype(value, device):
    """--dtype's value as a torch dtype for `device` (None: the checkpoint's own), or a ConfigError naming --dtype."""
    from .errors import ConfigError
    from .runtime import resolve_dtype

    if value is None or value == "checkpoint":
        return None
    try:
        return resolve_dtype(value, device, what="--dtype")
    except ConfigError as e:
        if "--dtype" not in str(e):   # a bad --device: its own message
            raise
        raise ConfigError(f"unknown --dtype {value!r}: use {DTYPE_NAMES}") from None


def check_threads(value):
    """--threads: at least 1 and at most a few per CPU core (torch crashes on absurd counts)."""
    import os

    return check_range("--threads", value, 1, 4 * (os.cpu_count() or 1))


# ---- the shared vocabulary: every use command builds its common options here -----------------------------------
# One spelling and one meaning everywhere: MODEL (positional; --model is an accepted alias), --device, --dtype (the
# weights' dtype), --revision, --seed, --n (how many), --out, --overwrite, --threads, --no-progress, --size H W (one
# number: a square), --sample-steps (sampling steps), --frames (images in a strip). --steps means optimizer steps
# and belongs to `genzoo train` only.

MODEL_HELP = "catalog name (genzoo list), local folder or checkpoint file, or Hugging Face repo id"


def add_common_options(parser, *, model: bool = True, model_default: str | None = None, model_help: str | None = None,
                       dtype: str = "checkpoint", n: int | None = None, out: str | None = None, seed: int | None = 0,
                       size: bool = False, sample_steps: int | None = None, frames: int | None = None,
                       output: bool = True):
    """Add the options every use command shares to an argparse parser, with the same names, defaults and help.

    `n`, `out`, `sample_steps`, `frames`: the command's default (None: the command has no such option). `dtype`:
    what --dtype defaults to. `output=False` for a command that writes nothing (no --overwrite). Call
    `finish_common_options(args)` after parsing: it resolves the --model alias, checks every bound, sets --threads
    and turns --size into (H, W), all before any model is loaded.
    """
    if model:
        help_text = model_help or MODEL_HELP
        if model_default is not None:
            help_text += f" (default {model_default})"
        parser.add_argument("model", nargs="?", default=None, help=help_text)   # optional: --model may give it
        parser.add_argument("--model", dest="model_option", default=None, metavar="MODEL",
                            help="the same as the positional MODEL")
        parser.set_defaults(model_default=model_default)
    parser.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, mps")
    parser.add_argument("--dtype", default=dtype, help=dtype_help(dtype))
    parser.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit)")
    if seed is not None or model:
        parser.add_argument("--seed", type=int, default=seed, help="random seed: the same seed, the same output")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads (torch.set_num_threads; default: torch's, one per core)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    if n is not None:
        parser.add_argument("--n", type=int, default=n, help=f"how many (default {n})")
    if out is not None:
        parser.add_argument("--out", default=out, help=f"output file (default {out})")
    if output:
        parser.add_argument("--overwrite", action="store_true", help="replace the output if it exists")
    if size:
        parser.add_argument("--size", type=int, nargs="+", default=None, metavar="N",
                            help="image size: H W, or one number for a square")
    if sample_steps is not None:
        parser.add_argument("--sample-steps", type=int, default=sample_steps,
                            help=f"sampling (denoising) steps (default {sample_steps})")
    if frames is not None:
        parser.add_argument("--frames", type=int, default=frames, help=f"images per strip (default {frames})")
    return parser


def finish_common_options(args):
    """Check and normalise what add_common_options added (see there); returns `args`."""
    from .errors import ConfigError

    if hasattr(args, "model_option"):
        if args.model_option is not None and args.model is not None and args.model_option != args.model:
            raise ConfigError(f"two models given: {args.model!r} and --model {args.model_option!r}: give one")
        args.model = args.model or args.model_option or args.model_default
        if args.model is None:
            raise ConfigError("no model given: name one (a catalog name from `genzoo list`, a folder or a file)")
    check_threads(getattr(args, "threads", None))
    if getattr(args, "n", None) is not None:
        check_range("--n", args.n, 1, MAX_IMAGES)
    if getattr(args, "sample_steps", None) is not None:
        check_range("--sample-steps", args.sample_steps, 1, MAX_STEPS)
    if getattr(args, "frames", None) is not None:
        check_range("--frames", args.frames, 2, MAX_STEPS)
    if getattr(args, "size", None) is not None:
        args.size = parse_size(args.size)
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    return args


def parse_size(values, option: str = "--size") -> tuple[int, int]:
    """`--size H W` or `--size S` -> (H, W), each side within 1..MAX_IMAGE_SIDE."""
    from .errors import ConfigError

    values = [values] if isinstance(values, int) else list(values)
    if len(values) not in (1, 2):
        raise ConfigError(f"{option} takes H W, or one number for a square; got {len(values)} numbers")
    for v in values:
        check_range(option, v, 1, MAX_IMAGE_SIDE)
    return (values[0], values[-1])


def add_deprecated_alias(parser, old: str, new: str, *, flag: bool = False, const=True, **kwargs):
    """Keep an old spelling working for one release: `old` stores into `new`'s destination and prints one line
    naming the new spelling. `flag=True` for an option without a value (it stores `const`)."""
    import argparse

    dest = new.lstrip("-").replace("-", "_")

    class Deprecated(argparse.Action):
        def __call__(self, parser, namespace, values, option_string=None):
            print(f"genzoo: {option_string} is deprecated and will be removed in the next release: use {new}",
                  file=sys.stderr)
            setattr(namespace, self.dest, const if flag else values)

    parser.add_argument(old, dest=dest, action=Deprecated, nargs=0 if flag else kwargs.pop("nargs", None),
                        default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kwargs)


def list_command(argv: list[str]) -> int:
    import argparse

    from .registry import check_family_name, list_models

    parser = argparse.ArgumentParser(prog="genzoo list", description="List the catalog.")
    parser.add_argument("--family", help="only this family")
    args = parser.parse_args(argv)
    if args.family is not None:
        check_family_name(args.family)
    rows = [("name", "family", "params", "offline", "source")]
    for e in list_models(args.family):
        params = "" if e.params is None else (f"{e.params / 1e6:.1f}M" if e.params >= 1e5 else f"{e.params / 1e3:.1f}K")
        rows.append((e.name, e.family, params, "yes" if e.offline else "no", e.where))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    return 0
