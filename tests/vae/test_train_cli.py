"""Training (learns, resumes exactly), the command line, and the embedded mnist-vae's demo hooks."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from genzoo import datasets, vae
from genzoo.checkpoint import save_pretrained
from genzoo.errors import CheckpointError, ConfigError
from genzoo.cli import main
from genzoo.vae import cli as vae_cli
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
    result = train(TrainConfig(out_dir=str(tmp_path), epochs=2, batch_size=64, lr=3e-3, device="cpu", progress=False,
                               sample_every=24, keep_every=24, log_every=8), data=train_images, model=model,
                   heldout=heldout)
    after = evaluate(result.model, heldout)
    assert result.model is model and result.step == 48
    assert after < 0.5 * before, (before, after)  # BCE per digit: ~545 untrained, ~200 after 48 steps
    assert [h["step"] for h in result.history] == [8, 16, 24, 32, 40, 48]
    assert result.history[-1]["heldout_recon"] == pytest.approx(after)
    # the run directory is a loadable genzoo checkpoint, with samples, a loss plot and kept checkpoints
    loaded = vae.from_pretrained(tmp_path, device="cpu")
    assert evaluate(loaded, heldout) == pytest.approx(after, rel=1e-5)
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["step-0000024.png", "step-0000048.png"]
    assert vae.from_pretrained(tmp_path / "checkpoints" / "step-24").config.latent_dim == 8
    assert (tmp_path / "loss.png").is_file() and len((tmp_path / "log.jsonl").read_text().splitlines()) == 6


TINY = dict(kind="mlp", hidden=32, latent_dim=4, batch_size=64, device="cpu", progress=False, sample_every=0)


def test_resumed_run_equals_uninterrupted_run(tmp_path, digits):
    images = digits[0][:256]
    straight = train(TrainConfig(out_dir=str(tmp_path / "a"), epochs=2, **TINY), data=images).model
    train(TrainConfig(out_dir=str(tmp_path / "b"), epochs=1, **TINY), data=images)
    # the resume repeats no setting but the length: the architecture comes from the run
    resumed = train(TrainConfig(out_dir=str(tmp_path / "b"), epochs=2, resume=True, device="cpu", progress=False),
                    data=images).model
    state = json.loads((tmp_path / "b" / "config.json").read_text())
    assert state["model"] == "mlp"
    for (name, p), q in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(p, q), name
    # a resume with another architecture is refused, and so is a fresh run into the folder
    with pytest.raises(ConfigError, match="hidden=16"):
        train(TrainConfig(out_dir=str(tmp_path / "b"), epochs=3, resume=True, **{**TINY, "hidden": 16}), data=images)
    with pytest.raises(ConfigError, match="overwrite"):
        train(TrainConfig(out_dir=str(tmp_path / "b"), epochs=3, **TINY), data=images)
    with pytest.raises(CheckpointError, match="cannot resume"):
        train(TrainConfig(out_dir=str(tmp_path / "c"), epochs=3, resume=True, **TINY), data=images)


def test_run_interrupted_mid_epoch_resumes_exactly(tmp_path, digits, monkeypatch):
    from genzoo import training

    images = digits[0][:256]  # 4 steps per epoch
    config = dict(epochs=2, save_every=3, **TINY)
    straight = train(TrainConfig(out_dir=str(tmp_path / "a"), **config), data=images).model
    real_save = training.Run.save

    def save_then_crash(self, step, *args, **kwargs):
        real_save(self, step, *args, **kwargs)
        if step == 6:  # mid-way through the second epoch (steps 5-8)
            raise KeyboardInterrupt

    monkeypatch.setattr(training.Run, "save", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(out_dir=str(tmp_path / "b"), **config), data=images)
    monkeypatch.setattr(training.Run, "save", real_save)
    resumed = train(TrainConfig(out_dir=str(tmp_path / "b"), resume=True, **config), data=images).model
    for (name, p), q in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(p, q), name


def test_accumulation_and_a_plain_conv_autoencoder(tmp_path, digits):
    images = digits[0][:128]
    common = dict(steps=2, batch_size=32, device="cpu", progress=False, sample_every=0, log_every=1)
    # the MLP VAE: the conv one has BatchNorm, whose batch statistics differ per micro-batch (as anywhere)
    mlp = dict(kind="mlp", hidden=32, latent_dim=4, **common)
    one = train(TrainConfig(out_dir=str(tmp_path / "one"), **mlp), data=images)
    four = train(TrainConfig(out_dir=str(tmp_path / "four"), grad_accum=4, **mlp), data=images)
    assert [h["loss"] for h in one.history] == pytest.approx([h["loss"] for h in four.history], rel=1e-6)
    a, b = one.model.state_dict(), four.model.state_dict()
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5
    common = dict(kind="conv", widths=(4, 8), latent_dim=4, **common)
    plain = train(TrainConfig(out_dir=str(tmp_path / "plain"), variational=False, recon="mse", **common), data=images)
    assert plain.history[-1]["kl"] == 0 and vae.from_pretrained(tmp_path / "plain").config.variational is False


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
    assert main(["train", "vae", "--data", str(faces), "--size", "16", "--widths", "4", "8",
                 "--latent-dim", "3", "--epochs", "1", "--batch-size", "4", "--out", str(out), "--device", "cpu"]) == 0
    model = vae.from_pretrained(out, device="cpu")
    assert model.config.in_channels == 3 and model.config.image_size == 16
    assert (out / "train_state.pt").is_file() and (out / "samples" / "step-0000001.png").is_file()
    assert main(["sample", str(out), "--out", str(tmp_path / "s.png")]) == 0
    gray = tmp_path / "gray"
    gray.mkdir()
    for i in range(4):
        _png(gray / f"{i}.png", (8, 8), "L")
    assert main(["train", "vae", "--data", str(gray), "--widths", "4", "--latent-dim", "2", "--steps", "1",
                 "--epochs", "1", "--out", str(tmp_path / "g"), "--device", "cpu", "--no-progress"]) == 0
    model = vae.from_pretrained(tmp_path / "g")  # size and channels from the folder: 8x8 grayscale
    assert model.config.in_channels == 1 and model.config.image_size == 8


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
