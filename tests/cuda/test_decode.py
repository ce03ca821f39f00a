"""GPT-2 decoding and attention on every device x dtype: the KV cache against a full recompute, and each of torch's
SDPA kernels against genzoo.nn's "math" attention."""
import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from genzoo.nn.attention import attention

from .families import TOL, TOP1, load, top1_agreement


def test_kv_cache_matches_a_full_recompute(gpt2_dir, device, dtype):
    model = load("gpt2", {"gpt2": gpt2_dir}, device, dtype)
    ids = torch.randint(0, model.config.vocab_size, (2, 40), generator=torch.Generator().manual_seed(0)).to(device)
    with torch.no_grad():
        full = model(ids).float()
        cache = model.new_cache(2, 40)
        steps = [model(ids[:, :16], cache=cache)] + [model(ids[:, t:t + 1], cache=cache) for t in range(16, 40)]
    incremental = torch.cat(steps, dim=1).float()
    assert cache.length == 40
    error = (incremental - full).abs().max().item()
    # the same arithmetic in a different order: the dtype's own rounding, no more
    assert error <= TOL[dtype] * full.abs().max().item(), error
    assert top1_agreement(incremental, full) >= TOP1[dtype]


def test_greedy_generation_equals_argmax_of_full_recomputes(gpt2_dir, device):
    model = load("gpt2", {"gpt2": gpt2_dir}, device, torch.float32)
    ids = torch.tensor([[3, 1, 4, 1, 5, 9, 2, 6]], device=device)
    generated = model.generate(ids, max_new_tokens=16, temperature=0)
    expected = ids
    with torch.no_grad():
        for _ in range(16):
            expected = torch.cat([expected, model(expected)[:, -1:].argmax(-1)], dim=1)
    assert torch.equal(generated, expected)


BACKENDS = ["MATH", "FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION"]
# Tolerances for attention outputs of size ~1 (values drawn from N(0, 1)): the dtype's rounding of a weighted mean.
ATTENTION_TOL = {torch.float32: 2e-5, torch.bfloat16: 3e-2, torch.float16: 4e-3}


def must_run(backend, device, dtype, masking) -> bool:
    """The kernels torch documents for this case: a refusal there is a failure, elsewhere a skip with the reason.
    CPU: math and flash (any dtype, any mask). CUDA (sm80+): math; flash in fp16/bf16 without an arbitrary mask;
    memory-efficient in every dtype with any mask. cuDNN's coverage varies by version: it may skip."""
    if backend == "MATH":
        return True
    if device.type == "cpu":
        return backend == "FLASH_ATTENTION"
    if backend == "FLASH_ATTENTION":
        return dtype != torch.float32 and masking != "bool-mask"
    return backend == "EFFICIENT_ATTENTION"


@pytest.mark.parametrize("masking", ["none", "causal", "bool-mask"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_each_sdpa_kernel_matches_math_attention(backend, masking, device, dtype):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 4, 33, 64, generator=g) for _ in range(3))
    mask = torch.rand(2, 1, 33, 33, generator=g) > 0.3 if masking == "bool-mask" else None
    if mask is not None:
        mask[..., 0] = True   # every query sees at least one key
    causal = masking == "causal"
    expected = attention(q, k, v, mask=mask, is_causal=causal, backend="math")   # float32, on the CPU
    q, k, v = (t.to(device, dtype) for t in (q, k, v))
    try:
        with sdpa_kernel([getattr(SDPBackend, backend)]):
            out = attention(q, k, v, mask=None if mask is None else mask.to(device), is_causal=causal, backend="sdpa")
    except RuntimeError as e:
        if must_run(backend, device, dtype, masking) or "backend" not in str(e) and "kernel" not in str(e):
            raise
        pytest.skip(f"torch has no {backend} kernel for {device.type} {dtype} with {masking}: "
                    f"{str(e).splitlines()[0][:120]}")
    error = (out.float().cpu() - expected).abs().max().item()
    assert error <= ATTENTION_TOL[dtype], f"{backend} {masking} {dtype}: {error}"


def test_gpt2_logits_with_sdpa_and_with_math_attention(gpt2_dir, device, dtype):
    model = load("gpt2", {"gpt2": gpt2_dir}, device, dtype)
    ids = torch.randint(0, model.config.vocab_size, (2, 48), generator=torch.Generator().manual_seed(2)).to(device)
    with torch.no_grad():
        fused = model(ids).float()
        model.set_attention_backend("math")
        math = model(ids).float()
    assert (fused - math).abs().max().item() <= TOL[dtype] * math.abs().max().item()
    assert top1_agreement(fused, math) >= TOP1[dtype]
