"""Norms/activations by name, and GAN/CycleGAN backbones registered with one decorator."""
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from genzoo import cyclegan, gan
from genzoo.errors import ConfigError
from genzoo.nn import activation, norm, register_activation
from genzoo.pretrained import Config


def test_lookup_by_name_class_or_callable():
    assert isinstance(activation("leaky_relu"), nn.LeakyReLU) and activation("leaky_relu").negative_slope == 0.2
    assert isinstance(activation(nn.Mish), nn.Mish)
    assert isinstance(norm("batch", 4), nn.BatchNorm2d)
    layer = norm("layer", 4)
    x = torch.randn(2, 4, 3, 3)
    torch.testing.assert_close(layer(x).mean(dim=(1, 2, 3)), torch.zeros(2), atol=1e-5, rtol=0)
    assert not list(norm("instance", 4).parameters())  # junyanz's instance norm: no affine parameters
    with pytest.raises(ConfigError, match="g_activation='swish9' is not a known activation"):
        gan.MLPGANConfig(g_activation="swish9")


def test_a_registered_activation_is_usable_by_name():
    register_activation("mish", nn.Mish)
    G = gan.MLPGenerator(gan.MLPGANConfig(latent_dim=2, data_shape=(2,), g_hidden=(4,), g_activation="mish"))
    assert isinstance(G.act, nn.Mish)


@dataclass
class TinyConfig(Config):
    model_type = "tiny-mlp"
    latent_dim: int = 3
    data_shape: tuple = (5,)
    num_classes: int = 0


@gan.register_generator("tiny-mlp", TinyConfig)
class TinyGenerator(gan.Generator):
    def __init__(self, config):
        super().__init__(config)
        self.linear = nn.Linear(config.latent_dim, 5)

    def forward(self, z, labels=None):
        return self.linear(z)


@gan.register_discriminator("tiny-mlp", TinyConfig)
class TinyDiscriminator(gan.Discriminator):
    def __init__(self, config):
        super().__init__(config)
        self.linear = nn.Linear(5, 1)

    def forward(self, x, labels=None):
        return self.linear(x).squeeze(1)


def test_a_new_gan_backbone_is_one_class_and_one_decorator(tmp_path):
    torch.manual_seed(0)
    G = gan.build(TinyConfig(), "generator")
    D = gan.build(TinyConfig(), "discriminator")
    assert G.sample(4, seed=0).shape == (4, 5) and D(G.sample(4, seed=0)).shape == (4,)
    gan.save_gan(tmp_path / "tiny", G, D)
    again = gan.from_pretrained(tmp_path / "tiny", device="cpu")
    assert type(again) is TinyGenerator and torch.equal(again.sample(4, seed=0), G.sample(4, seed=0))
    assert type(gan.discriminator_from_pretrained(tmp_path / "tiny", device="cpu")) is TinyDiscriminator


def test_gan_registration_refuses_what_cannot_work():
    with pytest.raises(ConfigError, match="must subclass genzoo.gan.Generator"):
        gan.register_generator("tiny-mlp", TinyConfig)(nn.Linear)
    with pytest.raises(ConfigError, match="model_type is 'other'"):
        gan.register_generator("other", TinyConfig)(TinyGenerator)


def test_a_new_cyclegan_generator_is_one_class_and_one_decorator(tmp_path):
    @cyclegan.register_generator("identity-conv")
    class OneConv(cyclegan.model.Network):
        def __init__(self, config):
            super().__init__()
            self.config = config
            self.conv = nn.Conv2d(config.input_nc, config.output_nc, 3, padding=1)

        def forward(self, x):
            return torch.tanh(self.conv(x))

    config = cyclegan.GeneratorConfig(arch="identity-conv", input_nc=1, output_nc=1)
    G = cyclegan.build_generator(config)
    G.save_pretrained(tmp_path / "g")
    again = cyclegan.from_pretrained(tmp_path / "g", device="cpu")
    x = torch.zeros(1, 1, 8, 8)
    assert type(again) is OneConv and torch.equal(again(x), G(x))
    with pytest.raises(ConfigError, match="generator arch must be one of"):
        cyclegan.GeneratorConfig(arch="transformer")
