"""DCGAN exports: pytorch/examples' dcgan/main.py networks (re-created in test_convert) load netG.pth / netD.pth."""
import pytest
import torch

from genzoo import gan
from genzoo.errors import ConfigError
from genzoo.export import export
from genzoo.gan.models import DCGANConfig, DCGANDiscriminator, DCGANGenerator, MLPGANConfig, MLPGenerator

from .test_convert import examples_dcgan, randomize


def test_dcgan_export_loads_in_pytorch_examples_with_the_same_outputs(tmp_path):
    config = DCGANConfig(latent_dim=8, image_size=64, channels=3, ngf=4, ndf=6)
    G, D = randomize(DCGANGenerator(config)), randomize(DCGANDiscriminator(config))
    export(G, tmp_path, "pytorch-examples")
    D.save_pretrained(tmp_path, format="pytorch-examples")
    ref_G, ref_D = examples_dcgan(nz=8, ngf=4, ndf=6, nc=3)
    ref_G.load_state_dict(torch.load(tmp_path / "netG.pth", weights_only=True))  # what main.py --netG does
    ref_D.load_state_dict(torch.load(tmp_path / "netD.pth", weights_only=True))
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        images = G(z)
        torch.testing.assert_close(ref_G(z[:, :, None, None]), images, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ref_D(images), D.probability(images), atol=1e-5, rtol=1e-5)
        back = gan.from_pretrained(tmp_path / "netG.pth", device="cpu")  # round trip
        torch.testing.assert_close(back(z), images, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("model, message", [
    (lambda: MLPGenerator(MLPGANConfig()), "an MLP GAN"),
    (lambda: DCGANGenerator(DCGANConfig(image_size=32)), "32-pixel images"),
    (lambda: DCGANGenerator(DCGANConfig(num_classes=10)), "a conditional GAN"),
    (lambda: DCGANDiscriminator(DCGANConfig(d_norm="none")), "d_norm='none'"),
])
def test_what_pytorch_examples_cannot_build_is_refused(tmp_path, model, message):
    with pytest.raises(ConfigError, match=message):
        export(model(), tmp_path, "pytorch-examples")
    assert not any(tmp_path.iterdir())
