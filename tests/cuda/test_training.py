"""Every family's training loop on every device: a few steps, then a resume that continues where it stopped.

On the CPU a resumed run equals an uninterrupted one bit for bit; on CUDA up to the nondeterminism of its kernels
(cuDNN convolution backward, atomics), so there the comparison has a tolerance. Mixed precision (bf16 / fp16
autocast) is CUDA-only in genzoo's loops, so those cases run only there.
"""
import pytest
import torch

import genzoo


def assert_same_weights(a: dict, b: dict, device):
    for key in a:
        if device.type == "cpu":
            assert torch.equal(a[key], b[key]), key
        else:
            assert torch.allclose(a[key].float(), b[key].float(), atol=1e-4, rtol=1e-3), key


def cuda_only(precision, device):
    if precision != "fp32" and device.type != "cuda":
        pytest.skip(f"mixed precision ({precision}): genzoo's training loops use autocast on CUDA only (CPU: fp32)")


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_gpt2(tmp_path, device, precision):
    cuda_only(precision, device)
    from genzoo.gpt2.train import TrainConfig, train

    dtype = {"fp32": None, "bf16": "bfloat16", "fp16": "float16"}[precision]
    common = dict(n_layer=1, n_head=2, n_embd=32, block_size=32, batch_size=8, eval_iters=2, progress=False,
                  device=str(device), dtype=dtype, learning_rate=2e-3, min_lr=2e-3, warmup_iters=0, eval_interval=3)
    train(TrainConfig(out_dir=str(tmp_path / "a"), max_iters=3, **common))
    resumed = train(TrainConfig(out_dir=str(tmp_path / "a"), max_iters=6, resume=True, **common))
    straight = train(TrainConfig(out_dir=str(tmp_path / "b"), max_iters=6, **common))
    assert resumed["step"] == straight["step"] == 6
    a = genzoo.gpt2.from_pretrained(tmp_path / "a", device="cpu").state_dict()
    b = genzoo.gpt2.from_pretrained(tmp_path / "b", device="cpu").state_dict()
    assert_same_weights(a, b, device)


@pytest.mark.parametrize("precision", ["fp32", "mixed"])
def test_diffusion(tmp_path, device, precision):
    cuda_only(precision, device)
    from genzoo.diffusion.train import TrainConfig, train

    # the first two steps are warm-up, so the 2-step run's learning rates are the 4-step run's
    common = dict(block_out_channels=(8, 16), attention=(False, True), norm_num_groups=4, batch_size=4, lr=3e-3,
                  warmup_steps=2, progress=False, log_every=1000, device=str(device), save_every=2,
                  mixed_precision=precision == "mixed")
    straight = train(TrainConfig(out_dir=tmp_path / "a", steps=4, **common))
    train(TrainConfig(out_dir=tmp_path / "b", steps=2, **common))
    resumed = train(TrainConfig(out_dir=tmp_path / "b", steps=4, resume=True, **common))
    assert len(resumed.losses) == 2
    a = genzoo.diffusion.from_pretrained(tmp_path / "a", device="cpu").state_dict()
    b = genzoo.diffusion.from_pretrained(tmp_path / "b", device="cpu").state_dict()
    assert_same_weights(a, b, device)


def test_vae(tmp_path, device):
    from genzoo.vae.train import TrainConfig, train

    images = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1

    def run(out, epochs):
        torch.manual_seed(0)
        model = genzoo.vae.ConvVAE(genzoo.vae.ConvVAEConfig(channels=(4, 8), latent_dim=4))
        return train(model, images, TrainConfig(out_dir=str(out), epochs=epochs, batch_size=32, device=str(device),
                                                log_every=1000))[0]

    straight = run(tmp_path / "a", 2)
    run(tmp_path / "b", 1)
    resumed = run(tmp_path / "b", 2)
    assert resumed.device.type == device.type
    assert_same_weights(straight.state_dict(), resumed.state_dict(), device)


def test_gan(tmp_path, device):
    cfg = genzoo.gan.DCGANConfig(latent_dim=8, image_size=16, channels=1, ngf=4, ndf=4)
    images = torch.rand(32, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    options = dict(batch_size=16, n_samples=4, progress=False, device=str(device))
    G, D = genzoo.gan.new_gan(cfg, seed=0)
    genzoo.gan.train(G, D, images, out_dir=tmp_path / "a", epochs=2, **options)
    G2, D2 = genzoo.gan.new_gan(cfg, seed=0)
    genzoo.gan.train(G2, D2, images, out_dir=tmp_path / "b", epochs=1, **options)
    after_one = {k: v.detach().cpu().clone() for k, v in G2.named_parameters()}
    G3, D3 = genzoo.gan.new_gan(cfg, seed=5)   # other weights: the resume must replace them
    history = genzoo.gan.train(G3, D3, images, out_dir=tmp_path / "b", epochs=2, resume=True, **options)
    assert [h["epoch"] for h in history] == [1, 2] and history[-1]["step"] == 4
    assert G3.device.type == device.type
    # The GAN loop does not restore its RNG state on resume (only weights and optimizers), so the resumed epoch
    # draws other noise than an uninterrupted run: check that it continued from epoch 1's weights, not equality.
    resumed = dict(G3.named_parameters())
    moved = [(resumed[k].detach().cpu() - v).abs().max().item() for k, v in after_one.items()]
    assert 0 < max(moved) < 0.05
    assert all(torch.isfinite(v).all() for v in G3.state_dict().values())


def test_cyclegan(tmp_path, device):
    from genzoo.cyclegan.data import TensorImages
    from genzoo.cyclegan.train import TrainConfig, train

    g = torch.Generator().manual_seed(0)
    a, b = (TensorImages(torch.rand(8, 1, 16, 16, generator=g) * 2 - 1) for _ in range(2))
    nets = dict(generator={"input_nc": 1, "output_nc": 1, "ngf": 4, "n_blocks": 1},
                discriminator={"ndf": 4, "n_layers": 2})
    # decay_start=2 in every run: the 2-step run's learning rates are the 4-step run's first two
    common = dict(batch_size=2, pool_size=4, log_every=1000, sample_every=1000, save_every=2, decay_start=2, **nets)
    first = train(tmp_path / "b", a, b, TrainConfig(steps=2, **common), device=str(device), progress=False)
    after_two = {k: v.detach().cpu().clone() for k, v in first.named_parameters()}
    resumed = train(tmp_path / "b", a, b, TrainConfig(steps=4, **common), device=str(device), resume=True,
                    progress=False)
    assert next(resumed.parameters()).device.type == device.type
    # The CycleGAN loop reshuffles its data from seed + step on resume, so the resumed steps see other batches
    # than an uninterrupted run: check that it continued from step 2's weights, not equality.
    moved = [(p.detach().cpu() - after_two[k]).abs().max().item() for k, p in resumed.named_parameters()]
    assert 0 < max(moved) < 0.05
    assert (tmp_path / "b" / "train_state.pt").is_file() or any((tmp_path / "b").glob("*state*"))
