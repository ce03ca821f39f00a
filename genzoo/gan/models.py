"""GAN generators and discriminators, written from scratch.

Two architectures, each optionally conditional:

* MLP GAN (Goodfellow et al. 2014; "Learn Generative AI with PyTorch" ch. 3): Linear layers for vectors: points
  on a 1-D curve (each sample is a 2-vector (x, y)), number patterns as one-hot vectors, or flattened images
  (the yunjey/pytorch-tutorial MNIST GAN). Shapes: G maps z (n, latent_dim) -> (n, *data_shape).
* DCGAN (Radford et al. 2015; book ch. 4): transposed convolutions up from a 1x1 latent to 28, 32, 64 (or any
  4*2^k) pixels, BatchNorm + ReLU in G, strided convolutions + LeakyReLU in D. Module names follow
  pytorch/examples `dcgan/main.py` (one `main` nn.Sequential), so its 64-pixel checkpoints load key for key.
  G maps z (n, latent_dim) or (n, latent_dim, 1, 1) -> images (n, C, H, W) in [-1, 1].

Conditioning (book ch. 5, `num_classes > 0`): G reads [z, c] and D reads [x, c], where c is a one-hot class
label (pass integer labels) or an attribute vector (pass floats shaped (n, num_classes), e.g. "eyeglasses: 1.0").
DCGAN's D sees c as constant extra image channels. Discriminators return logits (n,), not probabilities: every
loss in losses.py starts from logits (numerically stable); `D.probability(x)` applies the sigmoid.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from ..nn.layers import activation, check_activation, check_norm, norm
from ..pretrained import Config, PretrainedModel
from ..runtime import make_generator, randn

FAMILY = "gan"

# ---------------------------------------------------------------------------------------------------- configs

@dataclass
class MLPGANConfig(Config):
    model_type = "mlp"
    LIMITS = {"latent_dim": (1, 1 << 16), "data_shape": (1, 1 << 16), "g_hidden": (1, 1 << 16),
              "d_hidden": (1, 1 << 16), "d_dropout": (0.0, 1.0), "num_classes": (0, 1 << 16)}

    latent_dim: int = 64
    data_shape: tuple = (1, 28, 28)       # one sample: (2,) for a curve point, (100,) for a one-hot number, (C,H,W)
    g_hidden: tuple = (256, 256)
    d_hidden: tuple = (256, 256)
    g_activation: str = "relu"
    d_activation: str = "leaky_relu"      # LeakyReLU(0.2), as in the yunjey tutorial and DCGAN
    output_activation: str = "tanh"       # tanh for images in [-1, 1]; "none" for curve points; "relu" for one-hots
    d_dropout: float = 0.0                # the book's curve discriminator uses 0.3
    num_classes: int = 0                  # > 0: conditional on a one-hot label or an attribute vector

    def __post_init__(self):
        super().__post_init__()
        for name in ("g_activation", "d_activation", "output_activation"):
            check_activation(getattr(self, name), option=name)
        if not self.data_shape:
            raise ConfigError(f"MLPGANConfig.data_shape must name at least one dimension: {self}")

    @property
    def data_size(self) -> int:
        return math.prod(self.data_shape)

    @property
    def is_image(self) -> bool:
        return len(self.data_shape) == 3


@dataclass
class DCGANConfig(Config):
    model_type = "dcgan"
    LIMITS = {"latent_dim": (1, 1 << 16), "image_size": (1, 1 << 14), "channels": (1, 64), "ngf": (1, 1 << 14),
              "ndf": (1, 1 << 14), "num_classes": (0, 1 << 16)}

    latent_dim: int = 100                 # nz in pytorch/examples
    image_size: int = 64                  # 28, or 4 * 2**k: 32, 64, 128 ...
    channels: int = 3                     # nc
    ngf: int = 64                         # generator width (last hidden layer)
    ndf: int = 64                         # discriminator width (first layer)
    num_classes: int = 0
    d_norm: str = "batch"                 # "batch" (DCGAN); "layer" or "none" for a WGAN-GP critic

    def __post_init__(self):
        super().__post_init__()
        _ladder(self.image_size)  # validates
        check_norm(self.d_norm, option="d_norm")

    @property
    def data_shape(self) -> tuple:
        return (self.channels, self.image_size, self.image_size)

    is_image = True


def config_to_dict(config) -> dict:
    return config.to_dict()


def config_from_dict(d: dict, where: str = "config.json"):
    """A GAN config from config.json: "model" names the backbone (genzoo 0.1 said "arch"); bookkeeping keys
    ("parts", "train") are not config fields."""
    model_type = d.get("model") or d.get("arch")
    d = {k: v for k, v in d.items() if k not in ("parts", "train", "arch", "model")}
    if not isinstance(model_type, str) or model_type not in CONFIGS:
        raise ConfigError(f"{where}: unknown GAN backbone {model_type!r}: one of {sorted(CONFIGS)} "
                          f"(register a new one with genzoo.gan.register_generator)")
    return CONFIGS[model_type].from_dict(d, where=where)


def _ladder(image_size: int) -> list[tuple[int, int, int]]:
    """(kernel, stride, padding) of each up-sampling layer from 1x1 to image_size (D uses it reversed)."""
    if image_size == 28:  # 1 -> 4 -> 7 -> 14 -> 28 (MNIST)
        return [(4, 1, 0), (3, 2, 1), (4, 2, 1), (4, 2, 1)]
    doublings = math.log2(image_size / 4) if image_size >= 8 else 0
    if doublings < 1 or doublings != int(doublings):
        raise ConfigError(f"DCGAN image_size must be 28 or 4 * 2**k (8, 16, 32, 64, 128, ...), not {image_size}")
    return [(4, 1, 0)] + [(4, 2, 1)] * int(doublings)


# ---------------------------------------------------------------------------------------------------- helpers


def label_vectors(labels, n: int, num_classes: int, device, dtype) -> torch.Tensor:
    """Integer class labels -> one-hot (n, num_classes); float attribute vectors (n, num_classes) pass through."""
    if num_classes == 0:
        if labels is not None:
            raise ConfigError("this GAN is not conditional: do not pass labels")
        return None
    if labels is None:
        raise ConfigError(f"this GAN is conditional on {num_classes} classes: pass labels (ints in "
                          f"[0, {num_classes - 1}]) or attribute vectors shaped (n, {num_classes})")
    labels = torch.as_tensor(labels, device=device)
    if labels.is_floating_point():
        if labels.shape != (n, num_classes):
            raise ConfigError(f"attribute vectors must be shaped ({n}, {num_classes}), got {tuple(labels.shape)}")
        return labels.to(dtype)
    if labels.dim() == 0:
        labels = labels.expand(n)
    if labels.shape != (n,):
        raise ConfigError(f"labels must be one int or shaped ({n},), got {tuple(labels.shape)}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ConfigError(f"label out of range: got {labels.min().item()}..{labels.max().item()}, "
                          f"this GAN knows classes 0..{num_classes - 1}")
    return F.one_hot(labels.long(), num_classes).to(dtype)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between Gaussian latents (keeps the norm typical of N(0, I); White 2016)."""
    a_flat, b_flat = a.flatten(), b.flatten()
    omega = torch.arccos((a_flat @ b_flat / (a_flat.norm() * b_flat.norm())).clamp(-1, 1))
    if omega.abs() < 1e-4:
        return torch.lerp(a, b, t.view(-1, *[1] * a.dim()))
    t = t.view(-1, *[1] * a.dim())
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


class GANModule(PretrainedModel):
    """What generators and discriminators share: the config, and genzoo's checkpoint layout (one part here)."""

    family = FAMILY
    part = ""

    def __init__(self, config):
        super().__init__()
        self.config = config

    def save_pretrained(self, directory, format: str = "genzoo", **options):
        """genzoo's format: model.safetensors with "<part>." keys + config.json (save_gan writes G and D together)."""
        if format != "genzoo":
            return super().save_pretrained(directory, format=format, **options)
        from .. import checkpoint

        state_dict = {f"{self.part}.{k}": v for k, v in self.state_dict().items()}
        return checkpoint.save_pretrained(directory, state_dict, {**self.config.to_dict(), "parts": [self.part]},
                                          FAMILY)

    def push_to_hub(self, repo_id: str, format: str = "genzoo", private: bool = False, revision=None, **kwargs):
        """Upload to the Hugging Face Hub with a model card; see genzoo.export.push_to_hub."""
        from ..export import push_to_hub

        return push_to_hub(self, repo_id, format=format, private=private, revision=revision, **kwargs)


class Generator(GANModule):
    """Sampling API common to both architectures. Subclasses define `forward(z, labels=None)`."""

    part = "generator"
    load_options = {"part": "generator"}

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    def latent(self, n: int, seed=None, generator=None) -> torch.Tensor:
        """n latent vectors z ~ N(0, I), shaped (n, latent_dim); same seed, same z on every device."""
        n = _check_count(n)
        g = make_generator(seed, generator, "cpu")
        # A seed draws on the CPU, so it gives the same samples on CPU and CUDA; a passed generator draws where it lives.
        return randn((n, self.latent_dim), g, device=self.device, draw_on="cpu").to(self.dtype)

    @torch.no_grad()
    def sample(self, n: int, seed=None, generator=None, labels=None, batch_size: int = 256,
               progress: bool = False) -> torch.Tensor:
        """n samples (n, *data_shape). A conditional G without `labels` cycles through labels 0, 1, 2, ..."""
        z = self.latent(n, seed, generator)
        if self.num_classes and labels is None:
            labels = torch.arange(n) % self.num_classes
        if labels is not None and not torch.is_tensor(labels):
            labels = torch.as_tensor(labels)
        if labels is not None and labels.dim() == 0:
            labels = labels.expand(n)
        starts = range(0, n, batch_size)
        if progress and len(starts) > 4:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="sampling", unit="batch", leave=False)
        chunks = [self(z[i:i + batch_size], None if labels is None else labels[i:i + batch_size]) for i in starts]
        return torch.cat(chunks)

    @torch.no_grad()
    def interpolate(self, steps: int = 8, seed=None, generator=None, labels=None, rows: int = 1) -> torch.Tensor:
        """`rows` strips of `steps` samples, each walking (slerp) between two random latents: (rows*steps, ...)."""
        steps, rows = _check_count(steps, "steps"), _check_count(rows, "rows")
        ends = self.latent(2 * rows, seed, generator)
        t = torch.linspace(0, 1, steps, device=ends.device, dtype=ends.dtype)
        z = torch.cat([slerp(ends[2 * r], ends[2 * r + 1], t) for r in range(rows)])
        if self.num_classes:
            labels = torch.as_tensor(0 if labels is None else labels)
            labels = labels.expand(rows * steps) if labels.dim() == 0 else labels.repeat_interleave(steps)
        return self(z, labels)


def _check_count(n, what="n") -> int:
    if isinstance(n, bool) or not isinstance(n, int) and not (torch.is_tensor(n) and n.numel() == 1):
        raise ConfigError(f"{what} must be a positive int, got {n!r}")
    if int(n) < 1:
        raise ConfigError(f"{what} must be at least 1, got {int(n)}")
    return int(n)


def _check_latent(z: torch.Tensor, latent_dim: int, allow_4d: bool) -> torch.Tensor:
    """(n, latent_dim) [or (n, latent_dim, 1, 1)] -> (n, latent_dim); anything else is a clear error."""
    if not torch.is_tensor(z):
        raise ConfigError(f"z must be a tensor shaped (n, {latent_dim}), got {type(z).__name__}")
    if allow_4d and z.dim() == 4 and z.shape[2:] == (1, 1):
        z = z.flatten(1)
    if z.dim() != 2 or z.shape[1] != latent_dim or z.shape[0] < 1:
        also = f" or (n, {latent_dim}, 1, 1)" if allow_4d else ""
        raise ConfigError(f"z must be shaped (n, {latent_dim}){also} with n >= 1, got {tuple(z.shape)}")
    return z


class Discriminator(GANModule):
    """Subclasses define `forward(x, labels=None) -> logits (n,)`; probability() applies the sigmoid."""

    part = "discriminator"
    load_options = {"part": "discriminator"}

    def probability(self, x, labels=None) -> torch.Tensor:
        return torch.sigmoid(self(x, labels))


# ---------------------------------------------------------------------------------------------------- backbones
# A backbone is a Config subclass (its model_type names it) + a Generator and a Discriminator subclass, each
# registered with one decorator; build(), the loaders and training then find it by the config's model_type.
CONFIGS: dict[str, type] = {}
GENERATORS: dict[str, type] = {}
DISCRIMINATORS: dict[str, type] = {}


def _registrar(table: dict, base: type, what: str):
    def register(name: str, config_class: type):
        def add(cls):
            if not (isinstance(cls, type) and issubclass(cls, base)):
                raise ConfigError(f"a GAN {what} must subclass genzoo.gan.{base.__name__} (which gives it the "
                                  f"config, sampling and save_pretrained) and define forward(); got {cls!r}")
            if not (isinstance(config_class, type) and issubclass(config_class, Config)) or \
                    config_class.model_type != name:
                raise ConfigError(f"register_{what}({name!r}, ...) needs a genzoo.pretrained.Config dataclass whose "
                                  f"model_type is {name!r}; got {config_class!r}")
            CONFIGS[name] = config_class
            table[name] = cls
            return cls
        return add
    return register


register_generator = _registrar(GENERATORS, Generator, "generator")
register_discriminator = _registrar(DISCRIMINATORS, Discriminator, "discriminator")


# ---------------------------------------------------------------------------------------------------- MLP GAN


@register_generator("mlp", MLPGANConfig)
class MLPGenerator(Generator):
    """z (n, latent_dim) [+ labels] -> Linear/activation stack -> (n, *data_shape)."""

    def __init__(self, config: MLPGANConfig):
        super().__init__(config)
        widths = [config.latent_dim + config.num_classes, *config.g_hidden, config.data_size]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.act = activation(config.g_activation)
        self.out_act = activation(config.output_activation)

    def forward(self, z: torch.Tensor, labels=None) -> torch.Tensor:
        x = _check_latent(z, self.latent_dim, allow_4d=False)
        c = label_vectors(labels, x.shape[0], self.num_classes, x.device, x.dtype)
        if c is not None:
            x = torch.cat([x, c], dim=1)
        for layer in self.layers[:-1]:
            x = self.act(layer(x))
        x = self.out_act(self.layers[-1](x))
        return x.view(x.shape[0], *self.config.data_shape)


@register_discriminator("mlp", MLPGANConfig)
class MLPDiscriminator(Discriminator):
    """(n, *data_shape) [+ labels] -> Linear/activation(/dropout) stack -> logits (n,)."""

    def __init__(self, config: MLPGANConfig):
        super().__init__(config)
        widths = [config.data_size + config.num_classes, *config.d_hidden, 1]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.act = activation(config.d_activation)
        self.dropout = nn.Dropout(config.d_dropout)

    def forward(self, x: torch.Tensor, labels=None) -> torch.Tensor:
        x = _check_data(x, self.config.data_shape).flatten(1)
        c = label_vectors(labels, x.shape[0], self.config.num_classes, x.device, x.dtype)
        if c is not None:
            x = torch.cat([x, c], dim=1)
        for layer in self.layers[:-1]:
            x = self.dropout(self.act(layer(x)))
        return self.layers[-1](x).squeeze(1)


def _check_data(x, data_shape) -> torch.Tensor:
    if not torch.is_tensor(x) or x.dim() < 2 or x.shape[0] < 1 or (
            tuple(x.shape[1:]) != tuple(data_shape) and not (x.dim() == 2 and x.shape[1] == math.prod(data_shape))):
        got = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
        raise ConfigError(f"the discriminator reads (n, {', '.join(map(str, data_shape))}), got {got}")
    return x


# ---------------------------------------------------------------------------------------------------- DCGAN


@register_generator("dcgan", DCGANConfig)
class DCGANGenerator(Generator):
    """pytorch/examples layout: main = [ConvT, BN, ReLU] * k + [ConvT, Tanh]; widths ngf*2^(k-1) ... ngf."""

    def __init__(self, config: DCGANConfig):
        super().__init__(config)
        ladder = _ladder(config.image_size)
        widths = [config.latent_dim + config.num_classes] + [config.ngf * 2 ** i for i in reversed(range(len(ladder) - 1))]
        layers = []
        for (k, s, p), c_in, c_out in zip(ladder[:-1], widths[:-1], widths[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, k, s, p, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        k, s, p = ladder[-1]
        layers += [nn.ConvTranspose2d(widths[-1], config.channels, k, s, p, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels=None) -> torch.Tensor:
        z = _check_latent(z, self.latent_dim, allow_4d=True)
        c = label_vectors(labels, z.shape[0], self.num_classes, z.device, z.dtype)
        if c is not None:
            z = torch.cat([z, c], dim=1)
        return self.main(z[:, :, None, None])


@register_discriminator("dcgan", DCGANConfig)
class DCGANDiscriminator(Discriminator):
    """pytorch/examples layout: main = [Conv, LReLU] + [Conv, Norm, LReLU] * k + [Conv] -> logits (n,).

    pytorch/examples ends with nn.Sigmoid (no parameters), so its D(x) equals `probability(x)` here.
    """

    def __init__(self, config: DCGANConfig):
        super().__init__(config)
        ladder = _ladder(config.image_size)[::-1]
        widths = [config.channels + config.num_classes] + [config.ndf * 2 ** i for i in range(len(ladder) - 1)]
        layers = []
        for i, ((k, s, p), c_in, c_out) in enumerate(zip(ladder[:-1], widths[:-1], widths[1:])):
            layers.append(nn.Conv2d(c_in, c_out, k, s, p, bias=False))
            if i > 0:  # no norm on the first layer (Radford et al.); Identity keeps the published indices
                layers.append(norm(config.d_norm, c_out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
        k, s, p = ladder[-1]
        layers.append(nn.Conv2d(widths[-1], 1, k, s, p, bias=False))
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, labels=None) -> torch.Tensor:
        x = _check_data(x, self.config.data_shape)
        c = label_vectors(labels, x.shape[0], self.config.num_classes, x.device, x.dtype)
        if c is not None:
            x = torch.cat([x, c[:, :, None, None].expand(-1, -1, *x.shape[2:])], dim=1)
        return self.main(x).flatten()


def build(config, part: str = "generator") -> nn.Module:
    table = {"generator": GENERATORS, "discriminator": DISCRIMINATORS}
    if part not in table:
        raise ConfigError(f"part must be 'generator' or 'discriminator', not {part!r}")
    if config.model_type not in table[part]:
        raise ConfigError(f"no {part} is registered for GAN backbone {config.model_type!r}; registered: "
                          f"{sorted(table[part])}")
    return table[part][config.model_type](config)


def init_weights(module: nn.Module) -> None:
    """DCGAN init (Radford et al.): conv weights ~ N(0, 0.02), norm scales ~ N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


# Book ch. 3 (and the yunjey tutorial): small presets that train on a CPU in seconds to minutes.
PRESETS = {
    # points (x, y) on y = sin(x); G: latent 2 -> 2 (the book's D also has Dropout(0.3): d_dropout=0.3)
    "curve": MLPGANConfig(latent_dim=2, data_shape=(2,), g_hidden=(32, 64), d_hidden=(128, 64),
                          d_activation="relu", output_activation="none", d_dropout=0.0),
    # multiples of 5 below 100 as one-hot vectors; ReLU output can emit exact zeros, as in the book
    "numbers": MLPGANConfig(latent_dim=100, data_shape=(100,), g_hidden=(), d_hidden=(),
                            output_activation="relu"),
    # MNIST digits, the yunjey/pytorch-tutorial layout
    "mnist-mlp": MLPGANConfig(),
    "mnist-dcgan": DCGANConfig(latent_dim=64, image_size=28, channels=1, ngf=32, ndf=32, num_classes=10),
}
