"""junyanz/pytorch-CycleGAN-and-pix2pix checkpoints -> genzoo state dicts. Pure functions, no model construction.

junyanz keeps each network in one nn.Sequential called `model`, so the keys are positions: `model.1.weight` is the
stem convolution, `model.10.conv_block.5.weight` the second convolution of the first residual block, and so on.
The rename tables below are built from the config (the positions shift with n_blocks and dropout); the config
itself is inferred from the tensor shapes. Files in the wild differ in three harmless ways, all handled here:
  * `module.` prefixes (a DataParallel network saved without .module), or torch.compile's `_orig_mod.`,
  * `running_mean` / `running_var` / `num_batches_tracked` under InstanceNorm layers, which torch <= 0.4 wrote
    although instance norm never uses them (junyanz's __patch_instance_norm_state_dict drops them too),
  * BatchNorm layers without `num_batches_tracked` (torch < 0.4.1 did not have it).
No tensor needs a transpose: every layer is the same torch layer on both sides.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

from ..checkpoint import strip_common_prefix, unwrap_state_dict
from ..errors import CheckpointError, ConfigError
from .model import DiscriminatorConfig, GeneratorConfig

NORM_STATS = ("running_mean", "running_var", "num_batches_tracked")
PARAMS = ("weight", "bias")


# --- rename tables: junyanz module prefix -> (genzoo module prefix, what the module is) ---------------------------

def resnet_table(config: GeneratorConfig) -> list[tuple[str, str, str]]:
    n = config.n_blocks
    second = 6 if config.use_dropout else 5  # Dropout takes a position inside the block
    table = [("model.1", "stem.conv", "conv"), ("model.2", "stem.norm", "norm"),
             ("model.4", "down.0.conv", "conv"), ("model.5", "down.0.norm", "norm"),
             ("model.7", "down.1.conv", "conv"), ("model.8", "down.1.norm", "norm")]
    for i in range(n):
        block = f"model.{10 + i}.conv_block"
        table += [(f"{block}.1", f"blocks.{i}.conv1", "conv"), (f"{block}.2", f"blocks.{i}.norm1", "norm"),
                  (f"{block}.{second}", f"blocks.{i}.conv2", "conv"), (f"{block}.{second + 1}", f"blocks.{i}.norm2", "norm")]
    table += [(f"model.{10 + n}", "up.0.conv", "conv"), (f"model.{11 + n}", "up.0.norm", "norm"),
              (f"model.{13 + n}", "up.1.conv", "conv"), (f"model.{14 + n}", "up.1.norm", "norm"),
              (f"model.{17 + n}", "head", "conv")]
    return table


def unet_prefixes(num_downs: int) -> list[str]:
    """The nested Sequential of level i: model.model. / model.model.1.model. / model.model.1.model.3.model. ..."""
    prefixes = ["model.model."]
    for i in range(1, num_downs):
        prefixes.append(prefixes[-1] + ("1." if i == 1 else "3.") + "model.")
    return prefixes


def unet_table(config: GeneratorConfig) -> list[tuple[str, str, str]]:
    n = config.num_downs
    table = []
    for i, p in enumerate(unet_prefixes(n)):
        if i == 0:  # [downconv, submodule, relu, upconv, tanh]
            table += [(p + "0", "down.0", "conv"), (p + "3", "up.0", "conv")]
        elif i == n - 1:  # [lrelu, downconv, relu, upconv, upnorm]
            table += [(p + "1", f"down.{i}", "conv"), (p + "3", f"up.{i}", "conv"), (p + "4", f"up_norm.{i}", "norm")]
        else:  # [lrelu, downconv, downnorm, submodule, relu, upconv, upnorm, (dropout)]
            table += [(p + "1", f"down.{i}", "conv"), (p + "2", f"down_norm.{i}", "norm"),
                      (p + "5", f"up.{i}", "conv"), (p + "6", f"up_norm.{i}", "norm")]
    return table


def discriminator_table(config: DiscriminatorConfig) -> list[tuple[str, str, str]]:
    # [conv, lrelu] + [conv, norm, lrelu] * n_layers + [conv]
    table = [("model.0", "layers.0.conv", "conv")]
    for i in range(1, config.n_layers + 1):
        table += [(f"model.{3 * i - 1}", f"layers.{i}.conv", "conv"), (f"model.{3 * i}", f"layers.{i}.norm", "norm")]
    table.append((f"model.{3 * config.n_layers + 2}", f"layers.{config.n_layers + 1}.conv", "conv"))
    return table


# --- config inference from shapes ------------------------------------------------------------------------------

def clean_state_dict(state_dict: dict) -> dict:
    """Drop anything that is not a tensor, and the `module.` (DataParallel) or `_orig_mod.` (torch.compile) prefix."""
    return strip_common_prefix({k: v for k, v in state_dict.items() if isinstance(v, torch.Tensor)})


def _norm_kind(state_dict: dict, norm_prefix: str) -> str:
    return "batch" if f"{norm_prefix}.weight" in state_dict else "instance"


def infer_generator_config(state_dict: dict, path="<checkpoint>") -> GeneratorConfig:
    """GeneratorConfig of a junyanz generator state dict (after clean_state_dict), from its keys and shapes."""
    if "model.1.weight" in state_dict and state_dict["model.1.weight"].dim() == 4:
        stem = state_dict["model.1.weight"]
        blocks = {int(m.group(1)) for k in state_dict if (m := re.match(r"model\.(\d+)\.conv_block\.", k))}
        n_blocks = len(blocks)
        if blocks != set(range(10, 10 + n_blocks)):
            raise CheckpointError(f"{path}: residual blocks at positions {sorted(blocks)}, expected 10, 11, ... in a row")
        dropout = any(re.match(r"model\.\d+\.conv_block\.6\.weight", k) for k in state_dict) and \
            not any(re.match(r"model\.\d+\.conv_block\.5\.weight", k) for k in state_dict)
        head = state_dict.get(f"model.{17 + n_blocks}.weight")
        if head is None:
            raise CheckpointError(f"{path}: a resnet generator with {n_blocks} blocks should end in "
                                  f"model.{17 + n_blocks}.weight, which is missing")
        return GeneratorConfig(arch="resnet", input_nc=stem.shape[1], output_nc=head.shape[0], ngf=stem.shape[0],
                               n_blocks=n_blocks, norm=_norm_kind(state_dict, "model.2"), use_dropout=dropout)
    if "model.model.0.weight" in state_dict:
        first = state_dict["model.model.0.weight"]
        last = state_dict.get("model.model.3.weight")
        if last is None:
            raise CheckpointError(f"{path}: a unet generator should have model.model.3.weight (the last layer)")
        prefixes = unet_prefixes(64)
        num_downs = next(n for n in range(1, 64) if not any(k.startswith(prefixes[n]) for k in state_dict))
        norm = _norm_kind(state_dict, "model.model.1.model.2")
        return GeneratorConfig(arch="unet", input_nc=first.shape[1], output_nc=last.shape[1], ngf=first.shape[0],
                               num_downs=num_downs, norm=norm)
    raise CheckpointError(not_a_generator_message(state_dict, path))


def not_a_generator_message(state_dict: dict, path) -> str:
    sample = ", ".join(list(state_dict)[:6])
    return (f"{path} does not look like a CycleGAN generator: expected junyanz keys (model.1.weight for a resnet "
            f"generator, model.model.0.weight for a unet) or a genzoo cyclegan folder (config.json + "
            f"model.safetensors); its keys start with: {sample or '(no tensors)'}. Is it a checkpoint of another "
            f"model family, or a discriminator (latest_net_D_A.pth)?")


def infer_discriminator_config(state_dict: dict, path="<checkpoint>") -> DiscriminatorConfig:
    convs = sorted(int(m.group(1)) for k in state_dict if (m := re.fullmatch(r"model\.(\d+)\.weight", k))
                   and state_dict[k].dim() == 4)
    if not convs or convs[0] != 0:
        raise CheckpointError(f"{path} does not look like a junyanz NLayerDiscriminator (no model.0.weight)")
    n_layers = (convs[-1] - 2) // 3
    first = state_dict["model.0.weight"]
    return DiscriminatorConfig(input_nc=first.shape[1], ndf=first.shape[0], n_layers=n_layers,
                               norm=_norm_kind(state_dict, "model.3"))


# --- conversion ------------------------------------------------------------------------------------------------

def apply_table(state_dict: dict, table, norm: str, path="<checkpoint>") -> dict:
    """Rename by the table; drop the stale statistics of instance norms; report leftovers and gaps at once."""
    out, used, missing = {}, set(), []
    for old, new, what in table:
        names = PARAMS if what == "conv" else (PARAMS + NORM_STATS if norm == "batch" else ())
        for name in names:
            key = f"{old}.{name}"
            if key in state_dict:
                out[f"{new}.{name}"] = state_dict[key]
                used.add(key)
            elif what == "norm" and name == "num_batches_tracked":
                out[f"{new}.{name}"] = torch.tensor(0, dtype=torch.long)  # torch < 0.4.1 did not write it
            elif name == "bias" and norm == "batch":
                continue  # convs before a batch norm have no bias; reconcile() checks against the model
            else:
                missing.append(key)
        if what == "norm" and norm == "instance":
            used.update(f"{old}.{s}" for s in NORM_STATS if f"{old}.{s}" in state_dict)  # never used by instance norm
    unexpected = [k for k in state_dict if k not in used]
    if missing or unexpected:
        lines = [f"{path} does not fit the junyanz layout inferred from its shapes:"]
        if missing:
            lines.append(f"  missing keys: {', '.join(missing[:12])}" + (f" ... ({len(missing)} in all)" if len(missing) > 12 else ""))
        if unexpected:
            lines.append(f"  unexpected keys: {', '.join(unexpected[:12])}" + (f" ... ({len(unexpected)} in all)" if len(unexpected) > 12 else ""))
        lines.append("  Is the file truncated or edited, or from a fork with a different architecture?")
        raise CheckpointError("\n".join(lines))
    return out


def convert_junyanz_generator(state_dict: dict, path="<checkpoint>") -> tuple[GeneratorConfig, dict]:
    """A junyanz G (latest_net_G_A.pth, or a published NAME.pth) -> (config, genzoo state dict)."""
    state_dict = clean_state_dict(state_dict)
    config = infer_generator_config(state_dict, path)
    table = resnet_table(config) if config.arch == "resnet" else unet_table(config)
    return config, apply_table(state_dict, table, config.norm, path)


def convert_junyanz_discriminator(state_dict: dict, path="<checkpoint>") -> tuple[DiscriminatorConfig, dict]:
    """A junyanz NLayerDiscriminator (latest_net_D_A.pth) -> (config, genzoo state dict)."""
    state_dict = clean_state_dict(state_dict)
    config = infer_discriminator_config(state_dict, path)
    return config, apply_table(state_dict, discriminator_table(config), config.norm, path)


def to_junyanz(state_dict: dict, table) -> dict:
    """The inverse rename (genzoo -> junyanz keys), to hand a genzoo-trained network to junyanz's test.py."""
    inverse = [(new, old) for old, new, _ in table]
    out = {}
    for key, value in state_dict.items():
        for new, old in inverse:
            if key.startswith(new + "."):
                out[old + key[len(new):]] = value
                break
        else:
            raise CheckpointError(f"no junyanz name for {key!r}")
    return out


# -- the entry point genzoo.loader calls ------------------------------------------------------------------------
DIRECTIONS = {"AtoB": "G_A", "BtoA": "G_B"}
RUN_FILES = {"AtoB": ("latest_net_G_A.pth", "latest_net_G.pth"), "BtoA": ("latest_net_G_B.pth",)}


def convert(obj, config: dict, path="<checkpoint>", direction: str = "AtoB") -> tuple[dict, GeneratorConfig]:
    """The generator for `direction` of any CycleGAN checkpoint genzoo reads -> (state dict, GeneratorConfig).

    A genzoo folder holds one network or a whole training run (both generators); a junyanz file holds one
    generator: its run's latest_net_G_B.pth is the B -> A one, any other file (NAME.pth) a single A -> B mapping.
    """
    path = Path(path)
    if config.get("genzoo_family") == "cyclegan" and path.suffix == ".safetensors":
        return _from_genzoo(unwrap_state_dict(obj, path), config, path, direction)
    if direction != "AtoB" and path.name not in RUN_FILES["BtoA"]:
        raise ConfigError(f"{path} holds a single generator (one direction): load it with direction='AtoB'; the "
                          f"reverse mapping is a separate checkpoint (zebra2horse for horse2zebra, latest_net_G_B.pth "
                          f"of a junyanz run, or pass the run folder with direction='BtoA')")
    raw = unwrap_state_dict(obj, path)
    if is_book_discriminator(raw):
        raise CheckpointError(f"{path} is the book's ch. 6 CycleGAN discriminator, not a generator: load it with "
                              f"genzoo.cyclegan.discriminator_from_pretrained")
    config, state_dict = convert_book_generator(raw, path) if is_book_generator(raw) else \
        convert_junyanz_generator(raw, path)
    return state_dict, config


def _from_genzoo(state_dict: dict, config: dict, path: Path, direction: str):
    model = config.get("model") or config.get("kind")   # genzoo 0.1 wrote "kind"
    if model == "generator":
        if direction != "AtoB":
            raise ConfigError(f"{path.parent} holds a single generator: load it with direction='AtoB'")
        fields = config.get("generator", {k: v for k, v in config.items() if not k.startswith("genzoo_")})
        return state_dict, GeneratorConfig.from_dict({k: v for k, v in fields.items() if k != "kind"}, str(path))
    if model == "cyclegan":
        name = DIRECTIONS[direction]
        prefix = name + "."
        return ({k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)},
                GeneratorConfig.from_dict(config[name], f"{path} ({name})"))
    raise CheckpointError(f"{path.parent / 'config.json'} holds a cyclegan {model!r}, not a generator (model must be "
                          f"'generator' or 'cyclegan'; a discriminator loads with cyclegan.discriminator_from_pretrained)")
# --- genzoo -> junyanz (a run folder his test.py reads) ----------------------------------------------------------

def junyanz_refusals(config) -> list[str]:
    """What junyanz's networks.py cannot build from this generator or discriminator config (his define_G / define_D
    have no option for it)."""
    reasons = []
    if isinstance(config, DiscriminatorConfig):
        if config.padding != "zero":
            reasons.append(f"padding={config.padding!r} (junyanz's PatchGAN zero-pads)")
        if config.output != "logits":
            reasons.append(f"output={config.output!r} (junyanz's PatchGAN returns logits; his losses add the sigmoid)")
        return reasons
    if getattr(config, "arch", "resnet") == "resnet":
        if config.padding_type != "reflect":
            reasons.append(f"padding_type={config.padding_type!r} (junyanz's residual blocks reflect-pad)")
        if config.down_padding != "zero":
            reasons.append(f"down_padding={config.down_padding!r} (junyanz's downsampling convs zero-pad)")
    return reasons


def generator_to_junyanz(state_dict: dict, config: GeneratorConfig) -> dict:
    table = resnet_table(config) if config.arch == "resnet" else unet_table(config)
    return {k: v.contiguous() for k, v in to_junyanz(state_dict, table).items()}


def discriminator_to_junyanz(state_dict: dict, config: DiscriminatorConfig) -> dict:
    return {k: v.contiguous() for k, v in to_junyanz(state_dict, discriminator_table(config)).items()}


# --- the book's ch. 6 CycleGAN generator (Learn Generative AI with PyTorch) --------------------------------------
# initial (7x7 conv), down_blocks.i.conv.0, res_blocks.i.block.{0,1}.conv.0, up_blocks.i.conv.0, last: junyanz's
# resnet generator with instance norm, except that its downsampling convs reflect-pad (down_padding="reflect").
BOOK_GENERATOR_RENAMES = [
    (r"^initial\.0\.", "stem.conv."),
    (r"^down_blocks\.(\d+)\.conv\.0\.", r"down.\1.conv."),
    (r"^res_blocks\.(\d+)\.block\.0\.conv\.0\.", r"blocks.\1.conv1."),
    (r"^res_blocks\.(\d+)\.block\.1\.conv\.0\.", r"blocks.\1.conv2."),
    (r"^up_blocks\.(\d+)\.conv\.0\.", r"up.\1.conv."),
    (r"^last\.", "head."),
]


def is_book_generator(state_dict: dict) -> bool:
    keys = clean_state_dict(state_dict)
    return "initial.0.weight" in keys and "last.weight" in keys and any(k.startswith("res_blocks.") for k in keys)


def convert_book_generator(state_dict: dict, path="<checkpoint>") -> tuple[GeneratorConfig, dict]:
    from ..checkpoint import rename_keys

    state_dict = clean_state_dict(state_dict)
    renamed = rename_keys(state_dict, BOOK_GENERATOR_RENAMES)
    stray = [k for k in renamed if not re.match(r"^(stem|down\.\d|blocks\.\d+|up\.\d|head)", k)]
    if stray:
        raise CheckpointError(f"{path}: keys outside the book's ch. 6 generator layout: {stray[:8]}")
    n_blocks = len({int(m.group(1)) for k in renamed if (m := re.match(r"^blocks\.(\d+)\.", k))})
    stem, head = renamed["stem.conv.weight"], renamed["head.weight"]
    config = GeneratorConfig(arch="resnet", input_nc=stem.shape[1], output_nc=head.shape[0], ngf=stem.shape[0],
                             n_blocks=n_blocks, norm="instance", down_padding="reflect")
    return config, renamed


# --- the book's ch. 6 CycleGAN discriminator ----------------------------------------------------------------------
# initial.0 (4x4 stride-2 conv, LeakyReLU), model.i.conv.0 (Block: 4x4 conv, instance norm, LeakyReLU; stride 2 but
# the last), model.N (4x4 conv to one channel), then a sigmoid; every conv reflect-pads. That is genzoo's PatchGAN
# with padding="reflect" and output="sigmoid" when its widths double from the first (features=[64, 128, 256, 512]).
BOOK_DISCRIMINATOR_RENAMES = [
    (r"^initial\.0\.", "layers.0.conv."),
    (r"^model\.(\d+)\.conv\.0\.", lambda m: f"layers.{int(m.group(1)) + 1}.conv."),
]


def is_book_discriminator(state_dict: dict) -> bool:
    keys = clean_state_dict(state_dict)
    return "initial.0.weight" in keys and "model.0.conv.0.weight" in keys and "last.weight" not in keys


def convert_book_discriminator(state_dict: dict, path="<checkpoint>") -> tuple[DiscriminatorConfig, dict]:
    """The book's ch. 6 Discriminator -> (DiscriminatorConfig, genzoo state dict); the sizes come from the shapes."""
    from ..checkpoint import rename_keys

    state_dict = clean_state_dict(state_dict)
    blocks = sorted({int(m.group(1)) for k in state_dict if (m := re.match(r"^model\.(\d+)\.conv\.0\.", k))})
    if blocks != list(range(len(blocks))) or f"model.{len(blocks)}.weight" not in state_dict:
        raise CheckpointError(f"{path}: the book's ch. 6 discriminator has blocks model.0 .. model.N-1 and a last conv "
                              f"model.N; found blocks {blocks} and no model.{len(blocks)}.weight")
    n_layers = len(blocks)
    last = f"model.{n_layers}."
    renamed = rename_keys({k: v for k, v in state_dict.items() if not k.startswith(last)}, BOOK_DISCRIMINATOR_RENAMES)
    renamed.update({f"layers.{n_layers + 1}.conv.{k[len(last):]}": v for k, v in state_dict.items()
                    if k.startswith(last)})
    stray = [k for k in renamed if not re.match(r"^layers\.\d+\.conv\.(weight|bias)$", k)]
    if stray:
        raise CheckpointError(f"{path}: keys outside the book's ch. 6 discriminator layout: {stray[:8]}")
    first = renamed["layers.0.conv.weight"]
    widths = [first.shape[0]] + [renamed[f"layers.{i + 1}.conv.weight"].shape[0] for i in range(n_layers)]
    config = DiscriminatorConfig(input_nc=first.shape[1], ndf=widths[0], n_layers=n_layers, norm="instance",
                                 padding="reflect", output="sigmoid")
    expected = [config.ndf * 2 ** i for i in range(n_layers + 1)]
    if widths != expected:
        raise CheckpointError(f"{path}: the book's discriminator has features {widths}; genzoo's PatchGAN reads only "
                              f"features that double from the first ({expected}): the book's strides (2, except for "
                              f"the last width) then match genzoo's")
    return config, renamed
