"""Train a small GPT on a text file (book ch. 12): a plain loop, nanoGPT style, on genzoo's training contract.

    from genzoo.gpt2.train import TrainConfig, train
    train(TrainConfig(out_dir="runs/shakespeare", steps=2000))              # Tiny Shakespeare, characters
    train(TrainConfig(out_dir="runs/shakespeare", steps=4000, resume=True))  # carry on where it stopped
    train(TrainConfig(out_dir="runs/mine"), model=my_gpt)                   # a model you built (GPT(GPTConfig(...)))

    genzoo train gpt2 --out runs/shakespeare --steps 2000
    torchrun --nproc_per_node=2 -m genzoo train gpt2 --out runs/ddp ...     # DDP: gloo on CPU, nccl on GPU

Data: "shakespeare" (genzoo.datasets: first 90% train, last 10% validation), the path of any UTF-8 text file
(its last `val_fraction` is the validation set), or, through train(data=...), a string or a (train, val) pair.
Tokenizer: "char" (default) or "gpt2" (BPE).
Why characters by default: on a 1 MB corpus a 65-symbol alphabet keeps the model small (GPT-2's 50,257-row
embedding alone would be 6.4M parameters at width 128, bigger than the whole network) and every symbol is seen
thousands of times; it is also the setting nanoGPT's baseline (val loss ~1.88 on CPU) reports, so the numbers
compare. Use tokenizer="gpt2" (or init_from="gpt2" to fine-tune OpenAI's weights) for larger text.

The run folder is genzoo.training's: the model (gpt2.from_pretrained(out_dir) loads it), train_state.pt, log.jsonl
(train loss every log_every steps, train/val loss every eval_every), loss.png, samples/step-N.txt (text from an
empty prompt) and checkpoints/step-N/ every keep_every steps. A resume takes the data, tokenizer (so the
alphabet) and architecture from the run; init_from fine-tunes with this config's dropout.
steps=0 (nanoGPT's eval_only) evaluates the starting model (fresh, init_from, the given model, or with resume the
run's) as the loop does every eval_every steps: train_loss and val_loss over eval_iters batches, printed and
written to a new out_dir's log.jsonl; nothing is trained or saved (genzoo.training's docstring has the rules).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from .. import datasets, training
from ..errors import ConfigError
from .model import GPT, GPTConfig
from .tokenizer import EOT_ID, CharTokenizer, Tokenizer

STATE_NAME = training.STATE_NAME
# What defines a run: a resume takes these from the saved config.
RUN_FIELDS = ("data", "tokenizer", "val_fraction", "init_from", "n_layer", "n_head", "n_embd", "block_size",
              "dropout", "bias")


@dataclass
class TrainConfig(training.TrainConfig):
    out_dir: str = "runs/gpt2"
    data: str = "shakespeare"         # "shakespeare" or a path to a text file
    tokenizer: str = "char"           # "char" or "gpt2"
    val_fraction: float = 0.1         # for a text file
    init_from: str | None = None      # fine-tune a pretrained model (name or path) instead of starting from scratch
    # model (a fine-tune takes the architecture of init_from, a resume the run's)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64
    dropout: float = 0.0
    bias: bool = True
    # optimisation
    steps: int = 1000
    batch_size: int = 12
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    weight_decay: float = 0.1
    beta2: float = 0.99
    grad_clip: float = 1.0
    # evaluation, logging
    eval_every: int = 250
    eval_iters: int = 20
    save_every: int = 250
    sample_every: int = 250
    seed: int = 1337

    def __post_init__(self):
        super().__post_init__()
        if self.tokenizer not in ("char", "gpt2"):
            raise ConfigError(f"tokenizer must be 'char' or 'gpt2', not {self.tokenizer!r}")
        for name in ("eval_every", "eval_iters", "block_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, not {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), not {self.dropout}")


# --- data ----------------------------------------------------------------------------------------------------

def load_text(cfg: TrainConfig) -> tuple[str, str]:
    if cfg.data == "shakespeare":
        return datasets.shakespeare("train"), datasets.shakespeare("val")
    path = Path(cfg.data).expanduser()
    if not path.is_file():
        raise ConfigError(f"no text file at {path} (data is 'shakespeare' or the path of a UTF-8 text file)")
    return split_text(path.read_text(encoding="utf-8"), cfg.val_fraction)


def split_text(text: str, val_fraction: float) -> tuple[str, str]:
    cut = int(len(text) * (1 - val_fraction))
    return text[:cut], text[cut:]


def make_tokenizer(kind: str, text: str):
    return CharTokenizer.from_text(text) if kind == "char" else Tokenizer()


def get_batch(data: torch.Tensor, block_size: int, batch_size: int, generator: torch.Generator, device):
    """Random windows of the token stream: x = tokens[i:i+T], y = tokens[i+1:i+T+1]."""
    starts = torch.randint(len(data) - block_size - 1, (batch_size,), generator=generator)
    offsets = starts.unsqueeze(1) + torch.arange(block_size + 1)
    chunk = data[offsets].to(device, non_blocking=True)
    return chunk[:, :-1], chunk[:, 1:]


# --- schedule and optimiser ------------------------------------------------------------------------------------

def learning_rate(step: int, cfg: TrainConfig, total: int | None = None) -> float:
    """Linear warmup, then cosine decay to min_lr at the last step."""
    total = total or cfg.steps
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / (cfg.warmup_steps + 1)
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps))
    return cfg.min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (cfg.lr - cfg.min_lr)


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    # Weight decay on matrices only (not on biases, LayerNorm gains, ...), as GPT-2/nanoGPT do.
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, cfg.beta2))


def set_dropout(model: GPT, p: float) -> None:
    """Give a loaded model another dropout rate (its config and every dropout it applies)."""
    model.config.dropout = p
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = p
        elif hasattr(module, "dropout") and isinstance(module.dropout, float):
            module.dropout = p  # attention's dropout, a float passed to attention()


# --- the model -----------------------------------------------------------------------------------------------------

def check_fine_tune(cfg: TrainConfig, model: GPT) -> None:
    """A fine-tune keeps the pretrained architecture: an architecture setting asked for that differs from it is an
    error, not silently ignored (dropout, block_size and the optimisation settings do apply)."""
    defaults = TrainConfig.__dataclass_fields__
    explicit = getattr(cfg, "explicit_fields", None)
    for name in ("n_layer", "n_head", "n_embd", "bias"):
        given, pretrained = getattr(cfg, name), getattr(model.config, name)
        asked = name in explicit if explicit is not None else given != defaults[name].default
        if asked and given != pretrained:
            raise ConfigError(f"init_from={cfg.init_from!r} has {name}={pretrained!r}; {name}={given!r} cannot apply "
                              f"to a fine-tune: leave it out (or train from scratch without init_from)")


def build_model(cfg: TrainConfig, text: str, device, resume_dir: Path | None = None) -> GPT:
    """The model a run trains: the run's own (resume), a pretrained one (init_from), or a fresh one."""
    from .loading import from_pretrained

    if resume_dir is not None:
        return from_pretrained(resume_dir, device=device, dtype=torch.float32)
    if cfg.init_from:
        model = from_pretrained(cfg.init_from, device=device, dtype=torch.float32)
        check_fine_tune(cfg, model)
        set_dropout(model, cfg.dropout)
        return model
    tokenizer = make_tokenizer(cfg.tokenizer, text)
    char = cfg.tokenizer == "char"
    config = GPTConfig(vocab_size=tokenizer.vocab_size, n_positions=cfg.block_size, n_layer=cfg.n_layer,
                       n_head=cfg.n_head, n_embd=cfg.n_embd, dropout=cfg.dropout, bias=cfg.bias,
                       bos_token_id=tokenizer.stoi.get("\n", 0) if char else EOT_ID,
                       eos_token_id=None if char else EOT_ID,
                       tokenizer=tokenizer.to_config() if char else {"type": "gpt2"})
    return GPT(config).to(device)


# --- the loop ----------------------------------------------------------------------------------------------------

@torch.no_grad()
def estimate_loss(model, splits: dict, cfg: TrainConfig, rank: int = 0, dist=None, autocast=None) -> dict:
    """Mean loss over eval_iters batches per split; the same batches at every evaluation (a fixed generator)."""
    import contextlib

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = {}
    for i, (name, data) in enumerate(splits.items()):
        g = torch.Generator().manual_seed(cfg.seed + 10_000 * (i + 1) + rank)
        losses = []
        for _ in range(cfg.eval_iters):
            x, y = get_batch(data, cfg.block_size, cfg.batch_size, g, device)
            with autocast or contextlib.nullcontext():
                _, loss = model(x, y)
            losses.append(loss.item())
        mean = sum(losses) / len(losses)
        out[name] = dist.mean(mean) if dist is not None else mean
    model.train(was_training)
    return out


def train(config: TrainConfig, data=None, model: GPT | None = None) -> training.TrainResult:
    """Run the loop. data: None (config.data), a text (split by val_fraction) or a (train, val) pair of texts.
    model: a GPT to train instead of building one from the config. Returns a TrainResult (rank 0's view);
    its losses hold the last evaluation's train_loss/val_loss."""
    with training.Run(config, family="gpt2", run_fields=RUN_FIELDS) as run:
        cfg, device = run.config, run.device
        if data is None:
            train_text, val_text = load_text(cfg)
        elif isinstance(data, str):
            train_text, val_text = split_text(data, cfg.val_fraction)
        else:
            train_text, val_text = data
        if model is None:
            model = build_model(cfg, train_text + val_text, device, run.out_dir if run.state else None)
        model.to(device).train()
        if cfg.block_size > model.config.n_positions:
            raise ConfigError(f"block_size {cfg.block_size} exceeds the model's context window "
                              f"{model.config.n_positions}")
        tokenizer = model.tokenizer
        splits = {name: torch.tensor(tokenizer.encode(text), dtype=torch.long)
                  for name, text in (("train", train_text), ("val", val_text))}
        for name, tokens in splits.items():
            if len(tokens) <= cfg.block_size + 1:
                raise ConfigError(f"the {name} split has {len(tokens)} tokens, fewer than block_size + 2")

        optimizer = make_optimizer(model, cfg)
        run.restore(models={"model": model}, optimizers={"optimizer": optimizer})
        if run.eval_only:  # steps=0: nanoGPT's eval_only
            evaluation = estimate_loss(model, splits, cfg, run.dist.rank, run.dist, run.autocast())
            return run.evaluation({"train_loss": evaluation["train"], "val_loss": evaluation["val"]}, model.eval())
        total = cfg.steps
        bar = run.progress(total)
        evaluation = {}

        def save_model(folder):
            model.save_pretrained(folder)

        for step in range(run.step, total):
            lr = learning_rate(step, cfg, total)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y = get_batch(splits["train"], cfg.block_size, cfg.batch_size, run.data_rng, device)
            loss_value = 0.0
            for (xs, ys), weight in training.micro_batches((x, y), cfg.grad_accum):
                with run.autocast():
                    _, loss = model(xs, ys)
                run.backward(loss * weight)
                loss_value += loss.item() * weight
            run.optimizer_step(optimizer, model.parameters(), grad_clip=cfg.grad_clip)
            done = step + 1
            losses = {"loss": loss_value}
            if run.due(done, cfg.eval_every):
                evaluation = estimate_loss(model, splits, cfg, run.dist.rank, run.dist, run.autocast())
                losses.update(train_loss=evaluation["train"], val_loss=evaluation["val"])
                if run.dist.main and cfg.progress:
                    bar.write(f"step {done}: train loss {evaluation['train']:.4f}, val loss {evaluation['val']:.4f}")
            run.log(done, losses, lr=lr)
            if run.dist.main and run.due(done, cfg.sample_every):
                write_sample(model, run.sample_path(done, ".txt"))
            if run.save_due(done):
                run.save(done, save_model, {"model": model}, {"optimizer": optimizer})
        result = run.result(model.eval())
        if evaluation:
            result.losses.update(train_loss=evaluation["train"], val_loss=evaluation["val"])
        return result


@torch.no_grad()
def write_sample(model: GPT, path: Path, max_new_tokens: int = 200) -> Path:
    was_training = model.training
    model.eval()
    text = model.generate_text("", max_new_tokens=max_new_tokens, temperature=0.8, seed=0)
    model.train(was_training)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")
    return path
