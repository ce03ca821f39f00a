"""Loader parity: junyanz-layout networks saved as his code saves them -> genzoo, same outputs."""
import pytest
import torch

from genzoo import cyclegan
from genzoo.checkpoint import save_pretrained
from genzoo.cyclegan.convert import resnet_table, to_junyanz
from genzoo.errors import CheckpointError, ConfigError, UnknownModelError

from .reference import RefNLayerDiscriminator, RefResnetGenerator, RefUnetGenerator, randomize

TOL = 1e-5


def save_junyanz(net, path, prefix="", stale_instance_stats=False, legacy=False):
    """torch.save(net.state_dict()) as junyanz's save_networks does; optional variants seen in the wild."""
    sd = net.state_dict()
    if stale_instance_stats:  # torch <= 0.4 wrote these for every InstanceNorm layer
        for name, module in net.named_modules():
            if isinstance(module, torch.nn.InstanceNorm2d):
                sd[f"{name}.running_mean"] = torch.randn(module.num_features)
                sd[f"{name}.running_var"] = torch.rand(module.num_features) + 1
                sd[f"{name}.num_batches_tracked"] = torch.tensor(7)
    if prefix:
        sd = type(sd)((prefix + k, v) for k, v in sd.items())
    torch.save(sd, path, _use_new_zipfile_serialization=not legacy)
    return path


def assert_same(ref, ours, x):
    with torch.no_grad():
        expected, got = ref(x), ours(x)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() <= TOL


PREFIXES = {"module_prefix": "module.", "compile_prefix": "_orig_mod.", "both_prefixes": "module._orig_mod."}


@pytest.mark.parametrize("variant", ["plain", "stale_stats", "legacy_format", *PREFIXES])
def test_resnet_generator_parity(tmp_path, variant):
    ref = randomize(RefResnetGenerator(3, 3, ngf=4, n_blocks=3))
    path = save_junyanz(ref, tmp_path / "latest_net_G_A.pth", prefix=PREFIXES.get(variant, ""),
                        stale_instance_stats=variant == "stale_stats", legacy=variant == "legacy_format")
    if variant == "stale_stats":
        assert any(k.endswith("running_mean") for k in torch.load(path, weights_only=True))
    G = cyclegan.from_pretrained(path, device="cpu")
    assert isinstance(G, cyclegan.ResnetGenerator) and not G.training
    assert G.config.n_blocks == 3 and G.config.ngf == 4 and G.config.input_nc == 3 and G.config.norm == "instance"
    assert_same(ref, G, torch.randn(2, 3, 24, 32))


@pytest.mark.parametrize("n_blocks", [6, 9])
def test_resnet_config_inferred_from_shapes(tmp_path, n_blocks):
    ref = randomize(RefResnetGenerator(1, 3, ngf=2, n_blocks=n_blocks))
    G = cyclegan.from_pretrained(save_junyanz(ref, tmp_path / "g.pth"), device="cpu")
    assert (G.config.n_blocks, G.config.ngf, G.config.input_nc, G.config.output_nc) == (n_blocks, 2, 1, 3)
    assert_same(ref, G, torch.randn(1, 1, 16, 20))


def test_resnet_dropout_and_batchnorm_layouts(tmp_path):
    ref = randomize(RefResnetGenerator(3, 3, ngf=4, n_blocks=2, use_dropout=True))
    G = cyclegan.from_pretrained(save_junyanz(ref, tmp_path / "drop.pth"), device="cpu")
    assert G.config.use_dropout  # conv_block.6 instead of conv_block.5
    assert_same(ref, G, torch.randn(1, 3, 16, 16))

    ref = randomize(RefResnetGenerator(3, 3, ngf=4, n_blocks=2, norm="batch"))
    sd = ref.state_dict()
    old = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}  # torch < 0.4.1 files
    torch.save(old, tmp_path / "bn.pth")
    G = cyclegan.from_pretrained(tmp_path / "bn.pth", device="cpu")
    assert G.config.norm == "batch"
    assert_same(ref, G, torch.randn(2, 3, 16, 16))


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_unet_generator_parity(tmp_path, norm):
    ref = randomize(RefUnetGenerator(3, 2, num_downs=6, ngf=2, norm=norm))
    G = cyclegan.from_pretrained(save_junyanz(ref, tmp_path / "latest_net_G.pth"), device="cpu")
    assert isinstance(G, cyclegan.UnetGenerator)
    assert (G.config.num_downs, G.config.ngf, G.config.output_nc, G.config.norm) == (6, 2, 2, norm)
    assert_same(ref, G, torch.randn(2, 3, 64, 64))


def test_discriminator_parity(tmp_path):
    for n_layers in (1, 3, 4):
        ref = randomize(RefNLayerDiscriminator(3, ndf=4, n_layers=n_layers))
        D = cyclegan.discriminator_from_pretrained(save_junyanz(ref, tmp_path / "latest_net_D_A.pth", stale_instance_stats=True),
                                        device="cpu")
        assert D.config.n_layers == n_layers
        assert_same(ref, D, torch.randn(2, 3, 70, 70))
    D = cyclegan.NLayerDiscriminator(cyclegan.DiscriminatorConfig(ndf=4, n_layers=3))
    assert D(torch.randn(1, 3, 70, 70)).shape == (1, 1, 6, 6)  # 70x70 patches on a 256 image give 30x30


def test_catalog_name_uses_cached_download(tmp_path, monkeypatch):
    # horse2zebra resolves to junyanz's URL; offline, download_url serves it from genzoo's cache (unpinned sha256).
    monkeypatch.setenv("GENZOO_CACHE", str(tmp_path / "cache"))
    with pytest.raises(Exception, match="offline"):
        cyclegan.from_pretrained("horse2zebra", device="cpu")
    from genzoo import hub
    from genzoo.catalog import JUNYANZ_URL

    cached = hub.url_cache_path(JUNYANZ_URL.format("horse2zebra"))
    cached.parent.mkdir(parents=True)
    ref = randomize(RefResnetGenerator(3, 3, ngf=4, n_blocks=9))
    save_junyanz(ref, cached, stale_instance_stats=True, legacy=True)
    G = cyclegan.from_pretrained("horse2zebra", device="cpu")
    assert_same(ref, G, torch.randn(1, 3, 20, 20))
    with pytest.raises(ConfigError, match="single generator"):
        cyclegan.from_pretrained("horse2zebra", device="cpu", direction="BtoA")


def test_run_folder_directions_and_genzoo_round_trip(tmp_path):
    run = tmp_path / "checkpoints" / "hair"
    run.mkdir(parents=True)
    ref_a = randomize(RefResnetGenerator(3, 3, ngf=4, n_blocks=2), seed=1)
    ref_b = randomize(RefResnetGenerator(3, 3, ngf=4, n_blocks=2), seed=2)
    save_junyanz(ref_a, run / "latest_net_G_A.pth")
    save_junyanz(ref_b, run / "latest_net_G_B.pth")
    x = torch.randn(1, 3, 16, 16)
    assert_same(ref_a, cyclegan.from_pretrained(run, device="cpu"), x)
    G_B = cyclegan.from_pretrained(run, device="cpu", direction="BtoA")
    assert_same(ref_b, G_B, x)

    G_B.save_pretrained(tmp_path / "genzoo")
    again = cyclegan.from_pretrained(tmp_path / "genzoo", device="cpu")
    assert_same(ref_b, again, x)
    half = cyclegan.from_pretrained(tmp_path / "genzoo", device="cpu", dtype="bfloat16")
    assert next(half.parameters()).dtype == torch.bfloat16
    # back to junyanz's names: his load_networks would accept this state dict
    assert set(to_junyanz(again.state_dict(), resnet_table(again.config))) == set(ref_b.state_dict())


def test_errors_are_clear(tmp_path):
    ref = randomize(RefResnetGenerator(3, 3, ngf=4, n_blocks=2))
    sd = ref.state_dict()
    G = cyclegan.from_pretrained(save_junyanz(ref, tmp_path / "ok.pth"), device="cpu")

    with pytest.raises(UnknownModelError, match="horse2zebra"):
        cyclegan.from_pretrained("horse2zebr")
    with pytest.raises(ConfigError, match="3-channel"):
        cyclegan.translate_tensor(G, torch.randn(1, 1, 16, 16))
    with pytest.raises(ConfigError, match="direction"):
        cyclegan.from_pretrained(tmp_path / "ok.pth", direction="sideways")

    broken = dict(sd)
    del broken["model.11.conv_block.5.weight"]
    torch.save(broken, tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match=r"model\.11\.conv_block\.5\.weight"):
        cyclegan.from_pretrained(tmp_path / "missing.pth", device="cpu")

    extra = dict(sd, **{"model.1.extra": torch.zeros(1)})
    torch.save(extra, tmp_path / "extra.pth")
    with pytest.raises(CheckpointError, match="unexpected keys: model.1.extra"):
        cyclegan.from_pretrained(tmp_path / "extra.pth", device="cpu")

    # another family's weights: a GPT-2-like state dict, and a genzoo folder of the gan family
    torch.save({"transformer.wte.weight": torch.zeros(4, 2), "lm_head.weight": torch.zeros(4, 2)}, tmp_path / "gpt.pth")
    with pytest.raises(CheckpointError, match="does not look like a CycleGAN generator"):
        cyclegan.from_pretrained(tmp_path / "gpt.pth", device="cpu")
    save_pretrained(tmp_path / "gan", {"w": torch.zeros(1)}, {"nz": 100}, family="gan")
    with pytest.raises(CheckpointError, match="'gan' checkpoint"):
        cyclegan.from_pretrained(tmp_path / "gan", device="cpu")
    # a discriminator file passed as a generator
    save_junyanz(randomize(RefNLayerDiscriminator(3, ndf=4)), tmp_path / "latest_net_D_A.pth")
    with pytest.raises(CheckpointError, match="discriminator"):
        cyclegan.from_pretrained(tmp_path / "latest_net_D_A.pth", device="cpu")

    (tmp_path / "trunc.pth").write_bytes((tmp_path / "ok.pth").read_bytes()[:200])
    with pytest.raises(CheckpointError):
        cyclegan.from_pretrained(tmp_path / "trunc.pth", device="cpu")
    with pytest.raises(CheckpointError, match="no checkpoint file or folder"):
        cyclegan.from_pretrained(tmp_path / "typo.pth", device="cpu")
    with pytest.raises(CheckpointError, match=r"holds none of \['model.safetensors', 'latest_net_G_A.pth'"):
        cyclegan.from_pretrained(_empty(tmp_path), device="cpu")


def _empty(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    return d


def test_catalog_configs_and_parameter_counts_match_the_networks():
    from genzoo import registry

    entries = registry.list_models("cyclegan")
    assert {"horse2zebra", "style_monet", "mnist-cyclegan"} <= {e.name for e in entries}
    for entry in entries:
        with torch.device("meta"):  # no memory for the 11M-parameter published generator
            G = cyclegan.build_generator(cyclegan.GeneratorConfig(**entry.config))
        assert G.num_parameters() == entry.params, entry.name
    shipped = cyclegan.from_pretrained("mnist-cyclegan", device="cpu")
    assert shipped.config == cyclegan.GeneratorConfig(**registry.get("mnist-cyclegan").config)
