"""The MNIST inversion toy task (unpaired, or paired for pix2pix). Folders of images are read by genzoo.data's
one loader (list_images and IMAGE_EXTENSIONS are re-exported from it); junyanz's preprocessing (resize to
load_size, random crops, optional flips) is done on batches by the training loop (see train.py).
"""
from __future__ import annotations

import torch
from torch.utils.data import Dataset

from ..data import IMAGE_EXTENSIONS, list_images  # noqa: F401  (translate.py reads folders with these)


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
