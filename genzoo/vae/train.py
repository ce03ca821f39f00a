"""Training a VAE (book ch. 7-8): reconstruction loss + beta * KL, on genzoo's training contract.

    from genzoo.vae.train import TrainConfig, train
    train(TrainConfig(out_dir="runs/mnist-vae", epochs=10))                         # MNIST, a conv VAE (or steps=)
    train(TrainConfig(data="faces/", kind="conv", recon="mse", out_dir="runs/faces"))  # size/channels from the folder
    train(TrainConfig(out_dir="runs/mine"), data=images, model=my_vae)              # (N, C, H, W) in [-1, 1]

The loss per example is  recon(x, x_hat) + beta * KL(q(z|x) || N(0, I)),  both summed over pixels / latent
dimensions and averaged over the batch. recon="bce" treats pixels as Bernoulli probabilities ((x + 1) / 2, on the
decoder's logits: pytorch/examples' loss); recon="mse" is a Gaussian likelihood with unit variance (halved
squared error). A plain autoencoder (variational=False) has no KL term.

The run folder is genzoo.training's: the model (vae.from_pretrained(out_dir), `genzoo sample out_dir`),
train_state.pt, log.jsonl (loss, rec, kl; heldout_recon on MNIST every sample_every steps), loss.png,
samples/step-N.png (decoded prior draws, fixed seed) and checkpoints/. Batch order derives from (seed, epoch) and
the sampling noise from the saved per-rank generator, so a resumed run takes the same steps as an uninterrupted one.
steps=0 evaluates the starting model instead (eval_losses: the loop's loss, rec and kl on the held-out images, or
without them a seeded 1,024 training images, and heldout_recon), writing no model (see genzoo.training).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import training
from ..data import ImageFolder, augment
from ..errors import ConfigError

RUN_FIELDS = ("data", "size", "channels", "fit", "flip", "kind", "widths", "hidden", "latent_dim", "variational",
              "recon")


@dataclass
class TrainConfig(training.TrainConfig):
    out_dir: str = "runs/vae"
    data: str = "mnist"          # "mnist" (genzoo's 8k training digits) or a folder of images
    size: tuple | None = None    # (height, width) of folder images (None: the folder's own)
    channels: int | None = None  # image channels (None: 1 for MNIST, 1 or 3 as the folder's images are)
    fit: str = "crop"
    flip: bool = False
    kind: str = "conv"           # "conv" or "mlp"
    widths: tuple | None = None  # conv widths, one stride-2 layer each (None: 32 64 up to 32 px, else 32 64 128 256)
    hidden: int = 400            # MLP hidden width
    latent_dim: int | None = None  # None: 20 (mlp), 16 (conv up to 32 px), 128 (larger)
    variational: bool = True     # False: a plain autoencoder
    steps: int = 300             # about 5 passes over MNIST's 8,000 digits
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    beta: float = 1.0            # weight of the KL term (beta-VAE); 1 is the ELBO
    recon: str | None = None     # "bce" (Bernoulli pixels, MNIST) or "mse" (photos); None: bce for MNIST, else mse

    def __post_init__(self):
        super().__post_init__()
        if self.recon not in (None, "bce", "mse"):
            raise ConfigError(f"recon must be 'bce' or 'mse', not {self.recon!r}")
        if self.kind not in ("conv", "mlp"):
            raise ConfigError(f"kind must be 'conv' or 'mlp', not {self.kind!r}")
        if self.beta < 0:
            raise ConfigError(f"beta must be >= 0, not {self.beta}")
        if isinstance(self.size, int):
            self.size = (self.size, self.size)
        self.size = tuple(self.size) if self.size is not None else None
        self.widths = tuple(self.widths) if self.widths is not None else None

    @property
    def recon_loss(self) -> str:
        return self.recon or ("bce" if self.data == "mnist" else "mse")


def load_images(cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(training images, held-out images or None), (N, C, H, W) in [-1, 1]."""
    if cfg.data == "mnist":
        from .. import datasets

        images, heldout = datasets.mnist("train")[0], datasets.mnist("heldout")[0]
        if cfg.size not in (None, (28, 28)):
            images = F.interpolate(images, size=cfg.size, mode="bilinear", align_corners=False).clamp(-1, 1)
            heldout = F.interpolate(heldout, size=cfg.size, mode="bilinear", align_corners=False).clamp(-1, 1)
        if cfg.channels == 3:
            images, heldout = images.expand(-1, 3, -1, -1), heldout.expand(-1, 3, -1, -1)
        return images.contiguous(), heldout.contiguous()
    if not Path(cfg.data).expanduser().is_dir():
        raise ConfigError(f"data must be 'mnist' or a folder of images; {cfg.data!r} is neither")
    return ImageFolder(cfg.data, size=cfg.size, channels=cfg.channels, fit=cfg.fit).load()[0], None


def build_vae(cfg: TrainConfig, images: torch.Tensor):
    from .loading import build_model
    from .model import ConvVAEConfig, MLPVAEConfig

    channels, height, width = images.shape[1:]
    if cfg.kind == "mlp":
        if not cfg.variational:
            raise ConfigError("a plain autoencoder (variational=False, --plain) is available for kind 'conv'")
        config = MLPVAEConfig(in_features=channels * height * width, hidden=cfg.hidden, latent_dim=cfg.latent_dim or 20,
                              image_shape=(channels, height, width))
    else:
        if height != width:
            raise ConfigError(f"the conv VAE takes square images, these are {height}x{width}: pass size (--size S)")
        widths = cfg.widths or ((32, 64) if height <= 32 else (32, 64, 128, 256))
        config = ConvVAEConfig(in_channels=channels, image_size=height, channels=widths,
                               latent_dim=cfg.latent_dim or (16 if height <= 32 else 128), variational=cfg.variational)
    return build_model(config)


def vae_loss(model, x: torch.Tensor, recon: str = "bce", beta: float = 1.0, generator=None, eps=None):
    """-> (loss, reconstruction term, KL term), each averaged over the batch. eps: the reparameterisation noise
    (drawn from `generator` when not given)."""
    mean, logvar = model.encode(x)
    if logvar is None:
        z = mean
    elif eps is not None:
        z = mean + torch.exp(0.5 * logvar) * eps.to(mean.device, mean.dtype)
    else:
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


@torch.no_grad()
def eval_losses(model, images: torch.Tensor, cfg: TrainConfig, heldout: torch.Tensor | None = None) -> dict:
    """steps=0: what the loop logs, for the model as it is: loss, rec and kl (as in training, with seeded
    reparameterisation noise, in eval mode) on the held-out images when there are, else on a seeded 1,024 of the
    training images; and heldout_recon (the posterior mean's reconstruction loss) when there are held-out images."""
    model.eval()
    param = next(model.parameters())
    images = heldout if heldout is not None else images[training.eval_indices(len(images), cfg.seed)]
    variational = getattr(model.config, "variational", True)
    latent_shape = model.latent_shape(tuple(images.shape[-2:]))
    noise = torch.Generator().manual_seed(cfg.seed)
    sums = {"loss": 0.0, "rec": 0.0, "kl": 0.0}
    for chunk in images.split(cfg.batch_size):
        eps = torch.randn((len(chunk), *latent_shape), generator=noise) if variational else None
        terms = vae_loss(model, chunk.to(param.device, param.dtype), cfg.recon_loss, cfg.beta, eps=eps)
        for name, value in zip(sums, terms):
            sums[name] += value.item() * len(chunk)
    result = {name: value / len(images) for name, value in sums.items()}
    if heldout is not None:
        result["heldout_recon"] = evaluate(model, heldout, cfg.recon_loss)
    return result


def train(config: TrainConfig, data: torch.Tensor | None = None, model=None,
          heldout: torch.Tensor | None = None) -> training.TrainResult:
    """Train a VAE. data: None (config.data) or images (N, C, H, W) in [-1, 1]; model: a VAE to train instead of
    one built from the config; heldout: images whose reconstruction loss is logged (MNIST: its held-out digits)."""
    with training.Run(config, family="vae", run_fields=RUN_FIELDS) as run:
        cfg, device = run.config, run.device
        if data is None:
            data, default_heldout = load_images(cfg)
            heldout = heldout if heldout is not None else default_heldout
        images = data.float()
        recon = cfg.recon_loss
        if model is None:
            model = build_vae(cfg, images)
        model.to(device).train()
        variational = getattr(model.config, "variational", True)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        run.restore(models={"model": model}, optimizers={"optimizer": optimizer})
        if run.eval_only:
            return run.evaluation(eval_losses(model, images, cfg, heldout), model.eval())
        n = len(images)
        total = cfg.total_steps(training.steps_per_epoch(n, cfg.batch_size, run.dist.world))
        run.progress(total)
        latent_shape = model.latent_shape(tuple(images.shape[-2:]))

        def save_model(folder):
            model.save_pretrained(folder)

        for step in range(run.step, total):
            index = training.epoch_indices(n, cfg.batch_size, step, cfg.seed, run.dist.rank, run.dist.world)
            x = augment(images[index], run.data_rng, flip=cfg.flip)
            eps = torch.randn((len(x), *latent_shape), generator=run.data_rng) if variational else None
            parts = (x, eps) if variational else (x,)
            sums = {"loss": 0.0, "rec": 0.0, "kl": 0.0}
            for part, weight in training.micro_batches(parts, cfg.grad_accum):
                with run.autocast():
                    loss, rec, kl = vae_loss(model, part[0].to(device), recon, cfg.beta,
                                             eps=part[1] if variational else None)
                run.backward(loss * weight)
                for name, value in (("loss", loss), ("rec", rec), ("kl", kl)):
                    sums[name] += value.item() * weight
            run.optimizer_step(optimizer, model.parameters())
            done = step + 1
            sampled = run.due(done, cfg.sample_every)
            if sampled and heldout is not None:
                sums["heldout_recon"] = evaluate(model, heldout, recon)
            run.log(done, sums, lr=cfg.lr)
            if sampled and run.dist.main:
                write_samples(model, run.sample_path(done), tuple(images.shape[-2:]))
            if run.save_due(done):
                run.save(done, save_model, {"model": model}, {"optimizer": optimizer})
        return run.result(model.eval())


@torch.no_grad()
def write_samples(model, path, image_size, n: int = 64):
    from ..images import save_image

    was_training = model.training
    model.eval()
    images = model.sample(n, seed=0, image_size=image_size)
    model.train(was_training)
    return save_image(images, path, nrow=8, overwrite=True)  # the run folder is this run's own
