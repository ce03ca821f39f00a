"""The GAN catalog. There are no official hub weights for these layouts: the loaders serve users' own
checkpoints (pytorch/examples dcgan, yunjey's MLP GAN, genzoo folders); genzoo ships one embedded model."""
from ..registry import ModelEntry, register

register(ModelEntry(
    name="mnist-dcgan", family="gan", embedded=True,
    description="conditional DCGAN, 28x28 MNIST digits (labels 0-9), trained by scripts/train_embedded_gan.py",
    files=("model.safetensors", "config.json"), params=259_008,  # the generator (the file also holds D: 114,560)
))
