"""VAE exports: diffusers' AutoencoderKL and a re-creation of pytorch/examples' VAE load them and agree with genzoo."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from genzoo import vae
from genzoo.errors import ConfigError
from genzoo.export import export
from genzoo.vae.autoencoder_kl import AutoencoderKL, AutoencoderKLConfig
from genzoo.vae.model import ConvVAE, ConvVAEConfig, MLPVAE, MLPVAEConfig

diffusers = pytest.importorskip("diffusers")


def randomized(model):
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return model.eval()


def test_autoencoder_kl_export_loads_in_diffusers_with_the_same_outputs(tmp_path):
    config = AutoencoderKLConfig(block_out_channels=(16, 32), layers_per_block=1, norm_num_groups=8, sample_size=16,
                                 scaling_factor=0.3)
    model = randomized(AutoencoderKL(config))
    out = model.save_pretrained(tmp_path / "kl", format="diffusers")
    ref = diffusers.AutoencoderKL.from_pretrained(out).eval()
    assert ref.config.scaling_factor == 0.3
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(2)) * 2 - 1
    z = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        mean, logvar = model.encode(x)
        posterior = ref.encode(x).latent_dist
        torch.testing.assert_close(posterior.mean, mean, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(posterior.logvar, logvar, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ref.decode(z).sample, model.decode(z), atol=1e-5, rtol=1e-5)
        back = vae.from_pretrained(out, device="cpu")  # round trip
        torch.testing.assert_close(back.decode(z), model.decode(z), atol=1e-5, rtol=1e-5)


class ExamplesVAE(nn.Module):
    """pytorch/examples vae/main.py's VAE, re-created for the test (784-400-20, sigmoid output on [0, 1] pixels)."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def decode(self, z):
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))


def test_mlp_vae_export_loads_in_pytorch_examples(tmp_path):
    model = randomized(MLPVAE(MLPVAEConfig()))
    out = export(model, tmp_path, "pytorch-examples")
    ref = ExamplesVAE()
    ref.load_state_dict(torch.load(out / "vae.pth", weights_only=True))
    images = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))  # examples' [0, 1] pixels
    z = torch.randn(3, 20, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        mu, logvar = ref.encode(images.view(-1, 784))
        mean, ours_logvar = model.encode(images * 2 - 1)  # genzoo's [-1, 1]
        torch.testing.assert_close(mean, mu, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours_logvar, logvar, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close((model.decode(z) + 1) / 2, ref.decode(z).view(-1, 1, 28, 28), atol=1e-5, rtol=1e-5)
        back = vae.from_pretrained(out / "vae.pth", device="cpu")  # round trip
        torch.testing.assert_close(back.decode(z), model.decode(z), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("model, fmt, message", [
    (lambda: ConvVAE(ConvVAEConfig()), "diffusers", "only an AutoencoderKL"),
    (lambda: MLPVAE(MLPVAEConfig()), "diffusers", "or 'pytorch-examples'"),
    (lambda: MLPVAE(MLPVAEConfig(variational=False)), "pytorch-examples", "plain \\(non-variational\\) autoencoder"),
    (lambda: ConvVAE(ConvVAEConfig()), "pytorch-examples", "only a variational MLP VAE"),
])
def test_formats_that_cannot_hold_the_model_are_refused(tmp_path, model, fmt, message):
    with pytest.raises(ConfigError, match=message):
        export(model(), tmp_path, fmt)
    assert not any(tmp_path.iterdir())
