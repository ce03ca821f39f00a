"""Train a DDPM U-Net (book ch. 15): pick x_0 from the data, t ~ U{0..T-1}, eps ~ N(0, I), and regress the
U-Net's output on eps from x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps (the "simple" loss: MSE, or
L1 with loss="l1").

    from genzoo.diffusion.train import TrainConfig, train
    train(TrainConfig(data="mnist", out_dir="runs/mnist-ddpm", steps=3000))
    train(TrainConfig(data="path/to/flowers", out_dir="runs/flowers"))   # size and channels from the folder
    train(TrainConfig(out_dir="runs/mine"), data=images, model=my_unet)  # (N, C, H, W) in [-1, 1], your U-Net

AdamW, cosine learning rate with linear warmup, an EMA copy of the weights (what gets saved and sampled),
mixed precision per config.dtype. The run folder is genzoo.training's: the EMA U-Net (diffusion.from_pretrained
and `genzoo sample out_dir` load it, with its scheduler config), train_state.pt (raw and EMA weights, optimizer,
per-rank RNG), log.jsonl, loss.png, samples/step-N.png (16 images, 20 DDIM steps, fixed seed), checkpoints/.
steps=0 evaluates the starting EMA U-Net instead: the loop's denoising loss on a seeded 256 of the images (no
validation split) with seeded timesteps and noise (eval_loss), nothing trained or saved (see genzoo.training).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import training
from ..data import ImageFolder, augment
from ..errors import ConfigError
from .schedulers import DDIMScheduler, DDPMScheduler
from .unet import UNet, UNetConfig

LOSSES = ("mse", "l1")
RUN_FIELDS = ("data", "size", "channels", "fit", "flip", "block_out_channels", "attention", "layers_per_block",
              "attention_head_dim", "norm_num_groups", "dropout", "num_train_timesteps", "beta_schedule", "loss")


@dataclass
class TrainConfig(training.TrainConfig):
    out_dir: str = "runs/diffusion"
    data: str = "mnist"                 # "mnist" (genzoo.datasets, split "train") or a folder of images
    size: int | None = None             # image side (None: 28 for MNIST, the folder's own size)
    channels: int | None = None         # None: 1 for MNIST, 1 or 3 as the folder's images are
    fit: str = "crop"                   # how folder images reach `size`: "crop" (keep aspect) or "stretch"
    flip: bool = False                  # random horizontal flips (off: digits and text must not be mirrored)
    block_out_channels: tuple = (32, 64, 64)
    attention: tuple = (False, False, True)   # self-attention per level (down and up path)
    layers_per_block: int = 1
    attention_head_dim: int | None = None
    norm_num_groups: int = 8
    dropout: float = 0.0
    num_train_timesteps: int = 1000
    beta_schedule: str = "linear"
    loss: str = "mse"                   # "mse" (DDPM's simple loss) or "l1"
    steps: int = 500
    batch_size: int = 32
    lr: float = 2e-4
    warmup_steps: int = 100
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    save_every: int = 100
    sample_every: int = 100
    sample_steps: int = 20              # DDIM steps of the samples/ grids

    def __post_init__(self):
        super().__post_init__()
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {LOSSES}, not {self.loss!r}")
        if isinstance(self.size, (tuple, list)):
            if len(self.size) != 2 or self.size[0] != self.size[1]:
                raise ConfigError(f"the U-Net trains on square images: give one size, not {self.size}")
            self.size = int(self.size[0])
        self.block_out_channels, self.attention = tuple(self.block_out_channels), tuple(self.attention)


def load_images(cfg: TrainConfig) -> torch.Tensor:
    """All training images as one float tensor (N, C, S, S) in [-1, 1]."""
    if cfg.data == "mnist":
        from ..datasets import mnist

        images, _ = mnist("train")
        size = cfg.size or 28
        if size != 28:
            pad = size - 28
            if pad < 0 or pad % 2:
                raise ConfigError(f"MNIST digits are 28x28: size must be 28 or 28 + an even number, got {size}")
            images = F.pad(images, (pad // 2,) * 4, value=-1.0)  # MNIST's background is -1
        if cfg.channels == 3:
            images = images.expand(-1, 3, -1, -1).contiguous()
        return images
    from pathlib import Path

    if not Path(cfg.data).expanduser().is_dir():
        raise ConfigError(f"data must be 'mnist' or a folder of images; {cfg.data!r} is neither")
    folder = ImageFolder(cfg.data, size=cfg.size, channels=cfg.channels, fit=cfg.fit)
    if folder.size[0] != folder.size[1]:
        raise ConfigError(f"the images in {cfg.data} are {folder.size[0]}x{folder.size[1]}; the U-Net trains on "
                          f"square images: pass size (--size S) to crop them square")
    return folder.load()[0]


def build_unet(cfg: TrainConfig, channels: int, size: int) -> UNet:
    if len(cfg.attention) != len(cfg.block_out_channels):
        raise ConfigError(f"attention has {len(cfg.attention)} levels, block_out_channels {len(cfg.block_out_channels)}")
    return UNet(UNetConfig(
        sample_size=size, in_channels=channels, out_channels=channels, block_out_channels=cfg.block_out_channels,
        down_attention=cfg.attention, up_attention=cfg.attention, layers_per_block=cfg.layers_per_block,
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


def denoising_loss(prediction: torch.Tensor, noise: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    return F.l1_loss(prediction, noise) if kind == "l1" else F.mse_loss(prediction, noise)


@torch.no_grad()
def eval_loss(unet, scheduler, images: torch.Tensor, cfg: TrainConfig, device) -> dict:
    """steps=0: the loop's loss for `unet` (the EMA: what a run saves and samples), on a seeded 256 of the images
    with seeded timesteps t ~ U{0..T-1} and noise, in eval mode."""
    unet.eval()
    index = training.eval_indices(len(images), cfg.seed, limit=256)
    g = torch.Generator().manual_seed(cfg.seed)
    total = 0.0
    for chunk in index.split(cfg.batch_size):
        x0 = images[chunk]
        t = torch.randint(0, scheduler.num_train_timesteps, (len(x0),), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        x0, t, noise = x0.to(device), t.to(device), noise.to(device)
        prediction = unet(scheduler.add_noise(x0, noise, t), t).float()
        total += denoising_loss(prediction, noise, cfg.loss).item() * len(x0)
    return {"loss": total / len(index)}


def train(config: TrainConfig, data: torch.Tensor | None = None, model: UNet | None = None) -> training.TrainResult:
    """Run the loop; out_dir ends up holding the EMA U-Net. data: None (config.data) or images (N, C, H, W) in
    [-1, 1]; model: a U-Net to train instead of one built from the config. result.model is the EMA U-Net."""
    with training.Run(config, family="diffusion", run_fields=RUN_FIELDS) as run:
        cfg, device = run.config, run.device
        images = load_images(cfg) if data is None else data.float()
        n, channels, size = images.shape[0], images.shape[1], images.shape[-1]
        if model is None:
            model = build_unet(cfg, channels, size)
        model.to(device).train()
        ema = copy.deepcopy(model).eval().requires_grad_(False)
        scheduler = DDPMScheduler(num_train_timesteps=cfg.num_train_timesteps, beta_schedule=cfg.beta_schedule)
        schedule_config = {k: v for k, v in scheduler.config.items() if k != "_class_name"}
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        run.restore(models={"model": model, "ema": ema}, optimizers={"optimizer": optimizer})
        if run.eval_only:
            return run.evaluation(eval_loss(ema, scheduler, images, cfg, device), ema)
        total = cfg.total_steps(training.steps_per_epoch(n, cfg.batch_size, run.dist.world))
        run.progress(total)

        def save_model(folder):
            ema.save_pretrained(folder, scheduler_config=schedule_config)

        for step in range(run.step, total):
            lr = cfg.lr * cosine_with_warmup(step, cfg.warmup_steps, total)
            for group in optimizer.param_groups:
                group["lr"] = lr
            # batch, flips, timesteps and noise all come from this rank's data generator (saved, so resumable)
            g = run.data_rng
            x0 = augment(images[torch.randint(0, n, (cfg.batch_size,), generator=g)], g, flip=cfg.flip)
            t = torch.randint(0, scheduler.num_train_timesteps, (cfg.batch_size,), generator=g)
            noise = torch.randn(x0.shape, generator=g)
            loss_value = 0.0
            for (x0s, ts, noises), weight in training.micro_batches((x0, t, noise), cfg.grad_accum):
                x0s, ts, noises = x0s.to(device), ts.to(device), noises.to(device)
                with run.autocast():
                    loss = denoising_loss(model(scheduler.add_noise(x0s, noises, ts), ts).float(), noises, cfg.loss)
                run.backward(loss * weight)
                loss_value += loss.item() * weight
            run.optimizer_step(optimizer, model.parameters(), grad_clip=cfg.grad_clip)
            done = step + 1
            ema_update(ema, model, cfg.ema_decay, done)
            run.log(done, {"loss": loss_value}, lr=lr)
            if run.dist.main and run.due(done, cfg.sample_every):
                write_samples(ema, scheduler, run.sample_path(done), cfg.sample_steps)
            if run.save_due(done):
                run.save(done, save_model, {"model": model, "ema": ema}, {"optimizer": optimizer})
        return run.result(ema)


@torch.no_grad()
def write_samples(unet, train_scheduler, path, steps: int = 20, n: int = 16):
    from ..images import save_image
    from .sampling import sample

    scheduler = DDIMScheduler.from_config({k: v for k, v in train_scheduler.config.items() if k != "_class_name"})
    images = sample(unet, scheduler, n=n, steps=min(steps, train_scheduler.num_train_timesteps), seed=0,
                    progress=False)
    return save_image(images, path, nrow=4, overwrite=True)  # the run folder is this run's own
