"""One way to load, run and compare every family, so each cuda test is one loop over the families."""
import torch

FAMILIES = ["gpt2", "diffusion", "vae", "gan", "cyclegan"]
REFERENCED = ["gpt2", "diffusion", "vae"]   # the families with a reference library to compare against

# |out - reference| <= TOL * max|reference| per dtype, for the image families (float outputs compared directly).
TOL = {torch.float32: 1e-4, torch.bfloat16: 6e-2, torch.float16: 1e-2}
# GPT-2 in reduced precision: the fraction of positions whose top-1 token agrees with fp32 (teacher-forced).
TOP1 = {torch.float32: 1.0, torch.bfloat16: 0.93, torch.float16: 0.97}


def load(family, dirs, device, dtype):
    import genzoo

    module = getattr(genzoo, family)
    return module.from_pretrained(dirs[family], device=device, dtype=dtype).eval()


def inputs(family, model):
    """Fixed CPU inputs for one forward of `family` (the same on every device and dtype)."""
    g = torch.Generator().manual_seed(1)
    if family == "gpt2":
        return torch.randint(0, model.config.vocab_size, (2, 48), generator=g)
    if family == "diffusion":
        return torch.randn(2, 3, 8, 8, generator=g), torch.tensor([10, 900])
    if family == "vae":
        return torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    if family == "gan":
        return torch.randn(2, model.latent_dim, generator=g)
    return torch.rand(1, 3, 12, 12, generator=g) * 2 - 1   # cyclegan: any size, padded by translate_tensor


@torch.no_grad()
def forward(family, model, x=None):
    """The family's main computation on CPU-made inputs, as float32 on the CPU. Inputs are moved by the public API
    where it promises to (generate, VAE encode/decode, translate_tensor) and by hand where it does not."""
    x = inputs(family, model) if x is None else x
    device, dtype = model.device, model.dtype
    if family == "gpt2":
        out = model(x.to(device))
    elif family == "diffusion":
        out = model(x[0].to(device, dtype), x[1].to(device))
    elif family == "vae":
        mean, _ = model.encode(x)
        out = torch.cat([mean.flatten(1), model.decode(mean).flatten(1)], dim=1)
    elif family == "gan":
        out = model(x.to(device, dtype))
    else:
        from genzoo.cyclegan.translate import translate_tensor

        out = translate_tensor(model, x)
        assert out.device.type == "cpu"  # translate_tensor answers on the input's device
    return out.float().cpu()


@torch.no_grad()
def reference_forward(family, dirs, device, dtype):
    """The same computation with transformers / diffusers, same weights, same device and dtype."""
    if family == "gpt2":
        from transformers import GPT2LMHeadModel

        ref = GPT2LMHeadModel.from_pretrained(dirs[family], torch_dtype=dtype, attn_implementation="eager")
        ref = ref.to(device).eval()
        return ref(inputs(family, ref).to(device)).logits.float().cpu()
    if family == "diffusion":
        from diffusers import UNet2DModel

        ref = UNet2DModel.from_pretrained(dirs[family], torch_dtype=dtype).to(device).eval()
        x, t = inputs(family, ref)
        return ref(x.to(device, dtype), t.to(device)).sample.float().cpu()
    from diffusers import AutoencoderKL

    ref = AutoencoderKL.from_pretrained(dirs[family], torch_dtype=torch.float32).to(device).eval()
    upcast = dtype == torch.float16 and ref.config.force_upcast   # what diffusers' pipelines do
    ref.to(torch.float32 if upcast else dtype)
    x = inputs(family, ref).to(device, torch.float32 if upcast else dtype)
    mean = ref.encode(x).latent_dist.mean
    image = ref.decode(mean).sample
    return torch.cat([mean.flatten(1), image.flatten(1)], dim=1).to(dtype).float().cpu()


def top1_agreement(logits, reference) -> float:
    return (logits.argmax(-1) == reference.argmax(-1)).float().mean().item()


def assert_close(family, out, reference, dtype, what=""):
    if family == "gpt2" and dtype != torch.float32:
        agreement = top1_agreement(out, reference)
        assert agreement >= TOP1[dtype], f"{what}: top-1 agreement {agreement:.3f} < {TOP1[dtype]} in {dtype}"
        return
    scale = reference.abs().max().item()
    error = (out - reference).abs().max().item()
    assert error <= TOL[dtype] * scale, f"{what}: max error {error:.3g} > {TOL[dtype]} x {scale:.3g} in {dtype}"
