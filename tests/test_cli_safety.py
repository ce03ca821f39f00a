"""The CLI never replaces a file without --overwrite, checks its arguments before any work, takes folders where a
user would pass one, and turns mistakes into one-line errors with a non-zero exit."""
import pytest
from PIL import Image

from genzoo.cli import main


def run(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


WRITERS = [
    lambda out: ["sample", "mnist-vae", "--n", 4, "--out", out],
    lambda out: ["sample", "mnist-dcgan", "--n", 4, "--out", out],
    lambda out: ["sample", "mnist-ddpm", "--n", 2, "--steps", 2, "--out", out],
    lambda out: ["interpolate", "mnist-dcgan", "--steps", 3, "--out", out],
]
WRITER_IDS = ["vae-sample", "gan-sample", "diffusion-sample", "gan-interpolate"]


@pytest.mark.parametrize("command", WRITERS, ids=WRITER_IDS)
def test_existing_output_is_refused_unless_overwrite(tmp_path, capsys, command):
    out = tmp_path / "grid.png"
    out.write_bytes(b"precious")
    code, _, err = run(command(out), capsys)
    assert code == 2 and "exists already" in err and "--overwrite" in err
    assert out.read_bytes() == b"precious"
    code, _, err = run(command(out) + ["--overwrite"], capsys)
    assert code == 0, err
    assert Image.open(out).size[0] > 0


@pytest.mark.parametrize("command", WRITERS, ids=WRITER_IDS)
def test_output_folder_gets_a_file_inside(tmp_path, capsys, command):
    code, _, err = run(command(tmp_path), capsys)
    assert code == 0, err
    written = list(tmp_path.iterdir())
    assert len(written) == 1 and written[0].suffix == ".png"


def _digit_images(folder, n=2):
    folder.mkdir()
    for i in range(n):
        Image.new("L", (28, 28), color=40 * i).save(folder / f"digit{i}.png")
    return folder


def test_reconstruct_file_folder_and_overwrite(tmp_path, capsys):
    inputs = _digit_images(tmp_path / "in")
    out = tmp_path / "out.png"
    assert run(["reconstruct", "mnist-vae", inputs / "digit0.png", out], capsys)[0] == 0
    code, _, err = run(["reconstruct", "mnist-vae", inputs / "digit0.png", out], capsys)
    assert code == 2 and "exists already" in err
    assert run(["reconstruct", "mnist-vae", inputs / "digit0.png", out, "--overwrite"], capsys)[0] == 0
    code, _, err = run(["reconstruct", "mnist-vae", inputs, tmp_path / "recon"], capsys)   # folder -> folder
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "recon").iterdir()) == ["digit0.png", "digit1.png"]
    code, _, err = run(["reconstruct", "mnist-vae", inputs, tmp_path / "recon"], capsys)
    assert code == 2 and "exists already" in err
    code, _, err = run(["reconstruct", "mnist-vae", inputs, out, "--overwrite"], capsys)
    assert code == 2 and "must be a folder too" in err
    same = inputs / "digit0.png"
    code, _, err = run(["reconstruct", "mnist-vae", same, same, "--overwrite"], capsys)
    assert code == 2 and "refusing to overwrite the input" in err


def test_demo_refuses_a_folder_with_files(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    code, _, err = run(["demo", "--out", tmp_path, "--families", "gan"], capsys)
    assert code == 2 and "holds files already" in err
    code, _, err = run(["demo", "--out", tmp_path, "--families", "gan", "--overwrite"], capsys)
    assert code == 0, err
    assert (tmp_path / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("argv, message", [
    (["sample", "mnist-ddpm", "--steps", 10_000_000], "--steps must be >="),
    (["sample", "mnist-ddpm", "--n", 0], "--n must be >="),
    (["sample", "mnist-vae", "--n", 10_000_000], "--n must be >="),
    (["interpolate", "mnist-dcgan", "--steps", 10_000_000], "--steps must be >="),
    (["generate", "hi", "--max-new-tokens", 10 ** 8], "--max-new-tokens must be >="),
    (["generate", "hi", "--threads", 100_000], "--threads must be >="),
    (["generate", "hi", "--threads", 0], "--threads must be >="),
    (["list", "--family", "gans"], "Did you mean gan"),
    (["sample", "mnist-vea"], "Did you mean mnist-vae"),
])
def test_absurd_or_mistyped_arguments_are_one_line_errors(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(argv, capsys)
    assert code != 0 and message in err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []   # nothing written


def test_library_image_writer_takes_overwrite(tmp_path):
    import torch

    from genzoo import images
    from genzoo.errors import ConfigError

    path = images.save_image(torch.zeros(3, 4, 4), tmp_path / "x.png")
    with pytest.raises(ConfigError, match="overwrite=True"):
        images.save_image(torch.zeros(3, 4, 4), path)
    images.save_image(torch.ones(3, 4, 4), path, overwrite=True)


def test_library_generate_bounds_max_new_tokens():
    import genzoo
    from genzoo.errors import ConfigError

    model = genzoo.load("shakespeare-char", device="cpu")
    with pytest.raises(ConfigError, match="max_new_tokens must be <= 1,000,000"):
        model.generate_text("ROMEO:", max_new_tokens=10 ** 8)
