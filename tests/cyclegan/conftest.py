import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    # These tests run tiny convolutions: one thread is faster, and two threads on a busy 2-core machine spin and
    # crawl (the MNIST training test took 325 s with 2 threads under load, 14 s with 1). Restored afterwards.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
