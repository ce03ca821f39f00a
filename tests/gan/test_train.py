"""The training loop: the book's curve GAN learns y = sin x on a CPU in seconds; every loss trains, checkpoints,
resumes; the CLI samples, interpolates and trains."""
import json
import math

import pytest
import torch
from PIL import Image

from genzoo import gan
from genzoo.cli import main as genzoo_main
from genzoo.gan import data, losses
from genzoo.gan.train import TrainConfig

FAST = dict(device="cpu", progress=False, sample_every=0, log_every=1)


def test_curve_gan_learns_sine(tmp_path):
    """1,000 generated points must lie on y = sin x and cover its x range.

    Bounds: a generator that ignored the curve would score far worse: points uniform in the box
    [-pi, pi] x [-1, 1] give mean |y - sin x| ~ 0.6, and collapsing onto y = 0 gives E|sin x| = 2/pi ~ 0.64.
    After 800 steps it measures ~0.03 (0.02 after 2,000), so 0.1 is 6x below chance and 3x above the typical
    result. Coverage: each eighth of [-pi, pi] must hold >= 5% of the points (uniform: 12.5%), which a
    generator that collapsed onto part of the curve fails.
    """
    result = gan.train(TrainConfig(data="curve", steps=800, batch_size=128, lr=1e-3, out_dir=str(tmp_path), **FAST))
    assert result.step == 800
    G = result.model
    out = G.sample(1000, seed=123)
    assert out.shape == (1000, 2)
    x, y = out[:, 0], out[:, 1]
    assert (y - torch.sin(x)).abs().mean() < 0.1
    assert x.min() < -math.pi + 0.5 and x.max() > math.pi - 0.5
    inside = (x > -math.pi) & (x < math.pi)
    assert inside.float().mean() > 0.85
    bins = torch.histc(x[inside], bins=8, min=-math.pi, max=math.pi) / len(x)
    assert bins.min() >= 0.05, bins


def test_numbers_gan_learns_multiples_of_five(tmp_path):
    """Book ch. 3: one-hot numbers. An untrained G's argmax hits a multiple of 5 about 20% of the time;
    after 300 steps >= 95% must be multiples of 5, spread over at least 5 different values (no single mode)."""
    G, D = gan.new_gan(gan.PRESETS["numbers"], seed=0)
    gan.train(TrainConfig(steps=300, batch_size=128, lr=1e-3, out_dir=str(tmp_path), **FAST), data=data.multiples(8192, seed=0), model=(G, D))
    values = data.decode_onehot(G.sample(1000, seed=1))
    assert (values % 5 == 0).float().mean() >= 0.95
    assert len(torch.unique(values[values % 5 == 0])) >= 5


def test_data_helpers():
    pts = data.curve_points(100, "exp", seed=0)
    assert torch.allclose(pts[:, 1], 1.08 ** pts[:, 0]) and pts[:, 0].min() >= 0 and pts[:, 0].max() <= 50
    numbers = data.multiples(200, k=5, seed=0)
    assert numbers.shape == (200, 100) and (data.decode_onehot(numbers) % 5 == 0).all()
    x, y = data.mnist("heldout", image_size=32).tensors
    assert x.shape == (2000, 1, 32, 32) and x.min() >= -1 and x.max() <= 1 and y.max() == 9


def test_gradient_penalty_of_a_linear_critic_is_exact():
    # D(x) = w . x has gradient w everywhere, so the penalty is (|w| - 1)^2 whatever the samples.
    w = torch.tensor([3.0, 4.0])
    critic = lambda x, labels=None: x @ w  # noqa: E731
    gp = losses.gradient_penalty(critic, torch.randn(16, 2), torch.randn(16, 2))
    assert torch.isclose(gp, torch.tensor(16.0))


def test_losses_at_known_points():
    zero, one = torch.zeros(4), torch.ones(4)
    assert torch.isclose(losses.discriminator_loss("bce", zero, zero), torch.tensor(2 * math.log(2)))
    assert torch.isclose(losses.generator_loss("bce", zero), torch.tensor(math.log(2)))
    assert losses.discriminator_loss("lsgan", one, zero) == 0 and losses.generator_loss("lsgan", one) == 0
    assert losses.discriminator_loss("wgan-gp", 3 * one, one) == -2 and losses.generator_loss("wgan-gp", one) == -1


@pytest.mark.parametrize("loss,d_norm", [("bce", "batch"), ("lsgan", "batch"), ("wgan-gp", "layer")])
def test_every_loss_trains_checkpoints_and_resumes_exactly(tmp_path, loss, d_norm):
    cfg = gan.DCGANConfig(latent_dim=8, image_size=16, channels=1, ngf=4, ndf=4, num_classes=3, d_norm=d_norm)
    images = torch.rand(48, 1, 16, 16) * 2 - 1
    dataset = torch.utils.data.TensorDataset(images, torch.arange(48) % 3)
    run = dict(loss=loss, batch_size=16, n_samples=9, keep_every=3, **{**FAST, "sample_every": 3})
    G, D = gan.new_gan(cfg, seed=0)
    before = [p.clone() for p in G.parameters()]
    result = gan.train(TrainConfig(out_dir=str(tmp_path / "a"), steps=6, **run), data=dataset, model=(G, D))
    assert any(not torch.equal(a, b) for a, b in zip(before, G.parameters()))
    assert len(result.history) == 6 and all(math.isfinite(h["loss_d"]) for h in result.history)
    assert (tmp_path / "a" / "samples" / "step-0000003.png").is_file()
    loaded = gan.from_pretrained(tmp_path / "a", device="cpu")
    assert torch.equal(loaded.sample(2, seed=0, labels=1), G.sample(2, seed=0, labels=1))
    kept = gan.from_pretrained(tmp_path / "a" / "checkpoints" / "step-3", device="cpu")
    assert not torch.equal(kept.sample(2, seed=0, labels=1), G.sample(2, seed=0, labels=1))

    # 3 steps, then a resume in fresh networks to 6: the same weights as the 6 steps straight
    G2, D2 = gan.new_gan(cfg, seed=0)
    gan.train(TrainConfig(out_dir=str(tmp_path / "b"), steps=3, **run), data=dataset, model=(G2, D2))
    G3, D3 = gan.new_gan(cfg, seed=5)
    resumed = gan.train(TrainConfig(out_dir=str(tmp_path / "b"), steps=6, resume=True, **run), data=dataset,
                        model=(G3, D3))
    assert resumed.step == 6
    for module, other in ((G, G3), (D, D3)):
        a, b = module.state_dict(), other.state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_same_training(tmp_path):
    cfg = gan.DCGANConfig(latent_dim=8, image_size=16, channels=1, ngf=4, ndf=4)
    images = torch.rand(40, 1, 16, 16) * 2 - 1
    runs = []
    for i in range(2):
        G, D = gan.new_gan(cfg, seed=3)
        gan.train(TrainConfig(out_dir=str(tmp_path / str(i)), steps=10, batch_size=8, seed=3, **FAST), data=images,
                  model=(G, D))
        runs.append(G.state_dict())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


def test_mlp_gan_trains_on_flat_vectors_and_image_folders(tmp_path):
    # book ch. 3 numbers GAN: one step through the loop, output decodes to integers
    G, D = gan.new_gan(gan.PRESETS["numbers"], seed=0)
    gan.train(TrainConfig(out_dir=str(tmp_path / "numbers"), steps=2, batch_size=32, **{**FAST, "sample_every": 1}),
              data=data.multiples(64, seed=0), model=(G, D))
    assert data.decode_onehot(G.sample(5, seed=0)).shape == (5,)
    assert (tmp_path / "numbers" / "samples" / "step-0000001.txt").is_file()
    # an image folder with two class subfolders (book ch. 5: glasses / no_glasses)
    for name, value in (("glasses", 0), ("no_glasses", 255)):
        (tmp_path / "faces" / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (20 + i, 18), (value, 40, 90)).save(tmp_path / "faces" / name / f"{i}.png")
    folder = data.ImageFolder(tmp_path / "faces", image_size=16, channels=3)
    assert folder.classes == ["glasses", "no_glasses"] and len(folder) == 6
    x, label = folder[5]
    assert x.shape == (3, 16, 16) and label == 1 and x[0].mean() > 0.9
    # the MLP GAN on that folder (conditional on the subfolders), through the library's own data loading
    result = gan.train(TrainConfig(data=str(tmp_path / "faces"), size=8, arch="mlp", conditional=True, steps=2,
                                   batch_size=4, out_dir=str(tmp_path / "mlp"), **FAST))
    assert result.model.config.data_shape == (3, 8, 8) and result.model.num_classes == 2


def test_cli_sample_interpolate_train(tmp_path, capsys):
    cfg = gan.DCGANConfig(latent_dim=8, image_size=16, channels=1, ngf=4, ndf=4, num_classes=10)
    G, _ = gan.new_gan(cfg, seed=0)
    G.eval().save_pretrained(tmp_path / "g")
    out = tmp_path / "grid.png"
    assert genzoo_main(["sample", str(tmp_path / "g"), "--n", "12", "--seed", "0", "--label", "3", "--nrow", "4",
                        "--out", str(out), "--device", "cpu"]) == 0
    with Image.open(out) as image:
        assert image.size == (4 * 18 + 2, 3 * 18 + 2)
    strip = tmp_path / "strip.png"
    assert genzoo_main(["interpolate", str(tmp_path / "g"), "--steps", "8", "--rows", "2", "--out", str(strip),
                        "--device", "cpu"]) == 0
    with Image.open(strip) as image:
        assert image.size == (8 * 18 + 2, 2 * 18 + 2)
    # bad input: a clean error (exit 2) and the existing file is left alone
    before = out.read_bytes()
    assert genzoo_main(["sample", str(tmp_path / "g"), "--label", "10", "--out", str(out), "--overwrite"]) == 2
    assert "label out of range" in capsys.readouterr().err and out.read_bytes() == before

    # train the curve GAN for a few steps, then sample it as CSV
    run = tmp_path / "run"
    assert genzoo_main(["train", "gan", "--data", "curve", "--steps", "3", "--out", str(run), "--device", "cpu"]) == 0
    assert genzoo_main(["train", "gan", "--data", "curve", "--steps", "3", "--out", str(run)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    csv = tmp_path / "points.csv"
    assert genzoo_main(["sample", str(run), "--n", "5", "--out", str(csv)]) == 0
    lines = csv.read_text().splitlines()
    assert lines[0] == "x,y" and len(lines) == 6 and len(lines[1].split(",")) == 2

    # a conditional WGAN-GP DCGAN on an image folder with class subfolders (BatchNorm-free critic chosen for it)
    for name, value in (("glasses", 0), ("no_glasses", 255)):
        (tmp_path / "faces" / name).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (16, 16), (value, 0, 0)).save(tmp_path / "faces" / name / f"{i}.jpg")
    run = tmp_path / "faces_run"
    assert genzoo_main(["train", "gan", "--data", str(tmp_path / "faces"), "--conditional",
                        "--loss", "wgan-gp", "--ngf", "4", "--ndf", "4", "--batch-size", "2", "--steps", "2",
                        "--out", str(run), "--device", "cpu"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert (config["num_classes"], config["d_norm"], config["image_size"], config["ngf"]) == (2, "layer", 16, 4)
    assert genzoo_main(["sample", str(run), "--n", "4", "--label", "1", "--out", str(out), "--overwrite"]) == 0
    # resuming needs none of the flags: the run's data, loss, widths and conditioning come back
    assert genzoo_main(["train", "gan", "--out", str(run), "--steps", "3", "--resume", "--no-progress"]) == 0
    assert genzoo_main(["train", "gan", "--out", str(run), "--steps", "4", "--resume", "--loss", "bce"]) == 2
    assert "loss='bce'" in capsys.readouterr().err

    # the yunjey-style MLP GAN on MNIST, one step
    run = tmp_path / "mlp_run"
    assert genzoo_main(["train", "gan", "--data", "mnist", "--arch", "mlp", "--batch-size", "8", "--steps", "1",
                        "--out", str(run), "--device", "cpu"]) == 0
    assert gan.from_pretrained(run, device="cpu").sample(2, seed=0).shape == (2, 1, 28, 28)
