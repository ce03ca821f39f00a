"""One GAN training loop for every architecture and loss (book chs. 3-5; pytorch/examples dcgan/main.py), on
genzoo's training contract.

    from genzoo.gan.train import TrainConfig, train
    train(TrainConfig(data="mnist", conditional=True, out_dir="runs/gan"))        # a conditional DCGAN on MNIST
    train(TrainConfig(data="curve", steps=800, lr=1e-3, batch_size=128))         # book ch. 3: y = sin x
    train(TrainConfig(out_dir="runs/mine"), data=images, model=new_gan(my_config))  # your data, your networks

Each step: (1) D learns to tell a real batch from G's fakes; (2) every `n_critic` D steps, G learns to fool D.
Conditional GANs feed both networks the real batch's labels (G draws fakes of the same classes).
The run folder is genzoo.training's: both networks in one genzoo folder (gan.from_pretrained(out_dir) and
`genzoo sample out_dir` give the generator), train_state.pt, log.jsonl (loss_d, loss_g, d_real, d_fake),
loss.png, samples/step-N.png from fixed noise (.txt rows for the vector GANs) and checkpoints/step-N/.
steps=0 evaluates the starting networks instead: the losses the loop logs, on a seeded 1,024 of the data (a GAN
has no validation split), nothing updated or saved (eval_losses; genzoo.training has the rules).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import training
from ..data import ImageFolder, augment
from ..errors import ConfigError
from . import losses
from .loading import save_gan
from .models import PRESETS, DCGANConfig, MLPGANConfig, build, init_weights

VECTOR_DATA = ("curve", "sine", "exp", "numbers")
RUN_FIELDS = ("data", "preset", "arch", "size", "channels", "fit", "flip", "latent_dim", "ngf", "ndf", "conditional",
              "loss", "n_critic")


@dataclass
class TrainConfig(training.TrainConfig):
    out_dir: str = "runs/gan"
    data: str = "mnist"                # mnist | curve (= sine) | exp | numbers | a folder (subfolders = classes)
    preset: str | None = None          # a gan.PRESETS name (default: chosen by the data)
    arch: str = "dcgan"                # image data: "dcgan" or "mlp"
    size: tuple | None = None          # (height, width) of images (None: the data's own; DCGAN needs a square)
    channels: int | None = None        # None: 1 for MNIST and grayscale folders, else 3
    fit: str = "crop"
    flip: bool = False
    latent_dim: int | None = None      # None: the preset's (64 for MNIST, 100 for folders)
    ngf: int | None = None
    ndf: int | None = None
    conditional: bool = False          # condition on labels (MNIST digits, one subfolder per class)
    loss: str = "bce"                  # bce | lsgan | wgan-gp
    n_critic: int | None = None        # D steps per G step (None: 1; 5 for wgan-gp)
    gp_weight: float = 10.0
    lr: float = 2e-4
    lr_d: float | None = None          # the discriminator's (None: lr)
    beta1: float = 0.5
    steps: int = 500
    batch_size: int = 64
    n_samples: int = 64                # samples per grid
    sample_every: int = 100

    def __post_init__(self):
        super().__post_init__()
        self.loss = losses.check_loss(self.loss)
        if self.arch not in ("dcgan", "mlp"):
            raise ConfigError(f"arch must be 'dcgan' or 'mlp', not {self.arch!r}")
        if self.preset is not None and self.preset not in PRESETS:
            raise ConfigError(f"unknown preset {self.preset!r}: one of {', '.join(PRESETS)}")
        if isinstance(self.size, int):
            self.size = (self.size, self.size)
        self.size = tuple(self.size) if self.size is not None else None


def new_gan(config, seed: int | None = 0):
    """A freshly initialised (generator, discriminator) pair; DCGANs get the N(0, 0.02) init of the paper."""
    if seed is not None:
        torch.manual_seed(seed)
    generator, discriminator = build(config, "generator"), build(config, "discriminator")
    if config.model_type == "dcgan":
        init_weights(generator)
        init_weights(discriminator)
    return generator, discriminator


def load_data(cfg: TrainConfig):
    """(samples, labels or None, classes found) for config.data: vectors for the book's toy GANs, images else."""
    from . import data as gan_data

    if cfg.data in VECTOR_DATA:
        if cfg.data == "numbers":
            return gan_data.multiples(8192, seed=cfg.seed), None, 0
        return gan_data.curve_points(8192, "exp" if cfg.data == "exp" else "sine", seed=cfg.seed), None, 0
    if cfg.data == "mnist":
        size = cfg.size or (28, 28)
        if size[0] != size[1]:
            raise ConfigError(f"MNIST digits are square: size must be one number, not {size}")
        images, labels = gan_data.mnist("train", image_size=size[0]).tensors
        if cfg.channels == 3:
            images = images.expand(-1, 3, -1, -1).contiguous()
        return images, labels, 10
    if not Path(cfg.data).expanduser().is_dir():
        raise ConfigError(f"data {cfg.data!r}: not mnist, curve, exp or numbers, and not a folder")
    folder = ImageFolder(cfg.data, size=cfg.size, channels=cfg.channels, fit=cfg.fit)
    images, labels = folder.load()
    return images, labels, len(folder.classes)


def gan_config(cfg: TrainConfig, samples: torch.Tensor, classes: int):
    """The networks' config: a preset (named, or the data's), with this config's overrides."""
    if cfg.preset:
        config = PRESETS[cfg.preset]
    elif cfg.data in ("curve", "sine", "exp"):
        config = PRESETS["curve"]
    elif cfg.data == "numbers":
        config = PRESETS["numbers"]
    else:
        channels, height, width = samples.shape[1:]
        if cfg.arch == "mlp":
            config = MLPGANConfig(data_shape=(channels, height, width))
        else:
            if height != width:
                raise ConfigError(f"the images are {height}x{width}; a DCGAN makes square images: pass size "
                                  f"(--size S) to crop them square")
            config = (DCGANConfig(latent_dim=64, image_size=height, channels=channels, ngf=32, ndf=32)
                      if cfg.data == "mnist" else DCGANConfig(image_size=height, channels=channels))
    overrides = {k: getattr(cfg, k) for k in ("latent_dim", "ngf", "ndf") if getattr(cfg, k)}
    if cfg.conditional:
        if classes < 2:
            raise ConfigError("conditional needs labelled data: MNIST, or a folder with one subfolder per class")
        overrides["num_classes"] = classes
    if cfg.loss == "wgan-gp" and getattr(config, "d_norm", None) == "batch":
        overrides["d_norm"] = "layer"  # the gradient penalty is per sample; BatchNorm mixes samples
    known = {f.name for f in dataclasses.fields(config)}
    return dataclasses.replace(config, **{k: v for k, v in overrides.items() if k in known})


def as_tensors(data):
    """train(data=...): a tensor of samples, a (samples, labels) pair, or a torch Dataset of either."""
    if isinstance(data, torch.Tensor):
        return data, None
    if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        return data[0], data[1]
    if isinstance(data, torch.utils.data.TensorDataset):
        tensors = data.tensors
        return tensors[0], (tensors[1] if len(tensors) > 1 else None)
    if isinstance(data, torch.utils.data.Dataset):
        items = [data[i] for i in range(len(data))]
        if items and isinstance(items[0], (tuple, list)):
            return torch.stack([x for x, _ in items]), torch.as_tensor([y for _, y in items])
        return torch.stack(items), None
    raise ConfigError(f"data must be a tensor, a (samples, labels) pair or a torch Dataset, not {type(data).__name__}")


def train(config: TrainConfig, data=None, model=None) -> training.TrainResult:
    """Train a GAN. data: None (config.data), samples, (samples, labels) or a Dataset; model: a (generator,
    discriminator) pair to train instead of one built from the config. result.model is the generator."""
    with training.Run(config, family="gan", run_fields=RUN_FIELDS) as run:
        cfg, device = run.config, run.device
        if data is None:
            samples, labels, classes = load_data(cfg)
        else:
            samples, labels = as_tensors(data)
            classes = int(labels.max()) + 1 if labels is not None and labels.dtype == torch.long else 0
        samples = samples.float()
        if model is None:
            model = new_gan(gan_config(cfg, samples, classes), seed=cfg.seed)
        generator, discriminator = model
        generator.to(device).train()
        discriminator.to(device).train()
        conditional = generator.num_classes > 0
        if conditional and labels is None:
            raise ConfigError("a conditional GAN needs a dataset of (sample, label) pairs")
        n_critic = cfg.n_critic or (5 if cfg.loss == "wgan-gp" else 1)
        if cfg.loss == "wgan-gp" and any(isinstance(m, torch.nn.BatchNorm2d) for m in discriminator.modules()):
            raise ConfigError("WGAN-GP's gradient penalty is per sample, which BatchNorm in the critic breaks: "
                              "build the discriminator with d_norm='layer' or 'none'")
        opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
        opt_d = torch.optim.Adam(discriminator.parameters(), lr=cfg.lr_d or cfg.lr, betas=(cfg.beta1, 0.999))
        nets, opts = {"generator": generator, "discriminator": discriminator}, {"g": opt_g, "d": opt_d}
        run.restore(models=nets, optimizers=opts)
        if run.eval_only:
            return run.evaluation(eval_losses(generator, discriminator, samples, labels, cfg, device), generator)
        n = len(samples)
        total = cfg.total_steps(training.steps_per_epoch(n, cfg.batch_size, run.dist.world))
        run.progress(total)
        # Fixed noise (and labels 0, 1, 2, ...) so the sample grids show one set of samples improving.
        fixed_z = generator.latent(cfg.n_samples, seed=cfg.seed).to(device)
        fixed_labels = torch.arange(cfg.n_samples, device=device) % generator.num_classes if conditional else None

        def save_model(folder):
            save_gan(folder, generator, discriminator)

        for step in range(run.step, total):
            index = training.epoch_indices(n, cfg.batch_size, step, cfg.seed, run.dist.rank, run.dist.world)
            real = samples[index]
            if real.dim() == 4:
                real = augment(real, run.data_rng, flip=cfg.flip)
            z = torch.randn(len(real), generator.latent_dim, generator=run.data_rng)
            parts = (real, z, labels[index]) if conditional else (real, z)
            record = train_step(run, generator, discriminator, opt_g, opt_d, parts, cfg, n_critic, step, conditional)
            done = step + 1
            run.log(done, record, lr=cfg.lr)
            if run.dist.main and run.due(done, cfg.sample_every):
                sample_grid(generator, fixed_z, fixed_labels, run.sample_path(done, ""))
            if run.save_due(done):
                run.save(done, save_model, nets, opts)
        generator.eval()
        discriminator.eval()
        return run.result(generator)


def eval_losses(generator, discriminator, samples, labels, cfg: TrainConfig, device) -> dict:
    """steps=0: loss_d, loss_g, d_real and d_fake as the loop logs them (loss_d with WGAN-GP's penalty), on a
    seeded 1,024 of the samples with seeded noise, both networks in eval mode (BatchNorm's running statistics),
    nothing updated."""
    generator.eval()
    discriminator.eval()
    conditional = generator.num_classes > 0
    index = training.eval_indices(len(samples), cfg.seed)
    noise = torch.Generator().manual_seed(cfg.seed)
    penalty_points = torch.Generator(device=device).manual_seed(cfg.seed)  # where the penalty's lines are drawn
    sums = dict.fromkeys(("loss_d", "loss_g", "d_real", "d_fake"), 0.0)
    for chunk in index.split(cfg.batch_size):
        real = samples[chunk].to(device)
        y = labels[chunk].to(device) if conditional else None
        z = torch.randn(len(real), generator.latent_dim, generator=noise).to(device)
        with torch.no_grad():
            fake = generator(z, y)
            d_real, d_fake = discriminator(real, y).float(), discriminator(fake, y).float()
            loss_d = losses.discriminator_loss(cfg.loss, d_real, d_fake)
            loss_g = losses.generator_loss(cfg.loss, d_fake)
        if cfg.loss == "wgan-gp":  # the penalty needs gradients with respect to the inputs (none reach a weight)
            with torch.enable_grad():
                penalty = losses.gradient_penalty(discriminator, real, fake.float(), y, penalty_points)
            loss_d = loss_d + cfg.gp_weight * penalty.detach()
        for name, value in (("loss_d", loss_d), ("loss_g", loss_g), ("d_real", d_real.mean()),
                            ("d_fake", d_fake.mean())):
            sums[name] += value.item() * len(real)
    return {name: value / len(index) for name, value in sums.items()}


def train_step(run, generator, discriminator, opt_g, opt_d, parts, cfg, n_critic, step, conditional) -> dict:
    """One D update (and a G update every n_critic steps), accumulated over cfg.grad_accum micro-batches."""
    device = run.device
    sums = {"loss_d": 0.0, "d_real": 0.0, "d_fake": 0.0}
    fakes = []
    opt_d.zero_grad(set_to_none=True)  # G's last backward also reached D's parameters
    for part, weight in training.micro_batches(parts, cfg.grad_accum):
        real, z = part[0].to(device), part[1].to(device)
        labels = part[2].to(device) if conditional else None
        # (1) discriminator: real -> "real", G(z) -> "fake"
        with run.autocast():
            fake = generator(z, labels)
            d_real, d_fake = discriminator(real, labels), discriminator(fake.detach(), labels)
            loss_d = losses.discriminator_loss(cfg.loss, d_real.float(), d_fake.float())
        if cfg.loss == "wgan-gp":
            loss_d = loss_d + cfg.gp_weight * losses.gradient_penalty(discriminator, real, fake.float(), labels)
        run.backward(loss_d * weight, "d")
        fakes.append((fake, labels, weight))
        sums["loss_d"] += loss_d.item() * weight
        sums["d_real"] += d_real.detach().float().mean().item() * weight
        sums["d_fake"] += d_fake.detach().float().mean().item() * weight
    run.optimizer_step(opt_d, discriminator.parameters(), "d")
    # (2) generator, every n_critic discriminator steps: make D call the same fakes "real"
    if step % n_critic == 0:
        loss_g_sum = 0.0
        for fake, labels, weight in fakes:
            with run.autocast():
                loss_g = losses.generator_loss(cfg.loss, discriminator(fake, labels).float())
            run.backward(loss_g * weight, "g")
            loss_g_sum += loss_g.item() * weight
        run.optimizer_step(opt_g, generator.parameters(), "g")
        sums["loss_g"] = loss_g_sum
    return sums


@torch.no_grad()
def sample_grid(generator, z, labels, path: Path) -> Path:
    """Write G's outputs for fixed noise: a PNG grid for images, else one sample per text row."""
    was_training = generator.training
    generator.eval()
    out = generator(z, labels).float().cpu()
    generator.train(was_training)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if out.dim() == 4:
        from ..images import save_image

        return save_image(out, path.with_suffix(".png"), nrow=math.ceil(math.sqrt(len(out))), overwrite=True)
    import numpy as np

    np.savetxt(path.with_suffix(".txt"), out.flatten(1).numpy(), fmt="%.5f")
    return path.with_suffix(".txt")
