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
    assert not [p for p in (tmp_path / "cache" / "urls").rglob("*") if p.is_file()]  # nothing half-written is kept
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


# ---- downloads that cannot poison the cache: a scripted server on 127.0.0.1 ---------------------------------------

class _Scripted(http.server.BaseHTTPRequestHandler):
    routes: dict = {}

    def do_GET(self):
        route = self.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        route(self)

    do_HEAD = do_GET

    def log_message(self, *args):
        pass


def _send(body: bytes, content_type="application/octet-stream", length=None, chunks=1, pause=0.0):
    """A route that announces `length` (default len(body)) and sends `body` in `chunks` pieces, `pause` s apart."""
    import time

    def route(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body) if length is None else length))
        handler.end_headers()
        step = max(1, -(-len(body) // chunks))
        try:
            for i in range(0, len(body), step):
                handler.wfile.write(body[i:i + step])
                handler.wfile.flush()
                time.sleep(pause)
        except OSError:   # the client gave up: that is the point of some tests
            pass
        handler.close_connection = True
    return route


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.delenv("GENZOO_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("GENZOO_CACHE", str(tmp_path / "cache"))
    routes = {}
    handler = type("Handler", (_Scripted,), {"routes": routes})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield base, routes
    httpd.shutdown()
    httpd.server_close()


def _cached_files(tmp_path):
    return sorted(p.name for p in (tmp_path / "cache").rglob("*") if p.is_file())


WEIGHTS = bytes(range(256)) * 16   # 4 KiB that do not look like HTML


def test_truncated_download_is_not_cached(server, tmp_path):
    base, routes = server
    routes["/net_G.pth"] = _send(WEIGHTS[:1000], length=len(WEIGHTS))
    with pytest.raises(HubError, match="1000 of the 4096 bytes"):
        hub.download_url(base + "/net_G.pth")
    assert _cached_files(tmp_path) == []
    routes["/net_G.pth"] = _send(WEIGHTS)   # the server recovers: the next try succeeds
    with pytest.warns(UserWarning, match="no pinned sha256"):
        assert hub.download_url(base + "/net_G.pth").read_bytes() == WEIGHTS


def test_silent_server_times_out(server, tmp_path, monkeypatch):
    import time

    base, routes = server
    monkeypatch.setenv("GENZOO_DOWNLOAD_STALL", "0.5")
    routes["/silent.pth"] = _send(WEIGHTS, chunks=2, pause=3.0)   # half, then 3 s of silence
    start = time.monotonic()
    with pytest.raises(HubError, match="stalled"):
        hub.download_url(base + "/silent.pth")
    assert time.monotonic() - start < 2.5
    assert _cached_files(tmp_path) == []


def test_trickling_server_is_a_stall(server, tmp_path, monkeypatch):
    import time

    base, routes = server
    monkeypatch.setenv("GENZOO_DOWNLOAD_STALL", "0.3")
    routes["/trickle.pth"] = _send(WEIGHTS[:60], chunks=60, pause=0.02)   # 1 byte every 20 ms: never silent
    start = time.monotonic()
    with pytest.raises(HubError, match="stalled"):
        hub.download_url(base + "/trickle.pth")
    assert time.monotonic() - start < 2.0
    assert _cached_files(tmp_path) == []


def test_overall_deadline(server, tmp_path, monkeypatch):
    base, routes = server
    monkeypatch.setenv("GENZOO_DOWNLOAD_DEADLINE", "0.3")
    routes["/slow.pth"] = _send(WEIGHTS * 8, chunks=32, pause=0.05)   # 32 KiB at a steady 20 KiB/s
    with pytest.raises(HubError, match="did not finish within 0.3 s"):
        hub.download_url(base + "/slow.pth")
    assert _cached_files(tmp_path) == []


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "application/octet-stream"])
def test_html_error_page_is_refused(server, tmp_path, content_type):
    base, routes = server
    routes["/net_G.pth"] = _send(b"<!DOCTYPE html><html><body>Service unavailable</body></html>", content_type)
    with pytest.raises(HubError, match="HTML"):
        hub.download_url(base + "/net_G.pth")
    assert _cached_files(tmp_path) == []


def test_cache_is_keyed_by_the_whole_url(server, recwarn):
    base, routes = server
    routes["/a/net_G.pth"] = _send(WEIGHTS)
    routes["/b/net_G.pth"] = _send(WEIGHTS[::-1])
    first, second = hub.download_url(base + "/a/net_G.pth"), hub.download_url(base + "/b/net_G.pth")
    assert first != second and first.name == second.name == "net_G.pth"
    assert first.read_bytes() == WEIGHTS and second.read_bytes() == WEIGHTS[::-1]


def test_unpinned_download_is_checked_against_its_first_digest(server, recwarn):
    base, routes = server
    url = base + "/net_G.pth"
    routes["/net_G.pth"] = _send(WEIGHTS)
    path = hub.download_url(url)
    routes.clear()   # later uses come from the cache, verified: no request
    assert hub.download_url(url) == path
    path.write_bytes(WEIGHTS[:-1] + b"\x00")   # the cached copy goes bad (disk, a stray write)
    with pytest.raises(HubError, match="corrupt.*force_download=True.*--redownload"):
        hub.download_url(url)
    routes["/net_G.pth"] = _send(WEIGHTS)
    assert hub.download_url(url, force_download=True).read_bytes() == WEIGHTS
    routes["/net_G.pth"] = _send(WEIGHTS[::-1])   # the server now serves something else under the same URL
    with pytest.raises(HubError, match="different file"):
        hub.download_url(url, force_download=True)
    assert hub.download_url(url).read_bytes() == WEIGHTS   # the first version is kept


def test_pinned_cached_file_that_went_bad_is_reported(server):
    base, routes = server
    routes["/net_G.pth"] = _send(WEIGHTS)
    good = hashlib.sha256(WEIGHTS).hexdigest()
    path = hub.download_url(base + "/net_G.pth", sha256=good)
    path.write_bytes(b"junk")
    with pytest.raises(HubError, match="corrupt"):
        hub.download_url(base + "/net_G.pth", sha256=good)
    assert hub.download_url(base + "/net_G.pth", sha256=good, force_download=True).read_bytes() == WEIGHTS


# ---- failing fast without network -----------------------------------------------------------------------------

@pytest.fixture
def dead_hub(tmp_path, monkeypatch):
    """A Hub endpoint that accepts connections and never answers, and an empty Hugging Face cache."""
    import socket

    from huggingface_hub import constants

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{listener.getsockname()[1]}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("GENZOO_HUB_PROBE_TIMEOUT", "0.5")
    monkeypatch.delenv("GENZOO_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    hub._probed.clear()
    yield
    hub._probed.clear()
    listener.close()


@pytest.mark.parametrize("name, files", [("gpt2", "config.json model.safetensors"),
                                         ("ddpm-cifar10-32", "config.json diffusion_pytorch_model.safetensors "
                                                             "scheduler_config.json")])
def test_published_model_without_network_fails_fast_naming_every_file(dead_hub, name, files):
    import time

    import genzoo

    start = time.monotonic()
    with pytest.raises(HubError, match=f"does not answer.*hf download \\S+ {files}"):
        genzoo.load(name, device="cpu")
    assert time.monotonic() - start < 3.0


def test_hub_file_without_network_fails_fast(dead_hub):
    import time

    start = time.monotonic()
    with pytest.raises(HubError, match="hf download someone/tiny model.safetensors"):
        hub.resolve_file("someone/tiny", "model.safetensors")
    assert time.monotonic() - start < 3.0


def test_unavailable_device_is_refused_before_any_download(dead_hub):
    import torch

    import genzoo
    from genzoo.errors import ConfigError

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match="cuda"):
        genzoo.load("gpt2", device="cuda")
    assert hub._probed == {}   # the Hub was not even asked


def test_forced_download_ignores_the_cache(server, capsys, recwarn):
    from genzoo.cli import main

    base, routes = server
    routes["/net_G.pth"] = _send(WEIGHTS)
    path = hub.download_url(base + "/net_G.pth")
    routes.clear()   # the server now answers 404
    assert hub.download_url(base + "/net_G.pth") == path   # cached
    with hub.forced_download(), pytest.raises(HubError, match="404"):
        hub.download_url(base + "/net_G.pth")
    assert path.read_bytes() == WEIGHTS   # a failed re-download keeps the good copy
    assert main(["list", "--family", "gan", "--redownload"]) == 0   # the flag is taken by every command
