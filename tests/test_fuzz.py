"""Fuzzing every family's loader: damaged checkpoints load the identical model or raise a GenzooError.

Each case copies a real checkpoint folder (the embedded models, and a nanoGPT ckpt.pt + meta.pkl), damages it
(truncation, byte flips, a forged safetensors header, a hostile config.json value, config.json replaced by other
bytes or a pickle, random pickles), and loads it with genzoo.load in a forked child that has a memory limit and a
time limit. The outcome must be "identical" (same tensors as the undamaged load) or "clear" (a GenzooError):
never a raw exception, a crash, a hang or a big allocation (which fails as a MemoryError-like raw exception).

The number of examples per (family, damage) pair is GENZOO_FUZZ_EXAMPLES (default 10: about 25 s in all);
GENZOO_FUZZ_REPORT=path writes the tally as JSON (and runs every case without stopping at the first failure).
Byte flips inside tensor data are not generated: neither safetensors nor torch's zip format checksums tensor bytes,
so such a file is a different, valid model.
"""
from __future__ import annotations

import json
import os
import pickle
import resource
import shutil
import signal
import struct
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import genzoo
from genzoo.catalog import embedded_dir
from genzoo.errors import GenzooError

EXAMPLES = int(os.environ.get("GENZOO_FUZZ_EXAMPLES", "10"))
COLLECT = bool(os.environ.get("GENZOO_FUZZ_REPORT"))   # a report run tallies every case instead of stopping
CASE_SECONDS = 30            # a case taking longer is a hang (a tiny model loads in well under a second)
MEMORY_HEADROOM = 2 << 30    # a case may map 2 GiB more than the parent: the models are a few MB
EMBEDDED = {"gpt2": "shakespeare-char", "gan": "mnist-dcgan", "vae": "mnist-vae", "diffusion": "mnist-ddpm",
            "cyclegan": "mnist-cyclegan"}
TALLY: Counter = Counter()
EXAMPLES_SEEN: dict = {}
FUZZ_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(HealthCheck))


# ---- the checkpoints under test ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """family -> (folder, reference state dict). gpt2 also has a nanoGPT folder ("nanogpt")."""
    root = tmp_path_factory.mktemp("fuzz-sources")
    found = {}
    for family, name in EMBEDDED.items():
        folder = root / family
        shutil.copytree(embedded_dir() / name, folder)
        found[family] = (folder, genzoo.load(str(folder), family=family, device="cpu").state_dict())
    model = genzoo.load(str(root / "gpt2"), family="gpt2", device="cpu")
    nanogpt = root / "nanogpt"
    nanogpt.mkdir()
    c = model.config
    args = dict(n_layer=c.n_layer, n_head=c.n_head, n_embd=c.n_embd, block_size=c.n_positions, bias=c.bias,
                vocab_size=c.vocab_size, dropout=0.0)
    torch.save({"model": {"_orig_mod." + k: v for k, v in model.state_dict().items()}, "model_args": args,
                "iter_num": 5}, nanogpt / "ckpt.pt")
    with open(nanogpt / "meta.pkl", "wb") as f:
        pickle.dump({"vocab_size": c.vocab_size, "itos": dict(enumerate(c.tokenizer["chars"]))}, f)
    found["nanogpt"] = (nanogpt, genzoo.load(str(nanogpt), family="gpt2", device="cpu").state_dict())
    return found


def family_of(source: str) -> str:
    return "gpt2" if source == "nanogpt" else source


# ---- one case: load in a forked child with limits ------------------------------------------------------------------

def _outcome(folder: Path, family: str, reference: dict) -> str:
    try:
        model = genzoo.load(str(folder), family=family, device="cpu")
    except GenzooError as e:
        return "clear" if str(folder) in str(e) else f"unnamed: {e}"   # the message must say which checkpoint
    state = model.state_dict()
    same = state.keys() == reference.keys() and all(torch.equal(state[k], reference[k]) for k in state)
    return "identical" if same else "different"


def _mapped_bytes() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))


def run_case(folder: Path, family: str, reference: dict) -> str:
    """The outcome of loading `folder`: identical, clear, different, raw <error>, crash <signal> or hang."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:   # the child: limits, load, report, exit without running the parent's cleanup
        os.close(read_end)
        try:
            limit = _mapped_bytes() + MEMORY_HEADROOM
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            outcome = _outcome(folder, family, reference)
        except BaseException as e:  # noqa: BLE001  (whatever escapes is the finding)
            outcome = f"raw {type(e).__name__}: {str(e)[:300]}"
        os.write(write_end, outcome.encode(errors="replace")[:4000])
        os._exit(0)
    os.close(write_end)
    deadline = time.monotonic() + CASE_SECONDS
    status = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.01)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read_end)
        return "hang"
    with os.fdopen(read_end, "rb") as f:
        outcome = f.read().decode()
    if os.WIFSIGNALED(status):
        return f"crash signal {os.WTERMSIG(status)}"
    return outcome or "crash (no report)"


def check(kind: str, source: str, folder: Path, sources, allowed=("identical", "clear"), what: str = "") -> None:
    outcome = run_case(folder, family_of(source), sources[source][1])
    TALLY[(kind, outcome.split(":")[0])] += 1
    EXAMPLES_SEEN.setdefault((kind, outcome.split(":")[0]), f"{source} {what[:300]}: {outcome}")
    if not COLLECT:
        assert outcome in allowed, f"{kind} on {source}: {outcome}"


def copy_of(sources, source: str, tmp: str) -> Path:
    folder = Path(tmp) / source
    shutil.copytree(sources[source][0], folder)
    return folder


def weights_file(folder: Path) -> Path:
    return next(folder / n for n in ("model.safetensors", "ckpt.pt") if (folder / n).is_file())


def safetensors_header_end(data: bytes) -> int:
    return 8 + struct.unpack("<Q", data[:8])[0]


# ---- the damage ---------------------------------------------------------------------------------------------------

ALL_SOURCES = [*EMBEDDED, "nanogpt"]
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.floats(), st.text(max_size=8),
              st.sampled_from([0, -1, 1, 10 ** 9, 10 ** 18, 2 ** 31, 1e9, 0.5, "", "gelu", "nan"])),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8)


@pytest.mark.parametrize("source", ALL_SOURCES)
@FUZZ_SETTINGS
@given(fraction=st.floats(0, 1, exclude_max=True), which=st.sampled_from(["weights", "config"]))
def test_truncated_files(sources, source, fraction, which):
    with tempfile.TemporaryDirectory() as tmp:
        folder = copy_of(sources, source, tmp)
        path = folder / ("meta.pkl" if source == "nanogpt" else "config.json") if which == "config" \
            else weights_file(folder)
        data = path.read_bytes()
        path.write_bytes(data[:int(len(data) * fraction)])
        check("truncation", source, folder, sources)


@pytest.mark.parametrize("source", ALL_SOURCES)
@FUZZ_SETTINGS
@given(flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=4),
       which=st.sampled_from(["weights", "config"]))
def test_byte_flips_outside_tensor_data(sources, source, flips, which):
    with tempfile.TemporaryDirectory() as tmp:
        folder = copy_of(sources, source, tmp)
        path = folder / ("meta.pkl" if source == "nanogpt" else "config.json") if which == "config" \
            else weights_file(folder)
        data = bytearray(path.read_bytes())
        if path.suffix == ".safetensors":
            span = range(0, safetensors_header_end(data))
        elif path.suffix == ".pt":   # the pickle at the start of the zip, and the zip's directory at its end
            span = list(range(0, min(len(data), 1500))) + list(range(max(0, len(data) - 600), len(data)))
        else:
            span = range(len(data))
        for where, value in flips:
            data[span[int(where * len(span))]] = value
        path.write_bytes(bytes(data))
        check("byte flip", source, folder, sources)


SAFETENSORS_DTYPES = ["F32", "F16", "BF16", "F64", "I64", "I32", "U8", "BOOL", "F8_E4M3", "X9", ""]


@pytest.mark.parametrize("source", EMBEDDED)
@FUZZ_SETTINGS
@given(data=st.data())
def test_forged_safetensors_headers(sources, source, data):
    with tempfile.TemporaryDirectory() as tmp:
        folder = copy_of(sources, source, tmp)
        path = folder / "model.safetensors"
        raw = path.read_bytes()
        end = safetensors_header_end(raw)
        header = json.loads(raw[8:end])
        names = [k for k in header if k != "__metadata__"]
        name = data.draw(st.sampled_from(names))
        entry = dict(header[name])
        field = data.draw(st.sampled_from(["shape", "data_offsets", "dtype", "rename", "add"]))
        big = st.integers(0, 2 ** 64)
        if field == "shape":
            entry["shape"] = data.draw(st.lists(st.one_of(big, st.integers(-5, 5)), max_size=5))
        elif field == "data_offsets":
            entry["data_offsets"] = data.draw(st.lists(st.one_of(big, st.integers(-5, len(raw))), max_size=3))
        elif field == "dtype":
            entry["dtype"] = data.draw(st.sampled_from(SAFETENSORS_DTYPES))
        if field == "rename":   # e.g. GPT-2's h.1000000.*: a size read from a key name
            new = data.draw(st.sampled_from([name.replace(".0.", f".{n}.") for n in (7, 1000, 10 ** 6)] + ["x" * 300]))
            header[new] = header.pop(name)
        elif field == "add":
            header[data.draw(st.text(min_size=1, max_size=20))] = {
                "dtype": "F32", "shape": data.draw(st.lists(big, min_size=1, max_size=3)), "data_offsets": [0, 4]}
        else:
            header[name] = entry
        text = json.dumps(header).encode()
        path.write_bytes(struct.pack("<Q", len(text)) + text + raw[end:])
        check("forged header", source, folder, sources, what=f"{field} {name}: {header.get(name)}")


@pytest.mark.parametrize("source", EMBEDDED)
@FUZZ_SETTINGS
@given(data=st.data())
def test_hostile_config_values(sources, source, data):
    with tempfile.TemporaryDirectory() as tmp:
        folder = copy_of(sources, source, tmp)
        path = folder / "config.json"
        config = json.loads(path.read_text())
        key = data.draw(st.sampled_from(sorted(config)))
        action = data.draw(st.sampled_from(["set", "set", "set", "delete", "nest"]))
        if action == "delete":
            del config[key]
        elif action == "nest" and isinstance(config[key], dict) and config[key]:
            inner = data.draw(st.sampled_from(sorted(config[key])))
            config[key][inner] = data.draw(JSON_VALUES)
        else:
            config[key] = data.draw(JSON_VALUES)
        path.write_text(json.dumps(config))
        check("hostile config", source, folder, sources, what=f"{action} {key}: {config.get(key)!r}")


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


PICKLABLE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.floats(), st.text(max_size=8),
              st.binary(max_size=8)),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    | st.tuples(children, children), max_leaves=10)


@pytest.mark.parametrize("target", ["config.json", "weights", "meta.pkl"])
@FUZZ_SETTINGS
@given(obj=st.one_of(PICKLABLE, st.builds(lambda d: {"itos": d}, PICKLABLE), st.just(_Exploit()),
                     st.builds(lambda n: {"model": {}, "model_args": {"n_layer": n}}, st.integers(-5, 10 ** 9))),
       protocol=st.integers(0, pickle.HIGHEST_PROTOCOL), source=st.sampled_from(ALL_SOURCES))
def test_pickles_where_files_are_read(sources, target, obj, protocol, source):
    if target == "meta.pkl" and source != "nanogpt":
        source = "nanogpt"
    with tempfile.TemporaryDirectory() as tmp:
        folder = copy_of(sources, source, tmp)
        path = weights_file(folder) if target == "weights" else folder / target
        if target == "weights" and path.suffix == ".safetensors":
            path.unlink()
            path = folder / "pytorch_model.bin"
        path.write_bytes(pickle.dumps(obj, protocol=protocol))
        check("pickle", source, folder, sources)


@pytest.mark.parametrize("source", EMBEDDED)
@FUZZ_SETTINGS
@given(content=st.one_of(st.binary(max_size=64), st.just(b"\xff\xfe{}"), st.just(b'{"a": ' * 5000),
                         st.just(b"[" * 200_000), st.just(b"NaN"), st.just(b'{"n_layer": 1e400}')))
def test_config_json_bytes(sources, source, content):
    with tempfile.TemporaryDirectory() as tmp:
        folder = copy_of(sources, source, tmp)
        (folder / "config.json").write_bytes(content)
        check("config bytes", source, folder, sources)


def test_report(sources):
    """Runs last in this module: print the tally (and write it where GENZOO_FUZZ_REPORT says)."""
    cases = sum(TALLY.values())
    by_outcome = Counter()
    for (kind, outcome), n in TALLY.items():
        by_outcome[outcome] += n
    print(f"\nfuzz: {cases} cases: " + ", ".join(f"{k} {v}" for k, v in sorted(by_outcome.items())))
    for (kind, outcome), n in sorted(TALLY.items()):
        print(f"  {kind:15s} {outcome:12s} {n}")
    if os.environ.get("GENZOO_FUZZ_REPORT"):
        Path(os.environ["GENZOO_FUZZ_REPORT"]).write_text(json.dumps(
            {"cases": cases, "outcomes": by_outcome, "by_kind": {f"{k}/{o}": n for (k, o), n in TALLY.items()},
             "examples": {f"{k}/{o}": e for (k, o), e in EXAMPLES_SEEN.items()}}, indent=2))
