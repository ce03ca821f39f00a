"""`genzoo eval` for every family on the embedded models, the shared classifier score, and bad input."""
import json

import pytest
import torch

from genzoo import datasets
from genzoo.cli import main
from genzoo.errors import ConfigError
from genzoo.evaluation import classifier_score, load_image_data


def _eval(capsys, *argv):
    assert main(["eval", *argv, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_classifier_score_of_real_digits_and_noise():
    images, labels = datasets.mnist("heldout")
    real = classifier_score(images[:300], labels[:300])
    assert real["label_accuracy"] > 0.95 and real["classes_present"] == 10 and real["mean_confidence"] > 0.95
    noise = classifier_score(torch.rand(100, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    assert noise["classes_present"] < 3 and "label_accuracy" not in noise
    with pytest.raises(ConfigError, match="28x28"):
        classifier_score(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ConfigError, match="labels"):
        classifier_score(images[:4], labels[:3])


def test_eval_gpt_on_a_text_file(tmp_path, capsys):
    from genzoo import gpt2

    path = tmp_path / "text.txt"
    text = datasets.shakespeare("val")[:3000]
    path.write_text(text, encoding="utf-8")
    result = _eval(capsys, "shakespeare-char", str(path), "--stride", "32")
    model = gpt2.from_pretrained("shakespeare-char", device="cpu")
    assert result["perplexity"] == pytest.approx(gpt2.perplexity(model, path, stride=32), rel=1e-6)
    assert result["tokens"] == len(text) - 1 and 1 < result["perplexity"] < 10  # a trained model: ~6 on Shakespeare
    assert result["bits_per_char"] == pytest.approx(result["loss"] / 0.6931471805599453, rel=1e-6)
    assert result["weighting"] == "guide"  # transformers' perplexity guide's number; --weighting token: each token once
    once = _eval(capsys, "shakespeare-char", str(path), "--stride", "32", "--weighting", "token")
    assert once["perplexity"] == pytest.approx(gpt2.perplexity(model, path, stride=32, weighting="token"), rel=1e-6)
    assert once["tokens"] == result["tokens"] and once["perplexity"] != result["perplexity"]
    default = _eval(capsys, "shakespeare-char", "--max-chars", "2000")  # DATA defaults to Tiny Shakespeare's val
    assert default["data"] == "tiny shakespeare (val)" and default["tokens"] > 1900
    assert main(["eval", "shakespeare-char", str(tmp_path / "missing.txt")]) == 2
    assert "no text file" in capsys.readouterr().err


def test_eval_conditional_gan(capsys):
    result = _eval(capsys, "mnist-dcgan", "--n", "200")
    assert result["samples"] == 200 and result["classes_present"] == 10
    assert result["label_accuracy"] > 0.85 and result["mean_confidence"] > 0.8
    assert _eval(capsys, "mnist-dcgan", "--n", "200") == result  # seeded
    assert main(["eval", "mnist-dcgan", "--n", "0"]) == 2


def test_eval_vae_on_mnist_and_on_a_folder(tmp_path, capsys):
    from genzoo.images import save_image

    result = _eval(capsys, "mnist-vae", "--n", "100", "--samples", "100")
    assert result["images"] == 100 and 0 < result["mse"] < 0.15 and result["psnr_db"] > 12
    assert result["reconstruction_label_accuracy"] > 0.85 and result["samples_classes_present"] >= 8
    images, _ = datasets.mnist("heldout")
    for i in range(20):
        save_image(images[i], tmp_path / f"{i:02d}.png")
    folder = _eval(capsys, "mnist-vae", str(tmp_path), "--samples", "0")
    assert folder["images"] == 20 and "samples_mean_confidence" not in folder
    assert "reconstruction_label_accuracy" not in folder  # a folder has no labels
    first20 = load_image_data("mnist", 1)[0][:20]
    from genzoo import vae
    from genzoo.vae.evaluate import reconstruction_error

    _, direct = reconstruction_error(vae.from_pretrained("mnist-vae", device="cpu"), first20)
    assert folder["mse"] == pytest.approx(direct["mse"], rel=0.05)  # PNG rounding only
    save_image(torch.zeros(1, 3, 40, 30), tmp_path / "odd.png")
    with pytest.raises(ConfigError, match="differ in size"):
        load_image_data(tmp_path, 1)
    assert main(["eval", "mnist-vae", str(tmp_path / "nowhere")]) == 2


def test_eval_cyclegan(capsys):
    result = _eval(capsys, "mnist-cyclegan", "--n", "100")
    assert result["images_a"] == result["images_b"] == 100
    assert 0 < result["cycle_l1_a"] < 0.2 and 0 < result["cycle_l1_b"] < 0.2
    assert result["translation_label_accuracy"] > 0.85


def test_eval_diffusion_denoising_loss(capsys):
    result = _eval(capsys, "mnist-ddpm", "--n", "16", "--timesteps", "50", "500", "900")
    assert set(result["loss_at_t"]) == {"50", "500", "900"}
    # predicting eps = 0 would score 1.0 at every timestep; a trained model does far better
    assert 0 < result["denoising_loss"] < 0.3
    assert _eval(capsys, "mnist-ddpm", "--n", "16", "--timesteps", "50", "500", "900") == result  # seeded
    assert main(["eval", "mnist-ddpm", "--n", "4", "--timesteps", "1000"]) == 2
    assert "timesteps" in capsys.readouterr().err


def test_eval_usage_and_text_output(capsys):
    assert main(["eval"]) == 2
    assert "usage" in capsys.readouterr().out
    assert main(["eval", "mnist-dcgan", "--n", "20"]) == 0
    out = capsys.readouterr().out
    assert "family: gan" in out and "mean_confidence: " in out


def test_tokens_command(capsys):
    assert main(["tokens", "Hello world!"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "[15496 'Hello'] [995 ' world'] [0 '!']"
    assert main(["tokens", "ROMEO", "--model", "shakespeare-char"]) == 0
    assert capsys.readouterr().out.startswith("[")
