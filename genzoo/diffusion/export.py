"""Write a diffusion U-Net as a diffusers pipeline folder:

    OUT/model_index.json                      DDPMPipeline.from_pretrained(OUT) / DDIMPipeline.from_pretrained(OUT)
    OUT/unet/config.json + diffusion_pytorch_model.safetensors     UNet2DModel.from_pretrained(OUT, subfolder="unet")
    OUT/scheduler/scheduler_config.json      the noise schedule (DDPMScheduler; DDIMPipeline converts it)

genzoo.diffusion.from_pretrained(OUT) and load_scheduler(OUT) read the folder back.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ..export import prepare_directory, write_json, write_safetensors
from .convert import config_to_diffusers, to_diffusers

FORMATS = ("genzoo", "diffusers")
WEIGHTS = "unet/diffusion_pytorch_model.safetensors"


def export(model, directory, format: str, overwrite: bool = False, scheduler_config: dict | None = None) -> Path:
    """`scheduler_config` (diffusers names, e.g. from genzoo.diffusion.scheduler_config(name)); default: the one
    the model was loaded with (model.scheduler_config) or DDPM's 1000 linear steps."""
    scheduler_config = dict(scheduler_config or getattr(model, "scheduler_config", None) or {})
    if format == "genzoo":
        prepare_directory(directory, ("model.safetensors", "config.json"), overwrite)
        return Path(model.save_pretrained(directory, scheduler_config=scheduler_config or None))
    if format != "diffusers":
        raise ConfigError(f"a U-Net cannot be exported as {format!r}: one of {', '.join(FORMATS)}")
    names = ("model_index.json", "unet/config.json", WEIGHTS, "scheduler/scheduler_config.json")
    directory = prepare_directory(directory, names, overwrite)
    write_safetensors(directory / WEIGHTS, to_diffusers(model.state_dict()))
    write_json(directory / "unet/config.json", config_to_diffusers(model.config))
    scheduler = {"_class_name": "DDPMScheduler", "num_train_timesteps": 1000, "beta_start": 0.0001,
                 "beta_end": 0.02, "beta_schedule": "linear", "variance_type": "fixed_small", "clip_sample": True,
                 **{k: v for k, v in scheduler_config.items() if not k.startswith("_")}}
    write_json(directory / "scheduler/scheduler_config.json", scheduler)
    write_json(directory / "model_index.json", {"_class_name": "DDPMPipeline", "unet": ["diffusers", "UNet2DModel"],
                                                "scheduler": ["diffusers", "DDPMScheduler"]})
    return directory
