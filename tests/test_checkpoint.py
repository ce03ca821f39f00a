import os
import pickle

import pytest
import torch
from torch import nn

from genzoo import checkpoint
from genzoo.errors import CheckpointError


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.out = nn.Linear(3, 4, bias=False)


def test_save_pretrained_round_trip(tmp_path):
    model = Tiny()
    checkpoint.save_pretrained(tmp_path, model.state_dict(), {"width": 4}, family="gpt2")
    config = checkpoint.read_config(tmp_path)
    assert config == {"genzoo_family": "gpt2", "genzoo_format": 1, "width": 4}
    loaded = checkpoint.load_state_dict(tmp_path / "model.safetensors")
    assert set(loaded) == set(model.state_dict())
    for k, v in model.state_dict().items():
        assert torch.equal(loaded[k], v)


def test_save_pretrained_stores_tied_tensors(tmp_path):
    shared = torch.randn(3, 3)
    checkpoint.save_pretrained(tmp_path, {"a": shared, "b": shared}, {}, family="gpt2")
    loaded = checkpoint.load_state_dict(tmp_path / "model.safetensors")
    assert torch.equal(loaded["a"], loaded["b"])


def test_torch_file_is_read_with_weights_only(tmp_path):
    sd = Tiny().state_dict()
    torch.save({"state_dict": sd, "epoch": 3}, tmp_path / "ckpt.pt")
    obj = checkpoint.load_state_dict(tmp_path / "ckpt.pt")
    inner = checkpoint.unwrap_state_dict(obj)
    assert torch.equal(inner["fc.weight"], sd["fc.weight"])


class _Exploit:
    marker = None

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch notes the protocol before refusing
def test_code_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    _Exploit.marker = marker
    path = tmp_path / "evil.bin"
    with open(path, "wb") as f:
        pickle.dump({"weight": _Exploit()}, f)
    with pytest.raises(CheckpointError, match="refused"):
        checkpoint.load_state_dict(path)
    assert not marker.exists()
    torch.save({"w": torch.zeros(1), "x": _Exploit()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="refused"):
        checkpoint.load_state_dict(tmp_path / "evil.pt")
    assert not marker.exists()


@pytest.mark.parametrize("name", ["model.safetensors", "model.bin"])
def test_truncated_file_is_a_clear_error(tmp_path, name):
    sd = {"w": torch.randn(64, 64)}
    path = tmp_path / name
    if name.endswith(".safetensors"):
        from safetensors.torch import save_file
        save_file(sd, str(path))
    else:
        torch.save(sd, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        checkpoint.load_state_dict(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        checkpoint.load_state_dict(tmp_path / "nope.safetensors")


def test_reconcile_reports_everything_at_once():
    sd = Tiny().state_dict()
    sd.pop("fc.bias")
    sd["extra.weight"] = torch.zeros(1)
    sd["out.weight"] = torch.zeros(5, 5)
    with pytest.raises(CheckpointError) as info:
        checkpoint.reconcile(Tiny(), sd, "some/ckpt.safetensors")
    message = str(info.value)
    assert "some/ckpt.safetensors" in message
    assert "missing keys: fc.bias" in message
    assert "unexpected keys: extra.weight" in message
    assert "out.weight: checkpoint (5, 5) vs model (4, 3)" in message


def test_build_and_load_never_initialises_randomly(monkeypatch):
    calls = []
    original = nn.Linear.reset_parameters

    def spy(self):
        calls.append(self.weight.device.type)
        original(self)

    monkeypatch.setattr(nn.Linear, "reset_parameters", spy)
    source = {k: v.clone() for k, v in Tiny().state_dict().items()}
    calls.clear()
    model = checkpoint.build_and_load(Tiny, source, device="cpu", dtype="bfloat16")
    assert calls and set(calls) == {"meta"}  # init ran only on meta tensors: no real memory, no real RNG work
    assert model.fc.weight.dtype == torch.bfloat16 and model.fc.weight.device.type == "cpu"
    assert torch.equal(model.fc.weight, source["fc.weight"].bfloat16())
    assert not model.training


def test_build_and_load_fills_non_persistent_buffers():
    class WithBuffer(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)
            self.register_buffer("scale", torch.ones(2), persistent=False)

        def reset_buffers(self):
            self.scale = torch.full((2,), 2.0, device=self.fc.weight.device)

    sd = {k: v.clone() for k, v in WithBuffer().state_dict().items()}
    model = checkpoint.build_and_load(WithBuffer, sd, device="cpu")
    assert torch.equal(model.scale, torch.full((2,), 2.0))


def test_unwrap_errors():
    with pytest.raises(CheckpointError, match="no state dict"):
        checkpoint.unwrap_state_dict({"epoch": 3}, "x.pt")


def test_bad_config_json(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        checkpoint.read_config(tmp_path)


def test_rename_keys_applies_the_table_and_refuses_collisions():
    table = [(r"\.query\.", ".to_q."), (r"^transformer\.", "")]
    sd = {"transformer.a.query.weight": torch.zeros(1), "b": torch.ones(1)}
    assert set(checkpoint.rename_keys(sd, table)) == {"a.to_q.weight", "b"}
    with pytest.raises(CheckpointError, match="two spellings"):
        checkpoint.rename_keys({"a.query.w": torch.zeros(1), "a.to_q.w": torch.zeros(1)}, table)


def test_strip_common_prefix_only_when_every_key_has_it():
    sd = {"module._orig_mod.a": torch.zeros(1), "module._orig_mod.b": torch.zeros(1)}
    assert set(checkpoint.strip_common_prefix(sd)) == {"a", "b"}
    mixed = {"module.a": torch.zeros(1), "b": torch.zeros(1)}
    assert checkpoint.strip_common_prefix(mixed) is mixed


def test_save_pretrained_failure_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    checkpoint.save_pretrained(tmp_path, {"w": torch.ones(2)}, {"v": 1}, family="gan")
    import safetensors.torch

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save_pretrained(tmp_path, {"w": torch.zeros(2)}, {"v": 2}, family="gan")
    assert torch.equal(checkpoint.load_state_dict(tmp_path / "model.safetensors")["w"], torch.ones(2))
    assert checkpoint.read_config(tmp_path)["v"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]


# ---- a checkpoint folder is always one version: old or new, never a mix ------------------------------------------

def _version_of(folder):
    """The version each file of a checkpoint folder says it holds (config, weights, training state)."""
    import json

    config = checkpoint.read_config(folder)["version"]
    weights = int(checkpoint.load_state_dict(folder / "model.safetensors")["version"].item())
    state = json.loads((folder / "train_state.json").read_text())["version"]
    return config, weights, state


def _save_version(folder, version, payload):
    import json

    state = json.dumps({"version": version})
    checkpoint.save_pretrained(folder, {"version": torch.tensor([version]), "payload": payload}, {"version": version},
                               family="gpt2", extra_files={"train_state.json": lambda path: path.write_text(state)})


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_save_killed_at_any_moment_leaves_old_or_new(tmp_path, monkeypatch, exchange):
    """Fork a child that saves versions 1, 2, ... over the same folder; SIGKILL it at a random moment; the folder
    must hold exactly one version in all three files, with the files it held besides the checkpoint."""
    import random
    import signal
    import time

    from genzoo import atomic

    if not exchange:
        monkeypatch.setattr(atomic, "_rename_exchange", lambda a, b: False)
    folder = tmp_path / "ckpt"
    payload = torch.randn(512, 1024)   # 2 MB: a save takes long enough to be killed in its middle
    _save_version(folder, 0, payload)
    (folder / "samples").mkdir()
    (folder / "samples" / "step0.png").write_bytes(b"png")
    (folder / "log.txt").write_text("kept\n")
    rng = random.Random(0)
    outcomes, deadline = set(), time.monotonic() + 6
    trials = 0
    while time.monotonic() < deadline and trials < 60:
        before = _version_of(folder)[0]
        pid = os.fork()
        if pid == 0:   # the child: save forever (killed by the parent)
            try:
                for version in range(before + 1, before + 10_000):
                    _save_version(folder, version, payload)
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0.0, 0.08))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        atomic.recover_folder(folder)
        config, weights, state = _version_of(folder)
        assert config == weights == state, f"trial {trials}: mixed checkpoint {config, weights, state}"
        outcomes.add("old" if config == before else "new")
        assert (folder / "log.txt").read_text() == "kept\n" and (folder / "samples" / "step0.png").is_file()
        assert [p.name for p in tmp_path.iterdir()] == ["ckpt"], "leftovers of the killed save remain"
        trials += 1
    assert trials >= 10
    assert "new" in outcomes


def test_failed_writer_leaves_the_previous_version(tmp_path):
    from genzoo.atomic import write_folder_atomic

    folder = tmp_path / "run"
    write_folder_atomic(folder, {"a.txt": lambda p: p.write_text("1"), "b.txt": lambda p: p.write_text("1")})

    def fail(path):
        path.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_folder_atomic(folder, {"a.txt": lambda p: p.write_text("2"), "b.txt": fail})
    assert (folder / "a.txt").read_text() == (folder / "b.txt").read_text() == "1"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_write_folder_atomic_refuses_names_outside_the_folder(tmp_path):
    from genzoo.atomic import write_folder_atomic

    for bad in ("../escape.txt", "/etc/passwd"):
        with pytest.raises(CheckpointError, match="not a file name inside"):
            write_folder_atomic(tmp_path / "run", {bad: lambda p: p.write_text("x")})
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match="not a folder"):
        write_folder_atomic(tmp_path / "file", {"a.txt": lambda p: p.write_text("x")})


def test_interrupted_two_rename_swap_is_undone(tmp_path):
    """A kill between the two renames leaves the folder missing and the old version aside: it is put back."""
    from genzoo.atomic import recover_folder, write_folder_atomic

    folder = tmp_path / "run"
    write_folder_atomic(folder, {"a.txt": lambda p: p.write_text("old")})
    dead = 2 ** 22 + 12345   # above Linux's default pid_max: no such process
    os.rename(folder, tmp_path / f".run.old-{dead}-x")
    (tmp_path / f".run.new-{dead}-y").mkdir()
    recover_folder(folder)
    assert (folder / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


# ---- every read error is one genzoo error naming the file ------------------------------------------------------

@pytest.mark.parametrize("content", [b'{"n_embd": 64, "n\xff": 1}', pickle.dumps({"n_embd": 64}), b"[1, 2]",
                                     b'{"n": ' + b"9" * 5000 + b"}", b"[" * 100_000, b'{"n": 1'],
                         ids=["bad-utf8", "pickle", "not-an-object", "huge-number", "deep-nesting", "truncated"])
def test_bad_config_json_is_a_checkpoint_error(tmp_path, content):
    (tmp_path / "config.json").write_bytes(content)
    with pytest.raises(CheckpointError, match="config.json"):
        checkpoint.read_config(tmp_path)


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_config_json_that_is_not_a_file_is_refused_not_skipped(tmp_path, kind):
    """Treating it as absent would load a GPT-2 with a guessed n_head and the wrong tokenizer: refuse instead."""
    import genzoo.gpt2 as gpt2

    model = gpt2.GPT(gpt2.GPTConfig(vocab_size=50, n_positions=16, n_embd=128, n_layer=1, n_head=2))
    model.save_pretrained(tmp_path)
    (tmp_path / "config.json").unlink()
    if kind == "folder":
        (tmp_path / "config.json").mkdir()
    else:
        os.mkfifo(tmp_path / "config.json")   # opening it would block forever
    with pytest.raises(CheckpointError, match="not a regular file"):
        gpt2.from_pretrained(tmp_path, device="cpu")
    (tmp_path / "config.json").rmdir() if kind == "folder" else (tmp_path / "config.json").unlink()
    with pytest.raises(CheckpointError, match="can be known"):   # and no config at all: refused, never guessed
        gpt2.from_pretrained(tmp_path, device="cpu")


def _safetensors_with_header(header: dict, data: bytes = b"\0" * 16) -> bytes:
    import json
    import struct

    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


@pytest.mark.parametrize("forged", [
    _safetensors_with_header({"w": {"dtype": "F32", "shape": [10 ** 12], "data_offsets": [0, 4 * 10 ** 12]}}),
    _safetensors_with_header({"w": {"dtype": "F32", "shape": [2 ** 40, 2 ** 40], "data_offsets": [0, 16]}}),
    _safetensors_with_header({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 2 ** 62]}}),
    (2 ** 60).to_bytes(8, "little") + b"{}",
], ids=["huge-shape", "overflowing-shape", "huge-offset", "huge-header-length"])
def test_forged_safetensors_header_is_refused_before_allocation(tmp_path, forged):
    path = tmp_path / "model.safetensors"
    path.write_bytes(forged)
    with pytest.raises(CheckpointError, match="model.safetensors"):
        checkpoint.load_state_dict(path)


def test_layer_keys_cannot_make_gpt2_build_a_million_layers(tmp_path):
    import time

    from safetensors.torch import save_file

    import genzoo.gpt2 as gpt2

    state = gpt2.GPT(gpt2.GPTConfig(vocab_size=50, n_positions=16, n_embd=768, n_layer=1, n_head=12)).state_dict()
    state["h.1000000.ln_1.weight"] = torch.ones(768)   # one key claiming a millionth layer
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text('{"model_type": "gpt2", "n_head": 12}')
    start = time.monotonic()
    with pytest.raises(CheckpointError, match="not numbered 0..1"):
        gpt2.from_pretrained(tmp_path / "model.safetensors", device="cpu")
    assert time.monotonic() - start < 10


def test_config_contradicting_the_weights_stops_the_build(tmp_path):
    """A config whose layer count the file does not hold fails early, however large (no hour-long meta build)."""
    import json

    import genzoo.gpt2 as gpt2

    model = gpt2.GPT(gpt2.GPTConfig(vocab_size=50, n_positions=16, n_embd=64, n_layer=1, n_head=2))
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["n_layer"] = 1024
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="contradicts the weights"):
        gpt2.from_pretrained(tmp_path, device="cpu")


def test_meta_pkl_alphabet_is_bounded_by_the_file(tmp_path):
    from genzoo.gpt2.convert import nanogpt_chars

    long = "x" * 10_000
    with open(tmp_path / "meta.pkl", "wb") as f:   # one string, referenced 1000 times: 10 MB once joined
        pickle.dump({"itos": {i: long for i in range(1000)}}, f)
    assert (tmp_path / "meta.pkl").stat().st_size < 20_000
    with pytest.raises(CheckpointError, match="not one character"):
        nanogpt_chars(tmp_path)
    with open(tmp_path / "meta.pkl", "wb") as f:
        pickle.dump({"itos": {0: "a", 1: "b"}}, f)
    assert nanogpt_chars(tmp_path) == "ab"
    (tmp_path / "meta.pkl").write_bytes(b"\x80\x04\x95garbage")
    with pytest.raises(CheckpointError, match="meta.pkl"):
        nanogpt_chars(tmp_path)


# ---- weights holding NaN/inf are refused at load, naming the tensors ---------------------------------------------

@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nonfinite_weights_are_refused_naming_the_tensor(tmp_path, value):
    import genzoo.gpt2 as gpt2

    model = gpt2.GPT(gpt2.GPTConfig(vocab_size=50, n_positions=16, n_embd=64, n_layer=2, n_head=2))
    state = model.state_dict()
    name = next(k for k in state if k.startswith("h.1.") and k.endswith("c_fc.weight"))
    state[name][3, 5] = value
    model.save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match=rf"NaN/inf weights: {name} \(\d NaN, \d inf of \d+\).*allow_nonfinite"):
        gpt2.from_pretrained(tmp_path, device="cpu")
    loaded = gpt2.from_pretrained(tmp_path, device="cpu", allow_nonfinite=True)
    assert not torch.isfinite(loaded.state_dict()[name]).all()


def test_weights_overflowing_the_requested_dtype_are_refused(tmp_path):
    import genzoo.vae as vae

    model = vae.from_pretrained("mnist-vae", device="cpu")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    name = next(k for k, v in state.items() if v.is_floating_point() and v.dim() > 1)
    state[name].view(-1)[0] = 1e6   # finite in float32, inf in float16
    model.load_state_dict(state)
    model.save_pretrained(tmp_path)
    assert vae.from_pretrained(tmp_path, device="cpu") is not None
    with pytest.raises(CheckpointError, match=f"overflowed when cast to torch.float16.*{name}"):
        vae.from_pretrained(tmp_path, device="cpu", dtype="float16")
