"""Losses, the image pool, the LR schedule, and a short CPU run on the MNIST inversion toy task."""
import json

import pytest
import torch
import torch.nn.functional as F

from genzoo import cyclegan
from genzoo.cyclegan.data import invert, mnist_inversion
from genzoo.cyclegan.losses import ImagePool, cycle_loss, gan_loss
from genzoo.cyclegan.model import CycleGAN, DiscriminatorConfig, GeneratorConfig
from genzoo.cyclegan.train import TrainConfig, build_networks, init_weights, lr_factor, train, translation_error
from genzoo.errors import ConfigError


def test_gan_losses():
    logits = torch.tensor([[0.5, -1.0], [2.0, 0.0]])
    assert torch.isclose(gan_loss(logits, True, "lsgan"), ((logits - 1) ** 2).mean())
    assert torch.isclose(gan_loss(logits, False, "lsgan"), (logits ** 2).mean())
    assert torch.isclose(gan_loss(logits, True, "vanilla"), -F.logsigmoid(logits).mean())
    assert torch.isclose(gan_loss(logits, False, "vanilla"), -F.logsigmoid(-logits).mean())
    assert torch.isclose(cycle_loss(torch.zeros(2, 2), torch.ones(2, 2)), torch.tensor(1.0))
    with pytest.raises(ConfigError):
        gan_loss(logits, True, "wgan")


def test_image_pool_fills_then_mixes_half():
    pool = ImagePool(4)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: returned unchanged
    g = torch.Generator().manual_seed(0)
    swapped = 0
    for i in range(200):
        new = torch.full((1, 1, 1, 1), 100.0 + i)
        swapped += int(pool.query(new, g).item() != new.item())
    assert 70 < swapped < 130  # each image is swapped for an old one with probability 1/2
    state = pool.state_dict()
    again = ImagePool(1)
    again.load_state_dict(state)
    assert again.size == 4 and torch.equal(torch.stack(again.images), torch.stack(pool.images))
    assert torch.equal(ImagePool(0).query(first), first)


def test_lr_constant_then_linear_to_zero():
    config = TrainConfig(steps=100)
    factors = [lr_factor(s, config) for s in range(100)]
    assert factors[:50] == [1.0] * 50
    assert all(a > b for a, b in zip(factors[50:], factors[51:]))
    assert 0 < factors[-1] < 0.02


def test_patchgan_and_generator_shapes():
    G = cyclegan.build_generator(GeneratorConfig(ngf=4, n_blocks=6, use_dropout=True))
    assert G(torch.randn(1, 3, 32, 32)).shape == (1, 3, 32, 32)
    U = cyclegan.build_generator(GeneratorConfig(arch="unet", ngf=2, num_downs=7, use_dropout=True))
    assert U(torch.randn(1, 3, 128, 128)).shape == (1, 3, 128, 128)
    with pytest.raises(ConfigError):
        GeneratorConfig(norm="group")
    with pytest.raises(ConfigError, match="unknown GeneratorConfig keys.*n_block"):  # a typo in a config.json
        GeneratorConfig.from_dict({"ngf": 4, "n_block": 2})
    assert DiscriminatorConfig.from_dict(DiscriminatorConfig(ndf=2).to_dict()) == DiscriminatorConfig(ndf=2)


TINY = dict(ngf=4, n_blocks=1, ndf=8, n_layers_d=2, device="cpu", progress=False)


def test_short_cpu_run_learns_the_inversion(tmp_path):
    """60 steps of tiny networks: the cycle loss falls and G_A(a) moves toward the true mapping invert(a)."""
    data_a, data_b, _, _ = mnist_inversion("train")
    held = data_a.images[:256]
    config = TrainConfig(data="mnist-invert", out_dir=str(tmp_path), steps=60, batch_size=8, log_every=20,
                         sample_every=60, save_every=30, keep_every=30, **TINY)
    untrained = build_networks(config, 1, 1, (28, 28))
    before = translation_error(untrained.G_A, held, invert)

    nets = train(config).model
    after = translation_error(nets.G_A, held, invert)
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [20, 40, 60]
    assert log[-1]["cycle"] < 0.8 * log[0]["cycle"]
    assert before > 0.8 and after < before - 0.2, (before, after)  # measured: ~0.89 -> ~0.43
    assert (tmp_path / "samples" / "step-0000060.png").is_file() and (tmp_path / "loss.png").is_file()

    # the run folder is a genzoo checkpoint: both directions load, same outputs as the trained networks
    G_A = cyclegan.from_pretrained(tmp_path, device="cpu")
    G_B = cyclegan.from_pretrained(tmp_path, device="cpu", direction="BtoA")
    x = held[:4]
    with torch.no_grad():
        assert torch.allclose(G_A(x), nets.G_A(x), atol=1e-6) and torch.allclose(G_B(x), nets.G_B(x), atol=1e-6)
    assert set(cyclegan.load_cyclegan(tmp_path, device="cpu").state_dict()) == set(nets.state_dict())
    assert cyclegan.from_pretrained(tmp_path / "checkpoints" / "step-30", device="cpu").config.ngf == 4

    with pytest.raises(ConfigError, match="resume"):  # a finished run is never overwritten by a fresh one
        train(config)
    # resumable with no flags but the new length: a longer run picks up at step 60
    train(TrainConfig(out_dir=str(tmp_path), steps=64, decay_start=30, resume=True, device="cpu", progress=False))
    assert json.loads((tmp_path / "log.jsonl").read_text().splitlines()[-1])["step"] == 64
    assert torch.load(tmp_path / "train_state.pt", weights_only=True)["step"] == 64


def interrupted(monkeypatch, config, at: int):
    """Run config until the save at step `at`, then stop as a killed run would."""
    from genzoo import training

    real_save = training.Run.save

    def save_then_stop(self, step, *args, **kwargs):
        real_save(self, step, *args, **kwargs)
        if step == at:
            raise KeyboardInterrupt

    monkeypatch.setattr(training.Run, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train(config)
    monkeypatch.setattr(training.Run, "save", real_save)


def test_resume_continues_exactly(tmp_path, monkeypatch):
    run = dict(data="mnist-invert", batch_size=2, pool_size=2, save_every=2, sample_every=0, **TINY)
    straight = train(TrainConfig(out_dir=str(tmp_path / "a"), steps=4, **run)).model
    interrupted(monkeypatch, TrainConfig(out_dir=str(tmp_path / "b"), steps=4, **run), at=2)
    resumed = train(TrainConfig(out_dir=str(tmp_path / "b"), resume=True, device="cpu", progress=False)).model
    a, b = straight.state_dict(), resumed.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_train_cli_on_two_unpaired_folders(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    from genzoo.cli import main as genzoo_main

    rng = np.random.default_rng(0)
    for domain, count in (("black", 5), ("blond", 3)):  # unpaired: not even the same number of images
        (tmp_path / domain).mkdir()
        for i in range(count):
            Image.fromarray(rng.integers(0, 256, (40, 44, 3), dtype=np.uint8)).save(tmp_path / domain / f"{i}.png")
    out = tmp_path / "run"
    argv = ["train", "cyclegan", "--data-a", str(tmp_path / "black"), "--data-b", str(tmp_path / "blond"),
            "--out", str(out), "--steps", "2", "--batch-size", "2", "--load-size", "36", "--size", "32",
            "--ngf", "2", "--n-blocks", "1", "--ndf", "2", "--device", "cpu", "--flip"]
    assert genzoo_main(argv) == 0
    G = cyclegan.from_pretrained(out, device="cpu")
    assert G.config.ngf == 2 and G(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)
    assert (out / "samples" / "step-0000002.png").is_file()
    assert genzoo_main(argv) == 2 and "--overwrite" in capsys.readouterr().err
    assert genzoo_main(["translate", str(out), str(tmp_path / "black" / "0.png"), str(tmp_path / "t.png")]) == 0
    with pytest.raises(SystemExit):  # argparse: neither folders nor a task
        genzoo_main(["train", "cyclegan", "--out", str(tmp_path / "other")])


def test_pix2pix_trains_on_side_by_side_pairs_and_translates(tmp_path, capsys, monkeypatch):
    """A|B pairs where B is A's inversion: pix2pix's L1 term pulls G(a) toward b within a few steps."""
    from PIL import Image

    from genzoo.cli import main as genzoo_main
    from genzoo.cyclegan.train import Pix2Pix

    g = torch.Generator().manual_seed(0)
    (tmp_path / "pairs").mkdir()
    smooth = F.interpolate(torch.rand(6, 3, 4, 4, generator=g), size=32, mode="bilinear")
    for i in range(6):
        a = (smooth[i] * 255).round().to(torch.uint8)
        pair = torch.cat([a, 255 - a], dim=2).permute(1, 2, 0).numpy()  # 32 x 64: A on the left, B on the right
        Image.fromarray(pair).save(tmp_path / "pairs" / f"{i}.png")
    out = tmp_path / "p2p"
    argv = ["train", "cyclegan", "--mode", "pix2pix", "--data", str(tmp_path / "pairs"), "--out", str(out),
            "--steps", "30", "--batch-size", "2", "--ngf", "8", "--ndf", "4", "--lr", "2e-3", "--device", "cpu",
            "--no-progress", "--log-every", "5", "--sample-every", "30"]
    assert genzoo_main(argv) == 0
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert {"G_gan", "G_L1", "D_real", "D_fake"} <= set(log[0])
    assert log[-1]["G_L1"] < 0.7 * log[0]["G_L1"], (log[0], log[-1])  # measured: 0.34 -> 0.14
    G = cyclegan.from_pretrained(out, device="cpu")
    assert G.config.arch == "unet" and G.config.num_downs == 5 and G.config.norm == "batch" and G.config.use_dropout
    assert (out / "samples" / "step-0000030.png").is_file()
    assert genzoo_main(["translate", str(out), str(tmp_path / "pairs" / "0.png"), str(tmp_path / "t.png")]) == 0
    # the discriminator is conditional: it sees A and B stacked (6 channels)
    state = torch.load(out / "train_state.pt", weights_only=True)
    assert state["models"]["nets"]["D.layers.0.conv.weight"].shape[1] == 6
    # the toy task works paired too; a resume continues exactly
    run = dict(mode="pix2pix", data="mnist-invert", batch_size=2, ngf=2, ndf=2, save_every=2, sample_every=0,
               device="cpu", progress=False)
    straight = train(TrainConfig(out_dir=str(tmp_path / "a"), steps=4, **run)).model
    interrupted(monkeypatch, TrainConfig(out_dir=str(tmp_path / "b"), steps=4, **run), at=2)
    resumed = train(TrainConfig(out_dir=str(tmp_path / "b"), resume=True, device="cpu", progress=False))
    assert isinstance(resumed.model, Pix2Pix)
    a, b = straight.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_train_step_vanilla_gan_unet_batchnorm_updates_all_networks(tmp_path):
    from genzoo.cyclegan.train import train_step
    from genzoo.training import Run

    config = TrainConfig(out_dir=str(tmp_path), steps=1, gan_mode="vanilla", pool_size=2, device="cpu")
    nets = CycleGAN.create(GeneratorConfig(arch="unet", num_downs=5, ngf=2, norm="batch"),
                           DiscriminatorConfig(ndf=2, n_layers=2, norm="batch"))
    init_weights(nets, 0)
    before = {k: v.clone() for k, v in nets.state_dict().items()}
    opt_g = torch.optim.Adam(list(nets.G_A.parameters()) + list(nets.G_B.parameters()), lr=1e-3)
    opt_d = torch.optim.Adam(list(nets.D_A.parameters()) + list(nets.D_B.parameters()), lr=1e-3)
    with Run(config, family="cyclegan") as run:
        losses = train_step(run, nets.train(), torch.randn(2, 3, 32, 32).tanh(), torch.randn(2, 3, 32, 32).tanh(),
                            opt_g, opt_d, ImagePool(2), ImagePool(2), config)
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values()) and losses["idt"] > 0
    after = nets.state_dict()
    for key in ("G_A.down.0.weight", "G_B.down.0.weight", "D_A.layers.0.conv.weight", "D_B.layers.0.conv.weight"):
        assert not torch.equal(before[key], after[key]), key
