"""The book's ch. 15 U-Net (markhliu/DGAI utils/unet_util.py, simple-diffusion's layout) is a different architecture
from genzoo's: refused with the reasons. Its module layout is re-created here (names, nesting, shapes; no forward)."""
import pytest
import torch
import torch.nn as nn

from genzoo import diffusion
from genzoo.errors import CheckpointError, HubError


class BookResidualBlock(nn.Module):   # conv -> GroupNorm -> SiLU, twice; a 1x1 conv on the skip when widths differ
    def __init__(self, c_in, c_out, temb):
        super().__init__()
        self.time_emb_proj = nn.Sequential(nn.SiLU(), nn.Linear(temb, c_out))
        self.residual_conv = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.conv1, self.conv2 = nn.Conv2d(c_in, c_out, 3, padding=1), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.norm1, self.norm2 = nn.GroupNorm(8, c_out), nn.GroupNorm(8, c_out)


class BookLayerNorm(nn.Module):   # channel LayerNorm with a gain and no bias
    def __init__(self, dim):
        super().__init__()
        self.g = nn.Parameter(torch.ones(1, dim, 1, 1))


class BookAttention(nn.Module):   # 4 heads of 32 channels through 1x1 convs
    def __init__(self, dim, heads=4, dim_head=32):
        super().__init__()
        self.to_qkv = nn.Conv2d(dim, heads * dim_head * 3, 1, bias=False)
        self.to_out = nn.Conv2d(heads * dim_head, dim, 1)


class BookPreNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.fn, self.norm = BookAttention(dim), BookLayerNorm(dim)


class BookResidual(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.fn = BookPreNorm(dim)


class BookUNet(nn.Module):
    def __init__(self, in_channels=3, hidden_dims=(16, 32, 64)):
        super().__init__()
        temb = hidden_dims[0] * 4
        self.time_embedding = nn.Sequential(nn.Linear(hidden_dims[0], temb), nn.SiLU(), nn.Linear(temb, temb))
        self.init_conv = nn.Conv2d(in_channels, hidden_dims[0], 3, padding=1)
        down, c = [], hidden_dims[0]
        for i, h in enumerate(hidden_dims[1:]):
            last = i >= len(hidden_dims) - 2
            down.append(nn.ModuleList([
                BookResidualBlock(c, c, temb), BookResidualBlock(c, c, temb),
                BookResidual(c) if last else nn.Identity(),
                nn.Conv2d(c, h, 3, padding=1) if last else nn.Sequential(nn.Identity(), nn.Conv2d(4 * c, h, 1))]))
            c = h
        self.down_blocks = nn.ModuleList(down)
        self.mid_block1, self.mid_attn = BookResidualBlock(c, c, temb), BookResidual(c)
        self.mid_block2 = BookResidualBlock(c, c, temb)
        up = []
        for i, h in enumerate(reversed(hidden_dims[:-1])):
            last = i >= len(hidden_dims) - 2
            up.append(nn.ModuleList([
                BookResidualBlock(c + h, c, temb), BookResidualBlock(c + h, c, temb),
                BookResidual(c) if last else nn.Identity(),
                nn.Conv2d(c, h, 3, padding=1) if last else nn.Sequential(nn.Upsample(scale_factor=2),
                                                                         nn.Conv2d(c, h, 3, padding=1))]))
            c = h
        self.up_blocks = nn.ModuleList(up)
        self.out_block = BookResidualBlock(hidden_dims[0] * 2, hidden_dims[0], temb)
        self.conv_out = nn.Conv2d(hidden_dims[0], 3, 1)


@pytest.mark.parametrize("prefix", ["", "_orig_mod."])
def test_book_unet_is_refused_with_the_reasons(tmp_path, prefix):
    state_dict = {prefix + k: v for k, v in BookUNet().state_dict().items()}
    assert "mid_attn.fn.norm.g" in BookUNet().state_dict()   # the layout the refusal names
    torch.save(state_dict, tmp_path / "diffusion.pth")
    with pytest.raises(CheckpointError, match=r"book's ch. 15.*unet_util.py.*normalise after each conv.*"
                                              r"pixel-unshuffle.*LayerNorm.*UNet class"):
        diffusion.from_pretrained(tmp_path / "diffusion.pth")


def test_book_unet_with_a_config_json_beside_it_is_refused_the_same_way(tmp_path):
    torch.save(BookUNet().state_dict(), tmp_path / "diffusion.pth")
    (tmp_path / "config.json").write_text('{"hidden_dims": [16, 32, 64]}')
    with pytest.raises(CheckpointError, match="book's ch. 15"):
        diffusion.from_pretrained(tmp_path / "diffusion.pth")


def test_another_bare_file_keeps_the_missing_config_error(tmp_path):
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "w.pth")
    with pytest.raises(HubError, match="no config.json"):
        diffusion.from_pretrained(tmp_path / "w.pth")
