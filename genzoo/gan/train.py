"""One GAN training loop for every architecture and loss (book chs. 3-5; pytorch/examples dcgan/main.py).

    G, D = new_gan(PRESETS["mnist-dcgan"], seed=0)
    history = train(G, D, data.mnist("train"), out_dir="runs/mnist", loss="bce", epochs=5)

Each step: (1) D learns to tell a real batch from G's fakes; (2) every `n_critic` D steps, G learns to fool D.
Conditional GANs feed both networks the real batch's labels (G draws fakes of the same classes).
Per epoch: a grid of samples from fixed noise (samples_epoch_NNN.png; .txt rows for non-image GANs), a
checkpoint in genzoo's format (out_dir/checkpoint: both networks + train_state.pt with the optimizers, so
`resume=True` continues), and the loss history (out_dir/history.json).
"""
from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from ..errors import ConfigError
from ..runtime import resolve_device
from . import losses
from .convert import convert_genzoo
from .loading import save_gan
from .models import build, init_weights


def new_gan(config, seed: int | None = 0):
    """A freshly initialised (generator, discriminator) pair; DCGANs get the N(0, 0.02) init of the paper."""
    if seed is not None:
        torch.manual_seed(seed)
    generator, discriminator = build(config, "generator"), build(config, "discriminator")
    if config.model_type == "dcgan":
        init_weights(generator)
        init_weights(discriminator)
    return generator, discriminator


def train(generator, discriminator, dataset, out_dir=None, loss: str = "bce", epochs: int = 5,
          max_steps: int | None = None, batch_size: int = 64, lr: float = 2e-4, betas=(0.5, 0.999),
          lr_d: float | None = None, n_critic: int | None = None, gp_weight: float = 10.0, n_samples: int = 64,
          seed: int = 0, device="auto", resume: bool = False, progress: bool = True, num_workers: int = 0) -> list[dict]:
    """Train G and D in place; returns the history (one dict per epoch). See the module docstring."""
    loss = losses.check_loss(loss)
    n_critic = n_critic or (5 if loss == "wgan-gp" else 1)
    if loss == "wgan-gp" and any(isinstance(m, torch.nn.BatchNorm2d) for m in discriminator.modules()):
        raise ConfigError("WGAN-GP's gradient penalty is per sample, which BatchNorm in the critic breaks: "
                          "build the discriminator with d_norm='layer' or 'none'")
    if epochs < 1 or batch_size < 1 or (max_steps is not None and max_steps < 1):
        raise ConfigError("epochs, batch_size and max_steps must be at least 1")
    if isinstance(dataset, torch.Tensor):
        dataset = TensorDataset(dataset)
    if not isinstance(dataset, Dataset) or len(dataset) == 0:
        raise ConfigError("dataset must be a non-empty torch Dataset or tensor of samples")
    device = resolve_device(device)
    generator.to(device).train()
    discriminator.to(device).train()
    conditional = generator.num_classes > 0
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=tuple(betas))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr_d or lr, betas=tuple(betas))
    out_dir = Path(out_dir) if out_dir is not None else None
    history, start_epoch, step = [], 0, 0
    if resume:
        if out_dir is None:
            raise ConfigError("resume=True needs out_dir")
        history, start_epoch, step = _resume(out_dir, generator, discriminator, opt_g, opt_d, device)
    torch.manual_seed(seed + start_epoch)  # a resumed run draws new noise, not the first epoch's again

    # Fixed noise (and labels 0, 1, 2, ...) so the per-epoch grids show one set of samples improving.
    fixed_z = generator.latent(n_samples, seed=seed)
    fixed_labels = torch.arange(n_samples, device=device) % generator.num_classes if conditional else None
    loader = _loader(dataset, batch_size, seed + start_epoch, num_workers, device)
    for epoch in range(start_epoch, epochs):
        sums, count, started = {"loss_d": 0.0, "loss_g": 0.0, "d_real": 0.0, "d_fake": 0.0}, 0, time.time()
        bar = _progress(loader, f"epoch {epoch + 1}/{epochs}", progress)
        for batch in bar:
            real, labels = _unpack(batch, device, conditional)
            n = real.shape[0]

            # (1) discriminator: real -> "real", G(z) -> "fake"
            z = torch.randn(n, generator.latent_dim, device=device)
            fake = generator(z, labels)
            d_real, d_fake = discriminator(real, labels), discriminator(fake.detach(), labels)
            loss_d = losses.discriminator_loss(loss, d_real, d_fake)
            if loss == "wgan-gp":
                loss_d = loss_d + gp_weight * losses.gradient_penalty(discriminator, real, fake, labels)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()

            # (2) generator, every n_critic discriminator steps: make D call the same fakes "real"
            if step % n_critic == 0:
                loss_g = losses.generator_loss(loss, discriminator(fake, labels))
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()
                sums["loss_g"] += loss_g.item() * n_critic
            sums["loss_d"] += loss_d.item()
            sums["d_real"] += d_real.detach().mean().item()
            sums["d_fake"] += d_fake.detach().mean().item()
            count, step = count + 1, step + 1
            if progress and count % 10 == 0:
                bar.set_postfix(loss_d=f"{loss_d.item():.3f}", loss_g=f"{sums['loss_g'] / count:.3f}")
            if max_steps is not None and step >= max_steps:
                break
        record = {"epoch": epoch + 1, "step": step, "seconds": round(time.time() - started, 2),
                  **{k: v / max(count, 1) for k, v in sums.items()}}
        history.append(record)
        if out_dir is not None:
            _save_epoch(out_dir, generator, discriminator, opt_g, opt_d, history, epoch, step, fixed_z, fixed_labels,
                        dict(loss=loss, batch_size=batch_size, lr=lr, betas=list(betas), n_critic=n_critic, seed=seed))
        if max_steps is not None and step >= max_steps:
            break
    generator.eval()
    discriminator.eval()
    return history


def _loader(dataset, batch_size, seed, num_workers, device):
    """Shuffled batches. Tensors in memory are sliced directly: a DataLoader would index and re-stack them
    one sample at a time, which costs more than a small GAN's whole step."""
    drop_last = len(dataset) >= batch_size
    shuffle = torch.Generator().manual_seed(seed)
    if isinstance(dataset, TensorDataset) and num_workers == 0:
        return _TensorBatches(dataset.tensors, batch_size, drop_last, shuffle)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=drop_last, num_workers=num_workers,
                      pin_memory=device.type == "cuda", generator=shuffle)


class _TensorBatches:
    def __init__(self, tensors, batch_size, drop_last, generator):
        self.tensors, self.batch_size, self.drop_last, self.generator = tensors, batch_size, drop_last, generator

    def __len__(self):
        n = len(self.tensors[0])
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        order = torch.randperm(len(self.tensors[0]), generator=self.generator)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield tuple(t[idx] for t in self.tensors)


def _unpack(batch, device, conditional):
    if isinstance(batch, (list, tuple)):
        real = batch[0]
        labels = batch[1] if len(batch) > 1 else None
    else:
        real, labels = batch, None
    if conditional and labels is None:
        raise ConfigError("a conditional GAN needs a dataset of (sample, label) pairs")
    real = real.to(device, non_blocking=True).float()
    return real, (labels.to(device, non_blocking=True) if conditional else None)


def _progress(iterable, desc, enabled):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, leave=False, dynamic_ncols=True)


@torch.no_grad()
def sample_grid(generator, z, labels, path: Path) -> Path:
    """Write G's outputs for fixed noise: a PNG grid for images, else one sample per text row."""
    was_training = generator.training
    generator.eval()
    out = generator(z, labels).float().cpu()
    generator.train(was_training)
    if out.dim() == 4:
        from ..images import save_image

        return save_image(out, path.with_suffix(".png"), nrow=math.ceil(math.sqrt(len(out))), overwrite=True)
    import numpy as np

    np.savetxt(path.with_suffix(".txt"), out.flatten(1).numpy(), fmt="%.5f")
    return path.with_suffix(".txt")


def _save_epoch(out_dir, generator, discriminator, opt_g, opt_d, history, epoch, step, fixed_z, fixed_labels,
                train_args):
    out_dir.mkdir(parents=True, exist_ok=True)
    sample_grid(generator, fixed_z, fixed_labels, out_dir / f"samples_epoch_{epoch + 1:03d}")
    # Write the new checkpoint beside the old one, then swap: a crash mid-save never loses the last good one.
    tmp, final, old = out_dir / "checkpoint.tmp", out_dir / "checkpoint", out_dir / "checkpoint.old"
    save_gan(tmp, generator, discriminator, extra_config={"train": train_args})
    torch.save({"opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "epoch": epoch + 1, "step": step,
                "history": json.dumps(history)}, tmp / "train_state.pt")
    shutil.rmtree(old, ignore_errors=True)  # one left by a run killed mid-swap would block the rename below
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    (out_dir / "history.json").write_text(json.dumps(history, indent=1) + "\n")


def _resume(out_dir, generator, discriminator, opt_g, opt_d, device):
    from .. import checkpoint

    folder = out_dir / "checkpoint"
    if not (folder / "train_state.pt").is_file():
        raise ConfigError(f"nothing to resume: {folder / 'train_state.pt'} does not exist")
    weights = checkpoint.load_state_dict(folder / checkpoint.WEIGHTS_NAME)
    for name, module in (("generator", generator), ("discriminator", discriminator)):
        part = convert_genzoo(weights, name, folder)
        checkpoint.reconcile(module, part, folder)
        module.load_state_dict(part)
    state = torch.load(folder / "train_state.pt", map_location=device, weights_only=True)
    opt_g.load_state_dict(state["opt_g"])
    opt_d.load_state_dict(state["opt_d"])
    return json.loads(state["history"]), int(state["epoch"]), int(state["step"])
