"""Every family's training loop on every device: a run killed after its step-2 save, then resumed with nothing but
`resume=True`, ends with the weights of the uninterrupted run.

On the CPU the two are equal bit for bit; on CUDA up to the nondeterminism of its kernels (cuDNN convolution
backward, atomics), so there the comparison has a tolerance. bf16 / fp16 autocast is checked on CUDA only (fp16
needs its GradScaler, whose state the resume must restore).
"""
import importlib

import pytest
import torch

from genzoo import training


def tiny_digits(n=64, size=28):
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1


FAMILIES = {
    "gpt2": lambda: (dict(n_layer=1, n_head=2, n_embd=32, block_size=32, batch_size=8, eval_iters=2, lr=2e-3,
                          min_lr=2e-3, warmup_steps=0, eval_every=4), None),
    "diffusion": lambda: (dict(block_out_channels=(8, 16), attention=(False, True), norm_num_groups=4, batch_size=4,
                               lr=3e-3, warmup_steps=2, sample_every=0), None),
    "vae": lambda: (dict(kind="mlp", hidden=32, latent_dim=4, batch_size=16, sample_every=0), tiny_digits()),
    "gan": lambda: (dict(batch_size=16, n_samples=4, sample_every=0, latent_dim=8, ngf=4, ndf=4),
                    tiny_digits(size=16)),
    "cyclegan": lambda: (dict(data="mnist-invert", batch_size=2, pool_size=2, sample_every=0, ngf=4, n_blocks=1, ndf=8,
                              n_layers_d=2), None),
}


def run_to_the_end(family, out_dir, device, dtype, data, options, monkeypatch=None, stop_at=None):
    module = importlib.import_module(f"genzoo.{family}.train")
    config = module.TrainConfig(out_dir=str(out_dir), steps=4, save_every=2, device=str(device), dtype=dtype,
                                      progress=False, log_every=1, **options)
    if stop_at is None:
        return module.train(config, data=data).model
    real_save = training.Run.save

    def save_then_stop(self, step, *args, **kwargs):
        real_save(self, step, *args, **kwargs)
        if step == stop_at:
            raise KeyboardInterrupt   # killed right after a save

    monkeypatch.setattr(training.Run, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        module.train(config, data=data)
    monkeypatch.setattr(training.Run, "save", real_save)
    resume = module.TrainConfig(out_dir=str(out_dir), resume=True, device=str(device), progress=False)
    return module.train(resume, data=data).model


@pytest.mark.parametrize("precision", ["float32", "bfloat16", "float16"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_killed_and_resumed_equals_uninterrupted(tmp_path, monkeypatch, device, family, precision):
    if precision != "float32" and device.type != "cuda":
        pytest.skip(f"{precision} autocast training is checked on CUDA (the CPU runs keep float32)")
    options, data = FAMILIES[family]()
    torch.manual_seed(0)
    straight = run_to_the_end(family, tmp_path / "a", device, precision, data, options)
    torch.manual_seed(0)
    resumed = run_to_the_end(family, tmp_path / "b", device, precision, data, options, monkeypatch, stop_at=2)
    assert next(resumed.parameters()).device.type == device.type
    a, b = straight.state_dict(), resumed.state_dict()
    for key in a:
        if device.type == "cpu":
            assert torch.equal(a[key], b[key]), key
        else:
            assert torch.allclose(a[key].float(), b[key].float(), atol=1e-4, rtol=1e-3), key
