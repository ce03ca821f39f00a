"""nanoGPT's model.py (karpathy/nanoGPT), re-created for the tests: nanoGPT is not a package. Module names and
arithmetic are its own: nn.Linear layers under transformer.h.N, LayerNorm with an optional bias (eps 1e-5), the
exact GELU (nn.GELU()), lm_head tied to wte. Not genzoo code: only the tests use it."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class NanoBlock(nn.Module):
    """nanoGPT's model.py Block, re-created for the test (nanoGPT is not a package)."""

    def __init__(self, n_embd, n_head, bias):
        super().__init__()
        self.n_head = n_head
        self.ln_1 = nn.LayerNorm(n_embd, bias=bias)
        self.attn = nn.Module()
        self.attn.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.attn.c_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.ln_2 = nn.LayerNorm(n_embd, bias=bias)
        self.mlp = nn.Module()
        self.mlp.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.mlp.c_proj = nn.Linear(4 * n_embd, n_embd, bias=bias)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.attn.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
        x = x + self.attn.c_proj(y)
        return x + self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(x))))  # nn.GELU(): the exact erf form


class NanoGPT(nn.Module):
    def __init__(self, n_layer, n_head, n_embd, block_size, bias, vocab_size, dropout):
        super().__init__()
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(vocab_size, n_embd), wpe=nn.Embedding(block_size, n_embd),
            h=nn.ModuleList(NanoBlock(n_embd, n_head, bias) for _ in range(n_layer)),
            ln_f=nn.LayerNorm(n_embd, bias=bias)))
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight

    def forward(self, idx):
        x = self.transformer.wte(idx) + self.transformer.wpe(torch.arange(idx.shape[1]))
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))


def load_like_nanogpt_sample(path) -> NanoGPT:
    """What nanoGPT's sample.py does with ckpt.pt (strict load_state_dict of checkpoint["model"])."""
    checkpoint = torch.load(path, weights_only=True)
    model = NanoGPT(**checkpoint["model_args"])
    model.load_state_dict(checkpoint["model"])
    return model.eval()
