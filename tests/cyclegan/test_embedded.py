"""The embedded mnist-cyclegan (weights/mnist-cyclegan, trained by scripts/train_embedded_cyclegan.py)."""
import torch
from PIL import Image

from genzoo import cyclegan
from genzoo.cyclegan import cli
from genzoo.cyclegan.data import invert
from genzoo.cyclegan.train import translation_error
from genzoo.datasets import mnist


def test_embedded_model_learned_the_inversion():
    G_A = cyclegan.from_pretrained("mnist-cyclegan", device="cpu")
    G_B = cyclegan.from_pretrained("mnist-cyclegan", device="cpu", direction="BtoA")
    assert G_A.config.input_nc == 1 and G_B.config.output_nc == 1
    held, _ = mnist("heldout")
    held = held[:500]
    # untrained networks score ~0.9 here (their outputs sit near 0); the shipped ones must be close to invert
    assert translation_error(G_A, held, invert) < 0.1
    assert translation_error(G_B, invert(held), invert) < 0.1


def test_demo_samples_and_demo(tmp_path):
    samples = cli.demo_samples(6, seed=3)
    assert samples.shape == (6, 1, 28, 28) and samples.min() >= -1 and samples.max() <= 1
    assert torch.equal(samples, cli.demo_samples(6, seed=3))
    assert not torch.equal(samples, cli.demo_samples(6, seed=4))
    # they are the held-out inputs, translated and inverted back: close to the original digits
    digits = cli._heldout_digits(6, seed=3)
    assert (samples - digits).abs().mean() < 0.1
    paths = cli.demo(tmp_path / "out")
    assert len(paths) == 1
    with Image.open(paths[0]) as grid:
        assert grid.size[0] > 16 * 28
