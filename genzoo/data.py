"""One image-folder loader for every family: the same files, sizes and channels whoever trains on the folder.

    folder = ImageFolder("faces/")                 # every image under faces/, recursively
    folder.size, folder.channels                   # inferred: the most common (height, width); 1 if all gray
    images, labels = folder.load()                 # (N, C, H, W) floats in [-1, 1]; labels from subfolders

Resizing: `fit="crop"` (default) scales the shorter side to the target and cuts the centre (no distortion);
`fit="stretch"` resizes to the target whatever the aspect. Random flips and crops are batch operations
(`augment`), drawn from the training loop's generator so a resumed run sees the same ones; both are off unless asked.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import torch

from .errors import ConfigError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".pgm", ".tif", ".tiff")
GRAYSCALE_MODES = ("1", "L", "LA", "I", "I;16", "F", "P;L")
FITS = ("crop", "stretch")


def list_images(folder) -> list[Path]:
    """Every image file under folder (recursively, sorted); a clear error for a missing or empty folder."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"no image folder at {folder}")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if not files:
        raise ConfigError(f"{folder} holds no images ({', '.join(IMAGE_EXTENSIONS)}), searched recursively")
    return files


def _size(size) -> tuple[int, int] | None:
    """None, an int (square) or (height, width)."""
    if size is None:
        return None
    height, width = (size, size) if isinstance(size, int) else tuple(int(s) for s in size)
    if height < 1 or width < 1:
        raise ConfigError(f"image size must be positive, not {size}")
    return height, width


class ImageFolder(torch.utils.data.Dataset):
    """Images under `root` as (C, H, W) floats in [-1, 1] (with labels=True: (image, label) pairs, the label
    being the index of the image's top-level subfolder in `classes`; images directly in root get label 0)."""

    def __init__(self, root, size=None, channels: int | None = None, fit: str = "crop", labels: bool = False,
                 files: list | None = None):
        self.root = Path(root).expanduser()
        self.files = list(files) if files is not None else list_images(self.root)
        if fit not in FITS:
            raise ConfigError(f"fit must be one of {FITS}, not {fit!r}")
        if channels not in (None, 1, 3):
            raise ConfigError(f"channels must be 1 or 3, not {channels}")
        self.fit, self.with_labels = fit, labels
        found_size, found_channels = self._inspect()
        self.size = _size(size) or found_size
        self.channels = channels or found_channels
        parts = [p.relative_to(self.root).parts for p in self.files]
        self.classes = sorted({p[0] for p in parts if len(p) > 1})
        index = {name: i for i, name in enumerate(self.classes)}
        self.labels = [index[p[0]] if len(p) > 1 else 0 for p in parts]

    def _inspect(self, limit: int = 64):
        """(height, width) most common among the first `limit` images, and 1 channel if they are all grayscale."""
        from PIL import Image, UnidentifiedImageError

        sizes, gray = Counter(), True
        for path in self.files[:limit]:
            try:
                with Image.open(path) as image:
                    sizes[(image.height, image.width)] += 1
                    gray = gray and is_grayscale(image)
            except (OSError, UnidentifiedImageError) as e:
                raise ConfigError(f"{path} is not an image Pillow can read: {e}") from e
        return sizes.most_common(1)[0][0], 1 if gray else 3

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        image = self.read(self.files[i])
        return (image, self.labels[i]) if self.with_labels else image

    def read(self, path) -> torch.Tensor:
        from PIL import Image, UnidentifiedImageError

        from .images import from_pil

        try:
            with Image.open(path) as image:
                return from_pil(fit_image(image, self.size, self.fit), channels=self.channels)[0]
        except (OSError, UnidentifiedImageError) as e:
            raise ConfigError(f"{path} is not an image Pillow can read: {e}") from e

    def load(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every image in memory: ((N, C, H, W) floats, (N,) labels)."""
        images = torch.stack([self.read(p) for p in self.files])
        return images, torch.tensor(self.labels, dtype=torch.long)


def is_grayscale(image) -> bool:
    """A grayscale mode, or colour channels that agree (a gray image saved as RGB JPEG or WebP) up to rounding."""
    if image.mode in GRAYSCALE_MODES:
        return True
    import numpy as np

    small = image.convert("RGB")
    small.thumbnail((64, 64))
    pixels = np.asarray(small, dtype=np.int16)
    return int(np.abs(pixels[..., 0] - pixels[..., 1]).max()) <= 3 and int(np.abs(pixels[..., 1] - pixels[..., 2]).max()) <= 3


def fit_image(image, size, fit: str = "crop"):
    """Resize a PIL image to size (height, width): 'crop' keeps the aspect (scale, then centre crop)."""
    from PIL import Image

    height, width = size
    if (image.height, image.width) == (height, width):
        return image
    if fit == "stretch":
        return image.resize((width, height), Image.BICUBIC)
    scale = max(height / image.height, width / image.width)
    scaled = (max(width, round(image.width * scale)), max(height, round(image.height * scale)))
    image = image.resize(scaled, Image.BICUBIC)
    left, top = (scaled[0] - width) // 2, (scaled[1] - height) // 2
    return image.crop((left, top, left + width, top + height))


def augment(images: torch.Tensor, generator: torch.Generator, flip: bool = False, crop=None) -> torch.Tensor:
    """Random horizontal flips (probability 1/2 each) and/or one random crop to `crop` (h, w) per image,
    drawn from `generator` (the loop's data generator: resumable, per rank)."""
    if flip:
        flips = torch.rand(len(images), generator=generator) < 0.5
        images = torch.where(flips[:, None, None, None], images.flip(-1), images)
    if crop is not None:
        height, width = _size(crop)
        if height > images.shape[-2] or width > images.shape[-1]:
            raise ConfigError(f"crop {height}x{width} is larger than the images ({images.shape[-2]}x{images.shape[-1]})")
        tops = torch.randint(images.shape[-2] - height + 1, (len(images),), generator=generator)
        lefts = torch.randint(images.shape[-1] - width + 1, (len(images),), generator=generator)
        images = torch.stack([x[:, t:t + height, l:l + width] for x, t, l in zip(images, tops.tolist(), lefts.tolist())])
    return images


def side_by_side(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Aligned pairs stored as one image, A on the left and B on the right (pix2pix's layout) -> (A, B)."""
    width = images.shape[-1]
    if width % 2:
        raise ConfigError(f"paired images hold A|B side by side, so their width must be even, not {width}")
    return images[..., :width // 2], images[..., width // 2:]
