"""Cycle error of a CycleGAN: how closely translating there and back returns the input (its cycle loss, L1)."""
from __future__ import annotations

import torch

from ..evaluation import classifier_score
from .translate import translate_tensor


def cycle_error(forward, backward, images: torch.Tensor, batch_size: int = 32):
    """(translations, mean |backward(forward(x)) - x|) over images (N, C, H, W) in [-1, 1] (L1 on that scale)."""
    there = torch.cat([translate_tensor(forward, chunk) for chunk in images.split(batch_size)])
    back = torch.cat([translate_tensor(backward, chunk) for chunk in there.split(batch_size)])
    return there, (back.float() - images.float()).abs().mean().item()


def evaluate(G_A, G_B, images_a, images_b=None, labels_a=None, mnist_polarity: bool = False, classifier=None) -> dict:
    """Cycle errors A -> B -> A (and B -> A -> B with images_b).

    mnist_polarity: the embedded model's domains (A: MNIST digits, B: the same digits inverted): the translations
    G_A(a), inverted back, are scored by the MNIST classifier, with label_accuracy when labels_a are known.
    """
    translated, error_a = cycle_error(G_A, G_B, images_a)
    result = {"images_a": len(images_a), "cycle_l1_a": error_a}
    if images_b is not None:
        result.update({"images_b": len(images_b), "cycle_l1_b": cycle_error(G_B, G_A, images_b)[1]})
    if mnist_polarity:
        score = classifier_score(-translated, labels_a, classifier)
        result.update({f"translation_{k}": v for k, v in score.items() if k != "n"})
    return result
