"""The DDPM U-Net (Ho et al. 2020), written from scratch.

    x_t (B, C, H, W), t (B,)  ->  predicted noise eps (B, C, H, W)

Top to bottom:
  * a sinusoidal embedding of t, then a 2-layer MLP (`time_embedding`);
  * `conv_in`, then one down block per resolution level: `layers_per_block` ResNet blocks (each optionally
    followed by self-attention) and a stride-2 conv that halves the resolution (not on the last level);
  * a middle block at the lowest resolution: ResNet, self-attention, ResNet;
  * one up block per level, deepest first: `layers_per_block + 1` ResNet blocks, each fed the concatenation
    of the running features and one skip activation saved on the way down, then nearest x2 + conv;
  * GroupNorm, SiLU, `conv_out`.

Module names follow diffusers' UNet2DModel state-dict keys (down_blocks.1.resnets.0.conv1, ...), so loading
google/ddpm-* checkpoints is almost an identity map (see convert.py). Everything diffusers' published DDPM
configs use is expressible through `UNetConfig`; the defaults are google/ddpm-cifar10-32.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..nn.spatial import SpatialSelfAttention


@dataclass
class UNetConfig:
    sample_size: int = 32                      # training resolution (sampling default); any multiple of 2**(levels-1) works
    in_channels: int = 3
    out_channels: int = 3
    block_out_channels: tuple = (128, 256, 256, 256)   # channels per resolution level, full resolution first
    down_attention: tuple = (False, True, False, False)  # self-attention after each ResNet of this level's down block
    up_attention: tuple = (False, True, False, False)    # ... and of its up block (indexed by level, not by order)
    mid_attention: bool = True
    layers_per_block: int = 2                  # ResNets per down block (up blocks have one more)
    attention_head_dim: int | None = None      # None: a single head spanning all channels (the DDPM paper)
    norm_num_groups: int = 32
    mid_attention_norm_groups: int | None = None  # GroupNorm groups of the middle attention (None: norm_num_groups)
    norm_eps: float = 1e-6
    downsample_padding: int = 0                # 0: pad right/bottom by one, then conv (TF "SAME"); 1: symmetric pad
    flip_sin_to_cos: bool = False              # time embedding as [cos, sin] instead of [sin, cos]
    freq_shift: int = 1                        # frequencies exp(-ln(10000) * i / (half - freq_shift))
    time_embed_dim: int | None = None          # None: 4 * block_out_channels[0]
    center_input_sample: bool = False          # the model maps inputs from [0, 1] to [-1, 1] itself
    mid_block_scale_factor: float = 1.0        # middle ResNets and attention divide their output by this
    dropout: float = 0.0

    def __post_init__(self):
        self.block_out_channels = tuple(int(c) for c in self.block_out_channels)
        self.down_attention = tuple(bool(a) for a in self.down_attention)
        self.up_attention = tuple(bool(a) for a in self.up_attention)
        levels = len(self.block_out_channels)
        if levels < 1 or len(self.down_attention) != levels or len(self.up_attention) != levels:
            raise ConfigError(f"block_out_channels, down_attention and up_attention must have one entry per level; got "
                              f"{self.block_out_channels}, {self.down_attention}, {self.up_attention}")
        if self.layers_per_block < 1:
            raise ConfigError(f"layers_per_block must be >= 1, got {self.layers_per_block}")
        for c in self.block_out_channels:
            if c % self.norm_num_groups:
                raise ConfigError(f"every block_out_channels entry must be divisible by norm_num_groups="
                                  f"{self.norm_num_groups}; got {self.block_out_channels}")
            if self.attention_head_dim and c % self.attention_head_dim:
                raise ConfigError(f"channels {c} are not divisible by attention_head_dim={self.attention_head_dim}")
        if self.block_out_channels[0] % 2:
            raise ConfigError("block_out_channels[0] (the time embedding width) must be even")

    @property
    def levels(self) -> int:
        return len(self.block_out_channels)

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("block_out_channels", "down_attention", "up_attention"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "UNetConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def timestep_embedding(t: torch.Tensor, dim: int, flip_sin_to_cos: bool, freq_shift: float,
                       max_period: float = 10000.0) -> torch.Tensor:
    """(B,) timesteps -> (B, dim) sinusoids at geometrically spaced frequencies (the Transformer's positions)."""
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / (half - freq_shift)
    angles = t[:, None].float() * torch.exp(exponent)[None, :]
    sin, cos = torch.sin(angles), torch.cos(angles)
    return torch.cat([cos, sin] if flip_sin_to_cos else [sin, cos], dim=-1)


class TimestepMLP(nn.Module):
    def __init__(self, in_dim: int, dim: int):
        super().__init__()
        self.linear_1 = nn.Linear(in_dim, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x):
        return self.linear_2(F.silu(self.linear_1(x)))


def norm_silu(norm: nn.GroupNorm, x: torch.Tensor) -> torch.Tensor:
    # GroupNorm's output is a fresh tensor, so SiLU may overwrite it: one allocation instead of two.
    return F.silu(norm(x), inplace=True)


class ResnetBlock(nn.Module):
    """GroupNorm-SiLU-conv, add the projected time embedding, GroupNorm-SiLU-dropout-conv, plus the input."""

    def __init__(self, in_ch: int, out_ch: int, temb_dim: int, groups: int, eps: float, dropout: float,
                 output_scale_factor: float = 1.0):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_ch, eps=eps)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb_dim, out_ch)
        self.norm2 = nn.GroupNorm(groups, out_ch, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        # a 1x1 conv matches the channel count of the residual path when it changes
        self.conv_shortcut = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else None
        self.output_scale_factor = output_scale_factor

    def forward(self, x: torch.Tensor, temb_act: torch.Tensor) -> torch.Tensor:
        """temb_act: SiLU(time embedding), (B, temb_dim), computed once per forward by the U-Net."""
        # In-place adds are safe under autograd: a conv's backward needs its input, not its output.
        h = self.conv1(norm_silu(self.norm1, x))
        h = h.add_(self.time_emb_proj(temb_act)[:, :, None, None])
        h = self.conv2(self.dropout(norm_silu(self.norm2, h)))
        h = h.add_(x if self.conv_shortcut is None else self.conv_shortcut(x))
        return h if self.output_scale_factor == 1.0 else h / self.output_scale_factor


class Downsample(nn.Module):
    def __init__(self, channels: int, padding: int):
        super().__init__()
        self.padding = padding
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=padding)

    def forward(self, x):
        if self.padding == 0:
            # the original TensorFlow DDPM pads only right and bottom before its stride-2 conv
            x = F.pad(x, (0, 1, 0, 1))
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest-neighbour x2, then a 3x3 conv.

    At inference the two are fused into one stride-2 transposed conv with a 4x4 kernel: each output pixel of
    "nearest x2 then conv" sees only 2x2 distinct input pixels, so the 3x3 taps that land on the same pixel can be
    summed beforehand (along each axis: [w2, w1 + w2, w0 + w1, w0]). Same result up to rounding, 2.25x fewer
    multiply-adds, and no 4x larger intermediate tensor. Training keeps the plain form.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        if torch.is_grad_enabled():
            return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return F.conv_transpose2d(x, self.fused_kernel(x.dtype), self.conv.bias, stride=2, padding=1)

    def fused_kernel(self, dtype) -> torch.Tensor:
        def fold(w, dim):  # 3 taps on the upsampled grid -> 4 taps of the transposed conv
            w0, w1, w2 = w.unbind(dim)
            return torch.stack([w2, w1 + w2, w0 + w1, w0], dim)

        kernel = fold(fold(self.conv.weight.float(), 2), 3)  # (out, in, 4, 4); summed in fp32
        return kernel.transpose(0, 1).to(dtype)  # conv_transpose2d wants (in, out, kH, kW)


class DownBlock(nn.Module):
    def __init__(self, in_ch, out_ch, temb_dim, cfg: UNetConfig, attention: bool, downsample: bool):
        super().__init__()
        n, groups, eps = cfg.layers_per_block, cfg.norm_num_groups, cfg.norm_eps
        self.resnets = nn.ModuleList(
            ResnetBlock(in_ch if i == 0 else out_ch, out_ch, temb_dim, groups, eps, cfg.dropout) for i in range(n))
        self.attentions = nn.ModuleList(
            SpatialSelfAttention(out_ch, cfg.attention_head_dim, groups, eps) for _ in range(n)) if attention else None
        self.downsamplers = nn.ModuleList([Downsample(out_ch, cfg.downsample_padding)]) if downsample else None

    def forward(self, x, temb_act, skips: list):
        for i, resnet in enumerate(self.resnets):
            x = resnet(x, temb_act)
            if self.attentions is not None:
                x = self.attentions[i](x)
            skips.append(x)
        if self.downsamplers is not None:
            x = self.downsamplers[0](x)
            skips.append(x)
        return x


class MidBlock(nn.Module):
    def __init__(self, ch, temb_dim, cfg: UNetConfig):
        super().__init__()
        groups, eps, scale = cfg.norm_num_groups, cfg.norm_eps, cfg.mid_block_scale_factor
        self.resnets = nn.ModuleList(ResnetBlock(ch, ch, temb_dim, groups, eps, cfg.dropout, scale) for _ in range(2))
        attn_groups = cfg.mid_attention_norm_groups or groups
        self.attentions = nn.ModuleList(
            [SpatialSelfAttention(ch, cfg.attention_head_dim, attn_groups, eps, scale)]) if cfg.mid_attention else None

    def forward(self, x, temb_act):
        x = self.resnets[0](x, temb_act)
        if self.attentions is not None:
            x = self.attentions[0](x)
        return self.resnets[1](x, temb_act)


class UpBlock(nn.Module):
    def __init__(self, in_ch, skip_chs: list, out_ch, temb_dim, cfg: UNetConfig, attention: bool, upsample: bool):
        super().__init__()
        groups, eps = cfg.norm_num_groups, cfg.norm_eps
        self.resnets = nn.ModuleList(
            ResnetBlock((in_ch if i == 0 else out_ch) + skip, out_ch, temb_dim, groups, eps, cfg.dropout)
            for i, skip in enumerate(skip_chs))
        self.attentions = nn.ModuleList(
            SpatialSelfAttention(out_ch, cfg.attention_head_dim, groups, eps) for _ in skip_chs) if attention else None
        self.upsamplers = nn.ModuleList([Upsample(out_ch)]) if upsample else None

    def forward(self, x, temb_act, skips: list):
        for i, resnet in enumerate(self.resnets):
            x = resnet(torch.cat([x, skips.pop()], dim=1), temb_act)
            if self.attentions is not None:
                x = self.attentions[i](x)
        if self.upsamplers is not None:
            x = self.upsamplers[0](x)
        return x


class UNet(nn.Module):
    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = cfg = config
        chs = cfg.block_out_channels
        temb_dim = cfg.time_embed_dim or 4 * chs[0]
        self.conv_in = nn.Conv2d(cfg.in_channels, chs[0], 3, padding=1)
        self.time_embedding = TimestepMLP(chs[0], temb_dim)

        # Down path; remember the channels of every activation pushed onto the skip stack.
        skip_chs = [chs[0]]  # conv_in's output
        self.down_blocks = nn.ModuleList()
        for level, ch in enumerate(chs):
            last = level == cfg.levels - 1
            in_ch = chs[max(level - 1, 0)]
            self.down_blocks.append(DownBlock(in_ch, ch, temb_dim, cfg, cfg.down_attention[level], not last))
            skip_chs += [ch] * (cfg.layers_per_block + (0 if last else 1))

        self.mid_block = MidBlock(chs[-1], temb_dim, cfg)

        # Up path, deepest level first; each block pops layers_per_block + 1 skips.
        self.up_blocks = nn.ModuleList()
        in_ch = chs[-1]
        for level in reversed(range(cfg.levels)):
            block_skips = [skip_chs.pop() for _ in range(cfg.layers_per_block + 1)]
            self.up_blocks.append(UpBlock(in_ch, block_skips, chs[level], temb_dim, cfg, cfg.up_attention[level],
                                          upsample=level > 0))
            in_ch = chs[level]

        self.conv_norm_out = nn.GroupNorm(cfg.norm_num_groups, chs[0], eps=cfg.norm_eps)
        self.conv_out = nn.Conv2d(chs[0], cfg.out_channels, 3, padding=1)

    @property
    def device(self) -> torch.device:
        return self.conv_in.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.conv_in.weight.dtype

    def check_input(self, x: torch.Tensor) -> None:
        cfg = self.config
        if x.dim() != 4 or x.shape[1] != cfg.in_channels:
            raise ConfigError(f"the U-Net takes images shaped (B, {cfg.in_channels}, H, W); got {tuple(x.shape)}")
        factor = 2 ** (cfg.levels - 1)
        if x.shape[2] % factor or x.shape[3] % factor:
            raise ConfigError(f"image height and width must be multiples of {factor} (this U-Net halves the "
                              f"resolution {cfg.levels - 1} times; it was trained at {cfg.sample_size}x"
                              f"{cfg.sample_size}); got {x.shape[2]}x{x.shape[3]}")

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        """x: noisy images (B, C, H, W); t: timestep(s), an int or a tensor of shape () or (B,). Returns eps."""
        self.check_input(x)
        cfg = self.config
        if cfg.center_input_sample:
            x = 2 * x - 1.0
        t = torch.as_tensor(t, device=x.device)
        if t.numel() not in (1, x.shape[0]):
            raise ConfigError(f"t must be one timestep or one per image ({x.shape[0]}); got shape {tuple(t.shape)}")
        t = t.reshape(-1).expand(x.shape[0])

        temb = timestep_embedding(t, cfg.block_out_channels[0], cfg.flip_sin_to_cos, cfg.freq_shift)
        temb = self.time_embedding(temb.to(self.dtype))
        temb_act = F.silu(temb)  # every ResNet's time projection starts with SiLU: do it once

        h = self.conv_in(x)
        skips = [h]
        for block in self.down_blocks:
            h = block(h, temb_act, skips)
        h = self.mid_block(h, temb_act)
        for block in self.up_blocks:
            h = block(h, temb_act, skips)
        return self.conv_out(norm_silu(self.conv_norm_out, h))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def save_pretrained(self, directory, scheduler_config: dict | None = None, format: str = "genzoo",
                        overwrite: bool = False):
        """Write genzoo's format (model.safetensors + config.json); `scheduler_config` (diffusers names) is kept
        in config.json under "scheduler" so that load_scheduler() finds it again. format="diffusers": a
        DDPMPipeline folder (genzoo.diffusion.export)."""
        if format != "genzoo":
            from .export import export
            return export(self, directory, format, overwrite=overwrite, scheduler_config=scheduler_config)
        from ..checkpoint import save_pretrained

        config = {"model": "unet", **self.config.to_dict()}
        if scheduler_config:
            config["scheduler"] = dict(scheduler_config)
        return save_pretrained(directory, self.state_dict(), config, family="diffusion")

    def push_to_hub(self, repo_id: str, format: str = "genzoo", private: bool = False, revision=None, **kwargs):
        """Upload to the Hugging Face Hub with a model card; see genzoo.export.push_to_hub."""
        from ..export import push_to_hub

        return push_to_hub(self, repo_id, format=format, private=private, revision=revision, **kwargs)
