"""Training a CycleGAN (unpaired) or a pix2pix model (paired), the loops of junyanz's cycle_gan_model.py and
pix2pix_model.py, each in one readable function, on genzoo's training contract.

CycleGAN, per step, with real batches a (domain A) and b (domain B):
  generators (D frozen):  fake_b = G_A(a), rec_a = G_B(fake_b), fake_a = G_B(b), rec_b = G_A(fake_a)
      loss_G = gan(D_A(fake_b), real) + gan(D_B(fake_a), real)                    fool the discriminators
             + lambda_cycle * (|rec_a - a| + |rec_b - b|)                          cycle consistency (lambda = 10)
             + lambda_identity * lambda_cycle * (|G_A(b) - b| + |G_B(a) - a|)      identity (0.5 * lambda)
  discriminators:         loss_D_A = (gan(D_A(b), real) + gan(D_A(pool_B(fake_b)), fake)) / 2, same for D_B
pix2pix (mode="pix2pix"), with aligned pairs (a, b) and a conditional PatchGAN D that sees [a, image]:
  discriminator:          loss_D = (gan(D(a, G(a)), fake) + gan(D(a, b), real)) / 2
  generator (D frozen):   loss_G = gan(D(a, G(a)), real) + lambda_l1 * |G(a) - b|      (lambda_l1 = 100)
  with junyanz's pix2pix defaults: U-Net generator with dropout, batch norm, the vanilla (BCE) GAN loss, no pool.
Adam(lr 2e-4, betas (0.5, 0.999)); the learning rate stays constant for the first half and decays linearly to
zero over the second half.

    from genzoo.cyclegan.train import TrainConfig, train
    train(TrainConfig(data_a="black_hair/", data_b="blond_hair/", out_dir="runs/hair"))
    train(TrainConfig(mode="pix2pix", data="facades/train", out_dir="runs/facades"))   # A|B side-by-side images
    train(TrainConfig(data="mnist-invert", out_dir="runs/mnist"))                      # the toy task

The run folder is genzoo.training's: the generators (cyclegan.from_pretrained(out_dir) gives G_A, and
direction="BtoA" G_B; a pix2pix run folder holds its one generator), train_state.pt (all networks, optimizers,
image pools, per-rank RNG), log.jsonl, loss.png, samples/step-N.png, checkpoints/. `genzoo translate out_dir
in.png out.png` translates with it.
steps=0 evaluates the starting networks instead: the losses the loop logs, on a seeded 64 images of each domain
(eval_losses), nothing trained or saved (genzoo.training has the rules).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import training
from ..data import ImageFolder, augment, side_by_side
from ..errors import ConfigError
from ..images import save_image
from .losses import GAN_MODES, ImagePool, cycle_loss, gan_loss, identity_loss
from .model import CycleGAN, DiscriminatorConfig, GeneratorConfig, NLayerDiscriminator, build_generator

MODES = ("cyclegan", "pix2pix")
RUN_FIELDS = ("mode", "data", "data_a", "data_b", "size", "load_size", "channels", "fit", "flip", "netG", "ngf",
              "n_blocks", "num_downs", "norm", "dropout", "ndf", "n_layers_d", "gan_mode")


@dataclass
class TrainConfig(training.TrainConfig):
    out_dir: str = "runs/cyclegan"
    mode: str = "cyclegan"            # "cyclegan" (unpaired A and B) or "pix2pix" (aligned A|B pairs)
    data: str | None = None           # pix2pix: a folder of A|B side-by-side images; either mode: "mnist-invert"
    data_a: str | None = None         # cyclegan: the folders of domain A and domain B images
    data_b: str | None = None
    size: tuple | None = None         # (height, width) trained on (None: the images' own; with load_size: 256)
    load_size: int | None = None      # resize to this square first, then random crops of `size` (junyanz: 286)
    channels: int | None = None       # None: from the images (1 if all grayscale)
    fit: str = "crop"
    flip: bool = False                # random horizontal flips (the same for both images of a pix2pix pair)
    # networks (None: the mode's default: resnet / instance norm / no dropout / lsgan / pool 50 for CycleGAN;
    # unet / batch norm / dropout / vanilla / no pool for pix2pix)
    netG: str | None = None
    ngf: int = 32
    n_blocks: int = 6                 # resnet blocks (paper: 6 for 128 px, 9 for 256 px)
    num_downs: int | None = None      # unet downsamplings (None: as many as the size allows, at most 8)
    norm: str | None = None
    dropout: bool | None = None
    ndf: int = 32
    n_layers_d: int = 3               # PatchGAN layers (3: 70x70 patches)
    gan_mode: str | None = None       # "lsgan" or "vanilla"
    # optimisation
    steps: int = 200
    decay_start: int | None = None    # step at which the linear decay to zero starts (default: steps // 2)
    batch_size: int = 1               # the papers train with 1
    lr: float = 2e-4
    beta1: float = 0.5
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5      # times lambda_cycle; 0 turns the identity loss off
    lambda_l1: float = 100.0          # pix2pix
    pool_size: int | None = None
    sample_every: int = 50
    save_every: int = 50

    def __post_init__(self):
        super().__post_init__()
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, not {self.mode!r}")
        if self.gan_mode not in GAN_MODES + (None,):
            raise ConfigError(f"gan_mode must be one of {GAN_MODES}, not {self.gan_mode!r}")
        if isinstance(self.size, int):
            self.size = (self.size, self.size)
        self.size = tuple(self.size) if self.size is not None else None
        if self.decay_start is not None and self.steps and not 0 <= self.decay_start <= self.steps:  # 0: eval only
            raise ConfigError(f"decay_start must be between 0 and steps ({self.steps}), not {self.decay_start}")


def with_mode_defaults(cfg: TrainConfig) -> TrainConfig:
    """The config with the settings left at None filled in as the mode trains by default. (They stay None in
    the saved config, so a resume still tells "not given" from "given".)"""
    pix2pix = cfg.mode == "pix2pix"
    return dataclasses.replace(
        cfg, netG=cfg.netG or ("unet" if pix2pix else "resnet"), norm=cfg.norm or ("batch" if pix2pix else "instance"),
        dropout=pix2pix if cfg.dropout is None else cfg.dropout,
        gan_mode=cfg.gan_mode or ("vanilla" if pix2pix else "lsgan"),
        pool_size=(0 if pix2pix else 50) if cfg.pool_size is None else cfg.pool_size)


def lr_factor(step: int, config: TrainConfig, total: int | None = None) -> float:
    """1 until decay_start, then linearly down to 0 at the last step (junyanz's 'linear' policy, in steps)."""
    total = total or config.steps
    decay_start = total // 2 if config.decay_start is None else config.decay_start
    decay_steps = total - decay_start
    if step < decay_start or decay_steps <= 0:
        return 1.0
    return 1.0 - (step - decay_start + 1) / (decay_steps + 1)


def set_requires_grad(modules, flag: bool) -> None:
    for module in modules:
        for p in module.parameters():
            p.requires_grad_(flag)


# --- data -----------------------------------------------------------------------------------------------------------

def load_data(cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(images of A, images of B), (N, C, H, W) in [-1, 1]; for pix2pix the two are aligned pairs."""
    from .data import invert, mnist_inversion

    if cfg.data == "mnist-invert":
        if cfg.mode == "pix2pix":  # pairs: each digit and its own inversion, padded to 32 px for the U-Net
            from ..datasets import mnist

            a = torch.nn.functional.pad(mnist("train")[0], (2, 2, 2, 2), value=-1.0)
            return a, invert(a)
        data_a, data_b, _, _ = mnist_inversion("train")
        return data_a.images, data_b.images
    size = None if cfg.load_size else cfg.size
    if cfg.mode == "pix2pix":
        if not cfg.data:
            raise ConfigError("pix2pix trains on a folder of A|B side-by-side images: give data (--data)")
        if size is not None:
            size = (size[0], 2 * size[1])  # the pair image holds two of them side by side
        if cfg.load_size:
            size = (cfg.load_size, 2 * cfg.load_size)
        pairs = ImageFolder(cfg.data, size=size, channels=cfg.channels, fit="stretch").load()[0]
        return side_by_side(pairs)
    if not (cfg.data_a and cfg.data_b):
        raise ConfigError("CycleGAN trains on two folders: give data_a and data_b (--data-a, --data-b), or "
                          "data='mnist-invert' (--data mnist-invert)")
    if cfg.load_size:
        size = (cfg.load_size, cfg.load_size)
    folder_a = ImageFolder(cfg.data_a, size=size, channels=cfg.channels, fit=cfg.fit)
    # B takes A's size and channels unless they were given: one network shape for both domains
    folder_b = ImageFolder(cfg.data_b, size=size or folder_a.size, channels=cfg.channels or folder_a.channels,
                           fit=cfg.fit)
    return folder_a.load()[0], folder_b.load()[0]


def crop_size(cfg: TrainConfig, images: torch.Tensor) -> tuple[int, int]:
    if cfg.load_size:
        return cfg.size or (256, 256)
    return tuple(images.shape[-2:])


def generator_config(cfg: TrainConfig, channels_a: int, channels_b: int, size) -> GeneratorConfig:
    num_downs = cfg.num_downs
    if cfg.netG == "unet" and num_downs is None:
        # the U-Net halves the image num_downs times: as many as the size allows, at most 8 (unet_256)
        side = min(size)
        num_downs = max(k for k in range(1, 9) if side % 2 ** k == 0) if side % 2 == 0 else 0
        if num_downs < 5:
            raise ConfigError(f"the U-Net generator needs images whose sides are multiples of 32, not {size}: "
                              f"pass size (--size) or use netG='resnet'")
    return GeneratorConfig(arch=cfg.netG, input_nc=channels_a, output_nc=channels_b, ngf=cfg.ngf,
                           n_blocks=cfg.n_blocks, num_downs=num_downs or 8, norm=cfg.norm, use_dropout=cfg.dropout)


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


class Pix2Pix(torch.nn.Module):
    """A generator A -> B and a conditional PatchGAN judging (A, B) pairs stacked on the channel axis."""

    def __init__(self, generator: GeneratorConfig, discriminator: DiscriminatorConfig):
        super().__init__()
        self.G = build_generator(generator)
        self.D = NLayerDiscriminator(discriminator)


def build_networks(cfg: TrainConfig, channels_a: int, channels_b: int, size):
    cfg = with_mode_defaults(cfg)
    gen = generator_config(cfg, channels_a, channels_b, size)
    if cfg.mode == "pix2pix":
        nets = Pix2Pix(gen, DiscriminatorConfig(input_nc=channels_a + channels_b, ndf=cfg.ndf,
                                                n_layers=cfg.n_layers_d, norm=cfg.norm))
    else:
        nets = CycleGAN.create(gen, DiscriminatorConfig(ndf=cfg.ndf, n_layers=cfg.n_layers_d, norm=cfg.norm))
    init_weights(nets, cfg.seed)
    return nets


# --- the steps ----------------------------------------------------------------------------------------------------

def train_step(run, nets: CycleGAN, a, b, opt_g, opt_d, pool_a: ImagePool, pool_b: ImagePool,
               config: TrainConfig) -> dict[str, float]:
    """One CycleGAN update of both generators, then both discriminators (accumulated over micro-batches)."""
    G_A, G_B, D_A, D_B = nets.G_A, nets.G_B, nets.D_A, nets.D_B
    mode = with_mode_defaults(config).gan_mode
    if config.lambda_identity > 0 and a.shape[1] != b.shape[1]:
        raise ConfigError("the identity loss needs domains with the same channels: set lambda_identity=0")
    sums = {"G_gan": 0.0, "cycle": 0.0, "idt": 0.0, "D_A": 0.0, "D_B": 0.0}
    fakes = []
    # Generators: the discriminators only judge here, no gradient for them.
    set_requires_grad([D_A, D_B], False)
    for (a_i, b_i), weight in training.micro_batches((a, b), config.grad_accum):
        with run.autocast():
            fake_b, fake_a = G_A(a_i), G_B(b_i)
            rec_a, rec_b = G_B(fake_b), G_A(fake_a)
            loss_gan = gan_loss(D_A(fake_b).float(), True, mode) + gan_loss(D_B(fake_a).float(), True, mode)
            loss_cycle = cycle_loss(rec_a.float(), a_i) + cycle_loss(rec_b.float(), b_i)
            loss_g = loss_gan + config.lambda_cycle * loss_cycle
            loss_idt = torch.zeros((), device=a.device)
            if config.lambda_identity > 0:
                loss_idt = identity_loss(G_A(b_i).float(), b_i) + identity_loss(G_B(a_i).float(), a_i)
                loss_g = loss_g + config.lambda_identity * config.lambda_cycle * loss_idt
        run.backward(loss_g * weight, "g")
        fakes.append((a_i, b_i, fake_a.detach(), fake_b.detach(), weight))
        for name, value in (("G_gan", loss_gan), ("cycle", loss_cycle), ("idt", loss_idt)):
            sums[name] += value.item() * weight
    run.optimizer_step(opt_g, list(G_A.parameters()) + list(G_B.parameters()), "g")

    # Discriminators: real vs a mix of current and past fakes.
    set_requires_grad([D_A, D_B], True)
    for a_i, b_i, fake_a, fake_b, weight in fakes:
        past_b, past_a = pool_b.query(fake_b, run.data_rng), pool_a.query(fake_a, run.data_rng)
        with run.autocast():
            loss_d_a = 0.5 * (gan_loss(D_A(b_i).float(), True, mode) + gan_loss(D_A(past_b).float(), False, mode))
            loss_d_b = 0.5 * (gan_loss(D_B(a_i).float(), True, mode) + gan_loss(D_B(past_a).float(), False, mode))
        run.backward((loss_d_a + loss_d_b) * weight, "d")
        sums["D_A"] += loss_d_a.item() * weight
        sums["D_B"] += loss_d_b.item() * weight
    run.optimizer_step(opt_d, list(D_A.parameters()) + list(D_B.parameters()), "d")
    return sums


def pix2pix_step(run, nets: Pix2Pix, a, b, opt_g, opt_d, config: TrainConfig) -> dict[str, float]:
    """One pix2pix update: the discriminator on (a, G(a)) vs (a, b), then the generator (GAN + lambda * L1)."""
    G, D, mode = nets.G, nets.D, with_mode_defaults(config).gan_mode
    sums = {"G_gan": 0.0, "G_L1": 0.0, "D_real": 0.0, "D_fake": 0.0}
    parts = []
    for (a_i, b_i), weight in training.micro_batches((a, b), config.grad_accum):
        with run.autocast():
            parts.append((a_i, b_i, G(a_i), weight))
    set_requires_grad([D], True)
    for a_i, b_i, fake_b, weight in parts:
        with run.autocast():
            loss_fake = gan_loss(D(torch.cat([a_i, fake_b.detach()], 1)).float(), False, mode)
            loss_real = gan_loss(D(torch.cat([a_i, b_i], 1)).float(), True, mode)
        run.backward(0.5 * (loss_fake + loss_real) * weight, "d")
        sums["D_fake"] += loss_fake.item() * weight
        sums["D_real"] += loss_real.item() * weight
    run.optimizer_step(opt_d, D.parameters(), "d")
    set_requires_grad([D], False)  # D only judges the generator's update
    for a_i, b_i, fake_b, weight in parts:
        with run.autocast():
            loss_gan = gan_loss(D(torch.cat([a_i, fake_b], 1)).float(), True, mode)
            loss_l1 = torch.nn.functional.l1_loss(fake_b.float(), b_i)
        run.backward((loss_gan + config.lambda_l1 * loss_l1) * weight, "g")
        sums["G_gan"] += loss_gan.item() * weight
        sums["G_L1"] += loss_l1.item() * weight
    run.optimizer_step(opt_g, G.parameters(), "g")
    set_requires_grad([D], True)
    return sums


@torch.no_grad()
def eval_losses(nets, images_a: torch.Tensor, images_b: torch.Tensor, cfg: TrainConfig, size, device) -> dict:
    """steps=0: the losses the loop logs, for the networks as they are: a seeded 64 images of each domain (aligned
    pairs for pix2pix; centre crops of `size` when load_size is set), all networks in eval mode, and the
    discriminators judging the current fakes (no image pool). CycleGAN: G_gan, cycle, idt, D_A, D_B; pix2pix:
    G_gan, G_L1, D_real, D_fake."""
    nets.eval()
    mode, pix2pix = cfg.gan_mode, cfg.mode == "pix2pix"
    index_a = training.eval_indices(len(images_a), cfg.seed, limit=64)
    index_b = index_a if pix2pix else training.eval_indices(len(images_b), cfg.seed + 1, limit=64)
    n = min(len(index_a), len(index_b))
    a_all, b_all = images_a[index_a[:n]], images_b[index_b[:n]]
    if cfg.load_size:
        a_all, b_all = center_crop(a_all, size), center_crop(b_all, size)
    if not pix2pix and cfg.lambda_identity > 0 and a_all.shape[1] != b_all.shape[1]:
        raise ConfigError("the identity loss needs domains with the same channels: set lambda_identity=0")
    sums = {}
    for a, b in zip(a_all.split(cfg.batch_size), b_all.split(cfg.batch_size)):
        a, b = a.to(device), b.to(device)
        if pix2pix:
            fake_b = nets.G(a)
            fake_logits = nets.D(torch.cat([a, fake_b], 1)).float()
            losses = {"G_gan": gan_loss(fake_logits, True, mode), "G_L1": torch.nn.functional.l1_loss(fake_b, b),
                      "D_real": gan_loss(nets.D(torch.cat([a, b], 1)).float(), True, mode),
                      "D_fake": gan_loss(fake_logits, False, mode)}
        else:
            fake_b, fake_a = nets.G_A(a), nets.G_B(b)
            losses = {"G_gan": gan_loss(nets.D_A(fake_b), True, mode) + gan_loss(nets.D_B(fake_a), True, mode),
                      "cycle": cycle_loss(nets.G_B(fake_b), a) + cycle_loss(nets.G_A(fake_a), b),
                      "idt": (identity_loss(nets.G_A(b), b) + identity_loss(nets.G_B(a), a)
                              if cfg.lambda_identity > 0 else torch.zeros(())),
                      "D_A": 0.5 * (gan_loss(nets.D_A(b), True, mode) + gan_loss(nets.D_A(fake_b), False, mode)),
                      "D_B": 0.5 * (gan_loss(nets.D_B(a), True, mode) + gan_loss(nets.D_B(fake_a), False, mode))}
        for name, value in losses.items():
            sums[name] = sums.get(name, 0.0) + value.item() * len(a)
    return {name: value / n for name, value in sums.items()}


# --- the loop -------------------------------------------------------------------------------------------------------

def train(config: TrainConfig, data=None, model=None) -> training.TrainResult:
    """Train a CycleGAN or a pix2pix model. data: None (the config's folders) or a pair (images of A, images of B),
    aligned for pix2pix; model: a CycleGAN (or Pix2Pix) to train instead of one built from the config.
    result.model is the CycleGAN (or the Pix2Pix pair)."""
    with training.Run(config, family="cyclegan", run_fields=RUN_FIELDS) as run:
        cfg, device = with_mode_defaults(run.config), run.device
        images_a, images_b = load_data(cfg) if data is None else data
        images_a, images_b = images_a.float(), images_b.float()
        pix2pix = cfg.mode == "pix2pix"
        if pix2pix and len(images_a) != len(images_b):
            raise ConfigError(f"pix2pix needs aligned pairs: {len(images_a)} A images but {len(images_b)} B images")
        size = crop_size(cfg, images_a)
        if model is None:
            model = build_networks(cfg, images_a.shape[1], images_b.shape[1], size)
        nets = model.to(device).train()
        if pix2pix:
            g_params, d_params = list(nets.G.parameters()), list(nets.D.parameters())
        else:
            g_params = list(nets.G_A.parameters()) + list(nets.G_B.parameters())
            d_params = list(nets.D_A.parameters()) + list(nets.D_B.parameters())
        opt_g = torch.optim.Adam(g_params, lr=cfg.lr, betas=(cfg.beta1, 0.999))
        opt_d = torch.optim.Adam(d_params, lr=cfg.lr, betas=(cfg.beta1, 0.999))
        pool_a, pool_b = ImagePool(cfg.pool_size), ImagePool(cfg.pool_size)
        extra = run.restore(models={"nets": nets}, optimizers={"g": opt_g, "d": opt_d})
        for pool, name in ((pool_a, "pool_a"), (pool_b, "pool_b")):
            if name in extra:
                pool.load_state_dict(extra[name])
                pool.images = [x.to(device) for x in pool.images]
        if run.eval_only:
            return run.evaluation(eval_losses(nets, images_a, images_b, cfg, size, device), nets.eval())
        n_a, n_b = len(images_a), len(images_b)
        total = cfg.total_steps(training.steps_per_epoch(max(n_a, n_b), cfg.batch_size, run.dist.world))
        run.progress(total)
        fixed_a, fixed_b = images_a[:8], images_b[:8]
        if cfg.load_size:
            fixed_a, fixed_b = center_crop(fixed_a, size), center_crop(fixed_b, size)
        fixed_a, fixed_b = fixed_a.to(device), fixed_b.to(device)

        def save_model(folder):
            if pix2pix:
                nets.G.save_pretrained(folder)
            else:
                nets.save_pretrained(folder, extra_config={"training": {"mode": cfg.mode, "step": run.step}})

        rank, world = run.dist.rank, run.dist.world
        for step in range(run.step, total):
            for opt in (opt_g, opt_d):
                for group in opt.param_groups:
                    group["lr"] = cfg.lr * lr_factor(step, cfg, total)
            index_a = training.epoch_indices(n_a, cfg.batch_size, step, cfg.seed, rank, world)
            if pix2pix:  # the same crop and flip for both images of a pair: augment them stacked
                channels = images_a.shape[1]
                pair = augment(torch.cat([images_a[index_a], images_b[index_a]], 1), run.data_rng, flip=cfg.flip,
                               crop=size if cfg.load_size else None)
                a, b = pair[:, :channels].to(device), pair[:, channels:].to(device)
                losses = pix2pix_step(run, nets, a, b, opt_g, opt_d, cfg)
            else:
                index_b = training.epoch_indices(n_b, cfg.batch_size, step, cfg.seed + 1, rank, world)
                crop = size if cfg.load_size else None
                a = augment(images_a[index_a], run.data_rng, flip=cfg.flip, crop=crop).to(device)
                b = augment(images_b[index_b], run.data_rng, flip=cfg.flip, crop=crop).to(device)
                losses = train_step(run, nets, a, b, opt_g, opt_d, pool_a, pool_b, cfg)
            done = step + 1
            run.log(done, losses, lr=cfg.lr * lr_factor(step, cfg, total))
            if run.dist.main and run.due(done, cfg.sample_every):
                sample_grid(nets, fixed_a, fixed_b, run.sample_path(done))
            if run.save_due(done):
                run.save(done, save_model, {"nets": nets}, {"g": opt_g, "d": opt_d},
                         extra={"pool_a": pool_a.state_dict(), "pool_b": pool_b.state_dict()})
        return run.result(nets.eval())


def center_crop(images: torch.Tensor, size) -> torch.Tensor:
    height, width = size
    top, left = (images.shape[-2] - height) // 2, (images.shape[-1] - width) // 2
    return images[..., top:top + height, left:left + width]


@torch.no_grad()
def sample_grid(nets, a: torch.Tensor, b: torch.Tensor, path) -> Path:
    """CycleGAN rows: a, G_A(a), G_B(G_A(a)), then b, G_B(b), G_A(G_B(b)) -- what each direction does and undoes.
    pix2pix rows: a, G(a), b (input, output, target)."""
    was_training = nets.training
    nets.eval()
    if isinstance(nets, Pix2Pix):
        rows = [a, nets.G(a), b]
    else:
        fake_b, fake_a = nets.G_A(a), nets.G_B(b)
        rows = [a, fake_b, nets.G_B(fake_b), b, fake_a, nets.G_A(fake_a)]
    channels = max(r.shape[1] for r in rows)
    rows = [r.expand(-1, channels, -1, -1) if r.shape[1] == 1 else r for r in rows]
    nets.train(was_training)
    return save_image(torch.cat(rows).float(), path, nrow=len(a), overwrite=True)  # the run folder is this run's own


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
