"""Denoising diffusion with a U-Net written from scratch, loading the google/ddpm-* checkpoints, and schedulers
(DDPM, DDIM, DPM-Solver++ 2M, Euler ancestral, or any diffusers scheduler object).

    from genzoo import diffusion
    unet = diffusion.from_pretrained("ddpm-cifar10-32", device="auto")
    scheduler = diffusion.load_scheduler("ddpm-cifar10-32", kind="dpm++2m")  # the checkpoint's noise schedule
    images = diffusion.sample(unet, scheduler, n=16, steps=20, seed=0)     # (16, 3, 32, 32) in [-1, 1]

Reads diffusers' layout (config.json + diffusion_pytorch_model.safetensors or .bin, optional
scheduler_config.json; old and new attention key names) and genzoo's own (config.json + model.safetensors, written
by `unet.save_pretrained(dir)`).
"""
from __future__ import annotations

from .dpm_solver import DPMSolverMultistepScheduler
from .euler import EulerAncestralDiscreteScheduler
from .loading import from_pretrained, load_scheduler, scheduler_config
from .sampling import denoising_strip, sample, sample_generators
from .schedulers import (BaseScheduler, DDIMScheduler, DDPMScheduler, Scheduler, StepOutput, make_scheduler,
                         register_scheduler, scheduler_kinds)
from .unet import UNet, UNetConfig

__all__ = ["from_pretrained", "load_scheduler", "scheduler_config", "sample", "sample_generators", "denoising_strip",
           "UNet", "UNetConfig", "Scheduler", "BaseScheduler", "DDPMScheduler", "DDIMScheduler",
           "DPMSolverMultistepScheduler", "EulerAncestralDiscreteScheduler", "StepOutput", "make_scheduler",
           "register_scheduler", "scheduler_kinds"]
