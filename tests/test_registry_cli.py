import json
import subprocess
import sys

import pytest

import genzoo
from genzoo import cli, registry
from genzoo.errors import UnknownModelError


def test_every_family_has_a_catalog():
    families = {e.family for e in genzoo.list_models()}
    assert families == set(registry.FAMILIES)
    names = [e.name for e in genzoo.list_models()]
    assert len(names) == len(set(names))


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UnknownModelError, match="Did you mean gpt2-xl"):
        registry.get("gpt2-xll")
    with pytest.raises(UnknownModelError, match="unknown model"):
        genzoo.load("definitely-not-a-model")


def test_resolve_refuses_another_family():
    some_gpt = genzoo.list_models("gpt2")[0].name
    with pytest.raises(UnknownModelError, match="is a gpt2 model, not vae"):
        registry.resolve(some_gpt, "vae")
    assert registry.resolve("./some/local/path", "vae") == ("./some/local/path", None)


def test_detect_family_from_config(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "UNet2DModel"}))
    assert registry.detect_family(tmp_path) == "diffusion"
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL"}))
    assert registry.detect_family(tmp_path / "diffusion_pytorch_model.safetensors") == "vae"
    (tmp_path / "config.json").write_text(json.dumps({"genzoo_family": "gan"}))
    assert registry.detect_family(tmp_path) == "gan"
    pipeline = tmp_path / "pipeline"
    (pipeline / "unet").mkdir(parents=True)
    (pipeline / "model_index.json").write_text(json.dumps({"_class_name": "DDPMPipeline"}))
    (pipeline / "unet" / "config.json").write_text(json.dumps({"_class_name": "UNet2DModel"}))
    assert registry.detect_family(pipeline) == "diffusion"
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(UnknownModelError, match="cannot tell which family"):
        registry.family_of(tmp_path)


def test_embedded_models_point_into_weights():
    for entry in genzoo.list_models():
        if entry.embedded:
            assert entry.offline
            assert (registry.embedded_dir() / entry.name / "config.json").is_file(), entry.name


def test_cli_list(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "gpt2-xl" in out and "openai-community/gpt2-xl" in out
    assert cli.main(["list", "--family", "vae"]) == 0
    assert "gpt2-xl" not in capsys.readouterr().out


def test_cli_errors_are_clean(capsys):
    assert cli.main(["frobnicate"]) == 2
    assert "unknown command" in capsys.readouterr().err
    assert cli.main(["sample", "no-such-model"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'no-such-model'" in err and "Traceback" not in err
    assert cli.main(["train", "nofamily"]) == 2


def test_python_dash_m_genzoo():
    result = subprocess.run([sys.executable, "-m", "genzoo", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert "genzoo generate" in result.stdout


def test_catalog_and_list_never_import_torch():
    code = ("import sys, genzoo.cli, genzoo.registry\n"
            "assert genzoo.registry.find('gpt2-xl').family == 'gpt2'\n"
            "genzoo.cli.main(['list'])\n"
            "genzoo.registry.detect_family('.')\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "gpt2-xl" in result.stdout and "horse2zebra" in result.stdout


def test_unknown_family_suggests_and_fails(capsys):
    assert cli.main(["list", "--family", "gans"]) == 2
    assert "Did you mean gan" in capsys.readouterr().err
    with pytest.raises(UnknownModelError, match="unknown family 'vea'"):
        registry.list_models("vea")


def test_concurrent_loads_in_a_fresh_process():
    code = ("import concurrent.futures as cf, genzoo\n"
            "names = ['mnist-vae', 'mnist-dcgan', 'mnist-ddpm', 'shakespeare-char', 'mnist-cyclegan'] * 4\n"
            "with cf.ThreadPoolExecutor(10) as pool:\n"
            "    models = list(pool.map(lambda n: genzoo.load(n, device='cpu'), names))\n"
            "print(len(models))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "20"
