"""Training data for the GAN family, as torch Datasets of samples (or (sample, label) pairs).

* curve_points: book ch. 3, points (x, y) on a 1-D curve (y = sin x, or the exponential y = 1.08^x).
* multiples: book ch. 3, numbers that are multiples of k, as one-hot vectors (decode_onehot reads them back).
* mnist: genzoo.datasets.mnist digits in [-1, 1], optionally resized to 32/64 px.
* ImageFolder: a folder of images (book ch. 4 anime faces); subfolders become class labels (book ch. 5: glasses/
  no_glasses), read lazily, center-cropped and resized.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, TensorDataset

from ..errors import ConfigError
from ..runtime import make_generator

CURVES = {
    "sine": (torch.sin, (-math.pi, math.pi)),
    "exp": (lambda x: 1.08 ** x, (0.0, 50.0)),   # the book's exponential growth curve
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif")


def curve_points(n: int = 2048, curve: str = "sine", x_range=None, seed=None, generator=None) -> torch.Tensor:
    """(n, 2) points (x, curve(x)) with x uniform in x_range (the curve's default range if None)."""
    if curve not in CURVES:
        raise ConfigError(f"unknown curve {curve!r}: one of {sorted(CURVES)}")
    fn, default_range = CURVES[curve]
    low, high = x_range or default_range
    x = low + (high - low) * torch.rand(n, generator=make_generator(seed, generator))
    return torch.stack([x, fn(x)], dim=1)


def multiples(n: int = 2048, k: int = 5, width: int = 100, seed=None, generator=None) -> torch.Tensor:
    """(n, width) one-hot vectors of random multiples of k in [0, width)."""
    if not 1 <= k < width:
        raise ConfigError(f"need 1 <= k < width, got k={k}, width={width}")
    values = k * torch.randint(0, (width - 1) // k + 1, (n,), generator=make_generator(seed, generator))
    return F.one_hot(values, width).float()


def decode_onehot(vectors: torch.Tensor) -> torch.Tensor:
    """(n, width) generated vectors -> (n,) integers (the position of the largest entry)."""
    return vectors.argmax(dim=1)


def mnist(split: str = "train", image_size: int = 28) -> TensorDataset:
    """MNIST digits from genzoo.datasets as (image (1, S, S) in [-1, 1], label) pairs."""
    from ..datasets import mnist as load_mnist

    images, labels = load_mnist(split)
    if image_size != 28:
        images = F.interpolate(images, size=(image_size, image_size), mode="bilinear", align_corners=False).clamp(-1, 1)
    return TensorDataset(images, labels)


class ImageFolder(Dataset):
    """Images under `root` as (image (C, S, S) in [-1, 1], label). Files directly in subfolders of root are
    labelled by their subfolder (sorted names -> 0, 1, ...; see `classes`); a flat folder gives label 0."""

    def __init__(self, root, image_size: int = 64, channels: int = 3):
        self.root, self.image_size, self.channels = Path(root), image_size, channels
        if not self.root.is_dir():
            raise ConfigError(f"no image folder at {self.root}")
        files = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise ConfigError(f"{self.root} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        subdirs = sorted({p.relative_to(self.root).parts[0] for p in files if len(p.relative_to(self.root).parts) > 1})
        self.classes = subdirs if subdirs and all(len(p.relative_to(self.root).parts) > 1 for p in files) else []
        index = {name: i for i, name in enumerate(self.classes)}
        self.samples = [(p, index[p.relative_to(self.root).parts[0]] if self.classes else 0) for p in files]

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        from ..images import from_pil, open_image

        path, label = self.samples[i]
        with open_image(path) as image:
            side = min(image.size)  # center crop to a square, then resize (as torchvision Resize + CenterCrop)
            left, top = (image.width - side) // 2, (image.height - side) // 2
            image = image.crop((left, top, left + side, top + side))
            return from_pil(image, channels=self.channels, size=self.image_size)[0], label
