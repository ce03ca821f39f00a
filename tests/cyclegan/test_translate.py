"""translate / translate_files / the `genzoo translate` CLI: any image size, folders, never clobbering files."""
import numpy as np
import pytest
import torch
from PIL import Image

from genzoo import cyclegan
from genzoo.cli import main as genzoo_main
from genzoo.cyclegan.translate import pad_to_multiple
from genzoo.errors import ConfigError

from .reference import RefResnetGenerator, randomize


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "latest_net_G_A.pth"
    torch.manual_seed(0)
    torch.save(randomize(RefResnetGenerator(3, 3, ngf=4, n_blocks=2)).state_dict(), path)
    return path


def photo(w, h, seed=0, mode="RGB"):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).convert(mode)


def test_pad_to_multiple_reflects_and_crops_back():
    x = torch.randn(1, 3, 37, 22)
    y, (l, r, t, b) = pad_to_multiple(x, 4)
    assert y.shape[-2:] == (40, 24) and (l, r, t, b) == (1, 1, 1, 2)
    assert torch.equal(y[..., t:40 - b, l:24 - r], x)
    tiny, _ = pad_to_multiple(torch.randn(1, 3, 2, 3), 4)  # too small to reflect: replicate, at least 8 px
    assert tiny.shape[-2:] == (8, 8)


def test_any_size_keeps_the_size_and_matches_padded_model(model_path):
    G = cyclegan.from_pretrained(model_path, device="cpu")
    x = torch.rand(2, 3, 37, 22) * 2 - 1
    y = cyclegan.translate_tensor(G, x)
    assert y.shape == x.shape and y.abs().max() <= 1
    padded, (l, r, t, b) = pad_to_multiple(x, 4)
    with torch.no_grad():
        assert torch.allclose(y, G(padded)[..., t:40 - b, l:24 - r])
    assert cyclegan.translate_tensor(G, x[0]).shape == x[0].shape  # (C, H, W) too


def test_translate_pil_and_path(model_path, tmp_path):
    G = cyclegan.from_pretrained(model_path, device="cpu")
    out = cyclegan.translate(G, photo(45, 31, mode="L"))  # grayscale in: converted to RGB
    assert out.size == (45, 31) and out.mode == "RGB"
    photo(64, 48).save(tmp_path / "in.png")
    assert cyclegan.translate(G, tmp_path / "in.png", size=24).size == (32, 24)  # shorter side -> 24
    with pytest.raises(ConfigError, match="no image file"):
        cyclegan.translate(G, tmp_path / "nope.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ConfigError, match="not an image"):
        cyclegan.translate(G, tmp_path / "bad.png")


def test_cli_file_and_folder_never_overwrite(model_path, tmp_path, capsys):
    src = tmp_path / "photos"
    (src / "sub").mkdir(parents=True)
    photo(20, 20, 1).save(src / "a.jpg")
    photo(13, 17, 2).save(src / "sub" / "b.png")
    before = {p: p.read_bytes() for p in src.rglob("*.*")}

    assert genzoo_main(["translate", str(model_path), str(src / "a.jpg"), str(tmp_path / "a_out.png")]) == 0
    expected = cyclegan.translate(cyclegan.from_pretrained(model_path, device="cpu"), src / "a.jpg")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a_out.png")), np.asarray(expected))  # PNG: lossless
    # the output exists now: refused without --overwrite, and the file is untouched
    stamp = (tmp_path / "a_out.png").read_bytes()
    assert genzoo_main(["translate", str(model_path), str(src / "a.jpg"), str(tmp_path / "a_out.png")]) == 2
    assert "--overwrite" in capsys.readouterr().err and (tmp_path / "a_out.png").read_bytes() == stamp

    assert genzoo_main(["translate", str(model_path), str(src), str(tmp_path / "out")]) == 0
    with Image.open(tmp_path / "out" / "sub" / "b.png") as image:
        assert image.size == (13, 17)
    assert (tmp_path / "out" / "a.jpg").is_file()
    # translating a folder into itself would clobber the inputs: refused before anything is written
    assert genzoo_main(["translate", str(model_path), str(src), str(src), "--overwrite"]) == 2
    assert "refusing to write over input" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in src.rglob("*.*")} == before
    assert genzoo_main(["translate", "no-such-model", str(src), str(tmp_path / "x")]) == 2
