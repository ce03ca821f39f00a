"""Losses, the image pool, the LR schedule, and a short CPU run on the MNIST inversion toy task."""
import json

import pytest
import torch
import torch.nn.functional as F

from genzoo import cyclegan
from genzoo.cyclegan.data import invert, mnist_inversion
from genzoo.cyclegan.losses import ImagePool, cycle_loss, gan_loss
from genzoo.cyclegan.model import CycleGAN, DiscriminatorConfig, GeneratorConfig
from genzoo.cyclegan.train import TrainConfig, init_weights, lr_factor, train, translation_error
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


def test_short_cpu_run_learns_the_inversion(tmp_path):
    """60 steps of tiny networks: the cycle loss falls and G_A(a) moves toward the true mapping invert(a)."""
    data_a, data_b, _, _ = mnist_inversion("train")
    held = data_a.images[:256]
    config = TrainConfig(steps=60, batch_size=8, log_every=20, sample_every=60, save_every=30,
                         generator={"input_nc": 1, "output_nc": 1, "ngf": 4, "n_blocks": 1},
                         discriminator={"ndf": 8, "n_layers": 2})
    untrained = CycleGAN.create(GeneratorConfig(**config.generator), DiscriminatorConfig(input_nc=1, **config.discriminator))
    init_weights(untrained, config.seed)
    before = translation_error(untrained.G_A, held, invert)

    nets = train(tmp_path, data_a, data_b, config, device="cpu", progress=False)
    after = translation_error(nets.G_A, held, invert)
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [20, 40, 60]
    assert log[-1]["cycle"] < 0.8 * log[0]["cycle"]
    assert before > 0.8 and after < before - 0.2, (before, after)  # measured: ~0.89 -> ~0.43
    assert (tmp_path / "samples" / "step_0000060.png").is_file()

    # the run folder is a genzoo checkpoint: both directions load, same outputs as the trained networks
    G_A = cyclegan.from_pretrained(tmp_path, device="cpu")
    G_B = cyclegan.from_pretrained(tmp_path, device="cpu", direction="BtoA")
    x = held[:4]
    with torch.no_grad():
        assert torch.allclose(G_A(x), nets.G_A(x), atol=1e-6) and torch.allclose(G_B(x), nets.G_B(x), atol=1e-6)
    assert set(cyclegan.load_cyclegan(tmp_path, device="cpu").state_dict()) == set(nets.state_dict())

    with pytest.raises(ConfigError, match="resume"):  # a finished run is never overwritten by a fresh one
        train(tmp_path, data_a, data_b, config, device="cpu", progress=False)
    # resumable: a longer run picks up at step 60
    longer = TrainConfig(**{**config.__dict__, "steps": 64, "decay_start": 30})
    train(tmp_path, data_a, data_b, longer, device="cpu", resume=True, progress=False)
    assert json.loads((tmp_path / "log.jsonl").read_text().splitlines()[-1])["step"] == 64
    assert torch.load(tmp_path / "training_state.pt", weights_only=True)["step"] == 64


def test_train_cli_on_two_unpaired_folders(tmp_path):
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
            "--out", str(out), "--steps", "2", "--batch-size", "2", "--load-size", "36", "--crop-size", "32",
            "--ngf", "2", "--n-blocks", "1", "--ndf", "2", "--workers", "0", "--device", "cpu"]
    assert genzoo_main(argv) == 0
    G = cyclegan.from_pretrained(out, device="cpu")
    assert G.config.ngf == 2 and G(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)
    assert (out / "samples" / "step_0000002.png").is_file()
    with pytest.raises(SystemExit):  # argparse: neither folders nor a task
        genzoo_main(["train", "cyclegan", "--out", str(out)])


def test_train_step_vanilla_gan_unet_batchnorm_updates_all_networks():
    from genzoo.cyclegan.train import train_step

    config = TrainConfig(steps=1, gan_mode="vanilla", pool_size=2)
    nets = CycleGAN.create(GeneratorConfig(arch="unet", num_downs=5, ngf=2, norm="batch"),
                           DiscriminatorConfig(ndf=2, n_layers=2, norm="batch"))
    init_weights(nets, 0)
    before = {k: v.clone() for k, v in nets.state_dict().items()}
    opt_g = torch.optim.Adam(list(nets.G_A.parameters()) + list(nets.G_B.parameters()), lr=1e-3)
    opt_d = torch.optim.Adam(list(nets.D_A.parameters()) + list(nets.D_B.parameters()), lr=1e-3)
    losses = train_step(nets.train(), torch.randn(2, 3, 32, 32).tanh(), torch.randn(2, 3, 32, 32).tanh(), opt_g, opt_d,
                        ImagePool(2), ImagePool(2), config)
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values()) and losses["idt"] > 0
    after = nets.state_dict()
    for key in ("G_A.down.0.weight", "G_B.down.0.weight", "D_A.layers.0.conv.weight", "D_B.layers.0.conv.weight"):
        assert not torch.equal(before[key], after[key]), key
