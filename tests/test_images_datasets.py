import gzip

import pytest
import torch

from genzoo import datasets, images
from genzoo.errors import ConfigError


def test_to_uint8_maps_the_range():
    x = torch.tensor([-1.0, 0.0, 1.0, 2.0]).view(1, 1, 1, 4)
    assert images.to_uint8(x).ravel().tolist() == [0, 128, 255, 255]


def test_grid_shape_and_png_round_trip(tmp_path):
    batch = torch.rand(5, 3, 8, 6) * 2 - 1
    grid = images.make_grid(batch, nrow=3, padding=1)
    assert grid.shape == (3, 2 * 9 + 1, 3 * 7 + 1)
    assert torch.equal(grid[:, 1:9, 1:7], batch[0])
    path = images.save_image(batch[:1], tmp_path / "one.png")
    back = images.load_image(path, channels=3)
    assert back.shape == (1, 3, 8, 6)
    assert (back - batch[:1]).abs().max() <= 1 / 127.5 + 1e-6


def test_grayscale_and_bad_input(tmp_path):
    digit = torch.rand(1, 1, 4, 4) * 2 - 1
    assert images.to_pil(digit).mode == "L"
    with pytest.raises(ConfigError, match="channels"):
        images.to_pil(torch.zeros(1, 2, 4, 4))
    with pytest.raises(ConfigError, match="not an image"):
        (tmp_path / "x.png").write_text("hello")
        images.load_image(tmp_path / "x.png")


def test_mnist_splits():
    x, y = datasets.mnist("train")
    assert x.shape == (8000, 1, 28, 28) and y.shape == (8000,)
    assert x.min() == -1 and x.max() == 1
    hx, hy = datasets.mnist("heldout")
    assert hx.shape == (2000, 1, 28, 28)
    assert sorted(set(y.tolist())) == list(range(10)) == sorted(set(hy.tolist()))
    with pytest.raises(ConfigError):
        datasets.mnist("test")


def test_idx_truncated(tmp_path):
    header = bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big")
    path = tmp_path / "bad.gz"
    with gzip.open(path, "wb") as f:
        f.write(header + bytes(5))
    with pytest.raises(ConfigError, match="truncated"):
        datasets.read_idx(path)


def test_shakespeare_split():
    train, val = datasets.shakespeare("train"), datasets.shakespeare("val")
    assert len(train) + len(val) == 1_115_394
    assert train.startswith("First Citizen:")


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".jpeg", ".tif", ".webp", ".bmp"])
def test_save_image_formats_follow_the_suffix(tmp_path, suffix):
    from PIL import Image

    path = images.save_image(torch.zeros(2, 3, 8, 8), tmp_path / f"grid{suffix}")
    with Image.open(path) as image:
        assert image.format == Image.registered_extensions()[suffix]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    """A tiny PNG whose header announces 10000x10000 pixels is refused from the header, as is a truncated one."""
    import struct
    import zlib

    from PIL import Image

    from genzoo import images
    from genzoo.errors import ConfigError

    Image.new("L", (8, 8)).save(tmp_path / "small.png")
    data = bytearray((tmp_path / "small.png").read_bytes())
    ihdr = 8 + 8   # signature, then the IHDR chunk's length and type
    data[ihdr:ihdr + 8] = struct.pack(">II", 10_000, 10_000)
    data[ihdr + 13:ihdr + 17] = struct.pack(">I", zlib.crc32(bytes(data[ihdr - 4:ihdr + 13])))
    (tmp_path / "bomb.png").write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="10000x10000 pixels"):
        images.load_image(tmp_path / "bomb.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "small.png").read_bytes()[:40])
    with pytest.raises(ConfigError, match="cut.png"):
        images.load_image(tmp_path / "cut.png")
    assert images.load_image(tmp_path / "small.png", channels=1).shape == (1, 1, 8, 8)
