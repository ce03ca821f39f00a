"""dtype="auto" (genzoo.runtime.auto_dtype) and every image family's `--dtype`: what auto resolves to with and without
native bf16 on the CPU, that each CLI takes it, writes the same kind of image file as before, and names --dtype
when its value is wrong."""
import numpy as np
import pytest
import torch
from PIL import Image

from genzoo import runtime
from genzoo.cli import main
from genzoo.errors import ConfigError


@pytest.fixture
def native_bf16(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    monkeypatch.setattr(runtime, "cpu_capability", lambda: "AVX512")


@pytest.fixture
def no_bf16(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    monkeypatch.setattr(runtime, "cpu_capability", lambda: "AVX2")


def run(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_auto_is_bf16_on_a_cpu_with_native_bf16(native_bf16):
    assert runtime.native_bf16_cpu()
    assert runtime.auto_dtype("cpu") is torch.bfloat16
    assert runtime.resolve_dtype("auto", "cpu") is torch.bfloat16
    assert runtime.auto_dtype("mps") is torch.float32


def test_auto_is_fp32_on_a_cpu_without_it(no_bf16, monkeypatch):
    assert not runtime.native_bf16_cpu()
    assert runtime.resolve_dtype("auto", "cpu") is torch.float32
    # the flag alone is not enough: torch must dispatch AVX-512 kernels to it
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"amx_bf16"}))
    assert not runtime.native_bf16_cpu()
    monkeypatch.setattr(runtime, "cpu_capability", lambda: "AVX512")
    assert runtime.resolve_dtype("AUTO", "cpu") is torch.bfloat16


def test_auto_loads_the_model_in_that_dtype(native_bf16):
    from genzoo import vae

    assert vae.from_pretrained("mnist-vae", device="cpu", dtype="auto").dtype is torch.bfloat16


def test_unknown_dtype_names_the_option():
    with pytest.raises(ConfigError, match="unknown --dtype 'int3': use auto or one of"):
        runtime.resolve_dtype("int3", "cpu", what="--dtype")


def _vae_reconstruct(tmp_path, name="out.png", extra=()):
    digit = (np.arange(28 * 28).reshape(28, 28) % 256).astype(np.uint8)
    source = tmp_path / "digit.png"
    if not source.exists():
        Image.fromarray(digit).save(source)
    return ["reconstruct", "mnist-vae", source, tmp_path / name, "--device", "cpu", *extra]


def _cyclegan_translate(tmp_path, name="out.png", extra=()):
    source = tmp_path / "digit.png"
    if not source.exists():
        Image.fromarray(np.full((28, 28), 128, np.uint8)).save(source)
    return ["translate", "mnist-cyclegan", source, tmp_path / name, "--device", "cpu", *extra]


COMMANDS = {
    "diffusion": lambda tmp, name="out.png", extra=(): ["sample", "mnist-ddpm", "--n", 2, "--steps", 2, "--device",
                                                        "cpu", "--out", tmp / name, *extra],
    "vae-sample": lambda tmp, name="out.png", extra=(): ["sample", "mnist-vae", "--n", 4, "--device", "cpu", "--out",
                                                         tmp / name, *extra],
    "vae-reconstruct": _vae_reconstruct,
    "gan": lambda tmp, name="out.png", extra=(): ["sample", "mnist-dcgan", "--n", 4, "--device", "cpu", "--out",
                                                  tmp / name, *extra],
    "cyclegan": _cyclegan_translate,
}
LOADERS = {"diffusion": "genzoo.diffusion", "vae-sample": "genzoo.vae", "vae-reconstruct": "genzoo.vae",
           "gan": "genzoo.gan", "cyclegan": "genzoo.cyclegan"}
AUTO_BY_DEFAULT = {"vae-sample", "vae-reconstruct"}


def _spy_on_loading(monkeypatch, command) -> list:
    """Record the dtype of every model the command loads."""
    import importlib

    module = importlib.import_module(LOADERS[command])
    load, dtypes = module.from_pretrained, []

    def spy(*args, **kwargs):
        model = load(*args, **kwargs)
        dtypes.append(model.dtype)
        return model

    monkeypatch.setattr(module, "from_pretrained", spy)
    return dtypes


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_family_takes_dtype_auto(tmp_path, capsys, monkeypatch, native_bf16, command):
    dtypes = _spy_on_loading(monkeypatch, command)
    code, _, err = run(COMMANDS[command](tmp_path, "auto.png", ["--dtype", "auto"]), capsys)
    assert code == 0, err
    assert dtypes == [torch.bfloat16]
    code, _, err = run(COMMANDS[command](tmp_path, "fp32.png", ["--dtype", "float32"]), capsys)
    assert code == 0, err
    assert dtypes[-1] is torch.float32
    auto, fp32 = Image.open(tmp_path / "auto.png"), Image.open(tmp_path / "fp32.png")
    assert (auto.mode, auto.size) == (fp32.mode, fp32.size)   # the same kind of file as an fp32 run writes
    code, _, err = run(COMMANDS[command](tmp_path, "auto.png", ["--dtype", "auto"]), capsys)
    assert code == 2 and "already" in err and "--overwrite" in err   # never overwritten unasked


@pytest.mark.parametrize("command", list(COMMANDS))
def test_default_dtype(tmp_path, capsys, monkeypatch, native_bf16, command):
    """auto is the default where it keeps quality (the VAE's reconstruct/sample); elsewhere the checkpoint's."""
    dtypes = _spy_on_loading(monkeypatch, command)
    code, _, err = run(COMMANDS[command](tmp_path), capsys)
    assert code == 0, err
    assert dtypes == [torch.bfloat16 if command in AUTO_BY_DEFAULT else torch.float32]


def test_auto_without_native_bf16_is_fp32(tmp_path, capsys, monkeypatch, no_bf16):
    dtypes = _spy_on_loading(monkeypatch, "vae-sample")
    code, _, err = run(COMMANDS["vae-sample"](tmp_path, extra=["--dtype", "auto"]), capsys)
    assert code == 0, err
    assert dtypes == [torch.float32]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_bad_dtype_is_a_genzoo_error_naming_the_option(tmp_path, capsys, command):
    code, out, err = run(COMMANDS[command](tmp_path, extra=["--dtype", "float64x"]), capsys)
    assert code == 2
    assert "unknown --dtype 'float64x'" in err and "auto, checkpoint, float32, bfloat16 or float16" in err
    assert "Traceback" not in err and not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("argv", [["sample", "mnist-ddpm"], ["sample", "mnist-vae"], ["reconstruct", "mnist-vae"],
                                  ["sample", "mnist-dcgan"], ["translate", "mnist-cyclegan"]])
def test_dtype_help_says_what_auto_means(capsys, argv):
    with pytest.raises(SystemExit):
        main(argv + ["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "auto (genzoo.runtime.auto_dtype): bfloat16 on a CPU with native bf16 (avx512_bf16 or amx_bf16" in text
    assert "(this one: " in text and "Default: " in text
