"""genzoo.loader: one place that finds a checkpoint's files and refuses other families' checkpoints."""
import json

import pytest
import torch
from safetensors.torch import save_file

from genzoo import loader
from genzoo.errors import CheckpointError, HubError, NotFoundError


@pytest.mark.parametrize("config, family, match", [
    ({"genzoo_family": "vae"}, "gpt2", "genzoo 'vae' checkpoint, not 'gpt2'.*genzoo.vae.from_pretrained"),
    ({"_class_name": "UNet2DModel"}, "vae", "diffusers UNet2DModel, not a VAE.*genzoo.diffusion"),
    ({"_class_name": "UNet2DConditionModel"}, "diffusion", "UNet2DConditionModel.*does not read this class"),
    ({"model_type": "gpt2"}, "gan", "transformers 'gpt2'.*not a GAN.*genzoo.gpt2"),
    ({"model_type": "llama"}, "gpt2", "transformers 'llama'.*not a GPT-2"),
])
def test_other_families_are_refused(config, family, match):
    with pytest.raises(CheckpointError, match=match):
        loader.refuse_other_family(config, family, "x/config.json")


@pytest.mark.parametrize("config, family", [
    ({"genzoo_family": "vae"}, "vae"), ({"_class_name": "AutoencoderKL"}, "vae"),
    ({"_class_name": "UNet2DModel"}, "diffusion"), ({"model_type": "gpt2"}, "gpt2"), ({}, "gan"),
])
def test_own_family_passes(config, family):
    loader.refuse_other_family(config, family, "x/config.json")


def test_locate_folder_subfolder_and_file(tmp_path):
    pipeline = tmp_path / "pipe"
    (pipeline / "unet").mkdir(parents=True)
    (pipeline / "unet" / "config.json").write_text(json.dumps({"_class_name": "UNet2DModel"}))
    save_file({"w": torch.zeros(1)}, str(pipeline / "unet" / "diffusion_pytorch_model.safetensors"))
    found = loader.locate(pipeline, "diffusion", ("diffusion_pytorch_model.safetensors",), subfolders=("", "unet/"))
    assert found.subfolder == "unet/" and found.config["_class_name"] == "UNet2DModel"
    assert found.weights == pipeline / "unet" / "diffusion_pytorch_model.safetensors"
    direct = loader.locate(found.weights, "diffusion", ("x",))
    assert direct.config_path == pipeline / "unet" / "config.json"
    with pytest.raises(CheckpointError, match="not a VAE"):  # refused before any weights are looked for
        loader.locate(pipeline, "vae", ("nothing.bin",), subfolders=("", "unet/"))


def test_missing_paths_and_files(tmp_path):
    with pytest.raises(NotFoundError, match="no checkpoint file or folder"):
        loader.locate(tmp_path / "typo.pth", "gan", ("model.safetensors",))
    (tmp_path / "empty").mkdir()
    with pytest.raises(HubError, match=r"holds none of \['model.safetensors'\]"):
        loader.locate(tmp_path / "empty", "gan", ("model.safetensors",))
    with pytest.raises(HubError, match=r"has no config.json \(nor unet/config.json\)"):
        loader.locate(tmp_path / "empty", "diffusion", ("model.safetensors",), subfolders=("", "unet/"),
                      config_required=True)
    (tmp_path / "list.json").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("[1, 2]")
    save_file({"w": torch.zeros(1)}, str(tmp_path / "bad" / "model.safetensors"))
    with pytest.raises(CheckpointError, match="not a JSON object"):
        loader.locate(tmp_path / "bad", "gan", ("model.safetensors",))
