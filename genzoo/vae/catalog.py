"""The VAE catalog (imports only genzoo.registry: `genzoo list` stays fast)."""
from ..registry import ModelEntry, register

_SD_VAE = dict(
    block_out_channels=[128, 256, 512, 512], layers_per_block=2, latent_channels=4, scaling_factor=0.18215,
)

register(ModelEntry(
    name="sd-vae-ft-mse", family="vae", repo="stabilityai/sd-vae-ft-mse",
    description="Stable Diffusion's VAE (AutoencoderKL, f=8, 4 latent channels), decoder fine-tuned with MSE+LPIPS: "
                "smoother outputs",
    files=("config.json", "diffusion_pytorch_model.safetensors"), params=83_653_863, config=_SD_VAE,
))
register(ModelEntry(
    name="sd-vae-ft-ema", family="vae", repo="stabilityai/sd-vae-ft-ema",
    description="Stable Diffusion's VAE, decoder fine-tuned with L1+LPIPS (EMA weights): sharper outputs",
    files=("config.json", "diffusion_pytorch_model.safetensors"), params=83_653_863, config=_SD_VAE,
))
register(ModelEntry(
    name="mnist-vae", family="vae", embedded=True,
    description="Small convolutional VAE on MNIST digits (28x28, 1 channel), trained by genzoo "
                "(scripts/train_embedded_vae.py)",
    files=("config.json", "model.safetensors"), params=220_641,
))
