"""How well a VAE reconstructs images, and, for digit models, how its reconstructions and samples classify."""
from __future__ import annotations

import math

import torch

from ..evaluation import classifier_score


def image_size(model):
    """(W, H) the model needs (MLP and conv VAEs take one size), or None (AutoencoderKL takes any multiple of 8)."""
    config = model.config
    if hasattr(config, "image_shape"):  # MLP: (C, H, W)
        return tuple(config.image_shape[1:])[::-1]
    if hasattr(config, "image_size"):   # conv: square
        return (config.image_size, config.image_size)
    return None


@torch.inference_mode()
def reconstruction_error(model, images: torch.Tensor, batch_size: int = 64):
    """(reconstructions, {mse, mae, psnr}) over images (N, C, H, W) in [-1, 1], decoded from the posterior mean.

    mse and mae are per pixel on the [-1, 1] scale; psnr (dB) is computed on the [0, 1] scale from the mean mse.
    """
    param = next(model.parameters())
    recon = torch.cat([model.reconstruct(chunk.to(param.device, param.dtype)).float().cpu()
                       for chunk in images.split(batch_size)])
    diff = recon - images.float()
    mse = diff.pow(2).mean().item()
    psnr = 10 * math.log10(1 / (mse / 4)) if mse > 0 else float("inf")
    return recon, {"mse": mse, "mae": diff.abs().mean().item(), "psnr_db": psnr}


def evaluate(model, images, labels=None, samples: int = 1000, seed: int = 0, classifier=None) -> dict:
    """Reconstruction error on `images`; for a 28x28 single-channel model also the classifier score of the
    reconstructions (with label_accuracy when labels are known) and of `samples` prior samples."""
    recon, result = reconstruction_error(model, images)
    result = {"images": len(images), **result}
    if tuple(images.shape[1:]) == (1, 28, 28):
        score = classifier_score(recon, labels, classifier)
        result.update({f"reconstruction_{k}": v for k, v in score.items() if k != "n"})
        if samples:
            drawn = model.sample(samples, seed=seed).float().cpu()
            score = classifier_score(drawn, None, classifier)
            result.update({"samples": samples, "seed": seed})
            result.update({f"samples_{k}": v for k, v in score.items() if k != "n"})
    return result
