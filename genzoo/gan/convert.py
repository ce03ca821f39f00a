"""Published GAN checkpoint layouts -> genzoo state dicts, plus the config each one implies.

Pure functions on dicts of tensors: no model is built here. Each returns (state_dict, part, config_dict) where
part is "generator" or "discriminator" (read from the layout) and config_dict feeds models.config_from_dict.

Formats:
* genzoo: model.safetensors with "generator." / "discriminator." prefixes + config.json (see loading.save_gan).
* pytorch/examples dcgan/main.py: `torch.save(netG.state_dict(), "netG_epoch_N.pth")`, keys `main.<i>.<param>`
  of one nn.Sequential: G = [ConvT, BN, ReLU] * 4 + [ConvT, Tanh], D = [Conv, LReLU] + [Conv, BN, LReLU] * 3 +
  [Conv, Sigmoid]. genzoo's DCGAN uses the same names, so nothing is renamed: the keys are only checked. nz, ngf,
  nc (and ndf) are read from the weight shapes; G is told from D by its BatchNorm at main.1.
* yunjey/pytorch-tutorial generative_adversarial_network/main.py: `torch.save(G.state_dict(), "G.ckpt")` of a bare
  nn.Sequential with Linear layers at 0, 2, 4 (G: latent -> hidden -> hidden -> 784, Tanh; D: 784 -> hidden ->
  hidden -> 1, Sigmoid). Any Sequential of Linear layers with activations between them converts the same way
  (the book's ch. 3 curve GANs too): the k-th Linear becomes layers.<k>. G is told from D by D's single output.
Both accept the wrappers' "module." / "_orig_mod." prefixes (checkpoint.strip_common_prefix).
"""
from __future__ import annotations

import math
import re

import torch

from ..checkpoint import rename_keys, strip_common_prefix
from ..errors import CheckpointError, ConfigError

# Every key of a layout matches its pattern; anything else is refused by name before a model is built.
DCGAN_KEY = r"^main\.\d+\.(weight|bias|running_mean|running_var|num_batches_tracked)$"
MLP_KEY = r"^\d+\.(weight|bias)$"

# Checkpoints that bundle both networks in one dict, e.g. {"netG": ..., "netD": ...}.
BUNDLE_KEYS = {"generator": ("generator", "netG", "G", "gen", "model_G"),
               "discriminator": ("discriminator", "netD", "D", "disc", "model_D")}


def unbundle(obj, part: str, path) -> dict:
    """A dict of tensors as is; {"netG": sd, "netD": sd}-style bundles -> the requested part's dict."""
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    if isinstance(obj, dict):
        for key in BUNDLE_KEYS[part]:
            if isinstance(obj.get(key), dict):
                return obj[key]
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                return unbundle(obj[key], part, path)
        shown = list(obj)[:10]
    else:
        shown = type(obj).__name__
    raise CheckpointError(f"{path} holds no {part} state dict (top-level keys: {shown}); expected a state dict, "
                          f"or a dict with one of {list(BUNDLE_KEYS[part])}")


def detect_format(state_dict: dict) -> str | None:
    keys = list(strip_common_prefix(state_dict))
    if keys and all(k.startswith(("generator.", "discriminator.")) for k in keys):
        return "genzoo"
    if keys and all(re.match(r"^main\.\d+\.", k) for k in keys):
        return "pytorch-examples-dcgan"
    if keys and all(re.match(r"^\d+\.(weight|bias)$", k) for k in keys):
        return "sequential-mlp"
    return None


def _check_layout(state_dict: dict, key_pattern: str, path, fmt) -> None:
    unmatched = [k for k in state_dict if not re.match(key_pattern, k)]
    if unmatched:
        raise CheckpointError(f"{path}: keys that do not belong to the {fmt} layout: {unmatched[:10]}")


def _indexed_weights(state_dict: dict) -> list[tuple[int, torch.Tensor]]:
    """(index, tensor) of every `main.<index>.weight` key, by index."""
    found = []
    for key, value in state_dict.items():
        m = re.match(r"^main\.(\d+)\.weight$", key)
        if m:
            found.append((int(m.group(1)), value))
    return sorted(found, key=lambda t: t[0])


# ---------------------------------------------------------------------------------------------------- DCGAN


def convert_pytorch_examples_dcgan(state_dict: dict, path="<checkpoint>") -> tuple[dict, str, dict]:
    state_dict = dict(strip_common_prefix(state_dict))  # a copy: num_batches_tracked may be added below
    _check_layout(state_dict, DCGAN_KEY, path, "pytorch/examples DCGAN")
    convs = [(i, w) for i, w in _indexed_weights(state_dict) if w.dim() == 4]
    if len(convs) < 2:
        raise CheckpointError(f"{path}: a DCGAN needs at least two conv layers under main.*, found {len(convs)}")
    part = "generator" if "main.1.running_mean" in state_dict else "discriminator"
    first, last = convs[0][1], convs[-1][1]
    if part == "generator":
        # ConvTranspose2d weights are (in, out, k, k): main.0 is (nz, ngf * 2^(L-2)), the last is (ngf, nc).
        latent_dim, ngf, channels = first.shape[0], last.shape[0], last.shape[1]
        ndf = ngf
    else:
        # Conv2d weights are (out, in, k, k): main.0 is (ndf, nc), the last is (1, ndf * 2^(L-2)).
        ndf, channels = first.shape[0], first.shape[1]
        ngf, latent_dim = ndf, 100
        if last.shape[0] != 1:
            raise CheckpointError(f"{path}: the last conv of a DCGAN discriminator has 1 output, not {last.shape[0]}")
    kernels = [w.shape[-1] for _, w in convs]
    ladder_kernel_3 = kernels[1] == 3 if part == "generator" else kernels[-2] == 3
    image_size = 28 if (len(convs) == 4 and ladder_kernel_3) else 4 * 2 ** (len(convs) - 1)
    # Checkpoints from torch < 0.4.1 lack BatchNorm's step counter: add it (it is unused at inference).
    for key in [k for k in state_dict if k.endswith(".running_mean")]:
        state_dict.setdefault(key.replace("running_mean", "num_batches_tracked"), torch.tensor(0, dtype=torch.long))
    d_norm = "batch" if part == "generator" or any(k.endswith("running_mean") for k in state_dict) else "none"
    config = dict(arch="dcgan", latent_dim=int(latent_dim), image_size=image_size, channels=int(channels),
                  ngf=int(ngf), ndf=int(ndf), d_norm=d_norm)
    return state_dict, part, config


# ---------------------------------------------------------------------------------------------------- MLP


def infer_data_shape(size: int) -> tuple:
    """784 -> (1, 28, 28); 3*s*s -> (3, s, s); other squares -> (1, s, s); anything else stays a vector."""
    side = math.isqrt(size)
    if size >= 64 and side * side == size:
        return (1, side, side)
    side3 = math.isqrt(size // 3)
    if size >= 192 and size % 3 == 0 and 3 * side3 * side3 == size:
        return (3, side3, side3)
    return (size,)


def convert_sequential_mlp(state_dict: dict, path="<checkpoint>") -> tuple[dict, str, dict]:
    state_dict = strip_common_prefix(state_dict)
    _check_layout(state_dict, MLP_KEY, path, "nn.Sequential MLP")
    # Activations and dropout have no parameters, so the Linear indices have gaps (0, 2, 4): the rename table
    # numbers them 0, 1, 2 ("4." -> "layers.2.").
    indices = sorted({int(k.split(".")[0]) for k in state_dict})
    out = rename_keys(state_dict, [(rf"^{index}\.", f"layers.{rank}.") for rank, index in enumerate(indices)])
    weights = [out.get(f"layers.{r}.weight") for r in range(len(indices))]
    if any(w is None or w.dim() != 2 for w in weights):
        raise CheckpointError(f"{path}: every layer of a Sequential MLP GAN must be nn.Linear (a 2-D weight)")
    for a, b in zip(weights[:-1], weights[1:]):
        if a.shape[0] != b.shape[1]:
            raise CheckpointError(f"{path}: Linear layers do not chain: {tuple(a.shape)} then {tuple(b.shape)}")
    hidden = tuple(int(w.shape[0]) for w in weights[:-1])
    if weights[-1].shape[0] == 1:
        part = "discriminator"
        data_size = int(weights[0].shape[1])
        config = dict(latent_dim=64, d_hidden=hidden, g_hidden=hidden)
    else:
        part = "generator"
        data_size = int(weights[-1].shape[0])
        config = dict(latent_dim=int(weights[0].shape[1]), g_hidden=hidden, d_hidden=hidden)
    return out, part, dict(arch="mlp", data_shape=infer_data_shape(data_size), **config)


# ---------------------------------------------------------------------------------------------------- genzoo


def convert_genzoo(state_dict: dict, part: str, path="<checkpoint>") -> dict:
    prefix = f"{part}."
    out = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if not out:
        held = sorted({k.split(".")[0] for k in state_dict})
        raise CheckpointError(f"{path} holds no {part} (it holds: {', '.join(held)})")
    return out


CONVERTERS = {"pytorch-examples-dcgan": convert_pytorch_examples_dcgan, "sequential-mlp": convert_sequential_mlp}


# -- the entry point genzoo.loader calls ------------------------------------------------------------------------
def convert(obj, config: dict, path="<checkpoint>", part: str = "generator", overrides: dict | None = None):
    """One part of any GAN checkpoint genzoo reads + its config.json -> (genzoo state dict, GAN config).

    `overrides` replaces inferred config fields that foreign weights cannot tell (e.g. a curve GAN's
    {"data_shape": [2], "output_activation": "none"})."""
    from .models import config_from_dict

    if config.get("genzoo_family") == "gan" and detect_format(unbundle(obj, part, path)) == "genzoo":
        state_dict, config_dict = convert_genzoo(unbundle(obj, part, path), part, path), config
    else:
        state_dict, found_part, config_dict = _convert_foreign(obj, part, path)
        if found_part != part:
            other = "gan.discriminator_from_pretrained" if found_part == "discriminator" else "gan.from_pretrained"
            raise CheckpointError(f"{path} holds a {found_part}, not a {part}: load it with {other}")
    try:
        return state_dict, config_from_dict({**config_dict, **(overrides or {})}, where=str(path))
    except ConfigError as e:
        raise CheckpointError(f"{path}: its config does not describe a GAN: {e}") from e


def _convert_foreign(obj, part, path):
    state_dict = from_bare_sequential(unbundle(obj, part, path))
    fmt = detect_format(state_dict)
    if fmt == "genzoo":  # a genzoo model.safetensors that lost its config.json
        raise CheckpointError(f"{path} is in genzoo's GAN format but has no config.json beside it")
    if fmt is None:
        keys = list(state_dict)[:8]
        raise CheckpointError(
            f"{path} is not a GAN checkpoint genzoo knows (keys start: {keys}). Known layouts: genzoo's own folder, "
            f"pytorch/examples dcgan (main.<i>.*), an nn.Sequential of Linear layers (<i>.weight). If it belongs to "
            f"another family, load it with genzoo.<family>.from_pretrained.")
    return CONVERTERS[fmt](state_dict, path)
# ---------------------------------------------------------------------------------------------------- exports / book


def to_pytorch_examples(state_dict: dict, config: dict, part: str) -> dict:
    """genzoo DCGAN -> pytorch/examples dcgan/main.py's netG / netD state dict (the same `main.N.*` keys).

    `config` is models.config_to_dict(model.config). Raises ConfigError for what main.py cannot build."""
    from ..errors import ConfigError

    reasons = []
    if config.get("model") != "dcgan":
        reasons.append("an MLP GAN (main.py builds convolutional DCGANs)")
    else:
        if config.get("num_classes"):
            reasons.append("a conditional GAN (main.py's networks take no labels)")
        if config.get("image_size") != 64:
            reasons.append(f"{config.get('image_size')}-pixel images (main.py's networks are built for 64)")
        if part == "discriminator" and config.get("d_norm") != "batch":
            reasons.append(f"a discriminator with d_norm={config.get('d_norm')!r} (main.py's uses BatchNorm)")
    if reasons:
        raise ConfigError(f"this {part} cannot be exported as 'pytorch-examples': it is {'; '.join(reasons)}. "
                              f"Export it as 'genzoo'")
    return {k: v.contiguous() for k, v in state_dict.items()}


def from_bare_sequential(state_dict: dict) -> dict:
    """The book's ch. 4 DCGANs are saved as a bare nn.Sequential ("0.weight", "1.running_mean", ...): pytorch/
    examples' layout without its `main.` prefix. Such a state dict (convolutional: some 4-D weight) gets the prefix
    back; anything else is returned unchanged."""
    stripped = strip_common_prefix(state_dict)
    if stripped and all(re.match(r"^\d+\.", k) for k in stripped) and \
            any(k.endswith(".weight") and v.dim() == 4 for k, v in stripped.items()):
        return {f"main.{k}": v for k, v in stripped.items()}
    return state_dict
