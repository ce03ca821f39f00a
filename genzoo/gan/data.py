"""Training data for the GAN family, as torch Datasets of samples (or (sample, label) pairs).

* curve_points: book ch. 3, points (x, y) on a 1-D curve (y = sin x, or the exponential y = 1.08^x).
* multiples: book ch. 3, numbers that are multiples of k, as one-hot vectors (decode_onehot reads them back).
* mnist: genzoo.datasets.mnist digits in [-1, 1], optionally resized to 32/64 px.
* ImageFolder: a folder of images (book ch. 4 anime faces); subfolders become class labels (book ch. 5: glasses/
  no_glasses); genzoo.data's loader (read lazily, center-cropped and resized, size/channels from the folder).
"""
from __future__ import annotations

import math
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from ..data import ImageFolder as _ImageFolder
from ..errors import ConfigError
from ..runtime import make_generator

CURVES = {
    "sine": (torch.sin, (-math.pi, math.pi)),
    "exp": (lambda x: 1.08 ** x, (0.0, 50.0)),   # the book's exponential growth curve
}


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


class ImageFolder(_ImageFolder):
    """genzoo.data.ImageFolder giving (image, label) pairs: images in subfolders of root are labelled by their
    subfolder (sorted names -> 0, 1, ...; see `classes`), images directly in root get label 0."""

    def __init__(self, root, image_size=None, channels: int | None = None, fit: str = "crop"):
        super().__init__(root, size=image_size, channels=channels, fit=fit, labels=True)
