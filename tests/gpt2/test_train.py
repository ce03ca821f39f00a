"""The training loop: loss goes down, resume continues exactly, DDP under torchrun (gloo, CPU); the CLI."""
import math
import os
import subprocess
import sys

import pytest
import torch

from genzoo import gpt2
from genzoo.cli import main as genzoo_main
from genzoo.gpt2.train import STATE_NAME, TrainConfig, train

TINY = dict(n_layer=1, n_head=2, n_embd=32, block_size=32, batch_size=8, eval_iters=4, progress=False, device="cpu")


def test_short_run_lowers_the_loss(tmp_path):
    result = train(TrainConfig(out_dir=str(tmp_path), max_iters=80, eval_interval=40, learning_rate=3e-3,
                               warmup_iters=5, **TINY))
    assert result["val_loss"] < math.log(65) - 0.7  # a uniform guess over 65 characters is ln 65 = 4.17
    model = gpt2.from_pretrained(tmp_path, device="cpu")
    assert model.tokenizer.vocab_size == 65 and (tmp_path / STATE_NAME).is_file()
    assert len(model.generate_text("ROMEO:", max_new_tokens=10, seed=0)) == 16


def test_resume_continues_exactly(tmp_path):
    constant = dict(learning_rate=2e-3, min_lr=2e-3, warmup_iters=0, eval_interval=5, **TINY)
    train(TrainConfig(out_dir=str(tmp_path / "a"), max_iters=6, **constant))
    resumed = train(TrainConfig(out_dir=str(tmp_path / "a"), max_iters=12, resume=True, **constant))
    straight = train(TrainConfig(out_dir=str(tmp_path / "b"), max_iters=12, **constant))
    assert resumed["step"] == straight["step"] == 12
    a = gpt2.from_pretrained(tmp_path / "a", device="cpu").state_dict()
    b = gpt2.from_pretrained(tmp_path / "b", device="cpu").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["val_loss"] == pytest.approx(straight["val_loss"])


def test_resume_without_state_is_a_clear_error(tmp_path):
    from genzoo.errors import CheckpointError

    with pytest.raises(CheckpointError, match="cannot resume"):
        train(TrainConfig(out_dir=str(tmp_path), resume=True, **TINY))


def test_torchrun_two_processes_gloo(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "genzoo",
           "train", "gpt2", "--out", str(tmp_path), "--max-iters", "8", "--eval-interval", "4", "--eval-iters", "2",
           "--n-layer", "1", "--n-embd", "16", "--n-head", "2", "--block-size", "16", "--batch-size", "4",
           "--device", "cpu", "--no-progress"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("step 8:") == 1  # only rank 0 reports and saves
    state = torch.load(tmp_path / STATE_NAME, weights_only=True)
    assert state["step"] == 8
    gpt2.from_pretrained(tmp_path, device="cpu")


def test_cli_generate_and_train(tmp_path, capsys):
    assert genzoo_main(["train", "gpt2", "--out", str(tmp_path), "--max-iters", "3", "--eval-interval", "3",
                        "--eval-iters", "1", "--n-layer", "1", "--n-embd", "16", "--n-head", "2", "--block-size", "16",
                        "--no-progress"]) == 0
    capsys.readouterr()
    assert genzoo_main(["generate", "ROMEO:", "--model", str(tmp_path), "--max-new-tokens", "20", "--seed", "3",
                        "--temperature", "0.9", "--top-k", "10", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    model = gpt2.from_pretrained(tmp_path, device="cpu")
    assert printed == model.generate_text("ROMEO:", max_new_tokens=20, seed=3, temperature=0.9, top_k=10) + "\n"
    assert genzoo_main(["generate", "x", "--model", str(tmp_path), "--temperature", "-1"]) == 2
    assert "temperature" in capsys.readouterr().err
    assert genzoo_main(["generate", "x", "--model", "no-such-model"]) == 2
