"""Tensors <-> PIL images, grids and PNG files. Model images are float tensors in [-1, 1], shaped (N, C, H, W)."""
from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from .errors import ConfigError
from .runtime import check_finite


def to_uint8(images: torch.Tensor, value_range=(-1.0, 1.0)) -> np.ndarray:
    """(N, C, H, W) or (C, H, W) floats in value_range -> uint8 array (N, H, W, C)."""
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4:
        raise ConfigError(f"expected images shaped (N, C, H, W), got {tuple(images.shape)}")
    low, high = value_range
    images = images.detach().float().cpu()
    # clamp and round would turn NaN into 0 (a black image, no word said): refuse it instead
    check_finite(images, f"the image batch {tuple(images.shape)}", "the model overflowed (fp16?): run it in "
                 "float32 or bfloat16 (the SD VAE upcasts fp16 itself when its config says force_upcast)")
    images = ((images - low) / (high - low)).clamp(0, 1)
    return (images * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def to_pil(image: torch.Tensor, value_range=(-1.0, 1.0)):
    """One image (C, H, W) or (1, C, H, W) -> PIL.Image (L for 1 channel, RGB for 3)."""
    from PIL import Image

    array = to_uint8(image, value_range)
    if array.shape[0] != 1:
        raise ConfigError(f"to_pil takes one image; got a batch of {array.shape[0]}: use make_grid or save_images")
    array = array[0]
    if array.shape[-1] == 1:
        return Image.fromarray(array[..., 0], mode="L")
    if array.shape[-1] == 3:
        return Image.fromarray(array, mode="RGB")
    raise ConfigError(f"cannot show an image with {array.shape[-1]} channels (1 or 3 expected)")


def from_pil(image, channels: int = 3, size=None) -> torch.Tensor:
    """PIL image -> float tensor (1, C, H, W) in [-1, 1]; converts mode to `channels` (1: L, 3: RGB).

    `size` is (width, height) or an int for a square; resized with bicubic filtering.
    """
    from PIL import Image

    if channels not in (1, 3):
        raise ConfigError(f"channels must be 1 or 3, not {channels}")
    image = image.convert("L" if channels == 1 else "RGB")
    if size is not None:
        size = (size, size) if isinstance(size, int) else tuple(size)
        image = image.resize(size, Image.BICUBIC)
    array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    if array.ndim == 2:
        array = array[..., None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).unsqueeze(0)


# Decoding costs memory in proportion to the pixel count the header announces, whatever the file's size (a 12 KB
# PNG can announce 10000x10000). 50 megapixels is an 8K photo, far beyond what the models take.
MAX_IMAGE_PIXELS = 50_000_000


def open_image(path):
    """Image.open + a complete decode, with every failure (missing, not an image, truncated, too many pixels) one
    ConfigError naming the file. The pixel count is checked from the header, before anything is decoded."""
    from PIL import Image

    try:
        with warnings.catch_warnings():   # Pillow warns above its own limit; genzoo's, below, decides
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except FileNotFoundError as e:
        raise ConfigError(f"no image file at {path}") from e
    except Image.DecompressionBombError as e:
        raise ConfigError(f"{path}: {e}") from None
    except (OSError, ValueError, SyntaxError) as e:   # UnidentifiedImageError is an OSError
        raise ConfigError(f"{path} is not an image Pillow can read: {e}") from None
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        image.close()
        raise ConfigError(f"{path} is {width}x{height} pixels, more than genzoo reads "
                          f"({MAX_IMAGE_PIXELS / 1e6:g} megapixels, genzoo.images.MAX_IMAGE_PIXELS): "
                          f"downscale it first")
    try:
        image.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        image.close()
        raise ConfigError(f"{path} is a damaged or truncated image: {e}") from None
    return image


def load_image(path, channels: int = 3, size=None) -> torch.Tensor:
    with open_image(path) as image:
        return from_pil(image, channels=channels, size=size)


def make_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2, pad_value: float = -1.0) -> torch.Tensor:
    """(N, C, H, W) -> one (C, H', W') image with `nrow` images per row (default: a square-ish grid)."""
    if images.dim() != 4:
        raise ConfigError(f"expected images shaped (N, C, H, W), got {tuple(images.shape)}")
    n, c, h, w = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    grid = images.new_full((c, rows * (h + padding) + padding, nrow * (w + padding) + padding), pad_value)
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top:top + h, left:left + w] = images[i]
    return grid


def save_image(images: torch.Tensor, path, nrow: int | None = None, value_range=(-1.0, 1.0), padding: int = 2,
               overwrite: bool = False) -> Path:
    """Save one image (C, H, W) or a batch (N, C, H, W) as a grid PNG; returns the path. An existing file is
    replaced only with overwrite=True."""
    path = Path(path)
    if path.is_dir() or (path.exists() and not overwrite):
        raise ConfigError(f"{path} exists already" + (" and is a folder" if path.is_dir() else
                          ": pass overwrite=True (CLI: --overwrite) to replace it"))
    path.parent.mkdir(parents=True, exist_ok=True)
    if images.dim() == 4 and images.shape[0] > 1:
        low = value_range[0]
        images = make_grid(images.detach().float().cpu(), nrow=nrow, padding=padding, pad_value=low)
    image = to_pil(images, value_range)
    # Write next to the target and rename: a failure never leaves a half-written file where a good one was.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        from PIL import Image

        image_format = Image.registered_extensions().get(path.suffix.lower(), "PNG")  # no suffix: PNG
        extra = {"quality": 95} if image_format == "JPEG" else {}
        image.save(tmp, format=image_format, **extra)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
