"""CycleGAN objectives: adversarial (LSGAN or vanilla), cycle consistency, identity; and the pool of past fakes."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ConfigError

GAN_MODES = ("lsgan", "vanilla")


def gan_loss(logits: torch.Tensor, target_is_real: bool, mode: str = "lsgan") -> torch.Tensor:
    """Loss of the discriminator's patch logits against an all-real or all-fake target.

    lsgan (the CycleGAN paper's choice): mean squared error to 1 / 0, steadier than the log loss.
    vanilla: the original GAN's binary cross-entropy, on logits (numerically safe; no sigmoid in the network).
    """
    target = torch.full_like(logits, 1.0 if target_is_real else 0.0)
    if mode == "lsgan":
        return F.mse_loss(logits, target)
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(logits, target)
    raise ConfigError(f"gan mode must be one of {GAN_MODES}, not {mode!r}")


def cycle_loss(reconstructed: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """|F(G(x)) - x|_1: translating there and back must return the input."""
    return F.l1_loss(reconstructed, original)


def identity_loss(translated_target: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """|G(y) - y|_1 for y already in G's output domain: keeps colours when nothing needs to change."""
    return F.l1_loss(translated_target, target)


class ImagePool:
    """The last `size` generated images (Shrivastava et al. 2017): the discriminator is shown a mix of the
    current fakes and older ones, so it cannot just chase the generator's latest move.

    Each image of a batch is returned as is with probability 1/2, otherwise swapped with a random stored one
    (which is then replaced by it). Until the pool is full, images go in and come back unchanged.
    """

    def __init__(self, size: int = 50):
        if size < 0:
            raise ConfigError(f"pool size must be >= 0, not {size}")
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=generator).item() < 0.5:
                i = int(torch.randint(len(self.images), (), generator=generator))
                out.append(self.images[i])
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict:
        return {"size": self.size, "images": torch.stack(self.images) if self.images else torch.empty(0)}

    def load_state_dict(self, state: dict) -> None:
        self.size = int(state["size"])
        self.images = list(state["images"].unbind(0)) if state["images"].numel() else []
