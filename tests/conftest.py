import os

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def one_thread():
    """For tests of tiny networks: one thread avoids waiting at a barrier per operation on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tmp_build(tmp_path, monkeypatch):
    """Point runs/results at a temporary directory (checkpoints of tests never touch build/)."""
    monkeypatch.setenv("GAN_COURSE_BUILD", str(tmp_path / "build"))
    return tmp_path / "build"


@pytest.fixture
def shared_data():
    """The real datasets directory (GAN_COURSE_DATA, set by .ci/run); skip when it is not available."""
    root = os.environ.get("GAN_COURSE_DATA")
    if not root or not os.path.isdir(root):
        pytest.skip("GAN_COURSE_DATA is not set (real datasets live in ../shared/datasets; .ci/run sets it)")
    return root
