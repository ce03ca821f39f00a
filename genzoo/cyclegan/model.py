"""CycleGAN networks, written from scratch (Zhu et al. 2017, "Unpaired Image-to-Image Translation").

Three networks, as in junyanz/pytorch-CycleGAN-and-pix2pix:
  * ResnetGenerator: 7x7 stem, two stride-2 downsamplings, n residual blocks, two transposed-conv upsamplings,
    7x7 head and tanh (Johnson et al.'s style-transfer network). Every published CycleGAN model is this one with
    9 blocks and 64 stem channels.
  * UnetGenerator: an encoder-decoder with skip connections (pix2pix), for images of 2**num_downs pixels or more.
  * NLayerDiscriminator: the PatchGAN; with 3 layers each output logit sees a 70x70 patch of the input.

Images are float tensors in [-1, 1], shaped (N, C, H, W). junyanz keeps everything in one nn.Sequential, so his
checkpoints say `model.19.weight`; genzoo names the parts (`up.0.conv.weight`) and convert.py holds the table
between the two.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn as nn

from ..errors import ConfigError
from ..nn import layers
from ..pretrained import Config, PretrainedModel

NORMS = ("instance", "batch")

# Backbones by name: a new generator or discriminator is one class (taking its config) + one decorator, and
# GeneratorConfig(arch=...) / DiscriminatorConfig(arch=...) then build it, in training and in loading.
GENERATORS: dict[str, type] = {}
DISCRIMINATORS: dict[str, type] = {}


def _registrar(table: dict, what: str):
    def register(name: str):
        def add(cls):
            if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
                raise ConfigError(f"a CycleGAN {what} must be an nn.Module class taking its config; got {cls!r}")
            table[name] = cls
            return cls
        return add
    return register


register_generator = _registrar(GENERATORS, "generator")
register_discriminator = _registrar(DISCRIMINATORS, "discriminator")
PADDINGS = {"reflect": "reflect", "replicate": "replicate", "zero": "zeros"}
DISCRIMINATOR_OUTPUTS = {"logits": nn.Identity, "sigmoid": nn.Sigmoid}


@dataclass
class GeneratorConfig(Config):
    model_type = "generator"
    LIMITS = {"input_nc": (1, 64), "output_nc": (1, 64), "ngf": (1, 1 << 14), "n_blocks": (0, 256),
              "num_downs": (1, 16)}

    arch: str = "resnet"          # a registered generator backbone: "resnet", "unet", or one of yours
    input_nc: int = 3             # channels in
    output_nc: int = 3            # channels out
    ngf: int = 64                 # channels after the stem
    n_blocks: int = 9             # resnet: residual blocks (6 for 128 px images, 9 for 256 px in the paper)
    num_downs: int = 8            # unet: downsamplings (7: unet_128, 8: unet_256)
    norm: str = "instance"        # "instance" (affine=False, as junyanz) or "batch"
    use_dropout: bool = False     # dropout 0.5 inside resnet blocks / the inner unet levels
    padding_type: str = "reflect"  # resnet blocks: "reflect", "replicate" or "zero"
    down_padding: str = "zero"    # resnet downsampling convs: "zero" (junyanz) or "reflect" (the book's ch. 6)

    def __post_init__(self):
        super().__post_init__()
        if self.arch not in GENERATORS:
            raise ConfigError(f"generator arch must be one of {sorted(GENERATORS)}, not {self.arch!r} (add one with "
                              f"@genzoo.cyclegan.register_generator)")
        if self.norm not in NORMS:
            raise ConfigError(f"norm must be one of {NORMS}, not {self.norm!r}")
        for name in ("padding_type", "down_padding"):
            if getattr(self, name) not in PADDINGS:
                raise ConfigError(f"{name} must be one of {tuple(PADDINGS)}, not {getattr(self, name)!r}")
        if self.arch == "unet" and self.num_downs < 5:
            raise ConfigError(f"a unet generator needs num_downs >= 5, not {self.num_downs}")

    @property
    def multiple(self) -> int:
        """Height and width must be multiples of this."""
        return 4 if self.arch == "resnet" else 2 ** self.num_downs


@dataclass
class DiscriminatorConfig(Config):
    model_type = "discriminator"
    LIMITS = {"input_nc": (1, 64), "ndf": (1, 1 << 14), "n_layers": (1, 16)}

    input_nc: int = 3
    ndf: int = 64                 # channels of the first layer
    n_layers: int = 3             # stride-2 layers; 3 gives the 70x70 PatchGAN
    norm: str = "instance"
    arch: str = "patch"           # a registered discriminator backbone: "patch" (PatchGAN), or one of yours
    padding: str = "zero"         # every conv's padding: "zero" (junyanz) or "reflect" (the book's ch. 6)
    output: str = "logits"        # "logits" (junyanz; the losses take logits) or "sigmoid" (the book's ch. 6)

    def __post_init__(self):
        super().__post_init__()
        if self.norm not in NORMS:
            raise ConfigError(f"norm must be one of {NORMS}, not {self.norm!r}")
        if self.padding not in PADDINGS:
            raise ConfigError(f"padding must be one of {tuple(PADDINGS)}, not {self.padding!r}")
        if self.output not in DISCRIMINATOR_OUTPUTS:
            raise ConfigError(f"output must be one of {tuple(DISCRIMINATOR_OUTPUTS)}, not {self.output!r}")
        if self.arch not in DISCRIMINATORS:
            raise ConfigError(f"discriminator arch must be one of {sorted(DISCRIMINATORS)}, not {self.arch!r} (add "
                              f"one with @genzoo.cyclegan.register_discriminator)")


def make_norm(kind: str, channels: int) -> nn.Module:
    # junyanz's instance norm has no affine parameters and no running statistics, so it adds no state_dict keys.
    return layers.norm(kind, channels)


class ConvNormAct(nn.Module):
    """conv -> norm -> activation, the unit both generators and the discriminator are built from."""

    def __init__(self, conv: nn.Module, norm: nn.Module | None = None, act: nn.Module | None = None):
        super().__init__()
        self.conv = conv
        self.norm = norm if norm is not None else nn.Identity()
        self.act = act if act is not None else nn.Identity()

    def forward(self, x):
        return self.act(self.norm(self.conv(x)))


class ResnetBlock(nn.Module):
    """x + (conv3x3 -> norm -> relu -> [dropout] -> conv3x3 -> norm)(x), padding by reflection."""

    def __init__(self, dim: int, norm: str, use_dropout: bool, padding_type: str = "reflect"):
        super().__init__()
        bias = norm == "instance"  # batch norm has its own shift
        mode = PADDINGS[padding_type]
        self.conv1 = nn.Conv2d(dim, dim, 3, padding=1, padding_mode=mode, bias=bias)
        self.norm1 = make_norm(norm, dim)
        self.dropout = nn.Dropout(0.5) if use_dropout else nn.Identity()
        self.conv2 = nn.Conv2d(dim, dim, 3, padding=1, padding_mode=mode, bias=bias)
        self.norm2 = make_norm(norm, dim)

    def forward(self, x):
        h = self.dropout(torch.relu(self.norm1(self.conv1(x))))
        return x + self.norm2(self.conv2(h))


class Network(PretrainedModel):
    """One CycleGAN network; config.json holds its config (read back by cyclegan.from_pretrained)."""

    family = "cyclegan"


@register_generator("resnet")
class ResnetGenerator(Network):
    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.config = config
        c, norm, bias = config.ngf, config.norm, config.norm == "instance"
        relu = lambda: nn.ReLU(inplace=True)  # noqa: E731
        # A 7x7 convolution on a reflection-padded image: no zero border for the network to learn around.
        self.stem = ConvNormAct(nn.Conv2d(config.input_nc, c, 7, padding=3, padding_mode="reflect", bias=bias),
                                make_norm(norm, c), relu())
        self.down = nn.ModuleList([
            ConvNormAct(nn.Conv2d(c * m, c * m * 2, 3, stride=2, padding=1, padding_mode=PADDINGS[config.down_padding],
                                  bias=bias), make_norm(norm, c * m * 2), relu())
            for m in (1, 2)])
        self.blocks = nn.Sequential(*[ResnetBlock(4 * c, norm, config.use_dropout, config.padding_type)
                                      for _ in range(config.n_blocks)])
        self.up = nn.ModuleList([
            ConvNormAct(nn.ConvTranspose2d(c * m, c * m // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                        make_norm(norm, c * m // 2), relu())
            for m in (4, 2)])
        self.head = nn.Conv2d(c, config.output_nc, 7, padding=3, padding_mode="reflect")

    def forward(self, x):
        x = self.stem(x)
        for layer in self.down:
            x = layer(x)
        x = self.blocks(x)
        for layer in self.up:
            x = layer(x)
        return torch.tanh(self.head(x))


def unet_channels(config: GeneratorConfig) -> list[tuple[int, int]]:
    """(outer, inner) channels of each U-Net level, outermost first: ngf, 2ngf, 4ngf, then 8ngf down to the bottom."""
    c = config.ngf
    inner = [c, 2 * c, 4 * c] + [8 * c] * (config.num_downs - 3)
    outer = [None] + inner[:-1]
    return list(zip(outer, inner))


@register_generator("unet")
class UnetGenerator(Network):
    """The pix2pix U-Net: level i halves the resolution on the way down; on the way up, level i sees the
    concatenation of its own encoder output (the skip) and the decoder output of level i + 1."""

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.config = config
        n, bias = config.num_downs, config.norm == "instance"
        self.down, self.down_norm, self.up, self.up_norm = (nn.ModuleList() for _ in range(4))
        for i, (outer, inner) in enumerate(unet_channels(config)):
            outermost, innermost = i == 0, i == n - 1
            d_in = config.input_nc if outermost else outer
            u_in = inner if innermost else 2 * inner  # the skip doubles the channels, except at the bottom
            u_out = config.output_nc if outermost else outer
            self.down.append(nn.Conv2d(d_in, inner, 4, stride=2, padding=1, bias=bias))
            self.down_norm.append(nn.Identity() if (outermost or innermost) else make_norm(config.norm, inner))
            self.up.append(nn.ConvTranspose2d(u_in, u_out, 4, stride=2, padding=1, bias=bias or outermost))
            self.up_norm.append(nn.Identity() if outermost else make_norm(config.norm, u_out))
        # junyanz puts dropout on the 8*ngf levels between the fourth one and the bottom.
        self.dropout_levels = set(range(4, n - 1)) if config.use_dropout else set()
        self.dropout = nn.Dropout(0.5)

    def forward(self, x):
        skips = []
        for i, (conv, norm) in enumerate(zip(self.down, self.down_norm)):
            x = norm(conv(x if i == 0 else nn.functional.leaky_relu(x, 0.2)))
            skips.append(x)
        n = len(self.down)
        x = self.up_norm[n - 1](self.up[n - 1](torch.relu(skips[n - 1])))
        for i in reversed(range(n - 1)):
            x = self.up[i](torch.relu(torch.cat([skips[i], x], dim=1)))
            x = self.up_norm[i](x)
            if i in self.dropout_levels:
                x = self.dropout(x)
        return torch.tanh(x)


@register_discriminator("patch")
class NLayerDiscriminator(Network):
    """PatchGAN: stride-2 4x4 convs (channels doubling up to 8*ndf), one stride-1 conv, then one logit per patch
    (or its sigmoid, with config.output="sigmoid")."""

    def __init__(self, config: DiscriminatorConfig):
        super().__init__()
        self.config = config
        ndf, norm, bias = config.ndf, config.norm, config.norm == "instance"
        mode = PADDINGS[config.padding]
        lrelu = lambda: nn.LeakyReLU(0.2, inplace=True)  # noqa: E731

        def conv(c_in, c_out, stride=1, bias=True):
            return nn.Conv2d(c_in, c_out, 4, stride=stride, padding=1, padding_mode=mode, bias=bias)

        widths = [ndf * min(2 ** i, 8) for i in range(config.n_layers + 1)]
        layers = [ConvNormAct(conv(config.input_nc, ndf, stride=2), None, lrelu())]
        for i in range(1, config.n_layers + 1):
            stride = 2 if i < config.n_layers else 1
            layers.append(ConvNormAct(conv(widths[i - 1], widths[i], stride, bias), make_norm(norm, widths[i]),
                                      lrelu()))
        layers.append(ConvNormAct(conv(widths[-1], 1)))
        self.layers = nn.Sequential(*layers)
        self.output = DISCRIMINATOR_OUTPUTS[config.output]()

    def forward(self, x):
        return self.output(self.layers(x))


def build_generator(config: GeneratorConfig) -> nn.Module:
    return GENERATORS[config.arch](config)


def build_discriminator(config: DiscriminatorConfig) -> nn.Module:
    return DISCRIMINATORS[config.arch](config)


class CycleGAN(PretrainedModel):
    """The four networks trained together: G_A maps domain A to B, G_B maps B to A; D_A judges B images (real B
    vs G_A(A)), D_B judges A images -- junyanz's naming, so a run's latest_net_G_A.pth is our G_A."""

    def __init__(self, gen_a: GeneratorConfig, gen_b: GeneratorConfig, disc_a: DiscriminatorConfig,
                 disc_b: DiscriminatorConfig):
        super().__init__()
        self.G_A, self.G_B = build_generator(gen_a), build_generator(gen_b)
        self.D_A, self.D_B = build_discriminator(disc_a), build_discriminator(disc_b)
        self.extra_config = {}   # what a training run records beside the networks' configs

    @classmethod
    def create(cls, gen: GeneratorConfig, disc: DiscriminatorConfig) -> "CycleGAN":
        """Symmetric networks for domains A (gen.input_nc channels) and B (gen.output_nc channels)."""
        gen_b = dataclasses.replace(gen, input_nc=gen.output_nc, output_nc=gen.input_nc)
        disc_a = dataclasses.replace(disc, input_nc=gen.output_nc)
        disc_b = dataclasses.replace(disc, input_nc=gen.input_nc)
        return cls(gen, gen_b, disc_a, disc_b)

    def configs(self) -> dict:
        return {name: getattr(self, name).config.to_dict() for name in ("G_A", "G_B", "D_A", "D_B")}

    family = "cyclegan"

    def checkpoint_config(self) -> dict:
        return {"model": "cyclegan", **self.configs(), **self.extra_config}

    def save_pretrained(self, directory, format: str = "genzoo", extra_config: dict | None = None, **options):
        if extra_config is not None:
            self.extra_config = dict(extra_config)
        return super().save_pretrained(directory, format=format, **options)
