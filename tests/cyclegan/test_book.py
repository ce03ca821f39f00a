"""The book's ch. 6 CycleGAN generator (Learn Generative AI with PyTorch), re-created from its description: a
resnet generator with instance norm whose modules are initial / down_blocks / res_blocks / up_blocks / last, every
conv reflect-padded (also the downsampling ones, which junyanz zero-pads), saved with torch.save(state_dict)."""
import pytest
import torch
import torch.nn as nn

from genzoo import cyclegan
from genzoo.errors import ConfigError
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
