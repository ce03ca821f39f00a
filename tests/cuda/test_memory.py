"""GPT-2 XL-shaped (1.56 B parameters, random weights) on a GPU in bf16: what loading and generation allocate.

CUDA only: the figures are torch.cuda's allocator statistics. The bounds: after from_pretrained(device="cuda",
dtype="bfloat16") at most 1.05x the bf16 weights are allocated (no fp32 copy, no second copy left behind);
generating adds at most the KV cache (sized for the whole window, the largest a decoder may allocate) + 256 MiB.
"""
import pytest
import torch

from genzoo import gpt2
from genzoo.gpt2.model import GPT, config_for

MiB = 1 << 20


def random_gpt(config, device, dtype):
    """A GPT with N(0, 0.02) weights built straight on `device` in `dtype` (no float32 copy on the way)."""
    with torch.device("meta"):
        model = GPT(config)
    model = model.to(dtype=dtype).to_empty(device=device)
    g = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.02, generator=g)
            else:
                p.fill_(1.0 if name.endswith("weight") else 0.0)   # LayerNorm gains 1, biases 0
    return model.eval()


@pytest.fixture(scope="module")
def xl_checkpoint(tmp_path_factory):
    if not torch.cuda.is_available():
        pytest.skip("CUDA only: these bounds are torch.cuda allocator statistics (no GPU visible to torch)")
    directory = tmp_path_factory.mktemp("gpt2-xl-shaped")
    model = random_gpt(config_for("gpt2-xl"), "cuda", torch.bfloat16)
    model.save_pretrained(directory)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    del model
    torch.cuda.empty_cache()
    return directory, weight_bytes


def test_xl_bf16_load_allocates_about_the_weights(xl_checkpoint, device):
    if device.type != "cuda":
        pytest.skip("CUDA only: the CPU's resident memory is benchmarked in benchmarks/gpt2_load_xl.py")
    directory, weight_bytes = xl_checkpoint
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    model = gpt2.from_pretrained(directory, device="cuda", dtype="bfloat16")
    allocated = torch.cuda.memory_allocated() - before
    assert model.dtype == torch.bfloat16 and model.device.type == "cuda"
    assert allocated <= 1.05 * weight_bytes, f"{allocated / MiB:.0f} MiB for {weight_bytes / MiB:.0f} MiB of weights"


def test_xl_bf16_generation_peak(xl_checkpoint, device):
    if device.type != "cuda":
        pytest.skip("CUDA only: torch.cuda.max_memory_allocated")
    directory, weight_bytes = xl_checkpoint
    model = gpt2.from_pretrained(directory, device="cuda", dtype="bfloat16")
    config = model.config
    kv_bytes = 2 * config.n_layer * config.n_positions * config.n_embd * 2   # batch 1, bf16, the whole window
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    out = model.generate(torch.randint(0, config.vocab_size, (1, 32)), max_new_tokens=64, top_k=50, seed=0)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    assert out.shape == (1, 96)
    assert peak <= weight_bytes + kv_bytes + 256 * MiB, \
        f"peak {peak / MiB:.0f} MiB > weights {weight_bytes / MiB:.0f} + KV {kv_bytes / MiB:.0f} + 256 MiB"


def test_random_gpt_is_built_in_its_dtype(device):
    """The helper above on a tiny shape, so its logic runs everywhere."""
    model = random_gpt(config_for("gpt2", n_layer=1, n_embd=32, n_head=2, vocab_size=64, n_positions=16),
                       device, torch.bfloat16)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert model.device.type == device.type
    assert torch.isfinite(model(torch.tensor([[1, 2, 3]], device=device)).float()).all()
