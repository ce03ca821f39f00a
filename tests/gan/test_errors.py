"""Bad input gets a clear genzoo error, raised before anything is written or half-loaded."""
import json

import pytest
import torch
from safetensors.torch import save_file

import genzoo
from genzoo import checkpoint, gan
from genzoo.gan import models
from genzoo.errors import CheckpointError, ConfigError, GenzooError, UnknownModelError

from .test_convert import examples_dcgan


@pytest.fixture(scope="module")
def tiny():
    G, D = gan.new_gan(gan.DCGANConfig(latent_dim=8, image_size=32, channels=1, ngf=4, ndf=4, num_classes=3), seed=0)
    return G.eval(), D.eval()


def test_wrong_latent_shape(tiny):
    G, _ = tiny
    for z in (torch.randn(2, 7), torch.randn(2, 8, 2, 2), torch.randn(8), torch.randn(0, 8)):
        with pytest.raises(ConfigError, match=r"z must be shaped \(n, 8\)"):
            G(z, torch.zeros(len(z), dtype=torch.long))
    with pytest.raises(ConfigError, match="z must be a tensor"):
        G([[0.0] * 8], 0)


def test_counts_must_be_positive(tiny):
    G, _ = tiny
    for n in (0, -3):
        with pytest.raises(ConfigError, match="n must be at least 1"):
            G.sample(n, seed=0)
    with pytest.raises(ConfigError, match="positive int"):
        G.sample(2.5, seed=0)
    with pytest.raises(ConfigError, match="steps must be at least 1"):
        G.interpolate(0, seed=0)


def test_labels(tiny):
    G, D = tiny
    for bad in (3, -1, torch.tensor([0, 5])):
        with pytest.raises(ConfigError, match=r"label out of range.*0\.\.2"):
            G.sample(2, seed=0, labels=bad)
    with pytest.raises(ConfigError, match="attribute vectors must be shaped"):
        G(torch.randn(2, 8), torch.rand(2, 4))
    with pytest.raises(ConfigError, match="conditional on 3 classes: pass labels"):
        G(torch.randn(2, 8))
    with pytest.raises(ConfigError, match="discriminator reads"):
        D(torch.randn(2, 3, 32, 32), torch.tensor([0, 1]))
    plain, _ = gan.new_gan(gan.PRESETS["curve"])
    with pytest.raises(ConfigError, match="not conditional"):
        plain.sample(2, seed=0, labels=1)


def test_same_seed_same_samples_and_labels_are_used(tiny):
    G, _ = tiny
    assert torch.equal(G.sample(4, seed=7, labels=1), G.sample(4, seed=7, labels=1))
    assert not torch.equal(G.sample(4, seed=7, labels=1), G.sample(4, seed=8, labels=1))
    assert not torch.equal(G.sample(4, seed=7, labels=1), G.sample(4, seed=7, labels=2))
    strip = G.interpolate(5, seed=0, labels=2, rows=2)
    assert strip.shape == (10, 1, 32, 32)


def test_interpolation_walks_a_great_circle_between_two_latents(tiny):
    G, _ = tiny
    ends = G.latent(4, seed=3)  # interpolate draws 2 * rows latents: row r walks ends[2r] -> ends[2r + 1]
    strips = G.interpolate(5, seed=3, labels=torch.tensor([1, 2]), rows=2)
    with torch.no_grad():
        torch.testing.assert_close(strips[[0, 4, 5, 9]], G(ends, torch.tensor([1, 1, 2, 2])))
    a, b = torch.randn(2, 64, generator=torch.Generator().manual_seed(0))
    mid = models.slerp(a, b, torch.tensor([0.5]))[0]
    # slerp keeps a Gaussian latent's norm; the straight line's midpoint shrinks it by ~1/sqrt(2) (a, b near-orthogonal)
    typical = (a.norm() + b.norm()) / 2
    assert abs(mid.norm() - typical) < 0.05 * typical
    assert ((a + b) / 2).norm() < 0.8 * typical


def test_checkpoint_of_another_family(tmp_path):
    # a genzoo folder of another family
    checkpoint.save_pretrained(tmp_path / "vae", {"w": torch.zeros(2)}, {"latent_channels": 4}, family="vae")
    with pytest.raises(CheckpointError, match="genzoo 'vae' checkpoint, not 'gan'.*genzoo.vae.from_pretrained"):
        gan.from_pretrained(tmp_path / "vae", device="cpu")
    # a transformers GPT-2 folder
    (tmp_path / "gpt2").mkdir()
    (tmp_path / "gpt2" / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    save_file({"transformer.wte.weight": torch.zeros(4, 2)}, str(tmp_path / "gpt2" / "model.safetensors"))
    with pytest.raises(CheckpointError, match="transformers 'gpt2' checkpoint.*not a GAN.*genzoo.gpt2"):
        gan.from_pretrained(tmp_path / "gpt2", device="cpu")
    # a bare state dict of something else
    torch.save({"encoder.conv_in.weight": torch.zeros(2, 2)}, tmp_path / "vae.pth")
    with pytest.raises(CheckpointError, match="not a GAN checkpoint genzoo knows.*encoder.conv_in.weight"):
        gan.from_pretrained(tmp_path / "vae.pth", device="cpu")
    # catalog names: unknown ones, and those of another family (with the right loader named)
    with pytest.raises(UnknownModelError, match="unknown model 'no-such-gan-model'"):
        gan.from_pretrained("no-such-gan-model", device="cpu")
    for entry in [e for e in genzoo.list_models() if e.family != "gan"][:2]:
        with pytest.raises(UnknownModelError, match=f"is a {entry.family} model, not gan"):
            gan.from_pretrained(entry.name, device="cpu")


def test_missing_and_mismatched_keys(tmp_path):
    netG, netD = examples_dcgan(6, 2, 2, 3)
    sd = netG.state_dict()
    del sd["main.4.running_var"]
    torch.save(sd, tmp_path / "netG_missing.pth")
    with pytest.raises(CheckpointError, match=r"missing keys: main\.4\.running_var"):
        gan.from_pretrained(tmp_path / "netG_missing.pth", device="cpu")
    sd = netG.state_dict()
    sd["main.3.weight"] = torch.zeros(16, 5, 4, 4)  # breaks the ngf ladder
    torch.save(sd, tmp_path / "netG_bad_shape.pth")
    with pytest.raises(CheckpointError, match=r"shape mismatches: main\.3\.weight"):
        gan.from_pretrained(tmp_path / "netG_bad_shape.pth", device="cpu")
    sd = {**netG.state_dict(), "main.0.extra": torch.zeros(1)}
    torch.save(sd, tmp_path / "netG_extra.pth")
    with pytest.raises(CheckpointError, match=r"do not belong to the pytorch/examples DCGAN layout: \['main\.0\.extra'\]"):
        gan.from_pretrained(tmp_path / "netG_extra.pth", device="cpu")


def test_part_mismatch_and_corrupt_files(tmp_path):
    netG, netD = examples_dcgan(6, 2, 2, 3)
    torch.save(netD.state_dict(), tmp_path / "netD.pth")
    with pytest.raises(CheckpointError, match="holds a discriminator, not a generator.*discriminator_from_pretrained"):
        gan.from_pretrained(tmp_path / "netD.pth", device="cpu")
    (tmp_path / "trunc.pth").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        gan.from_pretrained(tmp_path / "trunc.pth", device="cpu")
    with pytest.raises(ConfigError, match="part must be"):
        gan.from_pretrained(tmp_path / "netD.pth", part="critic")


def test_bad_configs_and_losses(tmp_path):
    with pytest.raises(ConfigError, match="image_size must be 28 or 4"):
        gan.DCGANConfig(image_size=48)
    with pytest.raises(ConfigError, match="d_norm"):
        gan.DCGANConfig(d_norm="spectral")
    with pytest.raises(ConfigError, match="output_activation"):
        gan.MLPGANConfig(output_activation="swish2")
    G, D = gan.new_gan(gan.DCGANConfig(latent_dim=4, image_size=16, channels=1, ngf=2, ndf=2))
    data = torch.zeros(4, 1, 16, 16)
    from genzoo.gan.train import TrainConfig

    with pytest.raises(ConfigError, match="unknown GAN loss 'hinge'"):
        gan.train(TrainConfig(loss="hinge", progress=False), data=data, model=(G, D))
    with pytest.raises(ConfigError, match="BatchNorm"):
        gan.train(TrainConfig(out_dir=str(tmp_path), loss="wgan-gp", progress=False, device="cpu"), data=data,
                  model=(G, D))
    assert issubclass(ConfigError, GenzooError)
