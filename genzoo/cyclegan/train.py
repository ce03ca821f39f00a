"""Training a CycleGAN: the loop of junyanz's cycle_gan_model.py, in one readable function.

Per step, with real batches a (domain A) and b (domain B):
  generators (D frozen):  fake_b = G_A(a), rec_a = G_B(fake_b), fake_a = G_B(b), rec_b = G_A(fake_a)
      loss_G = gan(D_A(fake_b), real) + gan(D_B(fake_a), real)                    fool the discriminators
             + lambda_cycle * (|rec_a - a| + |rec_b - b|)                          cycle consistency (lambda = 10)
             + lambda_identity * lambda_cycle * (|G_A(b) - b| + |G_B(a) - a|)      identity (0.5 * lambda)
  discriminators:         loss_D_A = (gan(D_A(b), real) + gan(D_A(pool_B(fake_b)), fake)) / 2, same for D_B
Adam(lr 2e-4, betas (0.5, 0.999)); the learning rate stays constant for the first half and decays linearly to
zero over the second half. Checkpoints are genzoo folders (save_pretrained) plus training_state.pt, so a run
resumes where it stopped (the data order after a resume is a fresh shuffle, not the one the run would have had).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..checkpoint import load_state_dict, read_config
from ..errors import CheckpointError, ConfigError
from ..images import save_image
from ..runtime import resolve_device
from .losses import GAN_MODES, ImagePool, cycle_loss, gan_loss, identity_loss
from .model import CycleGAN, DiscriminatorConfig, GeneratorConfig

STATE_NAME = "training_state.pt"


@dataclass
class TrainConfig:
    steps: int = 10_000               # generator/discriminator updates in all
    decay_start: int | None = None    # step at which the linear decay to zero starts (default: steps // 2)
    batch_size: int = 1               # the paper trains with 1
    lr: float = 2e-4
    beta1: float = 0.5
    gan_mode: str = "lsgan"
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5      # times lambda_cycle; 0 turns the identity loss off
    pool_size: int = 50
    seed: int = 0
    log_every: int = 100
    sample_every: int = 1000
    save_every: int = 1000
    generator: dict = field(default_factory=dict)       # GeneratorConfig fields (A -> B)
    discriminator: dict = field(default_factory=dict)   # DiscriminatorConfig fields

    def __post_init__(self):
        if self.gan_mode not in GAN_MODES:
            raise ConfigError(f"gan_mode must be one of {GAN_MODES}, not {self.gan_mode!r}")
        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError("steps and batch_size must be >= 1")
        if self.decay_start is None:
            self.decay_start = self.steps // 2
        if not 0 <= self.decay_start <= self.steps:
            raise ConfigError(f"decay_start must be between 0 and steps ({self.steps}), not {self.decay_start}")


def lr_factor(step: int, config: TrainConfig) -> float:
    """1 until decay_start, then linearly down to 0 at the last step (junyanz's 'linear' policy, in steps)."""
    decay_steps = config.steps - config.decay_start
    if step < config.decay_start or decay_steps == 0:
        return 1.0
    return 1.0 - (step - config.decay_start + 1) / (decay_steps + 1)


def set_requires_grad(modules, flag: bool) -> None:
    for module in modules:
        for p in module.parameters():
            p.requires_grad_(flag)


def train_step(nets: CycleGAN, a, b, opt_g, opt_d, pool_a: ImagePool, pool_b: ImagePool, config: TrainConfig,
               generator: torch.Generator | None = None) -> dict[str, float]:
    G_A, G_B, D_A, D_B = nets.G_A, nets.G_B, nets.D_A, nets.D_B
    # Generators: the discriminators only judge here, no gradient for them.
    set_requires_grad([D_A, D_B], False)
    fake_b, fake_a = G_A(a), G_B(b)
    rec_a, rec_b = G_B(fake_b), G_A(fake_a)
    loss_gan = gan_loss(D_A(fake_b), True, config.gan_mode) + gan_loss(D_B(fake_a), True, config.gan_mode)
    loss_cycle = cycle_loss(rec_a, a) + cycle_loss(rec_b, b)
    loss_g = loss_gan + config.lambda_cycle * loss_cycle
    loss_idt = torch.zeros((), device=a.device)
    if config.lambda_identity > 0:
        if a.shape[1] != b.shape[1]:
            raise ConfigError("the identity loss needs domains with the same channels: set lambda_identity=0")
        loss_idt = identity_loss(G_A(b), b) + identity_loss(G_B(a), a)
        loss_g = loss_g + config.lambda_identity * config.lambda_cycle * loss_idt
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()

    # Discriminators: real vs a mix of current and past fakes.
    set_requires_grad([D_A, D_B], True)
    past_b, past_a = pool_b.query(fake_b, generator), pool_a.query(fake_a, generator)
    loss_d_a = 0.5 * (gan_loss(D_A(b), True, config.gan_mode) + gan_loss(D_A(past_b), False, config.gan_mode))
    loss_d_b = 0.5 * (gan_loss(D_B(a), True, config.gan_mode) + gan_loss(D_B(past_a), False, config.gan_mode))
    opt_d.zero_grad(set_to_none=True)
    (loss_d_a + loss_d_b).backward()
    opt_d.step()
    return {"G_gan": loss_gan.item(), "cycle": loss_cycle.item(), "idt": loss_idt.item(),
            "D_A": loss_d_a.item(), "D_B": loss_d_b.item()}


@torch.no_grad()
def sample_grid(nets: CycleGAN, a: torch.Tensor, b: torch.Tensor, path) -> Path:
    """Rows: a, G_A(a), G_B(G_A(a)), then b, G_B(b), G_A(G_B(b)) -- what each direction does and undoes."""
    was_training = nets.training
    nets.eval()
    fake_b, fake_a = nets.G_A(a), nets.G_B(b)
    rows = [a, fake_b, nets.G_B(fake_b), b, fake_a, nets.G_A(fake_a)]
    channels = max(r.shape[1] for r in rows)
    rows = [r.expand(-1, channels, -1, -1) if r.shape[1] == 1 else r for r in rows]
    nets.train(was_training)
    return save_image(torch.cat(rows).float(), path, nrow=len(a), overwrite=True)


def train(out_dir, data_a, data_b, config: TrainConfig, device="auto", resume: bool = False, num_workers: int = 0,
          progress: bool = True) -> CycleGAN:
    """Train on two unpaired datasets (items: (C, H, W) tensors in [-1, 1]) and write checkpoints to out_dir."""
    from tqdm.auto import tqdm

    from .data import endless_batches

    out_dir, device = Path(out_dir), resolve_device(device)
    if not resume and (out_dir / STATE_NAME).is_file():
        raise ConfigError(f"{out_dir} holds a training run already: resume it (--resume, resume=True) or choose "
                          f"another output folder; nothing was overwritten")
    torch.manual_seed(config.seed)
    gen_config = GeneratorConfig.from_dict(config.generator)
    disc_config = DiscriminatorConfig.from_dict({"norm": gen_config.norm, **config.discriminator})
    nets = CycleGAN.create(gen_config, disc_config)
    init_weights(nets, config.seed)
    nets.to(device).train()
    opt_g = torch.optim.Adam(list(nets.G_A.parameters()) + list(nets.G_B.parameters()), lr=config.lr, betas=(config.beta1, 0.999))
    opt_d = torch.optim.Adam(list(nets.D_A.parameters()) + list(nets.D_B.parameters()), lr=config.lr, betas=(config.beta1, 0.999))
    pool_a, pool_b = ImagePool(config.pool_size), ImagePool(config.pool_size)
    rng = torch.Generator().manual_seed(config.seed)
    start = 0
    if resume and (out_dir / STATE_NAME).is_file():
        start = load_training_state(out_dir, nets, opt_g, opt_d, pool_a, pool_b, rng)
    batches_a = endless_batches(data_a, config.batch_size, config.seed + start, num_workers, device)
    batches_b = endless_batches(data_b, config.batch_size, config.seed + start + 1, num_workers, device)
    fixed_a, fixed_b = _fixed_examples(data_a, 8).to(device), _fixed_examples(data_b, 8).to(device)

    history, t0 = [], time.perf_counter()
    bar = tqdm(range(start, config.steps), initial=start, total=config.steps, desc="cyclegan", disable=not progress)
    for step in bar:
        for opt in (opt_g, opt_d):
            for group in opt.param_groups:
                group["lr"] = config.lr * lr_factor(step, config)
        losses = train_step(nets, next(batches_a), next(batches_b), opt_g, opt_d, pool_a, pool_b, config, rng)
        history.append(losses)
        done = step + 1
        if done % config.log_every == 0 or done == config.steps:
            mean = {k: sum(h[k] for h in history) / len(history) for k in history[0]}
            bar.set_postfix({k: f"{v:.3f}" for k, v in mean.items()})
            _log(out_dir, {"step": done, "lr": config.lr * lr_factor(step, config), "seconds": round(time.perf_counter() - t0, 1), **mean})
            history = []
        if done % config.sample_every == 0 or done == config.steps:
            sample_grid(nets, fixed_a, fixed_b, out_dir / "samples" / f"step_{done:07d}.png")
        if done % config.save_every == 0 or done == config.steps:
            save_checkpoint(out_dir, nets, config, done, opt_g, opt_d, pool_a, pool_b, rng)
    return nets.eval()


def init_weights(nets: torch.nn.Module, seed: int, gain: float = 0.02) -> None:
    """junyanz's 'normal' init: conv weights ~ N(0, 0.02), biases 0, batch-norm scales ~ N(1, 0.02)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in nets.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * gain)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(1.0 + torch.randn(m.weight.shape, generator=g) * gain)
                m.bias.zero_()


def _fixed_examples(dataset, n):
    n = min(n, len(dataset))
    return torch.stack([dataset[i] for i in range(n)])


def _log(out_dir: Path, record: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "log.jsonl", "a") as f:
        f.write(json.dumps({k: (round(v, 5) if isinstance(v, float) else v) for k, v in record.items()}) + "\n")


def save_checkpoint(out_dir, nets, config, step, opt_g, opt_d, pool_a, pool_b, rng) -> None:
    """model.safetensors + config.json (genzoo format, loadable by from_pretrained) + training_state.pt."""
    out_dir = Path(out_dir)
    nets.save_pretrained(out_dir, extra_config={"training": {**asdict(config), "step": step}})
    state = {"step": step, "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "pool_a": pool_a.state_dict(),
             "pool_b": pool_b.state_dict(), "rng": rng.get_state(), "torch_rng": torch.get_rng_state()}
    tmp = out_dir / (STATE_NAME + ".part")
    torch.save(state, tmp)
    tmp.replace(out_dir / STATE_NAME)


def load_training_state(out_dir, nets, opt_g, opt_d, pool_a, pool_b, rng) -> int:
    out_dir = Path(out_dir)
    saved = read_config(out_dir)
    if (saved.get("model") or saved.get("kind")) != "cyclegan":
        raise CheckpointError(f"{out_dir} is not a cyclegan training folder; cannot resume from it")
    if saved.get("G_A") != nets.G_A.config.to_dict():
        raise CheckpointError(f"cannot resume {out_dir}: it was trained with generator {saved.get('G_A')}, "
                              f"not {nets.G_A.config.to_dict()}")
    device = next(nets.parameters()).device
    nets.load_state_dict(load_state_dict(out_dir / "model.safetensors", map_location=device))
    state = torch.load(out_dir / STATE_NAME, map_location=device, weights_only=True)
    opt_g.load_state_dict(state["opt_g"])
    opt_d.load_state_dict(state["opt_d"])
    pool_a.load_state_dict(state["pool_a"])
    pool_b.load_state_dict(state["pool_b"])
    # Random states are CPU ByteTensors whatever map_location did with them (set_state refuses a CUDA tensor).
    rng.set_state(state["rng"].cpu())
    torch.set_rng_state(state["torch_rng"].cpu())
    return int(state["step"])


@torch.no_grad()
def translation_error(G: torch.nn.Module, a: torch.Tensor, target_fn, batch_size: int = 256) -> float:
    """mean |G(a) - target_fn(a)| over a, for toy tasks whose true mapping is known (MNIST inversion)."""
    was_training = G.training
    G.eval()
    total = 0.0
    for i in range(0, len(a), batch_size):
        x = a[i:i + batch_size]
        total += (G(x) - target_fn(x)).abs().sum().item()
    G.train(was_training)
    return total / a.numel()
