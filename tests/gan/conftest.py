import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """The GAN tests run tiny models, where thread hand-offs cost more than the math (10x on a shared CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
