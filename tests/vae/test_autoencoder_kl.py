"""AutoencoderKL parity with diffusers on tiny random configs, saved every way the Hub stores them."""
import json
import re

import pytest
import torch
from safetensors.torch import save_file

from genzoo import vae
from genzoo.errors import CheckpointError, ConfigError, HubError

diffusers = pytest.importorskip("diffusers")
from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint  # noqa: E402

TOL = 1e-4
TINY = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 3,
            up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=(16, 32, 32), layers_per_block=1,
            latent_channels=4, norm_num_groups=8, sample_size=32, scaling_factor=0.3)


def _randomize(model):
    # Default init leaves GroupNorm at weight 1 / bias 0: perturb everything so a swapped or skipped tensor shows.
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return model


@pytest.fixture(scope="module")
def reference():
    torch.manual_seed(0)
    return _randomize(diffusers.AutoencoderKL(**TINY)).eval()


@pytest.fixture(scope="module")
def images():
    return torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(2)) * 2 - 1


def _assert_parity(model, reference, images):
    with torch.no_grad():
        posterior = reference.encode(images).latent_dist
        mean, logvar = model.encode(images)
        assert mean.shape == (2, 4, 8, 12)
        assert (mean - posterior.mean).abs().max() <= TOL
        assert (logvar - posterior.logvar).abs().max() <= TOL
        z = torch.randn(2, 4, 8, 12, generator=torch.Generator().manual_seed(3))
        assert (model.decode(z) - reference.decode(z).sample).abs().max() <= TOL


@pytest.mark.parametrize("safe", [True, False], ids=["safetensors", "bin"])
def test_diffusers_layout_parity(tmp_path, reference, images, safe):
    reference.save_pretrained(tmp_path, safe_serialization=safe)
    expected = "diffusion_pytorch_model." + ("safetensors" if safe else "bin")
    assert (tmp_path / expected).is_file()
    model = vae.from_pretrained(tmp_path, device="cpu")
    assert isinstance(model, vae.AutoencoderKL)
    assert model.config.block_out_channels == (16, 32, 32) and model.config.norm_num_groups == 8
    assert model.scaling_factor == pytest.approx(0.3)
    _assert_parity(model, reference, images)


def _old_attention_names(state_dict):
    renames = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
    out = {}
    for key, value in state_dict.items():
        for new, old in renames.items():
            key = re.sub(rf"(attentions\.\d+)\.{re.escape(new)}\.", rf"\1.{old}.", key)
        out[key] = value
    return out


def test_old_attention_key_names(tmp_path, reference, images):
    # sd-vae-ft-mse ships diffusers-0.4 names: mid_block.attentions.0.query/key/value/proj_attn.
    old = _old_attention_names(reference.state_dict())
    assert any(k.endswith("attentions.0.proj_attn.weight") for k in old)
    save_file({k: v.contiguous() for k, v in old.items()}, str(tmp_path / "diffusion_pytorch_model.safetensors"))
    config = dict(reference.config)
    config.pop("scaling_factor")  # sd-vae-ft-mse's config.json predates the field: the default 0.18215 applies
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL", **config}))
    # The reference library reads this variant too (it is a real one), and agrees with genzoo.
    reloaded = diffusers.AutoencoderKL.from_pretrained(tmp_path).eval()
    model = vae.from_pretrained(tmp_path, device="cpu")
    assert model.scaling_factor == pytest.approx(0.18215)
    _assert_parity(model, reloaded, images)
    _assert_parity(model, reference, images)


def test_checkpoint_mixing_both_attention_namings_is_refused(tmp_path, reference):
    # query.weight and to_q.weight both name the same tensor: refuse rather than keep whichever comes last.
    state_dict = reference.state_dict()
    mixed = {**state_dict, "encoder.mid_block.attentions.0.query.weight":
             state_dict["encoder.mid_block.attentions.0.to_q.weight"] + 1}
    save_file({k: v.contiguous() for k, v in mixed.items()}, str(tmp_path / "diffusion_pytorch_model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL", **dict(reference.config)}))
    with pytest.raises(CheckpointError, match="two spellings"):
        vae.from_pretrained(tmp_path, device="cpu")


def _ldm_layout(state_dict, levels):
    """diffusers -> original latent-diffusion names (checked below against diffusers' own LDM converter)."""
    table = [
        (r"^encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.", r"encoder.down.\1.block.\2."),
        (r"^encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.", r"encoder.down.\1.downsample.conv."),
        (r"mid_block\.resnets\.0\.", "mid.block_1."), (r"mid_block\.resnets\.1\.", "mid.block_2."),
        (r"mid_block\.attentions\.0\.group_norm\.", "mid.attn_1.norm."),
        (r"mid_block\.attentions\.0\.to_(q|k|v)\.", r"mid.attn_1.\1."),
        (r"mid_block\.attentions\.0\.to_out\.0\.", "mid.attn_1.proj_out."),
        (r"conv_norm_out\.", "norm_out."), (r"conv_shortcut\.", "nin_shortcut."),
    ]
    out = {}
    for key, value in state_dict.items():
        for pattern, replacement in table:
            key = re.sub(pattern, replacement, key)
        m = re.match(r"^decoder\.up_blocks\.(\d+)\.(resnets|upsamplers)\.(\d+)\.(.*)$", key)
        if m:
            level = levels - 1 - int(m.group(1))
            key = (f"decoder.up.{level}.block.{m.group(3)}.{m.group(4)}" if m.group(2) == "resnets"
                   else f"decoder.up.{level}.upsample.{m.group(4)}")
        if re.search(r"attn_1\.(q|k|v|proj_out)\.weight$", key):
            value = value[:, :, None, None]  # LDM stores them as 1x1 convs
        out["first_stage_model." + key] = value
    return out


def test_ldm_layout_without_config(tmp_path, images):
    # A bare SD checkpoint file: no config.json, so the architecture comes from the shapes (32 norm groups, the
    # only value Stable Diffusion uses, is assumed).
    torch.manual_seed(0)
    reference = _randomize(diffusers.AutoencoderKL(**{**TINY, "block_out_channels": (32, 32, 64),
                                                        "norm_num_groups": 32})).eval()
    ldm = _ldm_layout(reference.state_dict(), levels=3)
    ldm["first_stage_model.loss.logvar"] = torch.zeros(())  # training leftovers in the original checkpoints
    ldm["model.diffusion_model.input_blocks.0.0.weight"] = torch.zeros(1)  # the rest of a full SD checkpoint
    # diffusers' own LDM converter maps it back exactly: the test's layout is the real one.
    back = convert_ldm_vae_checkpoint(ldm, dict(reference.config))
    assert set(back) == set(reference.state_dict())
    assert all(torch.equal(back[k], v) for k, v in reference.state_dict().items())
    path = tmp_path / "sd-v1-5-pruned.safetensors"
    save_file({k: v.contiguous() for k, v in ldm.items()}, str(path))
    model = vae.from_pretrained(path, device="cpu")
    assert model.config.block_out_channels == (32, 32, 64) and model.config.layers_per_block == 1
    _assert_parity(model, reference, images)


def test_ldm_layout_parity(tmp_path, reference, images):
    ldm = _ldm_layout(reference.state_dict(), levels=3)
    torch.save({"state_dict": ldm}, tmp_path / "model.ckpt")
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL", **dict(reference.config)}))
    _assert_parity(vae.from_pretrained(tmp_path / "model.ckpt", device="cpu"), reference, images)


def test_tiled_decode_matches_diffusers(tmp_path, reference):
    reference.save_pretrained(tmp_path)
    model = vae.from_pretrained(tmp_path, device="cpu")
    z = torch.randn(1, 4, 20, 28, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        tiled = model.decode(z, tiled=True, tile_size=32)  # 8x8 latent tiles, 25% overlap, 20 tiles
        reference.enable_tiling()
        try:
            expected = reference.decode(z).sample
        finally:
            reference.disable_tiling()
    assert tiled.shape == (1, 3, 80, 112)
    assert (tiled - expected).abs().max() <= TOL


def test_tiled_decode_is_close_to_untiled(tmp_path, reference):
    reference.save_pretrained(tmp_path)
    model = vae.from_pretrained(tmp_path, device="cpu")
    g = torch.Generator().manual_seed(6)
    z, other = torch.randn(1, 4, 24, 24, generator=g), torch.randn(1, 4, 24, 24, generator=g)
    with torch.no_grad():
        untiled = model.decode(z)
        tiled = model.tiled_decode(z, tile_size=64)  # 16x16 latent tiles on a 24x24 latent: 4 tiles
        content = (model.decode(other) - untiled).abs().mean()
        whole = model.decode(z, tiled=True, tile_size=256)
    # Tiles see less context (GroupNorm statistics, attention), so tiled != untiled; but the difference is small
    # next to what a different latent changes (random weights: about 0.1 vs 0.5 here).
    error = (tiled - untiled).abs().mean()
    assert 0 < error < 0.3 * content
    # A tile that covers the whole latent is exactly the untiled decode.
    assert torch.allclose(whole, untiled, atol=1e-6)


def test_tiled_encode_matches_diffusers(tmp_path, reference):
    reference.save_pretrained(tmp_path)
    model = vae.from_pretrained(tmp_path, device="cpu")
    x = torch.rand(1, 3, 64, 80, generator=torch.Generator().manual_seed(5)) * 2 - 1
    with torch.no_grad():
        mean, logvar = model.encode(x, tiled=True, tile_size=32)
        reference.enable_tiling()
        try:
            posterior = reference.encode(x).latent_dist
        finally:
            reference.disable_tiling()
    assert (mean - posterior.mean).abs().max() <= TOL and (logvar - posterior.logvar).abs().max() <= TOL


def test_save_pretrained_round_trip_and_dtype(tmp_path, reference, images):
    reference.save_pretrained(tmp_path / "diffusers")
    model = vae.from_pretrained(tmp_path / "diffusers", device="cpu")
    model.save_pretrained(tmp_path / "genzoo")
    config = json.loads((tmp_path / "genzoo" / "config.json").read_text())
    assert config["genzoo_family"] == "vae" and config["model"] == "autoencoder_kl"
    again = vae.from_pretrained(tmp_path / "genzoo", device="cpu")
    _assert_parity(again, reference, images)
    half = vae.from_pretrained(tmp_path / "genzoo", device="cpu", dtype="bfloat16")
    assert next(half.parameters()).dtype == torch.bfloat16
    with torch.no_grad():
        out = half.decode(torch.zeros(1, 4, 4, 4, dtype=torch.bfloat16))
    assert out.shape == (1, 3, 16, 16) and torch.isfinite(out.float()).all()


def test_pipeline_folder_vae_subfolder(tmp_path, reference, images):
    reference.save_pretrained(tmp_path / "pipeline" / "vae")
    (tmp_path / "pipeline" / "model_index.json").write_text("{}")
    _assert_parity(vae.from_pretrained(tmp_path / "pipeline", device="cpu"), reference, images)


def test_bad_inputs_give_clear_errors(tmp_path, reference):
    reference.save_pretrained(tmp_path)
    model = vae.from_pretrained(tmp_path, device="cpu")
    with pytest.raises(ConfigError, match="multiples of 4.*30x32"):  # 3 levels: factor 4
        model.encode(torch.zeros(1, 3, 30, 32))
    with pytest.raises(ConfigError, match="grayscale.*expand"):
        model.encode(torch.zeros(1, 1, 32, 32))
    with pytest.raises(ConfigError, match="RGBA"):
        model.encode(torch.zeros(1, 4, 32, 32))
    with pytest.raises(ConfigError, match=r"\(N, C, H, W\)"):
        model.encode(torch.zeros(3, 32, 32))
    with pytest.raises(ConfigError, match="uint8"):
        model.encode(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ConfigError, match=r"latents shaped \(N, 4"):
        model.decode(torch.zeros(1, 3, 8, 8))
    with pytest.raises(ConfigError, match="tile_size must be a positive multiple of 16"):
        model.decode(torch.zeros(1, 4, 8, 8), tiled=True, tile_size=20)


def test_config_that_does_not_fit_the_weights(tmp_path, reference):
    reference.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["block_out_channels"] = [16, 32, 64]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="block_out_channels"):
        vae.from_pretrained(tmp_path, device="cpu")


def test_unsupported_diffusers_variant_is_refused(tmp_path, reference):
    reference.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["act_fn"] = "gelu"
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="act_fn"):
        vae.from_pretrained(tmp_path, device="cpu")


def test_catalog_names_are_hub_repos_and_fail_clearly_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    from genzoo import registry

    entry = registry.get("sd-vae-ft-mse")
    assert entry.family == "vae" and entry.repo == "stabilityai/sd-vae-ft-mse"
    assert entry.params == vae.autoencoder_kl.count_params(vae.AutoencoderKLConfig())
    assert registry.get("sd-vae-ft-ema").repo == "stabilityai/sd-vae-ft-ema"
    with pytest.raises(HubError, match="stabilityai/sd-vae-ft-mse"):
        vae.from_pretrained("sd-vae-ft-mse", device="cpu")
