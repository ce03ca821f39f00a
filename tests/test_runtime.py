import pytest
import torch

from genzoo.errors import ConfigError
from genzoo.runtime import make_generator, resolve_device, resolve_dtype


def test_dtypes():
    assert resolve_dtype("bfloat16") is torch.bfloat16
    assert resolve_dtype("fp16") is torch.float16
    assert resolve_dtype("torch.float32") is torch.float32
    assert resolve_dtype(torch.float16) is torch.float16
    assert resolve_dtype(None) is None
    with pytest.raises(ConfigError, match="unknown dtype"):
        resolve_dtype("float8")


def test_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ConfigError):
        resolve_device("potato")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA"):
            resolve_device("cuda")


def test_generators_are_reproducible():
    a = torch.randn(3, generator=make_generator(seed=5))
    b = torch.randn(3, generator=make_generator(seed=5))
    assert torch.equal(a, b)
    assert make_generator() is None
    g = torch.Generator()
    assert make_generator(generator=g) is g
    with pytest.raises(ConfigError):
        make_generator(seed=1, generator=g)
