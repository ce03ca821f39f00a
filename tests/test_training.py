"""The common training layer: the image-folder loader, the run-folder rules, resume settings, accumulation,
precision, the loss plot, and a 2-process gloo run interrupted and resumed (== the uninterrupted run)."""
import json
import os
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from PIL import Image

from genzoo import data, training
from genzoo.errors import CheckpointError, ConfigError


def _save(path, size, mode="RGB", value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value, 0, 255 - value)).save(path)


def test_image_folder_is_recursive_and_infers_size_and_channels(tmp_path):
    _save(tmp_path / "a" / "0.png", (20, 10), "L")
    _save(tmp_path / "a" / "deep" / "1.JPG", (20, 10), "L")
    _save(tmp_path / "b" / "2.webp", (20, 10), "L")
    _save(tmp_path / "b" / "3.bmp", (30, 30), "L")
    _save(tmp_path / ".hidden" / "4.png", (20, 10), "RGB")  # skipped: a hidden folder
    (tmp_path / "notes.txt").write_text("not an image")
    folder = data.ImageFolder(tmp_path, labels=True)
    assert len(folder) == 4 and folder.size == (10, 20) and folder.channels == 1  # the most common size
    assert folder.classes == ["a", "b"] and folder.labels == [0, 0, 1, 1]
    images, labels = folder.load()
    assert images.shape == (4, 1, 10, 20) and labels.tolist() == [0, 0, 1, 1]
    assert images.min() >= -1 and images.max() <= 1
    _save(tmp_path / "b" / "5.png", (20, 10), "RGB")
    assert data.ImageFolder(tmp_path).channels == 3  # one colour image: RGB for all
    assert data.ImageFolder(tmp_path, size=8, channels=1).load()[0].shape == (5, 1, 8, 8)


def test_image_folder_fit_crop_keeps_the_aspect_stretch_does_not(tmp_path):
    image = np.zeros((10, 30, 3), dtype=np.uint8)
    image[:, 10:20] = 255  # a white band in the middle third
    Image.fromarray(image).save(tmp_path / "x.png")
    crop = data.ImageFolder(tmp_path, size=10, fit="crop").load()[0][0]
    stretch = data.ImageFolder(tmp_path, size=10, fit="stretch").load()[0][0]
    assert crop.mean() > 0.9  # the centre 10x10: all white
    assert -0.6 < stretch.mean() < 0  # the whole image squeezed: one third white


def test_image_folder_errors(tmp_path):
    with pytest.raises(ConfigError, match="no image folder"):
        data.ImageFolder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no images"):
        data.ImageFolder(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"not a png")
    with pytest.raises(ConfigError, match="x.png"):
        data.ImageFolder(tmp_path / "bad")
    with pytest.raises(ConfigError, match="fit"):
        _save(tmp_path / "ok" / "0.png", (4, 4))
        data.ImageFolder(tmp_path / "ok", fit="zoom")


def test_augment_flips_and_crops_from_the_generator():
    images = torch.arange(2 * 1 * 4 * 6, dtype=torch.float32).view(2, 1, 4, 6)
    assert torch.equal(data.augment(images, torch.Generator()), images)  # off by default
    flipped = data.augment(images, torch.Generator().manual_seed(0), flip=True)
    for x, y in zip(images, flipped):
        assert torch.equal(y, x) or torch.equal(y, x.flip(-1))
    again = data.augment(images, torch.Generator().manual_seed(0), flip=True, crop=(3, 3))
    assert again.shape == (2, 1, 3, 3)
    assert torch.equal(again, data.augment(images, torch.Generator().manual_seed(0), flip=True, crop=(3, 3)))
    a, b = data.side_by_side(torch.zeros(1, 3, 4, 8))
    assert a.shape == b.shape == (1, 3, 4, 4)


def test_epoch_indices_are_a_function_of_the_step_with_disjoint_ranks():
    n, batch, world = 20, 3, 2
    steps = training.steps_per_epoch(n, batch, world)  # 3 steps of 2 x 3 examples
    epoch = [training.epoch_indices(n, batch, s, seed=1, rank=r, world=world) for s in range(steps) for r in range(2)]
    seen = torch.cat(epoch)
    assert len(set(seen.tolist())) == len(seen) == 18  # no example twice in an epoch, across ranks
    assert torch.equal(training.epoch_indices(n, batch, 2, 1, 1, 2), epoch[5])
    assert not torch.equal(training.epoch_indices(n, batch, steps, 1), training.epoch_indices(n, batch, 0, 1))
    assert training.epoch_indices(2, 5, 0, 0).tolist().count(0) >= 2  # a folder smaller than a batch cycles


@dataclass
class Config(training.TrainConfig):
    width: int = 8
    data: str = "mnist"


def test_resume_takes_the_runs_settings_and_refuses_contradictions():
    saved = {"width": 32, "data": "faces", "lr": 0.5, "steps": 900, "out_dir": "elsewhere", "seed": 3}
    resumed = training.resolve_resume_config(Config(out_dir="run", steps=1000, lr=0.1), saved, ("width", "data"))
    assert (resumed.width, resumed.data, resumed.seed) == (32, "faces", 3)  # not given: the run's
    assert (resumed.steps, resumed.lr, resumed.out_dir) == (1000, 0.1, "run")  # given: a longer run, a new lr
    with pytest.raises(ConfigError, match="width=16 \\(the run used 32\\)"):
        training.resolve_resume_config(Config(width=16), saved, ("width", "data"))
    typed = Config(width=8)
    typed.explicit_fields = {"width"}  # typed on the command line, even at its default value: refused
    with pytest.raises(ConfigError, match="width=8"):
        training.resolve_resume_config(typed, saved, ("width",))


def test_config_checks():
    for bad in (dict(steps=-1), dict(grad_accum=0), dict(batch_size=2, grad_accum=3), dict(dtype="fp8"),
                dict(keep_every=-1), dict(lr=0), dict(epochs=0)):
        with pytest.raises(ConfigError):
            training.TrainConfig(**bad)
    assert training.TrainConfig(epochs=3).total_steps(7) == 21 and training.TrainConfig(steps=5).total_steps(7) == 5
    assert training.TrainConfig(steps=0).eval_only and not training.TrainConfig(steps=0, epochs=2).eval_only
    with pytest.raises(ConfigError, match="CUDA"):
        training.resolve_precision("float16", torch.device("cpu"))
    assert training.resolve_precision("auto", torch.device("cpu")) == torch.float32
    assert training.resolve_precision("bfloat16", torch.device("cpu")) == torch.bfloat16


def test_run_folder_rules(tmp_path):
    config = training.TrainConfig(out_dir=str(tmp_path / "run"), device="cpu", progress=False)
    with pytest.raises(CheckpointError, match="cannot resume: .*(does not exist|no train_state.pt).*without --resume"):
        training.Run(training.TrainConfig(out_dir=str(tmp_path / "run"), resume=True), family="gpt2")
    model, opt = torch.nn.Linear(2, 2), None
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with training.Run(config, family="vae") as run:
        run.progress(4)
        run.log(4, {"loss": 1.0})
        (run.out_dir / "samples").mkdir()
        run.save(4, lambda folder: (folder / "config.json").write_text("{}"), {"m": model}, {"o": opt})
    (tmp_path / "run" / "mine.txt").write_text("the user's")
    with pytest.raises(ConfigError, match="--overwrite"):
        training.Run(config, family="vae")
    with pytest.raises(CheckpointError, match="holds a vae run, not gpt2"):
        training.Run(training.TrainConfig(out_dir=str(tmp_path / "run"), resume=True), family="gpt2")
    overwrite = training.TrainConfig(out_dir=str(tmp_path / "run"), overwrite=True)
    with training.Run(overwrite, family="vae"):
        pass
    left = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert left == ["config.json", "mine.txt"]  # the run's files are gone, nothing else was touched
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "train_state.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="not a readable training state"):
        training.Run(training.TrainConfig(out_dir=str(tmp_path / "bad"), resume=True), family="vae")


def test_log_truncated_on_resume_and_the_loss_plot(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps({"step": s, "loss": 1 / s, "d": s / 10}) + "\n" for s in range(1, 9)))
    png = training.plot_losses(log, tmp_path / "loss.png")
    pixels = np.asarray(Image.open(png).convert("RGB"))
    for color in training.COLORS[:2]:  # both curves drawn in their colours
        assert (pixels == color).all(-1).sum() > 50
    model = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    # a run that saved at step 4 but logged up to 6 (overwrite=True: replaces the log above)
    config = training.TrainConfig(out_dir=str(tmp_path), overwrite=True, progress=False, log_every=1)
    with training.Run(config, family="x") as run:
        run.progress(6)
        for step in range(1, 7):
            run.log(step, {"loss": float(step)})
            if step == 4:
                run.save(4, lambda folder: None, {"m": model}, {"o": opt})
    resumed = training.TrainConfig(out_dir=str(tmp_path), resume=True, progress=False)
    with training.Run(resumed, family="x") as run:
        assert run.step == 4
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert steps == [1, 2, 3, 4]  # the lines after the saved step are redone by the resumed run


def test_accumulated_gradients_equal_one_batch_fp32():
    """grad_accum splits a batch into micro-batches weighted by their size: the gradients are the batch's."""
    from genzoo.diffusion.train import TrainConfig, build_unet
    from genzoo.diffusion.schedulers import DDPMScheduler

    torch.manual_seed(0)
    unet = build_unet(TrainConfig(block_out_channels=(8, 16), attention=(False, True), norm_num_groups=4), 1, 8)
    x0, noise = torch.randn(10, 1, 8, 8), torch.randn(10, 1, 8, 8)
    t = torch.randint(0, 1000, (10,))
    scheduler = DDPMScheduler()

    def grads(n):
        unet.zero_grad()
        for (x, e, s), weight in training.micro_batches((x0, noise, t), n):
            (torch.nn.functional.mse_loss(unet(scheduler.add_noise(x, e, s), s), e) * weight).backward()
        return torch.cat([p.grad.flatten() for p in unet.parameters()])

    one, four = grads(1), grads(4)  # 10 examples in 4 parts: sizes 3, 3, 2, 2
    assert (one - four).abs().max() < 1e-5 * max(1.0, one.abs().max().item())


def test_bf16_autocast_trains_on_cpu(tmp_path):
    from genzoo.gpt2.train import TrainConfig, train

    result = train(TrainConfig(out_dir=str(tmp_path), dtype="bfloat16", steps=2, eval_every=2, eval_iters=1,
                               n_layer=1, n_head=2, n_embd=16, block_size=16, batch_size=4, device="cpu",
                               progress=False))
    assert result.step == 2 and np.isfinite(result.losses["val_loss"])
    assert torch.load(tmp_path / "train_state.pt", weights_only=True)["scalers"] == {}  # no scaling in bf16


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 loss scaling needs CUDA")
def test_fp16_grad_scaler_state_is_saved_and_restored(tmp_path):
    from genzoo.diffusion.train import TrainConfig, train

    tiny = dict(block_out_channels=(8, 16), attention=(False, True), norm_num_groups=4, batch_size=4, device="cuda",
                dtype="float16", progress=False, sample_every=0, data="mnist")
    train(TrainConfig(out_dir=str(tmp_path), steps=3, **tiny))
    state = torch.load(tmp_path / "train_state.pt", weights_only=True)
    assert "scale" in state["scalers"]["model"]
    with training.Run(TrainConfig(out_dir=str(tmp_path), resume=True, steps=4, device="cuda"), "diffusion") as run:
        assert run.scaler().get_scale() == state["scalers"]["model"]["scale"]
    train(TrainConfig(out_dir=str(tmp_path), resume=True, steps=5, device="cuda", progress=False))


def _torchrun(args, env):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "genzoo",
           "train", "gpt2", *args, "--n-layer", "1", "--n-embd", "16", "--n-head", "2", "--block-size", "16",
           "--batch-size", "4", "--eval-every", "3", "--eval-iters", "1", "--warmup-steps", "0", "--lr", "3e-3",
           "--min-lr", "3e-3", "--device", "cpu", "--no-progress"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]


def test_two_process_gloo_run_interrupted_and_resumed_equals_the_uninterrupted_run(tmp_path):
    from genzoo import gpt2

    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    _torchrun(["--out", str(tmp_path / "straight"), "--steps", "6"], env)
    _torchrun(["--out", str(tmp_path / "resumed"), "--steps", "3"], env)
    _torchrun(["--out", str(tmp_path / "resumed"), "--steps", "6", "--resume"], env)
    a = gpt2.from_pretrained(tmp_path / "straight", device="cpu").state_dict()
    b = gpt2.from_pretrained(tmp_path / "resumed", device="cpu").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    state = torch.load(tmp_path / "resumed" / "train_state.pt", weights_only=True)
    assert len(state["rng"]) == 2 and not torch.equal(state["rng"][0]["data"], state["rng"][1]["data"])
    # a 2-process run resumed by one process would give rank 1's batches to nobody: refused
    from genzoo.gpt2.train import TrainConfig, train

    with pytest.raises(ConfigError, match="2 process"):
        train(TrainConfig(out_dir=str(tmp_path / "resumed"), resume=True, steps=7, device="cpu", progress=False))


@pytest.mark.parametrize("family,args", [
    ("diffusion", ["--block-out-channels", "8", "16", "--norm-groups", "4", "--batch-size", "4"]),
    ("vae", ["--kind", "mlp", "--hidden", "16", "--latent-dim", "2", "--batch-size", "8"]),
    ("gan", ["--data", "curve", "--batch-size", "8"]),
    ("cyclegan", ["--data", "mnist-invert", "--ngf", "2", "--n-blocks", "1", "--ndf", "2", "--n-layers-d", "1"]),
])
def test_every_family_trains_under_torchrun_with_two_processes(tmp_path, family, args):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "genzoo",
           "train", family, "--out", str(tmp_path), "--steps", "2", "--device", "cpu", "--no-progress", *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    state = torch.load(tmp_path / "train_state.pt", weights_only=True)
    assert state["step"] == 2 and len(state["rng"]) == 2
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 1  # rank 0 writes, once


# (the options of a tiny run, the numbers its evaluation reports) for every family's `genzoo train`
EVAL_ONLY = {
    "gpt2": (["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "4",
              "--eval-iters", "2"], {"train_loss", "val_loss"}),
    "diffusion": (["--block-out-channels", "8", "16", "--norm-groups", "4", "--batch-size", "16"], {"loss"}),
    "vae": (["--kind", "mlp", "--hidden", "16", "--latent-dim", "2", "--batch-size", "256"],
            {"loss", "rec", "kl", "heldout_recon"}),
    "gan": (["--data", "curve", "--batch-size", "64"], {"loss_d", "loss_g", "d_real", "d_fake"}),
    "cyclegan": (["--data", "mnist-invert", "--ngf", "2", "--n-blocks", "1", "--ndf", "2", "--n-layers-d", "1",
                  "--batch-size", "16", "--decay-start", "1"], {"G_gan", "cycle", "idt", "D_A", "D_B"}),
}


def _files(folder):
    return {p.relative_to(folder): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("family", list(EVAL_ONLY))
def test_steps_0_evaluates_without_training_in_every_family(tmp_path, capsys, family):
    """`genzoo train F --steps 0`: the starting model's evaluation, printed; a new folder gets the one log line and
    nothing else; a trained run is evaluated in place with --resume and left byte for byte as it was; a run is
    never replaced by an evaluation, --overwrite or not."""
    from genzoo.cli import main

    options, metrics = EVAL_ONLY[family]
    session = ["--device", "cpu", "--no-progress", "--threads", "1"]
    fresh = tmp_path / "fresh"
    assert main(["train", family, "--out", str(fresh), "--steps", "0", *session, *options]) == 0
    printed = capsys.readouterr().out
    assert f"evaluation of the {family} model at step 0" in printed
    assert sorted(p.name for p in fresh.iterdir()) == ["log.jsonl"]
    (record,) = [json.loads(line) for line in (fresh / "log.jsonl").read_text().splitlines()]
    assert record["step"] == 0 and set(record) - {"step", "seconds"} == metrics
    assert all(np.isfinite(record[k]) for k in metrics)
    run = tmp_path / "run"
    assert main(["train", family, "--out", str(run), "--steps", "2", *session, *options]) == 0
    before = _files(run)
    capsys.readouterr()
    assert main(["train", family, "--out", str(run), "--steps", "0", "--resume", *session]) == 0
    printed = capsys.readouterr().out
    assert f"evaluation of the {family} model at step 2" in printed and "only read" in printed
    for extra in ([], ["--overwrite"]):
        assert main(["train", family, "--out", str(run), "--steps", "0", *extra, *session, *options]) == 2
        assert "never replaces a run" in capsys.readouterr().err
    assert _files(run) == before


def test_steps_0_in_pix2pix_and_a_conditional_wgan_gp(tmp_path):
    from genzoo.cyclegan.train import TrainConfig as CycleConfig
    from genzoo.cyclegan.train import train as train_cyclegan
    from genzoo.gan.train import TrainConfig as GANConfig
    from genzoo.gan.train import train as train_gan

    session = dict(device="cpu", progress=False, steps=0)
    pix2pix = train_cyclegan(CycleConfig(out_dir=str(tmp_path / "p2p"), mode="pix2pix", data="mnist-invert", ngf=4,
                                         ndf=2, n_layers_d=1, batch_size=16, **session))
    assert pix2pix.eval_only and set(pix2pix.losses) == {"G_gan", "G_L1", "D_real", "D_fake"}
    gan = dict(data="mnist", loss="wgan-gp", conditional=True, ngf=8, ndf=8, batch_size=256, **session)
    first = train_gan(GANConfig(out_dir=str(tmp_path / "a"), **gan))
    again = train_gan(GANConfig(out_dir=str(tmp_path / "b"), **gan))
    assert set(first.losses) == {"loss_d", "loss_g", "d_real", "d_fake"} and first.losses == again.losses  # seeded
    assert first.losses["loss_d"] > first.losses["d_fake"] - first.losses["d_real"]  # the gradient penalty is in
    for folder in ("p2p", "a", "b"):
        assert [p.name for p in (tmp_path / folder).iterdir()] == ["log.jsonl"]
