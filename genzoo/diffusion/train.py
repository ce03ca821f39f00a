"""Train a DDPM U-Net (book ch. 15): pick x_0 from the data, t ~ U{0..T-1}, eps ~ N(0, I), and regress the
U-Net's output on eps from x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps (the "simple" loss).

    from genzoo.diffusion.train import TrainConfig, train
    train(TrainConfig(data="mnist", out_dir="runs/mnist-ddpm", steps=3000))
    train(TrainConfig(data="path/to/flowers", image_size=64, out_dir="runs/flowers"))   # a folder of images

AdamW, cosine learning rate with linear warmup, an EMA copy of the weights (what gets saved and sampled),
mixed precision on CUDA (bf16 when supported, else fp16 with loss scaling). Every `save_every` steps and at the
end, out_dir gets the EMA U-Net in genzoo's format (loadable with diffusion.from_pretrained) and a training state
(train_state.pt: raw weights, optimizer, step, RNG) from which `resume=True` continues where it stopped.
"""
from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..runtime import resolve_device
from .schedulers import DDPMScheduler
from .unet import UNet, UNetConfig

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


@dataclass
class TrainConfig:
    data: str = "mnist"                 # "mnist" (genzoo.datasets, split "train") or a folder of images
    out_dir: str = "runs/diffusion"
    image_size: int | None = None       # None: 28 for MNIST, 64 for a folder
    channels: int | None = None         # None: 1 for MNIST, 3 for a folder
    block_out_channels: tuple = (32, 64, 64)
    attention: tuple = (False, False, True)   # self-attention per level (down and up path)
    layers_per_block: int = 1
    attention_head_dim: int | None = None
    norm_num_groups: int = 8
    dropout: float = 0.0
    num_train_timesteps: int = 1000
    beta_schedule: str = "linear"
    steps: int = 2000
    batch_size: int = 64
    lr: float = 2e-4
    warmup_steps: int = 100
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    hflip: bool | None = None           # random horizontal flips (None: on for folders, off for digits)
    mixed_precision: bool = True        # only on CUDA
    seed: int = 0
    device: str = "auto"
    save_every: int = 500
    log_every: int = 50
    resume: bool = False
    state_path: str | None = None       # where train_state.pt goes (None: out_dir/train_state.pt)
    progress: bool = True


def load_images(cfg: TrainConfig) -> torch.Tensor:
    """All training images as one float tensor (N, C, S, S) in [-1, 1]."""
    if cfg.data == "mnist":
        from ..datasets import mnist

        images, _ = mnist("train")
        size = cfg.image_size or 28
        if size != 28:
            pad = size - 28
            if pad < 0 or pad % 2:
                raise ConfigError(f"MNIST digits are 28x28: image_size must be 28 or 28 + an even number, got {size}")
            images = F.pad(images, (pad // 2,) * 4, value=-1.0)  # MNIST's background is -1
        return images
    folder = Path(cfg.data).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"data must be 'mnist' or a folder of images; {cfg.data!r} is neither")
    from ..images import load_image

    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ConfigError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
    size, channels = cfg.image_size or 64, cfg.channels or 3
    return torch.cat([load_image(p, channels=channels, size=(size, size)) for p in files])


def build_unet(cfg: TrainConfig, channels: int, size: int) -> UNet:
    attention = tuple(cfg.attention)
    return UNet(UNetConfig(
        sample_size=size, in_channels=channels, out_channels=channels, block_out_channels=tuple(cfg.block_out_channels),
        down_attention=attention, up_attention=attention, layers_per_block=cfg.layers_per_block,
        attention_head_dim=cfg.attention_head_dim, norm_num_groups=cfg.norm_num_groups, dropout=cfg.dropout,
        norm_eps=1e-6, downsample_padding=1, flip_sin_to_cos=True, freq_shift=0))


def cosine_with_warmup(step: int, warmup: int, total: int) -> float:
    """LR multiplier: linear 0 -> 1 over `warmup` steps, then a half cosine down to 0 at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float, step: int) -> None:
    # a short warmup of the decay, so that the EMA forgets the random init quickly in short runs
    decay = min(decay, (1 + step) / (10 + step))
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p.detach(), 1 - decay)


@dataclass
class TrainResult:
    out_dir: Path
    losses: list = field(default_factory=list)  # the loss of every step run in this call
    step: int = 0


def train(cfg: TrainConfig) -> TrainResult:
    """Run the loop; out_dir ends up holding the EMA U-Net."""
    if cfg.steps < 1 or cfg.batch_size < 1:
        raise ConfigError(f"steps and batch_size must be >= 1 (got {cfg.steps}, {cfg.batch_size})")
    device = resolve_device(cfg.device)
    out_dir = Path(cfg.out_dir)
    state_path = Path(cfg.state_path) if cfg.state_path else out_dir / "train_state.pt"
    torch.manual_seed(cfg.seed)
    data = load_images(cfg)
    n, channels, size = data.shape[0], data.shape[1], data.shape[-1]
    hflip = cfg.hflip if cfg.hflip is not None else cfg.data != "mnist"

    model = build_unet(cfg, channels, size).to(device)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    scheduler = DDPMScheduler(num_train_timesteps=cfg.num_train_timesteps, beta_schedule=cfg.beta_schedule)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    lr_schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: cosine_with_warmup(s, cfg.warmup_steps, cfg.steps))
    use_amp = cfg.mixed_precision and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    generator = torch.Generator().manual_seed(cfg.seed)  # batches, timesteps and noise: reproducible

    step = 0
    if cfg.resume and state_path.is_file():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        lr_schedule.load_state_dict(state["lr_schedule"])
        scaler.load_state_dict(state["scaler"])
        generator.set_state(state["generator"])
        step = int(state["step"])
        print(f"resumed from {state_path} at step {step}")

    def save():
        schedule = {k: v for k, v in scheduler.config.items() if k != "_class_name"}
        ema.save_pretrained(out_dir, scheduler_config=schedule)
        state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = state_path.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "optimizer": optimizer.state_dict(),
                    "lr_schedule": lr_schedule.state_dict(), "scaler": scaler.state_dict(),
                    "generator": generator.get_state(), "step": step,
                    "train_config": json.dumps(asdict(cfg), default=str)}, tmp)
        tmp.replace(state_path)  # a crash while saving never destroys the previous state

    from tqdm.auto import tqdm

    model.train()
    losses, started = [], time.time()
    bar = tqdm(total=cfg.steps, initial=step, desc="training", disable=not cfg.progress)
    while step < cfg.steps:
        index = torch.randint(0, n, (cfg.batch_size,), generator=generator)
        x0 = data[index]
        if hflip:
            flip = torch.rand(cfg.batch_size, generator=generator) < 0.5
            x0 = torch.where(flip[:, None, None, None], x0.flip(-1), x0)
        t = torch.randint(0, scheduler.num_train_timesteps, (cfg.batch_size,), generator=generator)
        noise = torch.randn(x0.shape, generator=generator)
        x0, t, noise = x0.to(device), t.to(device), noise.to(device)
        xt = scheduler.add_noise(x0, noise, t)

        with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
            loss = F.mse_loss(model(xt, t).float(), noise)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        lr_schedule.step()
        step += 1
        ema_update(ema, model, cfg.ema_decay, step)
        losses.append(loss.item())
        bar.update(1)
        if step % cfg.log_every == 0 or step == cfg.steps:
            recent = sum(losses[-cfg.log_every:]) / len(losses[-cfg.log_every:])
            bar.set_postfix(loss=f"{recent:.4f}")
            if not cfg.progress:
                print(f"step {step}/{cfg.steps} loss {recent:.4f} lr {lr_schedule.get_last_lr()[0]:.2e} "
                      f"{time.time() - started:.0f}s", flush=True)
        if step % cfg.save_every == 0 or step == cfg.steps:
            save()
    bar.close()
    if not (out_dir / "config.json").is_file():
        save()
    return TrainResult(out_dir, losses, step)
