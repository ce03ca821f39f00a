"""The book's ch. 15 U-Net (simple-diffusion's layout) is a different architecture: refused with that explanation."""
import pytest
import torch

from genzoo import diffusion
from genzoo.errors import CheckpointError, HubError


def test_book_unet_is_refused_with_the_reason(tmp_path):
    # the keys that tell the layout apart (shapes do not matter for the refusal)
    state_dict = {"init_conv.weight": torch.zeros(8, 3, 3, 3), "mid_block1.conv1.weight": torch.zeros(8, 8, 3, 3),
                  "conv_out.weight": torch.zeros(3, 8, 1, 1)}
    torch.save(state_dict, tmp_path / "diffusion.pth")
    with pytest.raises(CheckpointError, match="book's ch. 15.*different architecture"):
        diffusion.from_pretrained(tmp_path / "diffusion.pth")


def test_another_bare_file_keeps_the_missing_config_error(tmp_path):
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "w.pth")
    with pytest.raises(HubError, match="no config.json"):
        diffusion.from_pretrained(tmp_path / "w.pth")
