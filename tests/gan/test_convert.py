"""Published layouts round-trip: each is built with torch.nn exactly as its authors define it, saved as they save
it, loaded with genzoo, and must give the same outputs (fp32, max |diff| <= 1e-5)."""
import pytest
import torch
import torch.nn as nn

from genzoo import gan
from genzoo.errors import CheckpointError

TOL = 1e-5


def randomize(module):
    """Random weights AND BatchNorm statistics, so eval-mode outputs depend on every tensor in the file."""
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.is_floating_point():
                if name.endswith("running_var"):
                    t.uniform_(0.5, 1.5)
                else:
                    t.normal_(0, 0.3 if t.dim() > 1 else 0.1)
    return module.eval()


# ------------------------------------------------------------------ pytorch/examples dcgan/main.py (as written there)

def examples_dcgan(nz, ngf, ndf, nc):
    class Generator(nn.Module):
        def __init__(self, ngpu):
            super(Generator, self).__init__()
            self.ngpu = ngpu
            self.main = nn.Sequential(
                nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
                nn.BatchNorm2d(ngf * 8),
                nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ngf * 4),
                nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ngf * 2),
                nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ngf),
                nn.ReLU(True),
                nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
                nn.Tanh()
            )

        def forward(self, input):
            return self.main(input)

    class Discriminator(nn.Module):
        def __init__(self, ngpu):
            super(Discriminator, self).__init__()
            self.ngpu = ngpu
            self.main = nn.Sequential(
                nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ndf * 2),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ndf * 4),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ndf * 8),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
                nn.Sigmoid()
            )

        def forward(self, input):
            output = self.main(input)
            return output.view(-1, 1).squeeze(1)

    return randomize(Generator(1)), randomize(Discriminator(1))


@pytest.mark.parametrize("nz,ngf,ndf,nc", [(8, 4, 6, 3), (5, 2, 3, 1)])
def test_pytorch_examples_dcgan_round_trip(tmp_path, nz, ngf, ndf, nc):
    netG, netD = examples_dcgan(nz, ngf, ndf, nc)
    torch.save(netG.state_dict(), tmp_path / "netG_epoch_24.pth")
    torch.save(netD.state_dict(), tmp_path / "netD_epoch_24.pth")

    G = gan.from_pretrained(tmp_path / "netG_epoch_24.pth", device="cpu")
    assert (G.latent_dim, G.config.ngf, G.config.channels, G.config.image_size) == (nz, ngf, nc, 64)
    z = torch.randn(3, nz, 1, 1)
    with torch.no_grad():
        expected = netG(z)
        assert (G(z) - expected).abs().max() <= TOL
        assert (G(z.flatten(1)) - expected).abs().max() <= TOL  # (n, nz) works too

    D = gan.discriminator_from_pretrained(tmp_path / "netD_epoch_24.pth", device="cpu")
    assert (D.config.ndf, D.config.channels) == (ndf, nc)
    x = torch.rand(3, nc, 64, 64) * 2 - 1
    with torch.no_grad():
        assert (D.probability(x) - netD(x)).abs().max() <= TOL  # genzoo's D returns logits: sigmoid(D) == theirs


def test_pytorch_examples_variants(tmp_path):
    """DataParallel / torch.compile prefixes, torch < 0.4.1 files (no num_batches_tracked), bundled dicts."""
    netG, netD = examples_dcgan(6, 2, 2, 3)
    z = torch.randn(2, 6)
    with torch.no_grad():
        expected = netG(z[:, :, None, None])
    sd = netG.state_dict()
    variants = {
        "dataparallel.pth": {f"module.{k}": v for k, v in sd.items()},
        "compiled.pth": {f"_orig_mod.{k}": v for k, v in sd.items()},
        "old_torch.pth": {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")},
        "bundle.pth": {"netG": sd, "netD": netD.state_dict(), "epoch": 3},
    }
    for name, obj in variants.items():
        torch.save(obj, tmp_path / name)
        G = gan.from_pretrained(tmp_path / name, device="cpu")
        with torch.no_grad():
            assert (G(z) - expected).abs().max() <= TOL, name
    D = gan.discriminator_from_pretrained(tmp_path / "bundle.pth", device="cpu")
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert (D.probability(x) - netD(x)).abs().max() <= TOL


# ------------------------------------------------------------------ yunjey/pytorch-tutorial GAN (as written there)

def yunjey_gan(latent_size, hidden_size, image_size):
    D = nn.Sequential(
        nn.Linear(image_size, hidden_size),
        nn.LeakyReLU(0.2),
        nn.Linear(hidden_size, hidden_size),
        nn.LeakyReLU(0.2),
        nn.Linear(hidden_size, 1),
        nn.Sigmoid())
    G = nn.Sequential(
        nn.Linear(latent_size, hidden_size),
        nn.ReLU(),
        nn.Linear(hidden_size, hidden_size),
        nn.ReLU(),
        nn.Linear(hidden_size, image_size),
        nn.Tanh())
    return randomize(G), randomize(D)


def test_yunjey_mlp_gan_round_trip(tmp_path):
    G_ref, D_ref = yunjey_gan(latent_size=8, hidden_size=16, image_size=784)
    torch.save(G_ref.state_dict(), tmp_path / "G.ckpt")
    torch.save(D_ref.state_dict(), tmp_path / "D.ckpt")

    G = gan.from_pretrained(tmp_path / "G.ckpt", device="cpu")
    assert G.latent_dim == 8 and G.config.g_hidden == (16, 16) and G.config.data_shape == (1, 28, 28)
    z = torch.randn(4, 8)
    with torch.no_grad():
        images = G(z)
        assert images.shape == (4, 1, 28, 28)
        assert (images - G_ref(z).reshape(4, 1, 28, 28)).abs().max() <= TOL

    D = gan.discriminator_from_pretrained(tmp_path / "D.ckpt", device="cpu")
    x = torch.rand(4, 784) * 2 - 1
    with torch.no_grad():
        expected = D_ref(x).squeeze(1)
        assert (D.probability(x.view(4, 1, 28, 28)) - expected).abs().max() <= TOL
        assert (D.probability(x) - expected).abs().max() <= TOL  # flattened input works too


def test_book_curve_gan_layout_with_config_override(tmp_path):
    """Book ch. 3's curve GAN: a Sequential with Dropout (Linear at 0, 3, 6, 9 in D); activations given by config."""
    G_ref = randomize(nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 2)))
    D_ref = randomize(nn.Sequential(nn.Linear(2, 256), nn.ReLU(), nn.Dropout(0.3), nn.Linear(256, 128), nn.ReLU(),
                                    nn.Dropout(0.3), nn.Linear(128, 64), nn.ReLU(), nn.Dropout(0.3), nn.Linear(64, 1),
                                    nn.Sigmoid()))
    torch.save(G_ref.state_dict(), tmp_path / "G.pt")
    torch.save({f"module.{k}": v for k, v in D_ref.state_dict().items()}, tmp_path / "D.pt")  # DataParallel-saved
    G = gan.from_pretrained(tmp_path / "G.pt", device="cpu", config={"output_activation": "none"})
    D = gan.discriminator_from_pretrained(tmp_path / "D.pt", device="cpu", config={"d_activation": "relu"})
    assert G.config.data_shape == (2,) and D.config.d_hidden == (256, 128, 64)
    z, points = torch.randn(5, 2), torch.randn(5, 2)
    with torch.no_grad():
        assert (G(z) - G_ref(z)).abs().max() <= TOL
        assert (D.probability(points) - D_ref(points).squeeze(1)).abs().max() <= TOL


# ------------------------------------------------------------------ genzoo's own format

@pytest.mark.parametrize("preset", ["curve", "numbers", "mnist-mlp", "mnist-dcgan"])
def test_genzoo_format_round_trip(tmp_path, preset):
    G, D = gan.new_gan(gan.PRESETS[preset], seed=1)
    randomize(G), randomize(D)
    gan.save_gan(tmp_path, G, D)
    G2 = gan.from_pretrained(tmp_path, device="cpu")
    D2 = gan.discriminator_from_pretrained(tmp_path, device="cpu")
    a, b = G.sample(6, seed=3), G2.sample(6, seed=3)
    assert torch.equal(a, b)
    labels = torch.arange(6) % 10 if G.num_classes else None
    with torch.no_grad():
        torch.testing.assert_close(D(a, labels), D2(a, labels), rtol=1e-5, atol=1e-5)


def test_generator_save_pretrained_and_dtype(tmp_path):
    G, _ = gan.new_gan(gan.DCGANConfig(latent_dim=8, image_size=32, channels=3, ngf=4, ndf=4), seed=0)
    G.eval().save_pretrained(tmp_path / "g")
    G16 = gan.from_pretrained(tmp_path / "g", device="cpu", dtype="bfloat16")
    assert G16.dtype == torch.bfloat16
    out = G16.sample(2, seed=0)
    assert out.dtype == torch.bfloat16 and out.shape == (2, 3, 32, 32)
    assert (out.float() - G.sample(2, seed=0)).abs().max() < 0.1
    with pytest.raises(CheckpointError, match="holds no discriminator"):
        gan.discriminator_from_pretrained(tmp_path / "g", device="cpu")


def test_attribute_vector_conditioning_and_28px_ladder(tmp_path):
    cfg = gan.DCGANConfig(latent_dim=8, image_size=28, channels=1, ngf=4, ndf=4, num_classes=3)
    G, D = gan.new_gan(cfg, seed=0)
    G.eval(), D.eval()
    z = torch.randn(2, 8)
    one_hot = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    with torch.no_grad():
        assert torch.equal(G(z, torch.tensor([1, 2])), G(z, one_hot))  # ints are one-hot vectors
        blended = G(z, torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.3, 0.7]]))  # attribute vectors
        assert blended.shape == (2, 1, 28, 28)
        assert D(blended, one_hot).shape == (2,)
