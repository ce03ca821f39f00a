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


# -- the generator rule ----------------------------------------------------------------------------------------------
def test_randn_draws_where_the_generator_lives_then_moves():
    from genzoo.runtime import randn

    expected = torch.randn(2, 3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(randn((2, 3), torch.Generator().manual_seed(1), device="cpu"), expected)
    # no generator: torch's global RNG on draw_on (the CPU here, even for a model elsewhere)
    torch.manual_seed(4)
    a = randn((3,), None, device="cpu", draw_on="cpu")
    torch.manual_seed(4)
    assert torch.equal(a, torch.randn(3))
    assert randn((2,), None, device="meta").device.type == "meta"   # moved to where it was asked for
    assert randn((2,), None, dtype=torch.bfloat16).dtype == torch.bfloat16
    with pytest.raises(ConfigError, match="torch.Generator"):
        randn((2,), generator=7)


def test_multinomial_is_torch_multinomial_with_the_same_generator_calls():
    from genzoo.runtime import multinomial

    probs = torch.randn(4, 300).softmax(-1)
    for seed in range(10):
        g1, g2 = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
        assert torch.equal(multinomial(probs, g1), torch.multinomial(probs, 1, generator=g2).squeeze(-1))
        assert torch.equal(torch.rand(1, generator=g1), torch.rand(1, generator=g2))  # same RNG consumed
    one_hot = torch.zeros(2, 5)
    one_hot[0, 3] = one_hot[1, 0] = 1
    assert multinomial(one_hot).tolist() == [3, 0]
    counts = torch.bincount(multinomial(torch.tensor([[0.2, 0.8]]).expand(4000, 2), torch.Generator().manual_seed(0)))
    assert 0.77 < counts[1].item() / 4000 < 0.83


def test_make_generator_checks_what_it_is_given():
    with pytest.raises(ConfigError, match="seed must be an int"):
        make_generator(seed="abc")
    with pytest.raises(ConfigError, match="torch.Generator"):
        make_generator(generator=3)
    assert make_generator(seed=2, device="cpu").device.type == "cpu"


# -- numerical checks and TF32 -----------------------------------------------------------------------------------------
def test_check_finite_names_what_and_how_many():
    from genzoo.errors import GenzooError, NumericalError
    from genzoo.runtime import check_finite

    check_finite(torch.ones(3), "x")
    check_finite(torch.tensor([1, 2]), "integers are always finite")
    with pytest.raises(NumericalError, match=r"the logits holds 1 NaN and 2 infinite value\(s\) out of 4; try"):
        check_finite(torch.tensor([float("nan"), float("inf"), -float("inf"), 0.0]), "the logits", "try")
    assert issubclass(NumericalError, GenzooError)


def test_tf32_switch_and_block():
    from genzoo.runtime import allow_tf32, tf32, tf32_enabled

    before = tf32_enabled()
    try:
        allow_tf32(True)
        assert tf32_enabled() == {"matmul": True, "conv": True}
        with tf32(False):
            assert tf32_enabled() == {"matmul": False, "conv": False}
            assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        assert tf32_enabled() == {"matmul": True, "conv": True}
        with pytest.raises(ConfigError):
            allow_tf32("yes")
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before["matmul"], before["conv"]


def test_the_suite_runs_without_tf32():
    from genzoo.runtime import tf32_enabled

    assert tf32_enabled() == {"matmul": False, "conv": False}   # tests/conftest.py: parity is float32 parity


def test_cuda_index_is_checked_against_the_device_count(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    assert resolve_device("cuda") == torch.device("cuda")
    with pytest.raises(ConfigError, match=r"'cuda:2' does not exist: torch sees 2 CUDA GPU\(s\), cuda:0 to cuda:1"):
        resolve_device("cuda:2")


def test_check_logits_allows_masked_tokens_only():
    from genzoo.errors import NumericalError
    from genzoo.runtime import check_logits

    check_logits(torch.tensor([[0.0, -float("inf"), 3.0]]))         # top-k / top-p masks are -inf: fine
    for bad in ([[float("nan"), 0.0, 1.0]], [[float("inf"), 0.0, 1.0]], [[-float("inf")] * 3]):
        with pytest.raises(NumericalError, match="NaN or infinite"):
            check_logits(torch.tensor(bad))
