"""Training (learns, resumes exactly), the command line, and the embedded mnist-vae's demo hooks."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from genzoo import datasets, vae
from genzoo.checkpoint import save_pretrained
from genzoo.errors import CheckpointError
from genzoo.cli import main
from genzoo.vae import cli as vae_cli
from genzoo.vae import train as vae_train
from genzoo.vae.train import TrainConfig, evaluate, train

SMALL = dict(in_channels=1, image_size=28, channels=(8, 16), latent_dim=8)


@pytest.fixture(scope="module")
def digits():
    train_images, _ = datasets.mnist("train")
    heldout, _ = datasets.mnist("heldout")
    return train_images[:1536], heldout[:300]


def test_short_training_run_reconstructs_heldout_digits_better(tmp_path, digits):
    train_images, heldout = digits
    torch.manual_seed(0)
    model = vae.MLPVAE(vae.MLPVAEConfig(hidden=128, latent_dim=8))
    before = evaluate(model, heldout)
    model, history = train(model, train_images, TrainConfig(out_dir=str(tmp_path), epochs=2, batch_size=64,
                                                            lr=3e-3, device="cpu"), heldout=heldout)
    after = evaluate(model, heldout)
    assert after < 0.5 * before, (before, after)  # BCE per digit: ~545 untrained, ~200 after 48 steps
    assert [h["epoch"] for h in history] == [1, 2] and history[-1]["heldout_recon"] == pytest.approx(after)
    # the run directory is a loadable genzoo checkpoint
    loaded = vae.from_pretrained(tmp_path, device="cpu")
    assert evaluate(loaded, heldout) == pytest.approx(after, rel=1e-5)


def test_resumed_run_equals_uninterrupted_run(tmp_path, digits):
    images = digits[0][:256]

    def run(out, epochs):
        torch.manual_seed(0)
        model = vae.MLPVAE(vae.MLPVAEConfig(hidden=32, latent_dim=4))
        return train(model, images, TrainConfig(out_dir=str(out), epochs=epochs, batch_size=64, device="cpu"))[0]

    straight = run(tmp_path / "a", 2)
    run(tmp_path / "b", 1)
    resumed = run(tmp_path / "b", 2)  # picks up training_state.pt: optimizer, step
    state = json.loads((tmp_path / "b" / "config.json").read_text())
    assert state["model"] == "mlp"
    for (name, p), q in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(p, q, atol=1e-6), name
    # a run directory of another architecture is not silently resumed
    with pytest.raises(CheckpointError, match="pick another"):
        train(vae.MLPVAE(vae.MLPVAEConfig(hidden=16, latent_dim=4)), images,
              TrainConfig(out_dir=str(tmp_path / "b"), epochs=3, device="cpu"))


def test_run_interrupted_mid_epoch_resumes_exactly(tmp_path, digits, monkeypatch):
    images = digits[0][:256]  # 4 steps per epoch

    def run(out):
        torch.manual_seed(0)
        model = vae.MLPVAE(vae.MLPVAEConfig(hidden=32, latent_dim=4))
        return train(model, images, TrainConfig(out_dir=str(out), epochs=2, batch_size=64, save_every=3,
                                                device="cpu"))[0]

    straight = run(tmp_path / "a")
    real_save = vae_train.save_checkpoint

    def save_then_crash(model, optimizer, out_dir, step, *args):
        real_save(model, optimizer, out_dir, step, *args)
        if step == 6:  # mid-way through the second epoch (steps 5-8)
            raise KeyboardInterrupt

    monkeypatch.setattr(vae_train, "save_checkpoint", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b")
    monkeypatch.setattr(vae_train, "save_checkpoint", real_save)
    resumed = run(tmp_path / "b")
    for (name, p), q in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(p, q, atol=1e-6), name


@pytest.fixture(scope="module")
def tiny_autoencoder_kl(tmp_path_factory):
    diffusers = pytest.importorskip("diffusers")
    folder = tmp_path_factory.mktemp("tiny-sd-vae")
    torch.manual_seed(0)
    diffusers.AutoencoderKL(block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                            up_block_types=("UpDecoderBlock2D",) * 2, layers_per_block=1, norm_num_groups=8,
                            sample_size=16).save_pretrained(folder)
    return folder


def _png(path, size, mode="RGB"):
    rng = np.random.default_rng(0)
    channels = 3 if mode == "RGB" else 1
    array = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    Image.fromarray(array.squeeze(-1) if channels == 1 else array, mode=mode).save(path)
    return path


def test_cli_reconstruct_pads_converts_and_never_clobbers(tmp_path, tiny_autoencoder_kl, capsys):
    source = _png(tmp_path / "in.png", (37, 30), mode="L")  # not a multiple of 2, and grayscale
    out = tmp_path / "out.png"
    assert main(["reconstruct", str(tiny_autoencoder_kl), str(source), str(out)]) == 0
    with Image.open(out) as image:
        assert image.size == (37, 30) and image.mode == "RGB"
    assert "padding 30x37 to 30x38" in capsys.readouterr().err
    assert main(["reconstruct", str(tiny_autoencoder_kl), str(source), str(tmp_path / "t.png"), "--tiled",
                 "--tile-size", "16"]) == 0
    before = source.read_bytes()
    assert main(["reconstruct", str(tiny_autoencoder_kl), str(source), str(source)]) == 2
    assert source.read_bytes() == before
    assert "refusing to overwrite" in capsys.readouterr().err


def test_cli_sample_interpolate_and_family_errors(tmp_path, capsys):
    vae.ConvVAE(vae.ConvVAEConfig(**SMALL)).save_pretrained(tmp_path / "conv")
    grid = tmp_path / "grid.png"
    assert main(["sample", str(tmp_path / "conv"), "--n", "6", "--seed", "1", "--out", str(grid), "--nrow", "3"]) == 0
    with Image.open(grid) as image:
        assert image.size == (3 * 30 + 2, 2 * 30 + 2)
    a, b = _png(tmp_path / "a.png", (40, 40), "RGB"), _png(tmp_path / "b.png", (28, 28), "L")
    strip = tmp_path / "strip.png"
    assert main(["interpolate", str(tmp_path / "conv"), str(a), str(b), "--steps", "5", "--out", str(strip)]) == 0
    with Image.open(strip) as image:
        assert image.size == (5 * 30 + 2, 32)
    save_pretrained(tmp_path / "gan", {"w": torch.zeros(1)}, {}, family="gan")
    assert main(["reconstruct", str(tmp_path / "gan"), str(a), str(tmp_path / "r.png")]) == 2
    assert "genzoo 'gan' checkpoint" in capsys.readouterr().err


def test_cli_train_on_an_image_folder(tmp_path):
    faces = tmp_path / "faces"
    faces.mkdir()
    for i in range(6):
        _png(faces / f"{i}.jpg", (24 + i, 24), "RGB")
    out = tmp_path / "run"
    assert main(["train", "vae", "--data", str(faces), "--image-size", "16", "--channels", "4", "8",
                 "--latent-dim", "3", "--epochs", "1", "--batch-size", "4", "--out", str(out), "--device", "cpu"]) == 0
    model = vae.from_pretrained(out, device="cpu")
    assert model.config.in_channels == 3 and model.config.image_size == 16
    assert (out / "training_state.pt").is_file()


def test_embedded_mnist_vae_demo_hooks(tmp_path):
    samples = vae_cli.demo_samples(8, seed=1)
    assert samples.shape == (8, 1, 28, 28) and samples.dtype == torch.float32
    assert samples.min() >= -1 and samples.max() <= 1
    assert torch.equal(samples, vae_cli.demo_samples(8, seed=1))
    model = vae.from_pretrained("mnist-vae", device="cpu")
    heldout, _ = datasets.mnist("heldout")
    assert evaluate(model, heldout[:500]) < 110  # BCE nats per digit; an untrained model scores ~545
    paths = vae_cli.demo(tmp_path)
    assert [p.name for p in paths] == ["vae_samples.png", "vae_reconstructions.png", "vae_interpolation.png"]
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
