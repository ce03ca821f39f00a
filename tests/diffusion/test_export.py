"""U-Net exports: diffusers' UNet2DModel and DDPM/DDIM pipelines load them and compute what genzoo computes."""
import pytest
import torch

from genzoo import diffusion
from genzoo.errors import ConfigError
from genzoo.export import export

from .conftest import TINY_DDPM, TINY_MODERN, make_reference

diffusers = pytest.importorskip("diffusers")


def genzoo_unet(config, tmp_path):
    """A genzoo UNet loaded from a diffusers reference (so both hold the same random weights)."""
    reference = make_reference(config)
    reference.save_pretrained(tmp_path / "ref")
    return diffusion.from_pretrained(tmp_path / "ref", device="cpu", channels_last=False)


@pytest.mark.parametrize("config", [TINY_DDPM, TINY_MODERN], ids=["ddpm", "modern"])
def test_diffusers_export_loads_in_unet2dmodel_with_the_same_outputs(tmp_path, config):
    unet = genzoo_unet(config, tmp_path)
    out = unet.save_pretrained(tmp_path / "export", format="diffusers",
                               scheduler_config={"num_train_timesteps": 50, "beta_schedule": "linear"})
    ref = diffusers.UNet2DModel.from_pretrained(out, subfolder="unet").eval()
    x = torch.randn(2, unet.config.in_channels, 8, 8, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([3, 40])
    with torch.no_grad():
        torch.testing.assert_close(ref(x, t).sample, unet(x, t), atol=1e-5, rtol=1e-5)
    back = diffusion.from_pretrained(out, device="cpu", channels_last=False)  # round trip
    with torch.no_grad():
        torch.testing.assert_close(back(x, t), unet(x, t), atol=1e-5, rtol=1e-5)
    assert diffusion.scheduler_config(out)["num_train_timesteps"] == 50


@pytest.mark.parametrize("pipeline", ["DDPMPipeline", "DDIMPipeline"])
def test_pipelines_load_the_export_and_run(tmp_path, pipeline):
    unet = genzoo_unet(TINY_DDPM, tmp_path)
    out = export(unet, tmp_path / "export", "diffusers")
    pipe = getattr(diffusers, pipeline).from_pretrained(out)
    assert pipe.scheduler.config.num_train_timesteps == 1000
    noise = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(pipe.unet(noise, 999).sample, unet(noise, torch.tensor([999])), atol=1e-5, rtol=1e-5)
    pipe.set_progress_bar_config(disable=True)
    images = pipe(batch_size=1, num_inference_steps=2, generator=torch.Generator().manual_seed(0),
                  output_type="np").images
    assert images.shape == (1, 16, 16, 3) and ((images >= 0) & (images <= 1)).all()


def test_unknown_format_and_overwrite_are_refused(tmp_path):
    unet = genzoo_unet(TINY_MODERN, tmp_path)
    with pytest.raises(ConfigError, match="genzoo, diffusers"):
        export(unet, tmp_path / "x", "huggingface")
    export(unet, tmp_path / "x", "diffusers")
    with pytest.raises(ConfigError, match="already holds.*overwrite"):
        export(unet, tmp_path / "x", "diffusers")
