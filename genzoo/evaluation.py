"""What the evaluation commands of every family share: the MNIST classifier score, image data, printing results.

The classifier score measures digit models without a reference network download: a small CNN, trained once
(seeded) on genzoo's 8,000 MNIST "train" digits and shipped in weights/mnist-classifier, classifies generated
digits. It reports
  * mean_confidence: the mean top-1 softmax probability (how digit-like the images look to it),
  * classes_present: how many of the 10 digits appear as a top-1 prediction (mode collapse shows here),
  * histogram: how many images it put in each class,
  * label_accuracy: with the labels the images were meant to show (a conditional model's labels, the digit a
    translation or reconstruction started from), how often its prediction is that label.
On the 2,000 held-out real digits it has an accuracy of about 0.98 (scripts/eval_digits.py prints the reference).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import checkpoint
from .errors import ConfigError

CLASSIFIER_NAME = "mnist-classifier"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


class DigitClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):  # x: (N, 1, 28, 28) in [-1, 1]
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def classifier_dir() -> Path:
    from .registry import embedded_dir

    return embedded_dir() / CLASSIFIER_NAME


def train_classifier(directory=None, epochs: int = 6, seed: int = 0, log=print) -> DigitClassifier:
    """Train the classifier on mnist("train") with small random shifts and save it to `directory`."""
    from . import datasets

    torch.manual_seed(seed)
    x, y = datasets.mnist("train")
    model = DigitClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(epochs):
        order = torch.randperm(len(x))
        for i in range(0, len(x), 128):
            idx = order[i:i + 128]
            # Small random shifts: generated digits are rarely centred exactly like MNIST's.
            batch = torch.roll(x[idx], shifts=tuple(torch.randint(-2, 3, (2,)).tolist()), dims=(2, 3))
            loss = F.cross_entropy(model(batch), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        log(f"classifier epoch {epoch + 1}/{epochs}: loss {loss.item():.3f}")
    checkpoint.save_pretrained(directory or classifier_dir(), model.state_dict(),
                               {"architecture": "DigitClassifier", "seed": seed, "epochs": epochs}, family="eval")
    return model.eval()


def load_classifier(directory=None) -> DigitClassifier:
    directory = Path(directory or classifier_dir())
    weights = directory / checkpoint.WEIGHTS_NAME
    if not weights.is_file():
        raise ConfigError(f"the MNIST classifier is missing ({weights}); `python scripts/eval_digits.py --retrain` "
                          f"trains it again")
    return checkpoint.build_and_load(DigitClassifier, checkpoint.load_state_dict(weights), directory, device="cpu")


def check_digit_images(images: torch.Tensor, what: str = "the images") -> None:
    if images.dim() != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        raise ConfigError(f"the MNIST classifier score needs 28x28 single-channel digits; {what} are shaped "
                          f"{tuple(images.shape)}")


@torch.inference_mode()
def classifier_score(images: torch.Tensor, labels=None, classifier=None, batch_size: int = 500) -> dict:
    """Score digits (N, 1, 28, 28) in [-1, 1]; labels (N,) adds label_accuracy. See the module docstring."""
    check_digit_images(images)
    classifier = classifier or load_classifier()
    images = images.detach().float().cpu().clamp(-1, 1)
    probs = torch.cat([F.softmax(classifier(chunk), dim=1) for chunk in images.split(batch_size)])
    confidence, predicted = probs.max(dim=1)
    counts = torch.bincount(predicted, minlength=10)
    result = {"n": len(images), "mean_confidence": confidence.mean().item(), "classes_present": int((counts > 0).sum()),
              "histogram": counts.tolist()}
    if labels is not None:
        labels = torch.as_tensor(labels).long().cpu().view(-1)
        if labels.numel() != len(images):
            raise ConfigError(f"{labels.numel()} labels for {len(images)} images")
        result["label_accuracy"] = (predicted == labels).float().mean().item()
    return result


def load_image_data(data, channels: int, size=None, n: int | None = None, seed: int = 0):
    """DATA of an image eval -> (images (N, C, H, W) in [-1, 1], labels (N,) or None, a description).

    "mnist" (or None): genzoo's 2,000 held-out MNIST digits (labels known); a folder: every image in it (sorted,
    recursively), converted to `channels` and resized to `size` (an int or (W, H)) when given; one image file.
    n: keep a seeded random subset of n images.
    """
    if data in (None, "mnist"):
        from . import datasets

        images, labels = datasets.mnist("heldout")
        if channels != 1:
            raise ConfigError(f"the model takes {channels}-channel images; MNIST digits have 1: "
                              f"give a folder of images")
        description = "mnist (2,000 held-out digits)"
    else:
        from .images import load_image

        path = Path(data).expanduser()
        if path.is_dir():
            paths = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            if not paths:
                raise ConfigError(f"{path} holds no {'/'.join(IMAGE_SUFFIXES)} images")
        elif path.is_file():
            paths = [path]
        else:
            raise ConfigError(f"DATA must be 'mnist', a folder of images or an image file; {path} does not exist")
        size = (size, size) if isinstance(size, int) else size
        loaded = [load_image(p, channels=channels, size=size) for p in paths]
        shapes = sorted({tuple(x.shape[2:]) for x in loaded})
        if len(shapes) > 1:
            raise ConfigError(f"the images in {path} differ in size ({shapes[:4]}...): give --size to resize them")
        images = torch.cat(loaded)
        labels, description = None, f"{path} ({len(images)} images)"
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"--n must be an integer >= 1, not {n!r}")
        if n < len(images):
            keep = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]
            images, labels = images[keep], None if labels is None else labels[keep]
            description += f", {n} drawn with seed {seed}"
    return images, labels, description


def print_result(result: dict, as_json: bool = False) -> int:
    """One JSON object, or `key: value` lines (floats to 4 significant decimals)."""
    if as_json:
        print(json.dumps(result))
        return 0
    for key, value in result.items():
        if isinstance(value, float):
            value = f"{value:.4f}" if math.isfinite(value) and abs(value) >= 1e-3 else f"{value:.4g}"
        print(f"{key}: {value}")
    return 0
