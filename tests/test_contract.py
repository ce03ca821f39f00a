"""The contract every family keeps: one model base, one loader, the same words everywhere.

For each family, a tiny model is saved with save_pretrained and loaded back three ways (the family's
from_pretrained, the class's from_pretrained, genzoo.load); the outputs must be bit-identical, and num_parameters,
device, dtype, seeded sampling and the refusal of another family's checkpoint must behave the same.
"""
import pytest
import torch

import genzoo
from genzoo import cyclegan, diffusion, gan, gpt2, vae
from genzoo.errors import CheckpointError, ConfigError
from genzoo.pretrained import Config, PretrainedModel


def _gpt():
    model = gpt2.GPT(gpt2.GPTConfig(vocab_size=40, n_positions=16, n_embd=16, n_layer=2, n_head=2,
                                    tokenizer={"type": "char", "chars": "".join(chr(65 + i) for i in range(40))}))
    ids = torch.tensor([[1, 2, 3, 4]])
    return model, (lambda m: m(ids)), (lambda m, seed: m.generate(ids, max_new_tokens=5, seed=seed))


def _unet():
    model = diffusion.UNet(diffusion.UNetConfig(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16),
                                                down_attention=(False, True), up_attention=(False, True),
                                                layers_per_block=1, norm_num_groups=4))
    model = model.to(memory_format=torch.channels_last)  # as from_pretrained stores it: same convolution kernels
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    scheduler = diffusion.DDPMScheduler(num_train_timesteps=20)
    return model, (lambda m: m(x, 3)), (lambda m, seed: diffusion.sample(m, scheduler, n=2, steps=4, seed=seed,
                                                                          progress=False))


def _vae():
    model = vae.ConvVAE(vae.ConvVAEConfig(in_channels=1, image_size=8, channels=(4, 8), latent_dim=3))
    z = torch.randn(2, 3, generator=torch.Generator().manual_seed(0))
    return model, (lambda m: m.decode(z)), (lambda m, seed: m.sample(2, seed=seed))


def _gan():
    model = gan.DCGANGenerator(gan.DCGANConfig(latent_dim=4, image_size=16, channels=1, ngf=4, ndf=4))
    z = torch.randn(2, 4, generator=torch.Generator().manual_seed(0))
    return model, (lambda m: m(z)), (lambda m, seed: m.sample(2, seed=seed))


def _cyclegan():
    model = cyclegan.ResnetGenerator(cyclegan.GeneratorConfig(input_nc=1, output_nc=1, ngf=4, n_blocks=1))
    x = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    return model, (lambda m: m(x)), (lambda m, seed: cyclegan.translate_tensor(m, x))


FAMILIES = {"gpt2": (gpt2, _gpt), "diffusion": (diffusion, _unet), "vae": (vae, _vae), "gan": (gan, _gan),
            "cyclegan": (cyclegan, _cyclegan)}


@pytest.fixture(params=list(FAMILIES))
def family(request):
    torch.manual_seed(0)
    module, make = FAMILIES[request.param]
    model, forward, sample = make()
    return request.param, module, model.eval(), forward, sample


@torch.no_grad()
def test_save_and_load_round_trip_is_bit_identical(family, tmp_path):
    name, module, model, forward, _ = family
    assert isinstance(model, PretrainedModel) and isinstance(model.config, Config)
    model.save_pretrained(tmp_path / name)
    reference = forward(model)
    for loaded in (module.from_pretrained(tmp_path / name, device="cpu"),
                   type(model).from_pretrained(tmp_path / name, device="cpu"),
                   genzoo.load(tmp_path / name, device="cpu")):
        assert type(loaded) is type(model)
        assert loaded.config == model.config
        assert torch.equal(forward(loaded), reference)
        assert not loaded.training


def test_config_round_trips_through_its_dict(family):
    _, _, model, _, _ = family
    config = model.config
    as_dict = config.to_dict()
    assert as_dict["model"] == config.model_type
    assert type(config).from_dict(as_dict) == config
    with pytest.raises(ConfigError, match="unknown .* keys \\['not_a_field'\\]"):
        type(config).from_dict({**as_dict, "not_a_field": 1})


def test_num_parameters_device_and_dtype(family):
    _, _, model, _, _ = family
    assert model.num_parameters() == sum(p.numel() for p in model.parameters()) > 0
    for p in list(model.parameters())[:1]:
        p.requires_grad_(False)
    assert model.num_parameters(trainable_only=True) < model.num_parameters()
    assert model.device == torch.device("cpu") and model.dtype == torch.float32
    assert model.to(torch.bfloat16).dtype == torch.bfloat16


@torch.no_grad()
def test_seeded_sampling_is_deterministic(family):
    name, _, model, _, sample = family
    first, again = sample(model, 0), sample(model, 0)
    assert torch.equal(first, again)
    if name != "cyclegan":  # a translation has no randomness
        assert not torch.equal(first, sample(model, 1))


def test_another_familys_checkpoint_is_refused(family, tmp_path):
    name, module, model, _, _ = family
    model.save_pretrained(tmp_path / name)
    for other, (other_module, _) in FAMILIES.items():
        if other != name:
            with pytest.raises(CheckpointError, match=f"genzoo '{name}' checkpoint, not '{other}'"):
                other_module.from_pretrained(tmp_path / name, device="cpu")


def test_class_from_pretrained_checks_the_class(tmp_path):
    torch.manual_seed(0)
    generator, _, _ = _gan()
    generator.save_pretrained(tmp_path / "g")
    with pytest.raises(CheckpointError, match="holds no discriminator"):
        gan.DCGANDiscriminator.from_pretrained(tmp_path / "g", device="cpu")
    unet, _, _ = _unet()
    unet.save_pretrained(tmp_path / "u")
    with pytest.raises(CheckpointError, match="genzoo 'diffusion' checkpoint, not 'vae'"):
        vae.ConvVAE.from_pretrained(tmp_path / "u", device="cpu")


@pytest.mark.parametrize("bad, match", [
    ({"n_embd": "64"}, r"GPTConfig.n_embd must be int, got '64' \(str\)"),
    ({"n_layer": 10 ** 9}, r"GPTConfig.n_layer=1000000000 is out of range \[1, 1024\]"),
    ({"dropout": float("nan")}, "out of range"),
    ({"bias": 1}, "GPTConfig.bias must be bool"),
    ({"tokenizer": []}, "GPTConfig.tokenizer must be dict"),
])
def test_config_values_are_typed_and_bounded(bad, match):
    with pytest.raises(ConfigError, match=match):
        gpt2.GPTConfig.from_dict({"n_embd": 64, "n_head": 2, **bad})


def test_the_readme_swap_point_examples_run():
    """The README's "Swap points" code block, run as written (with a tiny model for `model` and `ids`)."""
    from dataclasses import dataclass
    from pathlib import Path

    from genzoo.nn import set_attention_backend

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = readme[readme.index("## Swap points"):]
    start = block.index("```python") + len("```python")
    code = block[start:block.index("```", start)]
    model = gpt2.GPT(gpt2.GPTConfig(vocab_size=10, n_positions=8, n_embd=8, n_layer=1, n_head=2)).eval()
    scope = {"torch": torch, "dataclass": dataclass, "genzoo": genzoo, "gan": gan, "cyclegan": cyclegan,
             "model": model, "ids": torch.tensor([[1, 2, 3]])}
    try:
        exec(code, scope)
    finally:
        set_attention_backend("sdpa")
    assert scope["G"].sample(2, seed=0).shape == (2, 1, 28, 28)


def test_the_families_share_their_public_words():
    """The same name means the same thing everywhere: what a family offers, it offers under the common word."""
    from genzoo import cyclegan, diffusion, gan, gpt2, vae

    for module in (gpt2, gan, cyclegan, vae, diffusion):
        assert callable(module.from_pretrained), module.__name__
    for module in (gan, cyclegan):  # the two families with a discriminator
        assert callable(module.discriminator_from_pretrained), module.__name__
        assert callable(module.register_generator) and callable(module.register_discriminator), module.__name__
