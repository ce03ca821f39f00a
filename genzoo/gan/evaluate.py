"""How good a digit GAN's samples look to the MNIST classifier (genzoo.evaluation explains the score)."""
from __future__ import annotations

import torch

from ..evaluation import check_digit_images, classifier_score


@torch.inference_mode()
def evaluate(generator, n: int = 1000, seed: int = 0, classifier=None) -> dict:
    """Classifier score of n samples (seeded). A conditional GAN draws labels 0, 1, ..., 9, 0, ... in turn and is
    also scored on label_accuracy: how often the classifier reads the digit it was asked for."""
    labels = torch.arange(n) % generator.num_classes if generator.num_classes else None
    samples = generator.sample(n, seed=seed, labels=labels).float().clamp(-1, 1)
    check_digit_images(samples, "this GAN's samples")
    scored_labels = labels if generator.num_classes == 10 else None
    score = classifier_score(samples, scored_labels, classifier)
    return {"samples": n, "seed": seed, **{k: v for k, v in score.items() if k != "n"}}
