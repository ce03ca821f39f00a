"""Unpaired data: two folders of images (e.g. black hair / blond hair faces), or the MNIST inversion toy task.

CycleGAN never sees pairs: each step draws a batch from domain A and, independently, a batch from domain B.

Folder images get junyanz's training preprocessing ("resize_and_crop" + flip): resize to load_size x load_size
(bicubic), take a random crop_size x crop_size crop, flip left-right with probability 1/2.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import ConfigError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff")


def list_images(folder) -> list[Path]:
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"no image folder at {folder}")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise ConfigError(f"{folder} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    return files


class ImageFolder(Dataset):
    """Every image under `folder` (recursively), as (C, crop_size, crop_size) floats in [-1, 1]."""

    def __init__(self, folder, channels: int = 3, load_size: int = 286, crop_size: int = 256, flip: bool = True):
        if crop_size > load_size:
            raise ConfigError(f"crop_size {crop_size} is larger than load_size {load_size}")
        self.files = list_images(folder)
        self.channels, self.load_size, self.crop_size, self.flip = channels, load_size, crop_size, flip

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        from ..images import load_image

        x = load_image(self.files[i], channels=self.channels, size=self.load_size)[0]
        top, left = (int(torch.randint(self.load_size - self.crop_size + 1, ())) for _ in range(2))
        x = x[:, top:top + self.crop_size, left:left + self.crop_size]
        if self.flip and torch.rand(()) < 0.5:
            x = x.flip(-1)
        return x


class TensorImages(Dataset):
    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i]


def invert(images: torch.Tensor) -> torch.Tensor:
    """Colour inversion in [-1, 1]: white strokes on black become black strokes on white."""
    return -images


def mnist_inversion(split: str = "train") -> tuple[TensorImages, TensorImages, torch.Tensor, torch.Tensor]:
    """The toy unpaired task: A = MNIST digits, B = colour-inverted digits.

    The two domains are built from *disjoint* halves of the split, so no image of B is the inversion of an image
    of A: the pairing has to be discovered. The true mapping A -> B is `invert`, which makes the translation
    measurable: mean |G(a) - invert(a)|. Returns (domain A, domain B, labels of A, labels of B).
    """
    from ..datasets import mnist

    images, labels = mnist(split)
    half = len(images) // 2
    return TensorImages(images[:half]), TensorImages(invert(images[half:])), labels[:half], labels[half:]


def endless_batches(dataset: Dataset, batch_size: int, seed: int, num_workers: int = 0, device="cpu"):
    """Shuffled batches forever (a new order every pass), on `device`."""
    if len(dataset) == 0:
        raise ConfigError("an empty dataset")
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=len(dataset) >= batch_size,
                        num_workers=num_workers, generator=generator, pin_memory=torch.device(device).type == "cuda",
                        persistent_workers=num_workers > 0)
    while True:
        for batch in loader:
            yield batch.to(device, non_blocking=True)
