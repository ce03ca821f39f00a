"""junyanz exports: his networks (re-created in reference.py) load the files strictly and compute what genzoo does."""
import pytest
import torch

from genzoo import cyclegan
from genzoo.cyclegan.model import (CycleGAN, DiscriminatorConfig, GeneratorConfig, NLayerDiscriminator,
                                   build_generator)
from genzoo.errors import ConfigError
from genzoo.export import export

from .reference import RefNLayerDiscriminator, RefResnetGenerator, RefUnetGenerator, randomize


def load_like_junyanz(net, path):
    net.load_state_dict(torch.load(path, weights_only=True))  # strict, as his BaseModel.load_networks
    return net.eval()


@pytest.mark.parametrize("config, reference", [
    (GeneratorConfig(ngf=4, n_blocks=2), lambda: RefResnetGenerator(3, 3, ngf=4, n_blocks=2)),
    (GeneratorConfig(ngf=4, n_blocks=1, norm="batch", use_dropout=True, input_nc=1, output_nc=3),
     lambda: RefResnetGenerator(1, 3, ngf=4, norm="batch", use_dropout=True, n_blocks=1)),
    (GeneratorConfig(arch="unet", ngf=2, num_downs=5, norm="batch"),
     lambda: RefUnetGenerator(3, 3, num_downs=5, ngf=2, norm="batch")),
], ids=["resnet", "resnet-batch-dropout", "unet"])
def test_generator_export_loads_in_junyanz_with_the_same_outputs(tmp_path, config, reference):
    G = randomize(build_generator(config))
    out = G.save_pretrained(tmp_path, format="junyanz")
    ref = load_like_junyanz(reference(), out / "latest_net_G_A.pth")
    x = torch.rand(1, config.input_nc, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(ref(x), G(x), atol=1e-5, rtol=1e-5)
        back = cyclegan.from_pretrained(out / "latest_net_G_A.pth", device="cpu")  # round trip
        torch.testing.assert_close(back(x), G(x), atol=1e-5, rtol=1e-5)


def test_cyclegan_export_is_a_junyanz_run_folder(tmp_path):
    torch.manual_seed(0)
    model = CycleGAN.create(GeneratorConfig(ngf=4, n_blocks=1), DiscriminatorConfig(ndf=4, n_layers=2))
    randomize(model)
    out = export(model, tmp_path, "junyanz")
    assert sorted(p.name for p in out.iterdir()) == [f"latest_net_{n}.pth" for n in ("D_A", "D_B", "G_A", "G_B")]
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    d = load_like_junyanz(RefNLayerDiscriminator(3, ndf=4, n_layers=2), out / "latest_net_D_A.pth")
    with torch.no_grad():
        torch.testing.assert_close(d(x), model.D_A(x), atol=1e-5, rtol=1e-5)
        G_B = cyclegan.from_pretrained(out, device="cpu", direction="BtoA")  # his run folder, the other direction
        torch.testing.assert_close(G_B(x), model.G_B(x), atol=1e-5, rtol=1e-5)


def test_a_discriminator_alone_is_written_as_d_a(tmp_path):
    D = randomize(NLayerDiscriminator(DiscriminatorConfig(ndf=4, n_layers=3, norm="batch")))
    out = export(D, tmp_path, "junyanz")
    ref = load_like_junyanz(RefNLayerDiscriminator(3, ndf=4, n_layers=3, norm="batch"), out / "latest_net_D_A.pth")
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ref(x), D(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("overrides, message", [({"padding_type": "zero"}, "padding_type='zero'"),
                                                ({"down_padding": "reflect"}, "down_padding='reflect'")])
def test_generators_junyanz_cannot_build_are_refused(tmp_path, overrides, message):
    G = build_generator(GeneratorConfig(ngf=4, n_blocks=1, **overrides))
    with pytest.raises(ConfigError, match=message):
        export(G, tmp_path, "junyanz")
    assert not any(tmp_path.iterdir())
