"""pytorch/examples' MLP VAE round trip, the conv VAE / plain autoencoder, latent tools, wrong-family errors."""
import json

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from genzoo import vae
from genzoo.checkpoint import save_pretrained
from genzoo.errors import CheckpointError, ConfigError, UnknownModelError
from genzoo.vae import latent


class ExamplesVAE(nn.Module):
    """pytorch/examples vae/main.py, as its authors define it."""

    def __init__(self):
        super(ExamplesVAE, self).__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


@pytest.mark.parametrize("wrapped", [False, True], ids=["state_dict", "ddp-prefixed"])
def test_pytorch_examples_checkpoint_round_trip(tmp_path, wrapped):
    reference = ExamplesVAE().eval()
    state_dict = reference.state_dict()
    if wrapped:
        state_dict = {"module." + k: v for k, v in state_dict.items()}
    torch.save(state_dict, tmp_path / "vae.pth")
    model = vae.from_pretrained(tmp_path / "vae.pth", device="cpu")
    assert isinstance(model, vae.MLPVAE)
    assert (model.config.in_features, model.config.hidden, model.config.latent_dim) == (784, 400, 20)
    assert model.config.image_shape == (1, 28, 28)
    pixels = torch.rand(5, 1, 28, 28)  # pytorch/examples' [0, 1] pixels (transforms.ToTensor)
    z = torch.randn(5, 20)
    with torch.no_grad():
        mu, logvar = reference.encode(pixels.view(-1, 784))
        mean, logvar2 = model.encode(pixels * 2 - 1)  # genzoo takes [-1, 1]
        assert torch.allclose(mean, mu, atol=1e-6) and torch.allclose(logvar2, logvar, atol=1e-6)
        assert torch.allclose(model.decode(z), reference.decode(z).view(-1, 1, 28, 28) * 2 - 1, atol=1e-6)
        assert torch.allclose(torch.sigmoid(model.decode_logits(z)).flatten(1), reference.decode(z), atol=1e-6)
    # and back out through genzoo's own format
    model.save_pretrained(tmp_path / "genzoo")
    again = vae.from_pretrained(tmp_path / "genzoo", device="cpu")
    with torch.no_grad():
        assert torch.equal(again.decode(z), model.decode(z))


def test_examples_mlp_sizes_come_from_shapes(tmp_path):
    torch.save({"fc1.weight": torch.randn(64, 3 * 16 * 16), "fc1.bias": torch.randn(64),
                "fc21.weight": torch.randn(8, 64), "fc21.bias": torch.randn(8),
                "fc22.weight": torch.randn(8, 64), "fc22.bias": torch.randn(8),
                "fc3.weight": torch.randn(64, 8), "fc3.bias": torch.randn(64),
                "fc4.weight": torch.randn(3 * 16 * 16, 64), "fc4.bias": torch.randn(3 * 16 * 16)},
               tmp_path / "rgb.pt")
    model = vae.from_pretrained(tmp_path / "rgb.pt", device="cpu")
    assert model.config.image_shape == (3, 16, 16) and model.config.latent_dim == 8
    assert model.sample(4, seed=0).shape == (4, 3, 16, 16)


def test_mlp_bad_inputs():
    model = vae.MLPVAE(vae.MLPVAEConfig())
    with pytest.raises(ConfigError, match="28x28"):
        model.encode(torch.zeros(2, 1, 32, 32))
    with pytest.raises(ConfigError, match="grayscale"):
        model.encode(torch.zeros(2, 3, 28, 28))
    assert model.encode(torch.zeros(2, 784))[0].shape == (2, 20)  # flat vectors, as pytorch/examples feeds them
    with pytest.raises(ConfigError, match=r"latents shaped \(N, 20\)"):
        model.decode(torch.zeros(2, 16))


def test_broken_and_foreign_checkpoints(tmp_path):
    torch.save({"fc1.weight": torch.randn(400, 784)}, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match="not a VAE checkpoint"):
        vae.from_pretrained(tmp_path / "partial.pt", device="cpu")
    # a genzoo checkpoint of another family
    save_pretrained(tmp_path / "gan", {"net.weight": torch.zeros(2)}, {"n": 1}, family="gan")
    with pytest.raises(CheckpointError, match="genzoo 'gan' checkpoint.*genzoo.gan.from_pretrained"):
        vae.from_pretrained(tmp_path / "gan", device="cpu")
    # a diffusers UNet and a transformers GPT-2 folder
    (tmp_path / "unet").mkdir()
    (tmp_path / "unet" / "config.json").write_text(json.dumps({"_class_name": "UNet2DModel"}))
    torch.save({"conv_in.weight": torch.zeros(1)}, tmp_path / "unet" / "diffusion_pytorch_model.bin")
    with pytest.raises(CheckpointError, match="UNet2DModel, not a VAE.*genzoo.diffusion"):
        vae.from_pretrained(tmp_path / "unet", device="cpu")
    (tmp_path / "gpt2").mkdir()
    (tmp_path / "gpt2" / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    torch.save({"wte.weight": torch.zeros(1)}, tmp_path / "gpt2" / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="gpt2"):
        vae.from_pretrained(tmp_path / "gpt2", device="cpu")
    # wrong shapes inside a genzoo VAE folder
    model = vae.ConvVAE(vae.ConvVAEConfig(latent_dim=4))
    model.save_pretrained(tmp_path / "conv")
    config = json.loads((tmp_path / "conv" / "config.json").read_text())
    config["latent_dim"] = 8
    (tmp_path / "conv" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="shape mismatches.*fc_mean.weight"):
        vae.from_pretrained(tmp_path / "conv", device="cpu")
    with pytest.raises(UnknownModelError, match="sd-vae-ft-mse"):
        vae.from_pretrained("sd-vae-ft-mes")


@pytest.mark.parametrize("variational", [True, False], ids=["vae", "plain-autoencoder"])
def test_conv_vae_faces_config_round_trip(tmp_path, variational):
    config = vae.ConvVAEConfig(in_channels=3, image_size=64, channels=(8, 16, 16, 32), latent_dim=12,
                               variational=variational)
    model = vae.ConvVAE(config).eval()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        mean, logvar = model.encode(x)
        assert mean.shape == (2, 12)
        assert (logvar is None) == (not variational)
        out = model.decode(mean)
    assert out.shape == (2, 3, 64, 64) and out.min() >= -1 and out.max() <= 1
    model.save_pretrained(tmp_path)
    again = vae.from_pretrained(tmp_path, device="cpu")
    assert again.config == config
    with torch.no_grad():
        assert torch.equal(again.decode(mean), out)
    with pytest.raises(ConfigError, match="64x64"):
        model.encode(torch.zeros(1, 3, 128, 128))
    with pytest.raises(ConfigError, match="divisible"):
        vae.ConvVAEConfig(image_size=30, channels=(8, 16))


def test_sampling_is_seeded():
    model = vae.ConvVAE(vae.ConvVAEConfig()).eval()
    a, b = model.sample(6, seed=3), model.sample(6, seed=3)
    assert a.shape == (6, 1, 28, 28) and torch.equal(a, b)
    assert not torch.equal(a, model.sample(6, seed=4))
    g = torch.Generator().manual_seed(3)
    assert torch.equal(latent.sample_prior(model, 6, generator=g), a)


def test_interpolation_and_attribute_arithmetic():
    model = vae.ConvVAE(vae.ConvVAEConfig(in_channels=3, image_size=16, channels=(8, 16), latent_dim=6)).eval()
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(3, 16, 16, generator=g) * 2 - 1, torch.rand(1, 3, 16, 16, generator=g) * 2 - 1
    strip = latent.interpolate(model, a, b, steps=5)
    assert strip.shape == (5, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(strip[0], model.reconstruct(a[None])[0], atol=1e-5)
        assert torch.allclose(strip[-1], model.reconstruct(b)[0], atol=1e-5)
        za, zb = model.encode(a[None])[0], model.encode(b)[0]
        assert torch.allclose(strip[2], model.decode((za + zb) / 2)[0].clamp(-1, 1), atol=1e-5)
    assert latent.interpolate(model, a, b, steps=3, method="slerp").shape == (3, 3, 16, 16)
    with pytest.raises(ConfigError, match="steps"):
        latent.interpolate(model, a, b, steps=1)

    # men with glasses - men without + women without: decode(mean A - mean B + mean C)
    with_glasses, without, women = (torch.rand(4, 3, 16, 16, generator=g) * 2 - 1 for _ in range(3))
    out = latent.latent_arithmetic(model, with_glasses, without, women, scales=(0.0, 1.0))
    assert out.shape == (2, 3, 16, 16)
    with torch.no_grad():
        za, zb, zc = (model.encode(x)[0].mean(0) for x in (with_glasses, without, women))
        assert torch.allclose(out[1], model.decode((za - zb + zc)[None])[0], atol=1e-5)
        assert torch.allclose(out[0], model.decode(zc[None])[0], atol=1e-5)
    per_image = latent.latent_arithmetic(model, with_glasses, without, women, average_c=False)
    assert per_image.shape == (4, 3, 16, 16)
    assert latent.attribute_vector(model, with_glasses, without).shape == (1, 6)
