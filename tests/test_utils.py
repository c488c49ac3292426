import pytest
import torch

from gan_course.utils import autocast, count_parameters, get_device, seed_everything


def test_auto_device_is_available():
    assert get_device("auto").type in ("cpu", "cuda", "mps")
    assert get_device(None) == get_device("auto")


def test_bad_device_lists_choices():
    with pytest.raises(ValueError, match="Valid choices: auto, cpu, cuda"):
        get_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="only meaningful without CUDA")
def test_missing_accelerator_is_a_clear_error():
    with pytest.raises(ValueError, match="not available"):
        get_device("cuda")


def test_seed_everything_is_reproducible():
    seed_everything(7)
    a = torch.randn(3)
    seed_everything(7)
    assert torch.equal(a, torch.randn(3))
    with pytest.raises(ValueError):
        seed_everything(-1)


def test_autocast_is_noop_on_cpu():
    with autocast(torch.device("cpu")):
        y = torch.ones(2, 2) @ torch.ones(2, 2)
    assert y.dtype == torch.float32


def test_count_parameters():
    assert count_parameters(torch.nn.Linear(3, 2)) == 8


def test_exercise_call_explains_stubs_and_missing_returns():
    import pytest

    from gan_course.exercises import ExerciseError, call

    def stub():
        raise NotImplementedError

    with pytest.raises(ExerciseError, match="NotImplementedError"):
        call(stub)
    with pytest.raises(ExerciseError, match="return"):
        call(lambda x: None, 1)
    assert call(lambda x: x + 1, 1) == 2


def test_record_result_writes_numbers_and_where_they_were_measured(tmp_build):
    import json

    from gan_course.paths import record_result

    path = record_result("99_demo", fid=torch.tensor(1.5), dataset="glyphs")
    numbers = json.loads(path.read_text())
    assert path.parent == tmp_build / "results" and path.name == "99_demo.json"
    assert numbers["fid"] == 1.5 and numbers["dataset"] == "glyphs"
    assert numbers["_torch"] == torch.__version__ and "CPU cores" in numbers["_machine"]
    assert not list(path.parent.glob("*.tmp"))  # written atomically: no temporary file left behind
    from gan_course.paths import git_commit, project_root

    if project_root() is not None and (project_root() / ".git").exists():   # a clone: the code is named
        assert numbers["_commit"] == git_commit() and len(numbers["_commit"].split("+")[0]) >= 7
