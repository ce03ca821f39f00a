"""Train a small GPT on a text file (book ch. 12): a plain loop, nanoGPT style.

    from genzoo.gpt2.train import TrainConfig, train
    train(TrainConfig(out_dir="out-shakespeare", max_iters=2000))      # Tiny Shakespeare, characters
    train(TrainConfig(out_dir="out-shakespeare", max_iters=4000, resume=True))   # carry on where it stopped

    genzoo train gpt2 --out out-shakespeare --max-iters 2000
    torchrun --nproc_per_node=2 -m genzoo train gpt2 --out out-ddp ...        # DDP: gloo on CPU, nccl on GPU

Data: "shakespeare" (genzoo.datasets: first 90% train, last 10% validation) or the path of any UTF-8 text file
(its last `val_fraction` is the validation set). Tokenizer: "char" (default) or "gpt2" (BPE).
Why characters by default: on a 1 MB corpus a 65-symbol alphabet keeps the model small (GPT-2's 50,257-row
embedding alone would be 6.4M parameters at width 128, bigger than the whole network) and every symbol is seen
thousands of times; it is also the setting nanoGPT's baseline (val loss ~1.88 on CPU) reports, so the numbers
compare. Use tokenizer="gpt2" (or init_from="gpt2" to fine-tune OpenAI's weights) for larger text.

Every eval_interval steps the validation loss is estimated and the model is saved to out_dir with
save_pretrained (model.safetensors + config.json, loadable with gpt2.from_pretrained(out_dir)), next to
train_state.pt (optimizer, step, data RNG) that resume=True reads back.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import torch
import torch.nn as nn

from .. import checkpoint, datasets
from ..errors import CheckpointError, ConfigError
from ..runtime import resolve_device, resolve_dtype
from .model import GPT, GPTConfig
from .tokenizer import EOT_ID, CharTokenizer, Tokenizer

STATE_NAME = "train_state.pt"


@dataclass
class TrainConfig:
    out_dir: str = "out-gpt2"
    data: str = "shakespeare"         # "shakespeare" or a path to a text file
    tokenizer: str = "char"           # "char" or "gpt2"
    val_fraction: float = 0.1         # for a text file
    init_from: str | None = None      # fine-tune a pretrained model (name or path) instead of starting from scratch
    resume: bool = False              # continue from out_dir's checkpoint and train_state.pt
    # model (ignored when resuming or fine-tuning: the checkpoint decides; resuming also keeps its block_size)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64
    dropout: float = 0.0
    bias: bool = True
    # optimisation
    batch_size: int = 12
    max_iters: int = 2000
    learning_rate: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    weight_decay: float = 0.1
    beta2: float = 0.99
    grad_clip: float = 1.0
    # evaluation, logging, runtime
    eval_interval: int = 250
    eval_iters: int = 20
    seed: int = 1337
    device: str = "auto"
    dtype: str | None = None          # autocast dtype on CUDA ("bfloat16"/"float16"); CPU trains in float32
    progress: bool = True

    def __post_init__(self):
        if self.tokenizer not in ("char", "gpt2"):
            raise ConfigError(f"tokenizer must be 'char' or 'gpt2', not {self.tokenizer!r}")
        for name in ("batch_size", "max_iters", "eval_interval", "eval_iters", "block_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, not {getattr(self, name)}")


# --- data ----------------------------------------------------------------------------------------------------

def load_text(cfg: TrainConfig) -> tuple[str, str]:
    if cfg.data == "shakespeare":
        return datasets.shakespeare("train"), datasets.shakespeare("val")
    path = Path(cfg.data).expanduser()
    if not path.is_file():
        raise ConfigError(f"no text file at {path} (data is 'shakespeare' or the path of a UTF-8 text file)")
    text = path.read_text(encoding="utf-8")
    cut = int(len(text) * (1 - cfg.val_fraction))
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

def learning_rate(step: int, cfg: TrainConfig) -> float:
    """Linear warmup, then cosine decay to min_lr at max_iters."""
    if step < cfg.warmup_iters:
        return cfg.learning_rate * (step + 1) / (cfg.warmup_iters + 1)
    progress = min(1.0, (step - cfg.warmup_iters) / max(1, cfg.max_iters - cfg.warmup_iters))
    return cfg.min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (cfg.learning_rate - cfg.min_lr)


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    # Weight decay on matrices only (not on biases, LayerNorm gains, ...), as GPT-2/nanoGPT do.
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(0.9, cfg.beta2))


# --- distributed -------------------------------------------------------------------------------------------------

def setup_distributed(device_name: str):
    """(rank, world_size, device). Under torchrun (WORLD_SIZE > 1) joins the process group: nccl on CUDA, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, resolve_device(device_name)
    import torch.distributed as dist

    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


def all_reduce_mean(value: float, world: int, device) -> float:
    if world == 1:
        return value
    import torch.distributed as dist

    t = torch.tensor([value], device=device, dtype=torch.float64)
    dist.all_reduce(t)
    return float(t) / world


# --- the loop ----------------------------------------------------------------------------------------------------

@torch.no_grad()
def estimate_loss(model, splits: dict, cfg: TrainConfig, rank: int, world: int, device, autocast) -> dict:
    """Mean loss over eval_iters batches per split; the same batches at every evaluation (a fixed generator)."""
    model.eval()
    out = {}
    for i, (name, data) in enumerate(splits.items()):
        g = torch.Generator().manual_seed(cfg.seed + 10_000 * (i + 1) + rank)
        losses = []
        for _ in range(cfg.eval_iters):
            x, y = get_batch(data, cfg.block_size, cfg.batch_size, g, device)
            with autocast:
                _, loss = model(x, y)
            losses.append(loss.item())
        out[name] = all_reduce_mean(sum(losses) / len(losses), world, device)
    model.train()
    return out


def save_checkpoint(model: GPT, optimizer, step: int, best_val: float, data_rng: torch.Generator, cfg: TrainConfig):
    out = Path(cfg.out_dir)
    model.save_pretrained(out)
    state = {"step": step, "best_val_loss": best_val, "optimizer": optimizer.state_dict(),
             "data_rng": data_rng.get_state(), "train_config": asdict(cfg)}
    tmp = out / (STATE_NAME + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, out / STATE_NAME)  # a crash while saving never leaves a half-written state behind


def build_model(cfg: TrainConfig, train_text: str, val_text: str, device):
    """(model, tokenizer, train state or None) for a fresh run, a fine-tune or a resume."""
    if cfg.resume:
        from .loading import from_pretrained

        state_path = Path(cfg.out_dir) / STATE_NAME
        if not state_path.is_file():
            raise CheckpointError(f"cannot resume: no {STATE_NAME} in {cfg.out_dir} (train without resume first)")
        model = from_pretrained(cfg.out_dir, device=device, dtype=torch.float32)
        state = checkpoint.load_state_dict(state_path)  # weights_only: optimizer state is tensors and numbers
        return model, model.tokenizer, state
    if cfg.init_from:
        from .loading import from_pretrained

        model = from_pretrained(cfg.init_from, device=device, dtype=torch.float32)
        return model, model.tokenizer, None
    tokenizer = make_tokenizer(cfg.tokenizer, train_text + val_text)
    char = cfg.tokenizer == "char"
    config = GPTConfig(vocab_size=tokenizer.vocab_size, n_positions=cfg.block_size, n_layer=cfg.n_layer,
                       n_head=cfg.n_head, n_embd=cfg.n_embd, dropout=cfg.dropout, bias=cfg.bias,
                       bos_token_id=tokenizer.stoi.get("\n", 0) if char else EOT_ID,
                       eos_token_id=None if char else EOT_ID,
                       tokenizer=tokenizer.to_config() if char else {"type": "gpt2"})
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    return GPT(config).to(device), tokenizer, None


def train(cfg: TrainConfig) -> dict:
    """Run the loop; returns {"step", "train_loss", "val_loss", "best_val_loss", "seconds"} (rank 0's view)."""
    from tqdm.auto import tqdm

    rank, world, device = setup_distributed(cfg.device)
    master = rank == 0
    train_text, val_text = load_text(cfg)
    model, tokenizer, state = build_model(cfg, train_text, val_text, device)
    if state is not None:  # resuming: the run's window size is the checkpoint's, whatever the defaults say
        cfg = replace(cfg, block_size=int(state["train_config"]["block_size"]))
    model.train()
    if cfg.block_size > model.config.n_positions:
        raise ConfigError(f"block_size {cfg.block_size} exceeds the model's context window {model.config.n_positions}")
    splits = {"train": torch.tensor(tokenizer.encode(train_text), dtype=torch.long),
              "val": torch.tensor(tokenizer.encode(val_text), dtype=torch.long)}
    for name, data in splits.items():
        if len(data) <= cfg.block_size + 1:
            raise ConfigError(f"the {name} split has {len(data)} tokens, fewer than block_size + 2")

    optimizer = make_optimizer(model, cfg)
    data_rng = torch.Generator().manual_seed(cfg.seed + rank)
    start, best_val = 0, float("inf")
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        data_rng.set_state(state["data_rng"])
        start, best_val = int(state["step"]), float(state["best_val_loss"])
    raw_model = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    amp_dtype = resolve_dtype(cfg.dtype)
    use_amp = device.type == "cuda" and amp_dtype in (torch.bfloat16, torch.float16)
    autocast = torch.autocast("cuda", dtype=amp_dtype) if use_amp else torch.autocast("cpu", enabled=False)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

    started = time.time()
    losses = {}
    loss_value = float("nan")
    bar = tqdm(range(start, cfg.max_iters), initial=start, total=cfg.max_iters, desc="training", unit="it",
               disable=not (master and cfg.progress))
    for step in bar:
        if step % cfg.eval_interval == 0 and step > start:
            losses = estimate_loss(model, splits, cfg, rank, world, device, autocast)
            best_val = min(best_val, losses["val"])
            if master:
                bar.write(f"step {step}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
                save_checkpoint(raw_model, optimizer, step, best_val, data_rng, cfg)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, cfg)
        x, y = get_batch(splits["train"], cfg.block_size, cfg.batch_size, data_rng, device)
        with autocast:
            _, loss = model(x, y)
        scaler.scale(loss).backward()
        if cfg.grad_clip:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        loss_value = loss.item()
        bar.set_postfix(loss=f"{loss_value:.3f}", refresh=False)
    bar.close()

    step = max(start, cfg.max_iters)
    if step > start or not losses:
        losses = estimate_loss(model, splits, cfg, rank, world, device, autocast)
        best_val = min(best_val, losses["val"])
    if master:
        print(f"step {step}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f} "
              f"({time.time() - started:.0f} s); saved to {cfg.out_dir}")
        save_checkpoint(raw_model, optimizer, step, best_val, data_rng, cfg)
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    return {"step": step, "train_loss": losses["train"], "val_loss": losses["val"], "best_val_loss": best_val,
            "last_batch_loss": loss_value, "seconds": time.time() - started}


def config_from_args(**kwargs) -> TrainConfig:
    known = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in kwargs.items() if k in known and v is not None})
