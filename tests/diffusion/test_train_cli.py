"""Training lowers the loss and resumes exactly; the CLI samples, trains and fails cleanly; the embedded demo."""
import pytest
import torch
from PIL import Image

from genzoo import ConfigError, diffusion
from genzoo.cli import main as genzoo_main
from genzoo.diffusion.schedulers import DDPMScheduler
from genzoo.diffusion.train import TrainConfig, load_images, train

TINY = dict(block_out_channels=(8, 16), attention=(False, True), norm_num_groups=4, batch_size=8, lr=3e-3,
            warmup_steps=2, progress=False, log_every=1, sample_every=0, device="cpu")


def fixed_batch_loss(unet, images):
    """The DDPM loss on a fixed batch, timesteps and noise: a deterministic yardstick for training."""
    g = torch.Generator().manual_seed(123)
    t = torch.randint(0, 1000, (images.shape[0],), generator=g)
    noise = torch.randn(images.shape, generator=g)
    with torch.no_grad():
        return torch.nn.functional.mse_loss(unet(DDPMScheduler().add_noise(images, noise, t), t), noise).item()


def test_short_training_run_lowers_the_loss(tmp_path):
    images = load_images(TrainConfig(data="mnist"))[:32]
    # the same seed builds the same initial U-Net: one step at lr ~ 0 keeps it (the "before" model)
    before_dir = train(TrainConfig(out_dir=tmp_path / "before", steps=1, **{**TINY, "lr": 1e-12})).out_dir
    result = train(TrainConfig(out_dir=tmp_path / "after", steps=40, ema_decay=0.9, **TINY))
    assert result.step == 40 and len(result.history) == 40
    before = fixed_batch_loss(diffusion.from_pretrained(before_dir, device="cpu"), images)
    after = fixed_batch_loss(diffusion.from_pretrained(result.out_dir, device="cpu"), images)
    assert after < 0.6 * before, (before, after)


def test_resume_continues_exactly(tmp_path):
    straight = train(TrainConfig(out_dir=tmp_path / "a", steps=4, save_every=2, flip=True, **TINY))
    train(TrainConfig(out_dir=tmp_path / "b", steps=2, save_every=2, flip=True, **TINY))
    # no architecture flags: the run's own come back from train_state.pt
    resumed = train(TrainConfig(out_dir=tmp_path / "b", steps=4, save_every=2, resume=True, progress=False,
                                lr=3e-3, warmup_steps=2, log_every=1, device="cpu"))
    assert resumed.history == [{**h, "seconds": r["seconds"]} for h, r in zip(straight.history[2:], resumed.history)]
    a = diffusion.from_pretrained(tmp_path / "a", device="cpu").state_dict()
    b = diffusion.from_pretrained(tmp_path / "b", device="cpu").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert diffusion.load_scheduler(tmp_path / "b", kind="ddpm").num_train_timesteps == 1000


def test_folder_of_images_and_bad_data(tmp_path):
    for i in range(3):
        Image.new("RGB", (20, 24), (40 * i, 90, 200)).save(tmp_path / f"{i}.png")
    result = train(TrainConfig(data=str(tmp_path), size=8, out_dir=tmp_path / "out", steps=2, **TINY))
    unet = diffusion.from_pretrained(result.out_dir, device="cpu")
    assert unet.config.in_channels == 3 and unet.config.sample_size == 8
    with pytest.raises(ConfigError, match="neither"):
        train(TrainConfig(data=str(tmp_path / "nope"), out_dir=tmp_path / "x", steps=1, **TINY))
    with pytest.raises(ConfigError, match="size"):
        train(TrainConfig(data="mnist", size=29, out_dir=tmp_path / "x", steps=1, **TINY))
    with pytest.raises(ConfigError, match="square"):
        train(TrainConfig(data=str(tmp_path), out_dir=tmp_path / "y", steps=1, **TINY))  # 20x24 images


@pytest.fixture(scope="module")
def tiny_genzoo(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cli")
    train(TrainConfig(out_dir=directory, steps=1, **TINY))
    return directory


def test_cli_sample_writes_grid_and_strip(tiny_genzoo, tmp_path, capsys):
    grid, strip = tmp_path / "grid.png", tmp_path / "strip.png"
    code = genzoo_main(["sample", str(tiny_genzoo), "--scheduler", "ddim", "--steps", "4", "--n", "3", "--seed", "0",
                        "--out", str(grid), "--strip", str(strip), "--strip-points", "3"])
    assert code == 0 and "DDIMScheduler 4 steps" in capsys.readouterr().out
    assert Image.open(grid).size == (2 + 2 * 30, 2 + 2 * 30)   # 3 digits in a 2x2 grid, 28 px + 2 px padding
    assert Image.open(strip).size == (2 + 3 * 30, 2 + 3 * 30)  # 3 images x 3 points
    code = genzoo_main(["sample", str(tiny_genzoo), "--scheduler", "ddpm", "--steps", "3", "--n", "1",
                        "--out", str(tmp_path / "ddpm.png")])
    assert code == 0 and (tmp_path / "ddpm.png").is_file()


@pytest.mark.parametrize("args,message", [
    (["--scheduler", "euler"], "unknown scheduler 'euler'"),
    (["--steps", "0"], ">= 1"),
    (["--size", "29"], "multiples of 2"),
    (["--scheduler", "ddpm", "--eta", "0.5"], "--eta only applies"),
    (["--n", "0"], "--n must be >= 1"),
])
def test_cli_sample_errors(tiny_genzoo, tmp_path, capsys, args, message):
    out = tmp_path / "keep.png"
    out.write_bytes(b"user's file")
    code = genzoo_main(["sample", str(tiny_genzoo), "--out", str(out), "--steps", "2", *args, "--overwrite"])
    assert code == 2 and message in capsys.readouterr().err
    assert out.read_bytes() == b"user's file"  # nothing overwritten on failure, even with --overwrite


def test_cli_train(tmp_path, capsys):
    code = genzoo_main(["train", "diffusion", "--out", str(tmp_path / "run"), "--steps", "2", "--batch-size", "4",
                        "--block-out-channels", "8", "16", "--norm-groups", "4", "--device", "cpu"])
    assert code == 0 and "genzoo sample" in capsys.readouterr().out
    assert diffusion.from_pretrained(tmp_path / "run").config.block_out_channels == (8, 16)
    assert (tmp_path / "run" / "samples" / "step-0000002.png").is_file() and (tmp_path / "run" / "loss.png").is_file()
    code = genzoo_main(["train", "diffusion", "--out", str(tmp_path / "run"), "--steps", "3", "--resume"])
    assert code == 0  # the run's architecture, not the defaults
    code = genzoo_main(["train", "diffusion", "--out", str(tmp_path / "run"), "--steps", "4", "--resume",
                        "--block-out-channels", "8", "32"])
    assert code == 2 and "block_out_channels" in capsys.readouterr().err
    assert genzoo_main(["sample", str(tmp_path / "run"), "--steps", "2", "--n", "1",
                        "--out", str(tmp_path / "s.png")]) == 0


def test_l1_loss_and_accumulation_equals_one_batch(tmp_path):
    one = train(TrainConfig(out_dir=tmp_path / "one", steps=2, loss="l1", **TINY))
    four = train(TrainConfig(out_dir=tmp_path / "four", steps=2, loss="l1", grad_accum=4, **TINY))
    assert one.history[0]["loss"] == pytest.approx(four.history[0]["loss"], abs=1e-5)
    assert one.history[1]["loss"] == pytest.approx(four.history[1]["loss"], abs=1e-5)
    # Adam turns float rounding in near-zero gradients into +-lr steps, so weights agree to ~lr, not to 1e-5
    # (tests/test_training.py checks the accumulated gradients themselves to 1e-5)
    a, b = one.model.state_dict(), four.model.state_dict()
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-3


def test_embedded_demo(tmp_path):
    from genzoo.diffusion import cli

    digits = cli.demo_samples(3, seed=1)
    assert digits.shape == (3, 1, 28, 28) and digits.dtype == torch.float32
    assert digits.min() >= -1 and digits.max() <= 1
    assert torch.equal(digits, cli.demo_samples(3, seed=1))
    unet = diffusion.from_pretrained("mnist-ddpm")
    assert sum(p.numel() * p.element_size() for p in unet.parameters()) <= 10 * 2 ** 20
    paths = cli.demo(tmp_path, n=4, steps=3)  # `genzoo demo` runs the full one (tests/test_demo.py)
    assert [p.name for p in paths] == ["mnist-ddpm-samples.png", "mnist-ddpm-denoising.png"]
    assert all(p.is_file() for p in paths)
