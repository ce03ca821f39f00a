"""The book's ch. 7 MNIST autoencoder (common/encoded/l1/decode), saved as its notebook does: a TorchScript archive."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from genzoo import vae
from genzoo.errors import CheckpointError

# the book saves with torch.jit.script, which torch deprecates; the tests write such files on purpose
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")


class BookAE(nn.Module):
    """The book's AE, re-created: ReLU between layers, sigmoid out, on [0, 1] pixels flattened to 784."""

    def __init__(self, input_dim=784, z_dim=20, h_dim=200):
        super().__init__()
        self.common = nn.Linear(input_dim, h_dim)
        self.encoded = nn.Linear(h_dim, z_dim)
        self.l1 = nn.Linear(z_dim, h_dim)
        self.decode = nn.Linear(h_dim, input_dim)

    def forward(self, x):
        mu = self.encoded(F.relu(self.common(x)))
        return torch.sigmoid(self.decode(F.relu(self.l1(mu)))), mu


@pytest.fixture
def book_ae(tmp_path):
    torch.manual_seed(0)
    model = BookAE().eval()
    torch.jit.script(model).save(str(tmp_path / "AEdigits.pt"))
    torch.save(model.state_dict(), tmp_path / "AEdigits.pth")
    return model, tmp_path


@pytest.mark.parametrize("name", ["AEdigits.pt", "AEdigits.pth"], ids=["torchscript", "state-dict"])
def test_book_autoencoder_loads_with_the_same_outputs(book_ae, name):
    book, folder = book_ae
    model = vae.from_pretrained(folder / name, device="cpu")
    assert model.config.variational is False and model.fc22 is None
    images = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out, mu = book(images.view(-1, 784))
        mean, logvar = model.encode(images * 2 - 1)
        assert logvar is None
        torch.testing.assert_close(mean, mu, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close((model.decode(mean) + 1) / 2, out.view(-1, 1, 28, 28), atol=1e-5, rtol=1e-5)


def test_torchscript_code_is_never_run(book_ae, monkeypatch):
    _, folder = book_ae
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: pytest.fail("torch.jit.load was called"))
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load was called on a TorchScript archive"))
    vae.from_pretrained(folder / "AEdigits.pt", device="cpu")


def test_torchscript_archive_needing_other_classes_is_refused_with_the_conversion(tmp_path):
    import zipfile

    torch.manual_seed(0)
    torch.jit.script(BookAE()).save(str(tmp_path / "ae.pt"))
    # Rewrite data.pkl so that it references a callable: the reader must refuse it, not call it.
    src, dst = tmp_path / "ae.pt", tmp_path / "evil.pt"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("data.pkl"):
                data = b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03."
            zout.writestr(item, data)
    with pytest.raises(CheckpointError, match="os.system.*torch.jit.load"):
        vae.from_pretrained(dst, device="cpu")


class BookEncoder(nn.Module):
    """The book's ch. 7 face-VAE encoder, re-created (its 31 x 31 bottom is `side` here, for 8 * side + 8 pixels)."""

    def __init__(self, latent_dims, side):
        super().__init__()
        self.side = side
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.batch2 = nn.BatchNorm2d(16)
        self.conv3 = nn.Conv2d(16, 32, 3, stride=2, padding=0)
        self.linear1 = nn.Linear(side * side * 32, 64)
        self.linear2 = nn.Linear(64, latent_dims)
        self.linear3 = nn.Linear(64, latent_dims)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.batch2(self.conv2(x)))
        x = F.relu(self.conv3(x))
        x = F.relu(self.linear1(torch.flatten(x, start_dim=1)))
        return self.linear2(x), torch.exp(self.linear3(x))  # mu, std


class BookDecoder(nn.Module):
    def __init__(self, latent_dims, side):
        super().__init__()
        self.decoder_lin = nn.Sequential(nn.Linear(latent_dims, 64), nn.ReLU(True), nn.Linear(64, side * side * 32),
                                         nn.ReLU(True))
        self.unflatten = nn.Unflatten(dim=1, unflattened_size=(32, side, side))
        self.decoder_conv = nn.Sequential(
            nn.ConvTranspose2d(32, 16, 3, stride=2, output_padding=1), nn.BatchNorm2d(16), nn.ReLU(True),
            nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1), nn.BatchNorm2d(8), nn.ReLU(True),
            nn.ConvTranspose2d(8, 3, 3, stride=2, padding=1, output_padding=1))

    def forward(self, x):
        return torch.sigmoid(self.decoder_conv(self.unflatten(self.decoder_lin(x))))


class BookVAE(nn.Module):
    def __init__(self, latent_dims=10, side=7):
        super().__init__()
        self.encoder = BookEncoder(latent_dims, side)
        self.decoder = BookDecoder(latent_dims, side)


def test_book_conv_vae_loads_with_the_same_outputs(tmp_path):
    from .test_export import randomized

    book = randomized(BookVAE())
    with torch.no_grad():  # BatchNorm statistics too, so that they matter
        for m in book.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    torch.save(book.state_dict(), tmp_path / "VAEglasses.pth")
    model = vae.from_pretrained(tmp_path / "VAEglasses.pth", device="cpu")
    assert model.config.image_size == 64 and model.config.latent_dim == 10
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))  # the book's [0, 1] pixels
    z = torch.randn(2, 10, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        mu, std = book.encoder(images)
        mean, logvar = model.encode(images * 2 - 1)
        torch.testing.assert_close(mean, mu, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(logvar, 2 * torch.log(std), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close((model.decode(z) + 1) / 2, book.decoder(z), atol=1e-5, rtol=1e-5)
        model.save_pretrained(tmp_path / "saved")  # genzoo's format round trip
        back = vae.from_pretrained(tmp_path / "saved", device="cpu")
        torch.testing.assert_close(back.decode(z), model.decode(z))
