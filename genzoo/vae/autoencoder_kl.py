"""AutoencoderKL: the KL-regularised autoencoder of latent diffusion (Stable Diffusion's VAE), from scratch.

    image (N, 3, H, W) in [-1, 1]
      -> Encoder: conv_in, down blocks (ResNet blocks, stride-2 conv between levels), mid block (ResNet,
         self-attention over all positions, ResNet), GroupNorm, SiLU, conv_out -> 2 * latent channels
      -> quant_conv (1x1) -> mean, logvar of a diagonal Gaussian, each (N, 4, H/8, W/8)
    latent z -> post_quant_conv (1x1) -> Decoder (the mirror image, nearest-neighbour upsampling) -> image

Module names follow the diffusers checkpoint layout (stabilityai/sd-vae-ft-mse), so loading it is almost an
identity map; the only renames (old attention names query/key/value/proj_attn, and `to_out.0`) live in
convert.py. Diffusion models work on `z * scaling_factor` (unit variance); `decode` takes unscaled latents,
exactly like diffusers' `AutoencoderKL.decode`.

Large images: `tiled_decode` / `tiled_encode` run the network on overlapping tiles and blend the seams (the
same tiling and linear blend as diffusers), so peak memory depends on the tile size, not on the image size.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..errors import ConfigError
from ..pretrained import Config
from ..nn.spatial import SpatialSelfAttention
from .model import VAEBase


@dataclass
class AutoencoderKLConfig(Config):
    model_type = "autoencoder_kl"
    LIMITS = {"in_channels": (1, 64), "out_channels": (1, 64), "block_out_channels": (1, 1 << 14),
              "layers_per_block": (1, 64), "latent_channels": (1, 1024), "norm_num_groups": (1, 1 << 14),
              "sample_size": (1, 1 << 16)}

    in_channels: int = 3
    out_channels: int = 3
    block_out_channels: tuple = (128, 256, 512, 512)
    layers_per_block: int = 2
    latent_channels: int = 4
    norm_num_groups: int = 32
    sample_size: int = 512           # also the default tile size (pixels) for tiled encode/decode
    scaling_factor: float = 0.18215  # std of the latents over the training set: diffusion sees z * scaling_factor
    shift_factor: float | None = None
    use_quant_conv: bool = True
    use_post_quant_conv: bool = True
    mid_block_add_attention: bool = True
    force_upcast: bool = True        # in fp16, encode/decode run in float32 (this VAE's activations overflow fp16)

    def __post_init__(self):
        super().__post_init__()
        for c in self.block_out_channels:
            if c % self.norm_num_groups:
                raise ConfigError(f"block_out_channels {self.block_out_channels} must be multiples of "
                                  f"norm_num_groups={self.norm_num_groups}")

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.block_out_channels) - 1)


def _silu(x: torch.Tensor) -> torch.Tensor:
    # In place when no graph is recorded: the decoder's activations are large (128 x 1024 x 1024 floats = 512 MB).
    return F.silu(x, inplace=not torch.is_grad_enabled())


class ResnetBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, plus a (1x1-projected when the width changes) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=1e-6)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=1e-6)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(_silu(self.norm1(x)))
        h = self.conv2(_silu(self.norm2(h)))
        shortcut = x if self.conv_shortcut is None else self.conv_shortcut(x)
        return h.add_(shortcut) if not torch.is_grad_enabled() else h + shortcut


class Downsample(nn.Module):
    """Stride-2 3x3 conv; pads right/bottom only (as the original LDM code), so H/2 exactly for even H."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest-neighbour x2, then a 3x3 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class LevelBlock(nn.Module):
    """One resolution level: ResNet blocks, then the encoder's Downsample or the decoder's Upsample (if any).

    diffusers names the two resamplers differently (down_blocks.N.downsamplers.0, up_blocks.N.upsamplers.0); the
    unused attribute is None and so absent from the state dict.
    """

    def __init__(self, in_channels: int, out_channels: int, n_layers: int, groups: int,
                 downsample: bool = False, upsample: bool = False):
        super().__init__()
        self.resnets = nn.ModuleList(
            ResnetBlock(in_channels if i == 0 else out_channels, out_channels, groups) for i in range(n_layers))
        self.downsamplers = nn.ModuleList([Downsample(out_channels)]) if downsample else None
        self.upsamplers = nn.ModuleList([Upsample(out_channels)]) if upsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for resnet in self.resnets:
            x = resnet(x)
        for resampler in (self.downsamplers, self.upsamplers):
            if resampler is not None:
                x = resampler[0](x)
        return x


class MidBlock(nn.Module):
    """ResNet, attention, ResNet at the lowest resolution (the only place with a global receptive field)."""

    def __init__(self, channels: int, groups: int, attention: bool):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock(channels, channels, groups), ResnetBlock(channels, channels, groups)])
        self.attentions = nn.ModuleList([SpatialSelfAttention(channels, groups=groups)]) if attention else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.resnets[0](x)
        if self.attentions is not None:
            x = self.attentions[0](x)
        return self.resnets[1](x)


class Encoder(nn.Module):
    def __init__(self, cfg: AutoencoderKLConfig):
        super().__init__()
        widths, groups = cfg.block_out_channels, cfg.norm_num_groups
        self.conv_in = nn.Conv2d(cfg.in_channels, widths[0], 3, padding=1)
        self.down_blocks = nn.ModuleList(
            LevelBlock(widths[max(i - 1, 0)], widths[i], cfg.layers_per_block, groups, downsample=i < len(widths) - 1)
            for i in range(len(widths)))
        self.mid_block = MidBlock(widths[-1], groups, cfg.mid_block_add_attention)
        self.conv_norm_out = nn.GroupNorm(groups, widths[-1], eps=1e-6)
        self.conv_out = nn.Conv2d(widths[-1], 2 * cfg.latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for block in self.down_blocks:
            x = block(x)
        x = self.mid_block(x)
        return self.conv_out(_silu(self.conv_norm_out(x)))


class Decoder(nn.Module):
    def __init__(self, cfg: AutoencoderKLConfig):
        super().__init__()
        widths, groups = tuple(reversed(cfg.block_out_channels)), cfg.norm_num_groups
        self.conv_in = nn.Conv2d(cfg.latent_channels, widths[0], 3, padding=1)
        self.mid_block = MidBlock(widths[0], groups, cfg.mid_block_add_attention)
        # One more ResNet per level than the encoder, as in LDM.
        self.up_blocks = nn.ModuleList(
            LevelBlock(widths[max(i - 1, 0)], widths[i], cfg.layers_per_block + 1, groups,
                       upsample=i < len(widths) - 1)
            for i in range(len(widths)))
        self.conv_norm_out = nn.GroupNorm(groups, widths[-1], eps=1e-6)
        self.conv_out = nn.Conv2d(widths[-1], cfg.out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.mid_block(self.conv_in(z))
        for block in self.up_blocks:
            x = block(x)
        return self.conv_out(_silu(self.conv_norm_out(x)))


class AutoencoderKL(VAEBase):
    """Stable Diffusion's VAE. Images in [-1, 1], sides a multiple of 8 (of `config.downsample_factor`)."""

    def __init__(self, config: AutoencoderKLConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        latent = config.latent_channels
        self.quant_conv = nn.Conv2d(2 * latent, 2 * latent, 1) if config.use_quant_conv else None
        self.post_quant_conv = nn.Conv2d(latent, latent, 1) if config.use_post_quant_conv else None

    # -- the VAE interface --------------------------------------------------------------------------------------
    @property
    def scaling_factor(self) -> float:
        return self.config.scaling_factor

    def latent_shape(self, image_size=None) -> tuple:
        """(C, h, w) of the latent of an image of `image_size` (int or (H, W); default config.sample_size)."""
        height, width = _pair(image_size or self.config.sample_size)
        f = self.config.downsample_factor
        return (self.config.latent_channels, height // f, width // f)

    def encode(self, x: torch.Tensor, tiled: bool = False, tile_size: int | None = None):
        """Images (N, C, H, W) in [-1, 1] -> (mean, logvar), each (N, latent_channels, H/8, W/8).

        logvar is clamped to [-30, 20] like the reference implementation. `tiled=True` encodes overlapping
        tiles of `tile_size` pixels (default config.sample_size) for images too large to encode at once.
        """
        self.check_images(x, multiple=self.config.downsample_factor)
        tile = self._tile(tile_size) if tiled else None
        with self._upcast_if_forced() as compute_dtype:
            x = x.to(device=self.device, dtype=compute_dtype)
            if tiled:
                moments = self._tiled(self._encode_moments, x, tile, 1 / self.config.downsample_factor)
            else:
                moments = self._encode_moments(x)
        mean, logvar = moments.to(self.dtype).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, z: torch.Tensor, tiled: bool = False, tile_size: int | None = None) -> torch.Tensor:
        """Unscaled latents (N, latent_channels, h, w) -> images (N, out_channels, 8h, 8w), about [-1, 1].

        `tiled=True` decodes overlapping tiles of `tile_size` output pixels (default config.sample_size): peak
        memory is then set by the tile, not by the image (see tiled_decode).
        """
        self.check_latents(z)
        if tiled:
            return self.tiled_decode(z, tile_size)
        dtype = self.dtype
        with self._upcast_if_forced() as compute_dtype:
            return self._decode_latents(z.to(device=self.device, dtype=compute_dtype)).to(dtype)

    def tiled_decode(self, z: torch.Tensor, tile_size: int | None = None) -> torch.Tensor:
        """Decode overlapping latent tiles one at a time and blend their seams; same result as diffusers' tiled_decode."""
        self.check_latents(z)
        tile, dtype = self._tile(tile_size) // self.config.downsample_factor, self.dtype
        with self._upcast_if_forced() as compute_dtype:
            z = z.to(device=self.device, dtype=compute_dtype)
            return self._tiled(self._decode_latents, z, tile, self.config.downsample_factor).to(dtype)

    @contextlib.contextmanager
    def _upcast_if_forced(self):
        """Yield the dtype to compute in. fp16 with config.force_upcast: the weights go to float32 for the block
        and back to fp16 after it (exact: fp16 values are float32 values), as diffusers' pipelines do, because
        this VAE's activations exceed fp16's 65504 on real images (NaN, i.e. a black image, otherwise)."""
        if self.dtype != torch.float16 or not self.config.force_upcast:
            yield self.dtype
            return
        with torch.inference_mode(False), torch.no_grad():  # the cast weights must not become inference tensors
            self.float()
        try:
            yield torch.float32
        finally:
            with torch.inference_mode(False), torch.no_grad():
                self.half()

    def _tile(self, tile_size: int | None) -> int:
        """Tile side in pixels: a multiple of 4 x the downsampling factor, so 25% overlaps fall on latent pixels."""
        tile = int(tile_size or self.config.sample_size)
        step = 4 * self.config.downsample_factor
        if tile < step or tile % step:
            raise ConfigError(f"tile_size must be a positive multiple of {step} (e.g. 256 or 512), got {tile_size}")
        return tile

    # -- the network ----------------------------------------------------------------------------------------------
    def _encode_moments(self, x: torch.Tensor) -> torch.Tensor:
        moments = self.encoder(x)
        return self.quant_conv(moments) if self.quant_conv is not None else moments

    def _decode_latents(self, z: torch.Tensor) -> torch.Tensor:
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z)
        return self.decoder(z)

    def forward(self, x: torch.Tensor, sample_posterior: bool = False, generator=None) -> torch.Tensor:
        mean, logvar = self.encode(x)
        z = self.reparameterize(mean, logvar, generator) if sample_posterior else mean
        return self.decode(z)

    @staticmethod
    def _tiled(fn, x: torch.Tensor, tile: int, scale: float, overlap: float = 0.25) -> torch.Tensor:
        """Apply `fn` (which scales H and W by `scale`) to overlapping `tile`-sized tiles of x, blending the seams.

        Tiles start every tile*(1-overlap) input pixels; each output tile is blended linearly with its upper and
        left neighbours over `blend` pixels, then cropped to `keep` pixels, as diffusers does. Only the previous
        row of (small, final-channel) output tiles is kept, so memory is the output plus one tile's activations.
        """
        stride = int(tile * (1 - overlap))
        tile_out = int(tile * scale)
        blend = int(tile_out * overlap)
        keep = tile_out - blend
        out = None
        previous_row = None
        starts_h, starts_w = range(0, x.shape[2], stride), range(0, x.shape[3], stride)
        bar = tqdm(total=len(starts_h) * len(starts_w), desc="tiles", leave=False,
                   disable=len(starts_h) * len(starts_w) < 4)
        top = 0
        for i in starts_h:
            row, left, row_height = [], 0, 0
            for j_index, j in enumerate(starts_w):
                piece = fn(x[:, :, i:i + tile, j:j + tile])
                if previous_row is not None:
                    _blend_rows(previous_row[j_index], piece, blend)
                if row:
                    _blend_cols(row[-1], piece, blend)
                row.append(piece)
                if out is None:
                    out = piece.new_empty(x.shape[0], piece.shape[1], int(x.shape[2] * scale), int(x.shape[3] * scale))
                kept = piece[:, :, :keep, :keep]
                out[:, :, top:top + kept.shape[2], left:left + kept.shape[3]] = kept
                left += kept.shape[3]
                row_height = kept.shape[2]
                bar.update(1)
            previous_row = row
            top += row_height
        bar.close()
        return out


def _blend_rows(above: torch.Tensor, below: torch.Tensor, extent: int) -> None:
    """Fade `below`'s first rows in from `above`'s last rows (in place on `below`)."""
    extent = min(above.shape[2], below.shape[2], extent)
    if extent <= 0:
        return
    weight = torch.arange(extent, device=below.device, dtype=below.dtype).div_(extent).view(1, 1, extent, 1)
    below[:, :, :extent] = above[:, :, above.shape[2] - extent:] * (1 - weight) + below[:, :, :extent] * weight


def _blend_cols(left: torch.Tensor, right: torch.Tensor, extent: int) -> None:
    extent = min(left.shape[3], right.shape[3], extent)
    if extent <= 0:
        return
    weight = torch.arange(extent, device=right.device, dtype=right.dtype).div_(extent).view(1, 1, 1, extent)
    right[:, :, :, :extent] = left[:, :, :, left.shape[3] - extent:] * (1 - weight) + right[:, :, :, :extent] * weight


def _pair(size) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    height, width = size
    return int(height), int(width)


def count_params(config: AutoencoderKLConfig) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in AutoencoderKL(config).parameters())


__all__ = ["AutoencoderKL", "AutoencoderKLConfig", "count_params"]
