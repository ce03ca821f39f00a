"""Translating images with a CycleGAN generator: tensors, PIL images, files and folders.

Size policy: by default an image keeps its own size. The resnet generator needs height and width to be multiples
of 4 (the U-Net: of 2**num_downs), so the image is padded by reflection up to the next multiple (at least 8 px,
symmetric, replicate padding where the image is too small to reflect) and the output is cropped back: any size
works and the output has the input's size. `size=N` first resizes the image (bicubic) so that its shorter side is
N pixels, keeping the aspect ratio; junyanz's models were trained on 256 px crops, so `size=256` gives results
closest to the paper's and is much faster on large photos. Grayscale or RGBA inputs are converted to the model's
channels (RGB for the published models).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..images import from_pil, to_pil
from .data import IMAGE_EXTENSIONS


def _model_config(model):
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "multiple"):
        raise ConfigError(f"expected a genzoo cyclegan generator (from cyclegan.from_pretrained), got {type(model).__name__}")
    return config


def pad_to_multiple(x: torch.Tensor, multiple: int, minimum: int = 8) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Pad (N, C, H, W) symmetrically so H and W are multiples of `multiple` (and >= minimum); returns the padding."""
    h, w = x.shape[-2:]
    target_h = max(-(-h // multiple) * multiple, -(-minimum // multiple) * multiple)
    target_w = max(-(-w // multiple) * multiple, -(-minimum // multiple) * multiple)
    top, left = (target_h - h) // 2, (target_w - w) // 2
    pad = (left, target_w - w - left, top, target_h - h - top)
    if not any(pad):
        return x, pad
    mode = "reflect" if max(pad[:2]) < w and max(pad[2:]) < h else "replicate"
    return F.pad(x, pad, mode=mode), pad


@torch.inference_mode()
def translate_tensor(model, images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) or (C, H, W) in [-1, 1], any H and W -> the translation, same shape and device as the input."""
    config = _model_config(model)
    if images.dim() == 3:
        return translate_tensor(model, images.unsqueeze(0))[0]
    if images.dim() != 4:
        raise ConfigError(f"expected images shaped (N, C, H, W), got {tuple(images.shape)}")
    if images.shape[1] != config.input_nc:
        raise ConfigError(f"this generator takes {config.input_nc}-channel images, got {images.shape[1]} channels "
                          f"(shape {tuple(images.shape)})")
    param = next(model.parameters())
    x, (left, right, top, bottom) = pad_to_multiple(images.to(device=param.device, dtype=param.dtype), config.multiple)
    y = model(x)
    y = y[..., top:y.shape[-2] - bottom, left:y.shape[-1] - right]
    return y.to(device=images.device, dtype=images.dtype)


def _resize_shorter(image, size: int):
    from PIL import Image

    if size < 8:
        raise ConfigError(f"size must be at least 8 pixels, not {size}")
    w, h = image.size
    scale = size / min(w, h)
    return image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BICUBIC)


def translate(model, image_or_path, size: int | None = None):
    """A PIL image or an image file -> the translated PIL image (see the module docstring for the size policy)."""
    from PIL import Image, ImageOps

    config = _model_config(model)
    if isinstance(image_or_path, (str, os.PathLike)):
        from ..images import open_image

        with open_image(image_or_path) as image:   # refuses decompression bombs and damaged files
            image.load()
    elif isinstance(image_or_path, Image.Image):
        image = image_or_path
    else:
        raise ConfigError(f"translate takes a PIL image or a path, not {type(image_or_path).__name__} "
                          f"(use translate_tensor for tensors)")
    image = ImageOps.exif_transpose(image)  # phone photos are often stored sideways with a rotation tag
    if size is not None:
        image = _resize_shorter(image, size)
    x = from_pil(image, channels=config.input_nc)
    return to_pil(translate_tensor(model, x))


def save_atomic(image, path: Path) -> None:
    """Write to a temporary file and rename, so a failure never leaves a half-written or clobbered file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix, prefix=".genzoo-")
    os.close(fd)
    try:
        options = {"quality": 95} if path.suffix.lower() in (".jpg", ".jpeg") else {}
        image.save(tmp, format=_pil_format(path), **options)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _pil_format(path: Path) -> str:
    from PIL import Image

    Image.init()
    fmt = Image.EXTENSION.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(f"cannot tell the image format of {path} from its extension; use .png or .jpg")
    return fmt


def plan_outputs(inputs: list[Path], in_root: Path | None, out: Path, overwrite: bool) -> list[Path]:
    """Output path per input; refuses (before anything is written) to write over an input, or over an existing
    file unless `overwrite`."""
    if in_root is None:
        outputs = [out]
    else:
        outputs = [out / p.relative_to(in_root) for p in inputs]
    input_set = {p.resolve() for p in inputs}
    clobbered = [str(o) for o in outputs if o.resolve() in input_set]
    if clobbered:
        raise ConfigError(f"refusing to write over input images: {', '.join(clobbered[:5])}; choose another output")
    existing = [str(o) for o in outputs if o.exists()]
    if existing and not overwrite:
        raise ConfigError(f"{len(existing)} output file(s) exist already (e.g. {existing[0]}); pass --overwrite "
                          f"(overwrite=True) to replace them")
    for o in outputs:
        _pil_format(o)
    return outputs


def translate_files(model, source, out, size: int | None = None, overwrite: bool = False, progress: bool = True) -> list[Path]:
    """One image file -> `out` (a file, or a folder to put it in); or a folder of images (recursively) -> the same
    tree under the folder `out`, with a progress bar. Inputs are never overwritten."""
    from tqdm.auto import tqdm

    from .data import list_images

    source, out = Path(source).expanduser(), Path(out).expanduser()
    if source.is_dir():
        inputs = list_images(source)
        if out.exists() and not out.is_dir():
            raise ConfigError(f"{source} is a folder, so the output must be a folder too, but {out} is a file")
        outputs = plan_outputs(inputs, source, out, overwrite)
    elif source.is_file():
        if source.suffix.lower() not in IMAGE_EXTENSIONS:
            raise ConfigError(f"{source} does not have an image extension ({', '.join(IMAGE_EXTENSIONS)})")
        inputs = [source]
        outputs = plan_outputs(inputs, None, out / source.name if out.is_dir() else out, overwrite)
    else:
        raise ConfigError(f"no image file or folder at {source}")
    for src, dst in tqdm(list(zip(inputs, outputs)), desc="translate", unit="img", disable=not progress or len(inputs) < 2):
        save_atomic(translate(model, src, size=size), dst)
    return outputs
