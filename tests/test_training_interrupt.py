"""Ctrl-C during training saves a resumable run and says how to continue; folders without a state lead somewhere;
every family ends with the same line (genzoo.training.summary)."""
import os
import signal
import subprocess
import sys
import time

import pytest

from genzoo import training
from genzoo.errors import CheckpointError, ConfigError
from genzoo.gpt2.train import TrainConfig, train

TINY = dict(n_layer=1, n_head=2, n_embd=16, block_size=16, batch_size=2, eval_iters=1, progress=False, device="cpu",
            threads=1)
TINY_ARGS = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "2",
             "--eval-iters", "1", "--threads", "1", "--no-progress", "--log-every", "1"]


def _genzoo(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "genzoo", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}, **kwargs)


def test_ctrl_c_saves_a_resumable_state_and_resume_continues(tmp_path):
    out = tmp_path / "run"
    proc = _genzoo("train", "gpt2", "--out", str(out), "--steps", "100000", "--save-every", "100000",
                   "--sample-every", "100000", "--eval-every", "100000", *TINY_ARGS)
    deadline = time.time() + 120
    while not (out / "log.jsonl").is_file() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "saving the run at the end of this step" in err and "--resume" in err and "Traceback" not in err
    state = training.load_state(out / training.STATE_NAME)
    step = int(state["step"])
    assert step >= 1 and (out / "model.safetensors").is_file()
    resumed = train(TrainConfig(out_dir=str(out), resume=True, steps=step + 2, eval_every=100000,
                                save_every=100000, sample_every=100000, log_every=1, **TINY))
    assert resumed.start_step == step and resumed.step == step + 2 and resumed.trained_steps == 2
    assert "trained gpt2 to step" in training.summary(resumed, "genzoo generate x")


def test_a_folder_without_state_gets_a_message_that_leads_somewhere(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(CheckpointError, match="does not exist.*without --resume"):
        train(TrainConfig(out_dir=str(out), resume=True, steps=2, **TINY))
    out.mkdir()
    (out / training.LOG_NAME).write_text('{"step": 1, "loss": 3.0}\n')   # killed before its first save
    with pytest.raises(CheckpointError, match="stopped before its first save.*--overwrite"):
        train(TrainConfig(out_dir=str(out), resume=True, steps=2, **TINY))
    with pytest.raises(ConfigError, match="stopped before its first save.*nothing to resume.*--overwrite"):
        train(TrainConfig(out_dir=str(out), steps=2, **TINY))
    result = train(TrainConfig(out_dir=str(out), steps=2, overwrite=True, eval_every=100000, **TINY))
    assert result.step == 2


def test_resuming_a_finished_run_with_fewer_steps_writes_nothing_and_says_so(tmp_path):
    out = tmp_path / "run"
    train(TrainConfig(out_dir=str(out), steps=3, eval_every=100000, **TINY))
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = train(TrainConfig(out_dir=str(out), resume=True, steps=2, **TINY))
    assert again.trained_steps == 0 and again.step == 3
    line = training.summary(again, "genzoo generate x")
    assert line.startswith("nothing to train") and "nothing was written" in line and "saved to" not in line
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
