import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from genzoo import hub
from genzoo.errors import HubError


def test_local_file_and_directory(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"x")
    assert hub.resolve_file(tmp_path / "model.safetensors") == tmp_path / "model.safetensors"
    assert hub.resolve_file(tmp_path, "model.safetensors") == tmp_path / "model.safetensors"
    assert hub.resolve_first(tmp_path, ["pytorch_model.bin", "model.safetensors"]) == tmp_path / "model.safetensors"
    assert hub.resolve_optional(tmp_path, "scheduler_config.json") is None
    with pytest.raises(HubError, match="has no 'config.json'"):
        hub.resolve_file(tmp_path, "config.json")
    with pytest.raises(HubError, match="holds none of"):
        hub.resolve_first(tmp_path, ["pytorch_model.bin"])


def test_nonsense_source():
    with pytest.raises(HubError, match="neither an existing file"):
        hub.resolve_file("no such thing here", "x")


def _fake_hub_cache(root: Path, repo_id: str, files: dict) -> None:
    """The layout huggingface_hub writes: models--owner--name/{refs/main, snapshots/<commit>/<file>}."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = root / ("models--" + repo_id.replace("/", "--"))
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(commit)
    snapshot = repo_dir / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name, data in files.items():
        (snapshot / name).write_bytes(data)


def test_hub_repo_from_cache_offline(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    _fake_hub_cache(tmp_path, "someone/tiny", {"pytorch_model.bin": b"weights", "config.json": b"{}"})
    found = hub.resolve_first("someone/tiny", ["model.safetensors", "pytorch_model.bin"])
    assert found.name == "pytorch_model.bin" and found.read_bytes() == b"weights"
    assert hub.resolve_optional("someone/tiny", "scheduler_config.json") is None
    with pytest.raises(HubError, match="not in the Hugging Face cache"):
        hub.resolve_file("someone/other", "model.safetensors")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "net_G.pth").write_bytes(b"generator weights")
    handler = lambda *a, **k: _Quiet(*a, directory=str(root), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/net_G.pth"
    server.shutdown()


def test_url_download_verifies_sha256(served, tmp_path, monkeypatch):
    monkeypatch.delenv("GENZOO_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("GENZOO_CACHE", str(tmp_path / "cache"))
    good = hashlib.sha256(b"generator weights").hexdigest()
    with pytest.raises(HubError, match="does not match the pinned"):
        hub.download_url(served, sha256="0" * 64)
    assert not list((tmp_path / "cache" / "urls").iterdir())  # nothing half-written is kept
    path = hub.download_url(served, sha256=good)
    assert path.read_bytes() == b"generator weights"
    assert hub.resolve_file(served, sha256=good) == path  # second time: from the cache


def test_url_offline_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("GENZOO_CACHE", str(tmp_path))
    monkeypatch.setenv("GENZOO_OFFLINE", "1")
    with pytest.raises(HubError, match="offline mode"):
        hub.download_url("http://example.invalid/x.pth")


def test_resolve_optional_refuses_a_non_repo_string():
    with pytest.raises(HubError, match="neither an existing file"):
        hub.resolve_optional("not a repo id", "config.json")


def test_hub_errors_become_genzoo_errors(monkeypatch):
    import huggingface_hub
    from huggingface_hub import errors as hf_errors

    def invalid(*args, **kwargs):
        raise hf_errors.HFValidationError("bad id")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", invalid)
    with pytest.raises(HubError, match="not a valid Hub repo id"):
        hub.hub_download("a/b", "config.json")
