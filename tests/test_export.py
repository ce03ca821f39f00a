"""The shared export layer: dispatch, the model card, push_to_hub (offline: huggingface_hub's HfApi is replaced by a
recorder) and the `genzoo export` / `genzoo push` commands."""
import json

import huggingface_hub
import pytest
import torch

from genzoo import cli, gpt2
from genzoo.errors import ConfigError, HubError
from genzoo.export import export, family_of_model, model_card, push_to_hub


class FakeApi:
    """Records what push_to_hub asks of the Hub, and what the folder it uploads holds."""

    calls = []

    def __init__(self, token=None):
        FakeApi.calls.append(("init", {"token": token}))

    def create_repo(self, repo_id, **kwargs):
        FakeApi.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))

    def create_branch(self, repo_id, **kwargs):
        FakeApi.calls.append(("create_branch", {"repo_id": repo_id, **kwargs}))

    def upload_folder(self, folder_path, repo_id, **kwargs):
        from pathlib import Path

        files = {p.name: p.read_bytes() for p in Path(folder_path).iterdir()}
        FakeApi.calls.append(("upload_folder", {"repo_id": repo_id, "files": files, **kwargs}))
        return type("Commit", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/abc"})()


@pytest.fixture
def hub(monkeypatch):
    FakeApi.calls = []
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_cached_token")
    return FakeApi


@pytest.fixture(scope="module")
def model():
    return gpt2.from_pretrained("shakespeare-char", device="cpu")


def test_push_uploads_the_export_and_a_model_card(hub, model):
    url = model.push_to_hub("me/shakespeare", format="nanogpt", private=True, revision="v1", token="hf_x",
                            training_data="Tiny Shakespeare (1.1 MB)", quality={"val loss": 1.47})
    assert url == "https://huggingface.co/me/shakespeare/commit/abc"
    names = [name for name, _ in hub.calls]
    assert names == ["init", "create_repo", "create_branch", "upload_folder"]
    assert hub.calls[0][1] == {"token": "hf_x"}
    assert hub.calls[1][1] == {"repo_id": "me/shakespeare", "private": True, "exist_ok": True, "repo_type": "model"}
    assert hub.calls[2][1] == {"repo_id": "me/shakespeare", "branch": "v1", "exist_ok": True}
    upload = hub.calls[3][1]
    assert upload["revision"] == "v1" and sorted(upload["files"]) == ["README.md", "ckpt.pt", "meta.pkl"]
    card = upload["files"]["README.md"].decode()
    assert "library_name: genzoo" in card and "nanogpt" in card
    assert "Tiny Shakespeare (1.1 MB)" in card and "- val loss: 1.47" in card
    assert f'"n_layer": {model.config.n_layer}' in card  # the config


def test_push_without_a_token_or_offline_is_a_clear_error(hub, model, monkeypatch):
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(HubError, match="no Hugging Face token.*huggingface-cli login.*HF_TOKEN"):
        push_to_hub(model, "me/x")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubError, match="offline mode"):
        push_to_hub(model, "me/x", token="hf_x")
    assert not hub.calls  # nothing was attempted


def test_hub_failures_become_hub_errors(hub, model, monkeypatch):
    def fail(self, repo_id, **kwargs):
        raise ConnectionError("Failed to resolve 'huggingface.co'")

    monkeypatch.setattr(FakeApi, "create_repo", fail)
    with pytest.raises(HubError, match="pushing to me/x failed: ConnectionError: Failed to resolve"):
        push_to_hub(model, "me/x")


def test_bad_repo_ids_and_foreign_models_are_refused(model, tmp_path):
    with pytest.raises(ConfigError, match="repo_id must be 'user/name'"):
        push_to_hub(model, "just-a-name")
    with pytest.raises(ConfigError, match="Linear is not a genzoo model"):
        export(torch.nn.Linear(2, 2), tmp_path, "genzoo")


def test_model_card_defaults_say_what_is_missing(model):
    card = model_card(model, "me/x", "genzoo")
    assert "Not recorded" in card and "Not measured" in card and 'gpt2.from_pretrained("me/x")' in card


def test_export_command_writes_and_refuses(tmp_path, capsys):
    out = tmp_path / "nano"
    assert cli.main(["export", "shakespeare-char", str(out), "--format", "nanogpt"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["ckpt.pt", "meta.pkl"]
    assert cli.main(["export", "shakespeare-char", str(out), "--format", "nanogpt"]) == 2
    assert "already holds ckpt.pt" in capsys.readouterr().err
    assert cli.main(["export", "shakespeare-char", str(out), "--format", "nanogpt", "--overwrite"]) == 0
    assert cli.main(["export", "shakespeare-char", str(tmp_path / "hf"), "--format", "huggingface"]) == 2
    assert "'char' tokenizer cannot be exported as 'huggingface'" in capsys.readouterr().err


def test_export_command_writes_a_gan_pair_and_a_cyclegan_run(tmp_path):
    assert cli.main(["export", "mnist-dcgan", str(tmp_path / "gan"), "--format", "genzoo"]) == 0
    assert json.loads((tmp_path / "gan" / "config.json").read_text())["parts"] == ["generator", "discriminator"]
    assert cli.main(["export", "mnist-cyclegan", str(tmp_path / "cg"), "--format", "junyanz"]) == 0
    assert sorted(p.name for p in (tmp_path / "cg").iterdir()) == [
        "latest_net_D_A.pth", "latest_net_D_B.pth", "latest_net_G_A.pth", "latest_net_G_B.pth"]


def test_export_command_keeps_a_unets_noise_schedule(tmp_path):
    from genzoo import diffusion

    assert cli.main(["export", "mnist-ddpm", str(tmp_path / "dd"), "--format", "diffusers"]) == 0
    exported = json.loads((tmp_path / "dd" / "scheduler" / "scheduler_config.json").read_text())
    for key, value in diffusion.scheduler_config("mnist-ddpm").items():
        if not key.startswith("_"):
            assert exported[key] == value


def test_push_command(hub, capsys):
    assert cli.main(["push", "mnist-vae", "me/mnist-vae", "--private", "--training-data", "MNIST 10k"]) == 0
    assert "pushed mnist-vae to me/mnist-vae" in capsys.readouterr().out
    upload = dict(hub.calls)["upload_folder"]
    assert sorted(upload["files"]) == ["README.md", "config.json", "model.safetensors"]
    card = upload["files"]["README.md"].decode()
    assert "MNIST 10k" in card and "heldout_recon (last logged, scripts/train_embedded_vae.py)" in card
    assert dict(hub.calls)["create_repo"]["private"] is True


def test_push_command_fills_the_card_from_what_the_checkpoint_says(hub):
    assert cli.main(["push", "mnist-vae", "me/mnist-vae"]) == 0
    card = dict(hub.calls)["upload_folder"]["files"]["README.md"].decode()
    assert "genzoo.datasets.mnist('train') (8,000 digits)" in card and "heldout_recon" in card


def test_family_of_model():
    assert family_of_model(gpt2.GPT(gpt2.GPTConfig(vocab_size=8, n_positions=4, n_embd=8, n_layer=1, n_head=1))) == "gpt2"
