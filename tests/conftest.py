import os

import pytest
import torch

# Tests never touch the network: huggingface_hub reads only its cache, and genzoo refuses URL downloads.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GENZOO_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
