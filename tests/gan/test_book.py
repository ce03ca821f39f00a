"""The book's GAN artefacts: ch. 3's curve generator and discriminator (as in markhliu/DGAI ch03_GANs.ipynb) saved
with torch.jit.script; ch. 4's anime-face DCGAN saved as a bare nn.Sequential (state dict keys "0.weight":
pytorch/examples' layout without `main.`), also as TorchScript (the book saves G with torch.jit.script). The
re-creations have the book's layers in the book's order, at smaller widths (the book's are 512/256/128/64: the
loader reads the widths from the shapes)."""
import pytest
import torch
import torch.nn as nn

from genzoo import gan

from .test_convert import randomize

# the book saves with torch.jit.script, which torch deprecates; the tests write such files on purpose
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")


def book_anime_generator():
    return nn.Sequential(
        nn.ConvTranspose2d(100, 32, 4, 1, 0, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
        nn.ConvTranspose2d(32, 16, 4, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
        nn.ConvTranspose2d(16, 8, 4, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
        nn.ConvTranspose2d(8, 4, 4, 2, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU(inplace=True),
        nn.ConvTranspose2d(4, 3, 4, 2, 1, bias=False), nn.Tanh())


def book_anime_discriminator():
    return nn.Sequential(
        nn.Conv2d(3, 4, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(4, 8, 4, 2, 1, bias=False), nn.BatchNorm2d(8), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(8, 16, 4, 2, 1, bias=False), nn.BatchNorm2d(16), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(16, 32, 4, 2, 1, bias=False), nn.BatchNorm2d(32), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(32, 1, 4, 1, 0, bias=False), nn.Sigmoid(), nn.Flatten())


def save(module, path, torchscript: bool):
    if torchscript:
        torch.jit.script(module).save(str(path))
    else:
        torch.save(module.state_dict(), path)
    return path


@pytest.mark.parametrize("torchscript", [False, True], ids=["state-dict", "torchscript"])
def test_book_anime_dcgan_loads_with_the_same_outputs(tmp_path, torchscript):
    torch.manual_seed(0)
    G, D = randomize(book_anime_generator()), randomize(book_anime_discriminator())
    g_path = save(G, tmp_path / "anime_gen.pt", torchscript)
    d_path = save(D, tmp_path / "anime_dis.pt", torchscript)
    ours_G = gan.from_pretrained(g_path, device="cpu")
    ours_D = gan.discriminator_from_pretrained(d_path, device="cpu")
    z = torch.randn(2, 100, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        images = G(z[:, :, None, None])
        torch.testing.assert_close(ours_G(z), images, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours_D.probability(images), D(images).flatten(), atol=1e-5, rtol=1e-5)


def book_curve_discriminator():
    """ch03_GANs.ipynb's D: Linear/ReLU/Dropout(0.3) three times, then Linear to one output and a sigmoid."""
    return nn.Sequential(nn.Linear(2, 256), nn.ReLU(), nn.Dropout(0.3), nn.Linear(256, 128), nn.ReLU(), nn.Dropout(0.3),
                         nn.Linear(128, 64), nn.ReLU(), nn.Dropout(0.3), nn.Linear(64, 1), nn.Sigmoid())


def test_book_curve_discriminator_loads_with_its_relu(tmp_path):
    torch.manual_seed(0)
    D = randomize(book_curve_discriminator()).eval()
    path = save(D, tmp_path / "curve_D.pt", torchscript=True)
    # ReLU or LeakyReLU cannot be read from the weights: the book's is ReLU
    ours = gan.discriminator_from_pretrained(path, device="cpu", config={"d_activation": "relu", "d_dropout": 0.3})
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(1)) * 5
    with torch.no_grad():
        torch.testing.assert_close(ours.probability(x), D(x).flatten(), atol=1e-5, rtol=1e-5)


def test_book_curve_generator_torchscript_loads(tmp_path):
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 2)).eval()
    path = save(G, tmp_path / "exponential.pt", torchscript=True)
    ours = gan.from_pretrained(path, device="cpu", config={"output_activation": "none"})
    z = torch.randn(5, 2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(ours(z), G(z), atol=1e-5, rtol=1e-5)


def test_book_number_gan_loads_as_one_hot_vectors(tmp_path):
    """ch. 3's number GAN: G is one Linear(100, 100) + ReLU emitting a 100-wide one-hot-like vector, D one
    Linear(100, 1) + Sigmoid, both saved with torch.jit.script. 100 values would be read as a 10x10 image, so the
    shape and the ReLU output are named."""
    torch.manual_seed(0)
    G = randomize(nn.Sequential(nn.Linear(100, 100), nn.ReLU()))
    D = randomize(nn.Sequential(nn.Linear(100, 1), nn.Sigmoid()))
    g_path, d_path = save(G, tmp_path / "num_gen.pt", True), save(D, tmp_path / "num_dis.pt", True)
    ours_G = gan.from_pretrained(g_path, device="cpu", config={"data_shape": [100], "output_activation": "relu"})
    ours_D = gan.discriminator_from_pretrained(d_path, device="cpu")
    z = torch.randn(10, 100, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        numbers = G(z)
        torch.testing.assert_close(ours_G(z), numbers, atol=1e-5, rtol=1e-5)
        assert torch.equal(ours_G(z).argmax(-1), numbers.argmax(-1))  # the integers the book reads off
        torch.testing.assert_close(ours_D.probability(numbers), D(numbers).flatten(), atol=1e-5, rtol=1e-5)
