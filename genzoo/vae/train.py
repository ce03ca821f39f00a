"""Training a VAE: reconstruction loss + beta * KL, checkpoints via save_pretrained, resumable.

    from genzoo import datasets, vae
    from genzoo.vae.train import TrainConfig, train
    images, _ = datasets.mnist("train")
    model = vae.ConvVAE(vae.ConvVAEConfig(in_channels=1, image_size=28, channels=(32, 64), latent_dim=16))
    train(model, images, TrainConfig(out_dir="runs/mnist-vae", epochs=10))

The loss per example is  recon(x, x_hat) + beta * KL(q(z|x) || N(0, I)),  both summed over pixels / latent
dimensions and averaged over the batch. recon="bce" treats pixels as Bernoulli probabilities ((x + 1) / 2, on the
decoder's logits: pytorch/examples' loss); recon="mse" is a Gaussian likelihood with unit variance (halved
squared error). A plain autoencoder (variational=False) has no KL term.

Every `save_every` steps and at the end, out_dir gets the model (save_pretrained: model.safetensors +
config.json) and training_state.pt (optimizer, step, history); `resume=True` continues from them. Batch order
and sampling noise derive from (seed, epoch), so a resumed run, even one interrupted mid-epoch, takes the same
steps as an uninterrupted one.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..errors import CheckpointError, ConfigError
from ..runtime import resolve_device

STATE_NAME = "training_state.pt"


@dataclass
class TrainConfig:
    out_dir: str = "runs/vae"
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    beta: float = 1.0            # weight of the KL term (beta-VAE); 1 is the ELBO
    recon: str = "bce"           # "bce" (Bernoulli pixels, MNIST) or "mse" (RGB photos)
    seed: int = 0
    device: str = "auto"
    save_every: int = 0          # steps between checkpoints (0: only at the end of each epoch)
    resume: bool = True          # continue from out_dir if it holds a training_state.pt
    log_every: int = 50

    def __post_init__(self):
        if self.recon not in ("bce", "mse"):
            raise ConfigError(f"recon must be 'bce' or 'mse', not {self.recon!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.beta < 0:
            raise ConfigError("epochs, batch_size and lr must be positive and beta non-negative")


def vae_loss(model, x: torch.Tensor, recon: str = "bce", beta: float = 1.0, generator=None):
    """-> (loss, reconstruction term, KL term), each averaged over the batch."""
    mean, logvar = model.encode(x)
    z = model.reparameterize(mean, logvar, generator)
    if recon == "bce":
        if not hasattr(model, "decode_logits"):
            raise ConfigError(f"{type(model).__name__} has no Bernoulli decoder: train it with recon='mse'")
        target = (x + 1) / 2
        rec = F.binary_cross_entropy_with_logits(model.decode_logits(z), target, reduction="none")
    else:
        rec = 0.5 * (model.decode(z) - x).pow(2)
    rec = rec.flatten(1).sum(1).mean()
    kl = model.kl_divergence(mean, logvar).mean() if logvar is not None else rec.new_zeros(())
    return rec + beta * kl, rec, kl


@torch.no_grad()
def evaluate(model, images: torch.Tensor, recon: str = "bce", batch_size: int = 500) -> float:
    """Mean reconstruction loss (per image, as in training) of the posterior mean: lower is better."""
    was_training = model.training
    model.eval()
    param = next(model.parameters())
    total = 0.0
    for chunk in images.split(batch_size):
        x = chunk.to(param.device, param.dtype)
        mean, _ = model.encode(x)
        if recon == "bce":
            rec = F.binary_cross_entropy_with_logits(model.decode_logits(mean), (x + 1) / 2, reduction="none")
        else:
            rec = 0.5 * (model.decode(mean) - x).pow(2)
        total += rec.flatten(1).sum(1).sum().item()
    model.train(was_training)
    return total / len(images)


def train(model, images: torch.Tensor, config: TrainConfig, heldout: torch.Tensor | None = None):
    """Train `model` on `images` (N, C, H, W) in [-1, 1]; returns the model (on config.device) and a history list."""
    device = resolve_device(config.device)
    out_dir = Path(config.out_dir)
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    step, history = 0, []
    state_path = out_dir / STATE_NAME
    if config.resume and state_path.is_file():
        step, history = _resume(model, optimizer, out_dir, device)
        print(f"resumed from {out_dir} at step {step}")
    steps_per_epoch = -(-len(images) // config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    if step >= total_steps:
        return model.eval(), history
    bar = tqdm(total=total_steps, initial=step, desc="train vae", unit="step")
    start = time.time()
    while step < total_steps:
        epoch, offset = divmod(step, steps_per_epoch)
        # The permutation depends only on (seed, epoch): a resumed run sees the same batches.
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(config.seed * 100_003 + epoch))
        noise = torch.Generator(device=device).manual_seed(config.seed * 7919 + epoch)
        batches = order.split(config.batch_size)
        if offset and getattr(model.config, "variational", True):
            # Resuming mid-epoch: draw the noise the finished steps drew (as reparameterize does), so the run
            # continues exactly as an uninterrupted one would.
            shape = model.latent_shape(tuple(images.shape[-2:]))
            for batch in batches[:offset]:
                torch.randn((len(batch), *shape), generator=noise, device=device)
        for batch in batches[offset:]:
            x = images[batch].to(device, non_blocking=True)
            loss, rec, kl = vae_loss(model, x, config.recon, config.beta, generator=noise)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            bar.update(1)
            if step % config.log_every == 0 or step == total_steps:
                bar.set_postfix(loss=f"{loss.item():.2f}", rec=f"{rec.item():.2f}", kl=f"{kl.item():.2f}")
            if config.save_every and step % config.save_every == 0:
                save_checkpoint(model, optimizer, out_dir, step, history, config)
        record = {"epoch": epoch + 1, "step": step, "loss": loss.item(), "seconds": round(time.time() - start, 1)}
        if heldout is not None:
            record["heldout_recon"] = evaluate(model, heldout, config.recon)
        history.append(record)
        tqdm.write(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))
        save_checkpoint(model, optimizer, out_dir, step, history, config)
    bar.close()
    return model.eval(), history


def save_checkpoint(model, optimizer, out_dir: Path, step: int, history: list, config: TrainConfig) -> None:
    """Model via save_pretrained, then the optimizer state; each written to a temp name and renamed (no half files)."""
    was_training = model.training
    model.save_pretrained(out_dir)
    state = {"step": step, "optimizer": optimizer.state_dict(), "history": history, "train_config": asdict(config)}
    tmp = out_dir / (STATE_NAME + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, out_dir / STATE_NAME)
    model.train(was_training)


def _resume(model, optimizer, out_dir: Path, device):
    from ..checkpoint import load_state_dict, read_config

    config = read_config(out_dir)
    if config.get("genzoo_family") != "vae" or config.get("model", config.get("kind")) != model.config.model_type:
        raise CheckpointError(f"{out_dir} holds a {config.get('genzoo_family')}/{config.get('model', config.get('kind'))} run, not a "
                              f"vae/{model.config.model_type}: pick another --out, or pass resume=False to start over")
    saved = {k: v for k, v in config.items() if not k.startswith("genzoo_")}
    current = model.config.to_dict()
    if saved != current:
        raise CheckpointError(f"{out_dir} was trained with config {saved}, not {current}: pick another --out")
    model.load_state_dict(load_state_dict(out_dir / "model.safetensors", map_location=device))
    state = torch.load(out_dir / STATE_NAME, map_location=device, weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    return int(state["step"]), list(state.get("history", []))
