"""The book's ch. 6 CycleGAN (Learn Generative AI with PyTorch), its layouts re-created from the structure of
utils/ch06util.py in markhliu/DGAI:
  * the generator: a resnet generator with instance norm (affine=False: no norm keys) whose modules are initial /
    down_blocks / res_blocks / up_blocks / last, every conv reflect-padded (also the downsampling ones, which
    junyanz zero-pads);
  * the discriminator: initial (4x4 stride-2 conv, LeakyReLU) / model (Blocks of 4x4 conv, instance norm,
    LeakyReLU, stride 2 but for the last width; then a 4x4 conv to one channel), every conv reflect-padded, and a
    sigmoid on the output;
saved with torch.save(state_dict), or with torch.jit.script(...).save."""
import pytest
import torch
import torch.nn as nn

from genzoo import cyclegan
from genzoo.errors import CheckpointError, ConfigError
from genzoo.export import export

from .reference import randomize

# the book saves with torch.jit.script, which torch deprecates; the tests write such files on purpose
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")


class BookConvBlock(nn.Module):
    def __init__(self, c_in, c_out, down=True, act=True, **kwargs):
        super().__init__()
        conv = nn.Conv2d(c_in, c_out, padding_mode="reflect", **kwargs) if down else nn.ConvTranspose2d(c_in, c_out, **kwargs)
        self.conv = nn.Sequential(conv, nn.InstanceNorm2d(c_out), nn.ReLU(inplace=True) if act else nn.Identity())

    def forward(self, x):
        return self.conv(x)


class BookResidual(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.block = nn.Sequential(BookConvBlock(c, c, kernel_size=3, padding=1),
                                   BookConvBlock(c, c, act=False, kernel_size=3, padding=1))

    def forward(self, x):
        return x + self.block(x)


class BookGenerator(nn.Module):
    def __init__(self, img_channels=3, f=8, n_res=2):
        super().__init__()
        self.initial = nn.Sequential(nn.Conv2d(img_channels, f, 7, 1, 3, padding_mode="reflect"),
                                     nn.InstanceNorm2d(f), nn.ReLU(inplace=True))
        self.down_blocks = nn.ModuleList([BookConvBlock(f, 2 * f, kernel_size=3, stride=2, padding=1),
                                          BookConvBlock(2 * f, 4 * f, kernel_size=3, stride=2, padding=1)])
        self.res_blocks = nn.Sequential(*[BookResidual(4 * f) for _ in range(n_res)])
        self.up_blocks = nn.ModuleList([
            BookConvBlock(4 * f, 2 * f, down=False, kernel_size=3, stride=2, padding=1, output_padding=1),
            BookConvBlock(2 * f, f, down=False, kernel_size=3, stride=2, padding=1, output_padding=1)])
        self.last = nn.Conv2d(f, img_channels, 7, 1, 3, padding_mode="reflect")

    def forward(self, x):
        x = self.initial(x)
        for layer in self.down_blocks:
            x = layer(x)
        x = self.res_blocks(x)
        for layer in self.up_blocks:
            x = layer(x)
        return torch.tanh(self.last(x))


@pytest.mark.parametrize("torchscript", [False, True], ids=["state-dict", "torchscript"])
def test_book_cyclegan_generator_loads_with_the_same_outputs(tmp_path, torchscript):
    book = randomize(BookGenerator())
    path = tmp_path / "gen_black.pth"
    if torchscript:
        torch.jit.script(book).save(str(path))
    else:
        torch.save(book.state_dict(), path)
    G = cyclegan.from_pretrained(path, device="cpu")
    assert G.config.down_padding == "reflect" and G.config.n_blocks == 2 and G.config.ngf == 8
    x = torch.rand(2, 3, 36, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(G(x), book(x), atol=1e-5, rtol=1e-5)
    # genzoo's own format keeps the padding; junyanz's networks cannot express it
    G.save_pretrained(tmp_path / "saved")
    assert cyclegan.from_pretrained(tmp_path / "saved", device="cpu").config.down_padding == "reflect"
    with pytest.raises(ConfigError, match="down_padding='reflect'"):
        export(G, tmp_path / "junyanz", "junyanz")


class BookBlock(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(c_in, c_out, 4, stride, 1, padding_mode="reflect"),
                                  nn.InstanceNorm2d(c_out), nn.LeakyReLU(0.2, inplace=True))

    def forward(self, x):
        return self.conv(x)


class BookDiscriminator(nn.Module):
    def __init__(self, in_channels=3, features=(8, 16, 32, 64)):
        super().__init__()
        self.initial = nn.Sequential(nn.Conv2d(in_channels, features[0], 4, 2, 1, padding_mode="reflect"),
                                     nn.LeakyReLU(0.2, inplace=True))
        layers, c = [], features[0]
        for f in features[1:]:
            layers.append(BookBlock(c, f, stride=1 if f == features[-1] else 2))
            c = f
        layers.append(nn.Conv2d(c, 1, 4, 1, 1, padding_mode="reflect"))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return torch.sigmoid(self.model(self.initial(x)))


@pytest.mark.parametrize("torchscript", [False, True], ids=["state-dict", "torchscript"])
def test_book_cyclegan_discriminator_loads_with_the_same_outputs(tmp_path, torchscript):
    book = randomize(BookDiscriminator())
    path = tmp_path / "disc_A.pth"
    if torchscript:
        torch.jit.script(book).save(str(path))
    else:
        torch.save(book.state_dict(), path)
    D = cyclegan.discriminator_from_pretrained(path, device="cpu")
    c = D.config
    assert (c.ndf, c.n_layers, c.padding, c.output, c.input_nc) == (8, 3, "reflect", "sigmoid", 3)
    x = torch.rand(2, 3, 64, 48, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        expected = book(x)
        assert expected.shape == (2, 1, 6, 4)
        torch.testing.assert_close(D(x), expected, atol=1e-5, rtol=1e-5)
    # genzoo's own format keeps the padding and the sigmoid; junyanz's PatchGAN has neither
    D.save_pretrained(tmp_path / "saved")
    with pytest.raises(ConfigError, match="padding='reflect'.*output='sigmoid'"):
        export(D, tmp_path / "junyanz", "junyanz")


def test_book_discriminator_is_not_taken_for_a_generator(tmp_path):
    torch.save(BookDiscriminator().state_dict(), tmp_path / "disc_A.pth")
    with pytest.raises(CheckpointError, match="book's ch. 6 CycleGAN discriminator.*discriminator_from_pretrained"):
        cyclegan.from_pretrained(tmp_path / "disc_A.pth", device="cpu")


def test_book_discriminator_with_widths_genzoo_cannot_build_is_refused(tmp_path):
    # features (8, 16, 64, 64): the book's strides follow "the last width", which genzoo's PatchGAN cannot express
    torch.save(BookDiscriminator(features=(8, 16, 64, 64)).state_dict(), tmp_path / "disc.pth")
    with pytest.raises(CheckpointError, match=r"features \[8, 16, 64, 64\].*double"):
        cyclegan.discriminator_from_pretrained(tmp_path / "disc.pth", device="cpu")
