import pytest
import torch

from genzoo.errors import ConfigError
from genzoo.nn import attention, attention_backend, available_backends, register_backend, set_attention_backend
from genzoo.nn.attention import current_backend, set_model_backend


def _qkv(seed=0, b=2, h=3, tq=5, tk=5, d=8):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, h, tq, d, generator=g), torch.randn(b, h, tk, d, generator=g),
            torch.randn(b, h, tk, d, generator=g))


@pytest.mark.parametrize("causal", [False, True])
def test_math_and_sdpa_agree(causal):
    q, k, v = _qkv()
    ref = attention(q, k, v, is_causal=causal, backend="sdpa")
    got = attention(q, k, v, is_causal=causal, backend="math")
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)


def test_masks_agree_bool_and_additive():
    q, k, v = _qkv(tq=3, tk=6)
    keep = torch.rand(2, 1, 3, 6, generator=torch.Generator().manual_seed(1)) > 0.3
    keep[..., 0] = True  # every query sees at least one key
    additive = torch.zeros(keep.shape).masked_fill(~keep, float("-inf"))
    ref = attention(q, k, v, mask=keep, backend="sdpa")
    for mask in (keep, additive):
        torch.testing.assert_close(attention(q, k, v, mask=mask, backend="math"), ref, atol=1e-5, rtol=1e-5)


def test_causal_masks_future_keys():
    q, k, v = _qkv(b=1, h=1, tq=4, tk=4)
    out = attention(q, k, v, is_causal=True, backend="math")
    v2 = v.clone()
    v2[..., 3, :] += 100.0  # only the last query may see the last key
    out2 = attention(q, k, v2, is_causal=True, backend="math")
    torch.testing.assert_close(out[..., :3, :], out2[..., :3, :])
    assert not torch.allclose(out[..., 3, :], out2[..., 3, :])


def test_backend_selection_precedence():
    calls = []

    @register_backend("spy")
    def spy(q, k, v, mask, is_causal, dropout):
        calls.append("spy")
        return v

    q, k, v = _qkv()
    assert "spy" in available_backends()
    with attention_backend("spy"):
        attention(q, k, v)
        assert current_backend() == "spy"
        attention(q, k, v, backend="sdpa")  # the call's own choice wins
    assert calls == ["spy"] and current_backend() == "sdpa"
    set_attention_backend("spy")
    try:
        attention(q, k, v)
    finally:
        set_attention_backend("sdpa")
    assert calls == ["spy", "spy"]


def test_unknown_backend_and_both_masks_refused():
    q, k, v = _qkv()
    with pytest.raises(ConfigError, match="unknown attention backend 'flash3'"):
        attention(q, k, v, backend="flash3")
    with pytest.raises(ConfigError, match="unknown attention backend"):
        set_attention_backend("nope")
    with pytest.raises(ConfigError, match="either mask or is_causal"):
        attention(q, k, v, mask=torch.ones(5, 5, dtype=torch.bool), is_causal=True)


def test_every_family_attention_goes_through_the_swap_point():
    from genzoo import diffusion, gpt2, vae

    calls = []

    @register_backend("counting")
    def counting(q, k, v, mask, is_causal, dropout):
        calls.append(q.shape)
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)

    torch.manual_seed(0)
    gpt = gpt2.GPT(gpt2.GPTConfig(vocab_size=50, n_positions=16, n_embd=16, n_layer=2, n_head=2)).eval()
    unet = diffusion.UNet(diffusion.UNetConfig(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16),
                                               down_attention=(False, True), up_attention=(False, True),
                                               layers_per_block=1, norm_num_groups=4)).eval()
    kl = vae.AutoencoderKL(vae.AutoencoderKLConfig(block_out_channels=(8, 8), layers_per_block=1, latent_channels=2,
                                                   norm_num_groups=4)).eval()
    with torch.no_grad():
        ids = torch.randint(0, 50, (1, 6))
        base = gpt(ids)
        unet_base = unet(torch.zeros(1, 1, 8, 8), 3)
        for model in (gpt, unet, kl):
            set_model_backend(model, "counting")
        torch.testing.assert_close(gpt(ids), base)
        n_gpt = len(calls)
        torch.testing.assert_close(unet(torch.zeros(1, 1, 8, 8), 3), unet_base)
        n_unet = len(calls) - n_gpt
        kl.decode(torch.randn(1, 2, 4, 4))
        n_kl = len(calls) - n_gpt - n_unet
    assert n_gpt == 2 and n_unet >= 1 and n_kl >= 1
