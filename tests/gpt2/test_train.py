"""The training loop: loss goes down, the run folder, resume continues exactly, DDP under torchrun (gloo, CPU),
fine-tuning with another dropout, accumulation, the CLI."""
import json
import math
import os
import subprocess
import sys

import pytest
import torch

from genzoo import gpt2
from genzoo.cli import main as genzoo_main
from genzoo.errors import CheckpointError, ConfigError
from genzoo.gpt2.train import STATE_NAME, TrainConfig, train

TINY = dict(n_layer=1, n_head=2, n_embd=32, block_size=32, batch_size=8, eval_iters=4, progress=False, device="cpu")


def test_short_run_lowers_the_loss_and_writes_the_run_folder(tmp_path):
    result = train(TrainConfig(out_dir=str(tmp_path), steps=80, eval_every=40, lr=3e-3, warmup_steps=5,
                               sample_every=40, keep_every=40, **TINY))
    assert result.losses["val_loss"] < math.log(65) - 0.7  # a uniform guess over 65 characters is ln 65 = 4.17
    model = gpt2.from_pretrained(tmp_path, device="cpu")
    assert model.tokenizer.vocab_size == 65 and (tmp_path / STATE_NAME).is_file()
    assert len(model.generate_text("ROMEO:", max_new_tokens=10, seed=0)) == 16
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == list(range(10, 81, 10))
    assert "val_loss" in lines[3] and "lr" in lines[0] and "seconds" in lines[0]
    assert (tmp_path / "loss.png").stat().st_size > 1000
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["step-0000040.txt", "step-0000080.txt"]
    kept = gpt2.from_pretrained(tmp_path / "checkpoints" / "step-40", device="cpu")
    assert kept.config.n_embd == 32


def test_resume_continues_exactly_with_the_runs_own_settings(tmp_path):
    constant = dict(lr=2e-3, min_lr=2e-3, warmup_steps=0, eval_every=5, **TINY)
    train(TrainConfig(out_dir=str(tmp_path / "a"), steps=6, **constant))
    # a resume needs no architecture flags: the run's n_embd etc. come from its train_state.pt
    resumed = train(TrainConfig(out_dir=str(tmp_path / "a"), steps=12, resume=True, progress=False, device="cpu",
                                lr=2e-3, min_lr=2e-3, warmup_steps=0, eval_every=5, eval_iters=4))
    straight = train(TrainConfig(out_dir=str(tmp_path / "b"), steps=12, **constant))
    assert resumed.step == straight.step == 12
    a = gpt2.from_pretrained(tmp_path / "a", device="cpu").state_dict()
    b = gpt2.from_pretrained(tmp_path / "b", device="cpu").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.losses["val_loss"] == pytest.approx(straight.losses["val_loss"])
    with pytest.raises(ConfigError, match="n_embd=64"):
        train(TrainConfig(out_dir=str(tmp_path / "a"), steps=14, resume=True, **{**constant, "n_embd": 64}))


def test_resume_without_state_and_fresh_run_over_a_run_are_errors(tmp_path):
    with pytest.raises(CheckpointError, match="cannot resume"):
        train(TrainConfig(out_dir=str(tmp_path), resume=True, **TINY))
    train(TrainConfig(out_dir=str(tmp_path), steps=2, eval_every=2, **TINY))
    before = (tmp_path / "model.safetensors").read_bytes()
    with pytest.raises(ConfigError, match="--overwrite"):
        train(TrainConfig(out_dir=str(tmp_path), steps=3, eval_every=3, **TINY))
    assert (tmp_path / "model.safetensors").read_bytes() == before
    assert train(TrainConfig(out_dir=str(tmp_path), steps=3, eval_every=3, overwrite=True, **TINY)).step == 3


def test_accumulating_four_micro_batches_equals_one_batch(tmp_path):
    common = dict(steps=3, eval_every=3, lr=3e-3, warmup_steps=0, **TINY)
    train(TrainConfig(out_dir=str(tmp_path / "one"), **common))
    train(TrainConfig(out_dir=str(tmp_path / "four"), grad_accum=4, **common))
    a = gpt2.from_pretrained(tmp_path / "one", device="cpu").state_dict()
    b = gpt2.from_pretrained(tmp_path / "four", device="cpu").state_dict()
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5


def test_a_user_built_model_and_fine_tuning_with_another_dropout(tmp_path):
    from genzoo.gpt2.model import GPT, GPTConfig
    from genzoo.gpt2.tokenizer import CharTokenizer

    text = "abcabcabd" * 200
    tok = CharTokenizer.from_text(text)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, n_positions=16, n_layer=1, n_head=1, n_embd=8,
                          tokenizer=tok.to_config(), bos_token_id=0, eos_token_id=None))
    result = train(TrainConfig(out_dir=str(tmp_path / "mine"), steps=2, eval_every=2, block_size=16, batch_size=4,
                               eval_iters=2, progress=False, device="cpu"), data=text, model=model)
    assert result.model is model and gpt2.from_pretrained(tmp_path / "mine").config.n_embd == 8
    seen = {}
    import genzoo.gpt2.train as gpt2_train

    original = gpt2_train.make_optimizer

    def spy(model, cfg):
        seen["dropout"] = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
        return original(model, cfg)

    gpt2_train.make_optimizer = spy
    try:
        train(TrainConfig(out_dir=str(tmp_path / "tuned"), init_from=str(tmp_path / "mine"), dropout=0.2, data="x",
                          steps=1, eval_every=1, block_size=16, batch_size=4, eval_iters=1, progress=False,
                          device="cpu"), data=text)
    finally:
        gpt2_train.make_optimizer = original
    assert seen["dropout"] and set(seen["dropout"]) == {0.2}
    with pytest.raises(ConfigError, match="n_embd=8; n_embd=64 cannot apply"):
        train(TrainConfig(out_dir=str(tmp_path / "bad"), init_from=str(tmp_path / "mine"), n_embd=64, steps=1,
                          block_size=16, device="cpu", progress=False), data=text)


def test_torchrun_two_processes_gloo(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "genzoo",
           "train", "gpt2", "--out", str(tmp_path), "--steps", "8", "--eval-every", "4", "--eval-iters", "2",
           "--n-layer", "1", "--n-embd", "16", "--n-head", "2", "--block-size", "16", "--batch-size", "4",
           "--device", "cpu", "--no-progress"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("trained gpt2 to step 8") == 1  # only rank 0 reports and saves
    state = torch.load(tmp_path / STATE_NAME, weights_only=True)
    assert state["step"] == 8 and len(state["rng"]) == 2
    assert not torch.equal(state["rng"][0]["data"], state["rng"][1]["data"])  # each rank its own batches
    gpt2.from_pretrained(tmp_path, device="cpu")


def test_cli_generate_and_train(tmp_path, capsys):
    argv = ["train", "gpt2", "--out", str(tmp_path), "--steps", "3", "--eval-every", "3", "--eval-iters", "1",
            "--n-layer", "1", "--n-embd", "16", "--n-head", "2", "--block-size", "16", "--no-progress"]
    assert genzoo_main(argv) == 0
    capsys.readouterr()
    assert genzoo_main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert genzoo_main(["generate", "ROMEO:", "--model", str(tmp_path), "--max-new-tokens", "20", "--seed", "3",
                        "--temperature", "0.9", "--top-k", "10", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    model = gpt2.from_pretrained(tmp_path, device="cpu")
    assert printed == model.generate_text("ROMEO:", max_new_tokens=20, seed=3, temperature=0.9, top_k=10) + "\n"
    assert genzoo_main(["generate", "x", "--model", str(tmp_path), "--temperature", "-1"]) == 2
    assert "temperature" in capsys.readouterr().err
    assert genzoo_main(["generate", "x", "--model", "no-such-model"]) == 2
    text = tmp_path / "corpus.txt"
    text.write_text("to be or not to be, that is the question\n" * 40, encoding="utf-8")
    assert genzoo_main(["train", "gpt2", "--data", str(text), "--out", str(tmp_path / "own"), "--steps", "2",
                        "--eval-every", "2", "--eval-iters", "1", "--n-layer", "1", "--n-embd", "16", "--n-head", "2",
                        "--block-size", "16", "--batch-size", "2", "--no-progress"]) == 0
    assert set(gpt2.from_pretrained(tmp_path / "own").tokenizer.chars) == set(text.read_text())
    assert (tmp_path / "own" / "samples" / "step-0000002.txt").is_file()
    capsys.readouterr()
    with pytest.raises(SystemExit):
        genzoo_main(["train", "gpt2", "--help"])
    assert "(default: 1000)" in capsys.readouterr().out


def _files(folder):
    """Every file under folder with its bytes and modification time: a run left untouched keeps all three."""
    return {p.relative_to(folder): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def test_steps_0_evaluates_the_starting_model_like_nanogpts_eval_only(tmp_path, capsys):
    """The loop's evaluation (train/val loss over eval_iters batches) of the model a run would start from, for a
    resumed run, a fine-tune and a given model; a run's folder is only read, a new folder gets one log line."""
    run = tmp_path / "run"
    trained = train(TrainConfig(out_dir=str(run), steps=4, eval_every=4, **TINY))
    before = _files(run)
    capsys.readouterr()
    resumed = train(TrainConfig(out_dir=str(run), steps=0, resume=True, progress=False, device="cpu"))
    assert "evaluation of the gpt2 model at step 4" in capsys.readouterr().out
    assert resumed.eval_only and resumed.step == 4 and set(resumed.losses) == {"train_loss", "val_loss"}
    # the same batches as the loop's last evaluation, on the same weights: the same numbers
    assert resumed.losses["val_loss"] == pytest.approx(trained.losses["val_loss"], abs=1e-6)
    assert resumed.losses["train_loss"] == pytest.approx(trained.losses["train_loss"], abs=1e-6)
    assert _files(run) == before
    tuned = train(TrainConfig(out_dir=str(tmp_path / "tuned"), init_from=str(run), steps=0, **TINY))
    model = gpt2.from_pretrained(run, device="cpu")
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    given = train(TrainConfig(out_dir=str(tmp_path / "given"), steps=0, **TINY), model=model)
    assert tuned.losses == pytest.approx(resumed.losses, abs=1e-6) and given.losses == tuned.losses
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())  # not trained
    for folder in ("tuned", "given"):  # no model, no state, no samples: the evaluation line only
        assert sorted(p.name for p in (tmp_path / folder).iterdir()) == ["log.jsonl"]
        (line,) = (tmp_path / folder / "log.jsonl").read_text().splitlines()
        assert json.loads(line)["step"] == 0 and json.loads(line)["val_loss"] == pytest.approx(tuned.losses["val_loss"])
    scratch = train(TrainConfig(out_dir=str(tmp_path / "scratch"), steps=0, **TINY))
    assert abs(scratch.losses["val_loss"] - math.log(65)) < 0.3  # an untrained model: about a uniform guess
    for config in (dict(), dict(overwrite=True)):  # steps=0 never replaces a run, overwrite or not
        with pytest.raises(ConfigError, match="never replaces a run"):
            train(TrainConfig(out_dir=str(run), steps=0, **config, **TINY))
    assert _files(run) == before
    with pytest.raises(ConfigError, match="steps must be >= 0"):
        TrainConfig(steps=-1)


def test_cli_steps_0(tmp_path, capsys):
    argv = ["train", "gpt2", "--out", str(tmp_path / "run"), "--eval-iters", "1", "--n-layer", "1", "--n-embd", "16",
            "--n-head", "2", "--block-size", "16", "--no-progress", "--device", "cpu"]
    assert genzoo_main(argv + ["--steps", "2", "--eval-every", "2"]) == 0
    before = _files(tmp_path / "run")
    capsys.readouterr()
    assert genzoo_main(["train", "gpt2", "--out", str(tmp_path / "run"), "--steps", "0", "--resume",
                        "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "at step 2" in printed and "val_loss" in printed and "saved to" not in printed
    assert genzoo_main(argv + ["--steps", "0", "--overwrite"]) == 2
    assert "never replaces a run" in capsys.readouterr().err
    assert _files(tmp_path / "run") == before
