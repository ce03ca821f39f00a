"""Denoising diffusion (DDPM / DDIM) with a U-Net written from scratch, loading the google/ddpm-* checkpoints.

    from genzoo import diffusion
    unet = diffusion.from_pretrained("ddpm-cifar10-32", device="auto")
    scheduler = diffusion.load_scheduler("ddpm-cifar10-32", kind="ddim")    # the checkpoint's noise schedule
    images = diffusion.sample(unet, scheduler, n=16, steps=50, seed=0)     # (16, 3, 32, 32) in [-1, 1]

Reads diffusers' layout (config.json + diffusion_pytorch_model.safetensors or .bin, optional
scheduler_config.json; old and new attention key names) and genzoo's own (config.json + model.safetensors, written
by `unet.save_pretrained(dir)`).
"""
from __future__ import annotations

from .loading import from_pretrained, load_scheduler, scheduler_config
from .sampling import denoising_strip, sample
from .schedulers import DDIMScheduler, DDPMScheduler, StepOutput, make_scheduler
from .unet import UNet, UNetConfig

__all__ = ["from_pretrained", "load_scheduler", "scheduler_config", "sample", "denoising_strip", "UNet",
           "UNetConfig", "DDPMScheduler", "DDIMScheduler", "StepOutput", "make_scheduler"]
