import os

import pytest
import torch

# Tests never touch the network: huggingface_hub reads only its cache, and genzoo refuses URL downloads.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GENZOO_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

# One thread by default: the suite is many tiny ops, where extra threads only spin (and on a shared 2-core CI box
# two threads made small convolution tests ~10x slower). GENZOO_TEST_THREADS overrides.
TEST_THREADS = int(os.environ.get("GENZOO_TEST_THREADS", "1"))
torch.set_num_threads(TEST_THREADS)

# Parity tolerances are float32 tolerances: no TF32 on a GPU (genzoo.runtime documents the policy).
from genzoo.runtime import allow_tf32  # noqa: E402

allow_tf32(False)


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield
    torch.set_num_threads(TEST_THREADS)  # a test (or a CLI it runs in-process) may have changed it


def pytest_terminal_summary(terminalreporter):
    """One line for the skips instead of one per test: say why each group was skipped."""
    reasons = {}
    for report in terminalreporter.stats.get("skipped", []):
        reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reasons[reason.removeprefix("Skipped: ")] = reasons.get(reason.removeprefix("Skipped: "), 0) + 1
    for reason, count in sorted(reasons.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"skipped {count}: {reason}")
