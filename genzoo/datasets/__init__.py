"""Small data sets shipped with genzoo, so examples, tests and the embedded models need no download.

* MNIST test set (10,000 digits, IDX format): split deterministically into 8,000 "train" and 2,000 "heldout".
  (The 60k training set is not shipped; these 10k are the data genzoo's embedded digit models learn from.)
* Tiny Shakespeare (1,115,394 characters): first 90% "train", last 10% "val", as nanoGPT splits it.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError

HERE = Path(__file__).resolve().parent
MNIST_IMAGES = HERE / "t10k-images-idx3-ubyte.gz"
MNIST_LABELS = HERE / "t10k-labels-idx1-ubyte.gz"
SHAKESPEARE = HERE / "tinyshakespeare.txt"
MNIST_TRAIN = 8000  # the first 8k digits train, the last 2k are held out


def read_idx(path) -> np.ndarray:
    """Read an IDX file (optionally gzipped): the MNIST container format."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ConfigError(f"{path} is not an IDX file")
    dtype = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[data[2]]
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    array = np.frombuffer(data, dtype=dtype, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ConfigError(f"{path} is truncated: header says {shape}, found {array.size} values")
    return array.reshape(shape)


def mnist(split: str = "train", images_path=None, labels_path=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Digits as float tensors (N, 1, 28, 28) in [-1, 1] and int64 labels (N,). split: train, heldout or all."""
    images = read_idx(images_path or MNIST_IMAGES)
    labels = read_idx(labels_path or MNIST_LABELS)
    if split == "train":
        images, labels = images[:MNIST_TRAIN], labels[:MNIST_TRAIN]
    elif split == "heldout":
        images, labels = images[MNIST_TRAIN:], labels[MNIST_TRAIN:]
    elif split != "all":
        raise ConfigError(f"split must be 'train', 'heldout' or 'all', not {split!r}")
    x = torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0).unsqueeze(1)
    return x, torch.from_numpy(labels.astype(np.int64))


def shakespeare(split: str = "train", path=None) -> str:
    text = Path(path or SHAKESPEARE).read_text(encoding="utf-8")
    cut = int(0.9 * len(text))
    if split == "train":
        return text[:cut]
    if split == "val":
        return text[cut:]
    if split == "all":
        return text
    raise ConfigError(f"split must be 'train', 'val' or 'all', not {split!r}")
