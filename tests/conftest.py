import os

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
# pytest -n N runs N workers side by side: each gets its share of the cores (and so do the notebook kernels that
# nbval starts from a worker: gan_course.notebook reads $OMP_NUM_THREADS), else threads wait at barriers
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", 1))
THREADS = max(1, min(2, (os.cpu_count() or 1) // WORKERS))
torch.set_num_threads(THREADS)
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))


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
