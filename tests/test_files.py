"""gan_course.files: atomic writes that leave no temporary file, full disks named as such, stale temporaries cleaned,
damaged files reported with the fix, checksums."""

import errno
import hashlib
import pickle
import subprocess
import sys

import pytest
import torch

from gan_course import files
from gan_course.files import DamagedFileError, DiskFullError, atomic_save, load, remove_stale_temps, sha256


def _temps(directory):
    return sorted(p.name for p in directory.glob(".*.tmp-*"))


def _dead_pid():
    """The id of a process that has exited (and been reaped)."""
    out = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(out.stdout)


def _saved_then_failing(tmp_path, monkeypatch, error):
    """A checkpoint written once, then ``torch.save`` patched to write half a file and raise ``error``."""
    target = tmp_path / "ckpt.pt"
    atomic_save({"a": torch.ones(2)}, target)

    def failing(obj, f, *args, **kwargs):
        f.write(b"half")
        raise error

    monkeypatch.setattr(torch, "save", failing)
    return target, target.read_bytes()


def test_atomic_save_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "ckpt.pt"
    assert atomic_save({"a": torch.ones(2)}, target) == target
    atomic_save({"a": torch.zeros(2)}, target)
    assert torch.equal(torch.load(target, weights_only=True)["a"], torch.zeros(2))
    assert _temps(target.parent) == []


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   OSError(errno.EDQUOT, "Disk quota exceeded"),
                                   RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")])
def test_a_full_disk_raises_disk_full_naming_the_path_and_keeps_the_previous_file(tmp_path, monkeypatch, error):
    target, before = _saved_then_failing(tmp_path, monkeypatch, error)
    with pytest.raises(DiskFullError) as info:
        atomic_save({"a": torch.zeros(2)}, target)
    message = str(info.value)
    assert str(target) in message and "the disk is full" in message and "MiB free" in message
    assert "The previous copy is intact" in message and info.value.errno == errno.ENOSPC
    assert target.read_bytes() == before and _temps(tmp_path) == []


def test_a_full_disk_on_the_first_write_says_no_copy_existed(tmp_path, monkeypatch):
    monkeypatch.setattr(torch, "save", lambda obj, f: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    with pytest.raises(DiskFullError, match="No earlier copy existed"):
        atomic_save({"a": 1}, tmp_path / "new.pt")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("error", [ValueError("not a disk problem"), KeyboardInterrupt()])
def test_other_failures_are_raised_unchanged_and_remove_the_temporary(tmp_path, monkeypatch, error):
    target, before = _saved_then_failing(tmp_path, monkeypatch, error)
    with pytest.raises(type(error)) as info:
        atomic_save({"a": torch.zeros(2)}, target)
    assert not isinstance(info.value, DiskFullError)
    assert target.read_bytes() == before and _temps(tmp_path) == []


def test_remove_stale_temps_removes_only_those_of_dead_writers(tmp_path):
    dead = _dead_pid()
    stale = [tmp_path / f".checkpoint.pt.tmp-{dead}-0a1b2c3d", tmp_path / f".checkpoint.pt.tmp-{dead}",
             tmp_path / f".cache[1].pt.tmp-{dead}-deadbeef"]
    live_writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        busy = tmp_path / f".checkpoint.pt.tmp-{live_writer.pid}-00000000"
        other = tmp_path / f".other.pt.tmp-{dead}-11111111"
        for p in [*stale, busy, other]:
            p.write_bytes(b"partial")
        (tmp_path / "checkpoint.pt").write_bytes(b"real")
        assert sorted(remove_stale_temps(tmp_path, "checkpoint.pt")) == sorted(stale[:2])
        assert remove_stale_temps(tmp_path, "cache[1].pt") == [stale[2]]  # a name with glob characters
        assert busy.exists() and other.exists() and (tmp_path / "checkpoint.pt").exists()
        assert remove_stale_temps(tmp_path) == [other]
    finally:
        live_writer.kill()
        live_writer.wait()
    assert remove_stale_temps(tmp_path / "missing") == []


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_load_reports_a_damaged_file_with_the_fix(tmp_path, damage):
    path = tmp_path / "weights.pt"
    atomic_save({"w": torch.arange(1000.0)}, path)
    data = path.read_bytes()
    path.write_bytes({"empty": b"", "truncated": data[: len(data) // 2], "garbage": bytes(range(256)) * 4}[damage])
    with pytest.raises(DamagedFileError) as info:
        load(path, fix="Delete it and run the cell again.")
    assert info.value.path == path and str(path) in str(info.value)
    assert str(info.value).endswith("Delete it and run the cell again.")
    assert ("empty" in info.value.reason) == (damage == "empty")


def test_load_passes_through_missing_files_and_objects_weights_only_refuses(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "absent.pt", fix="")
    path = tmp_path / "pickled.pt"
    torch.save({"obj": _Custom()}, path)  # readable, but not allowed by weights_only: not "damaged"
    with pytest.raises(pickle.UnpicklingError) as info:
        load(path, fix="")
    assert not isinstance(info.value, DamagedFileError)
    assert torch.equal(load(_saved(tmp_path), fix="", map_location="cpu")["w"], torch.ones(3))


class _Custom:
    pass


def _saved(tmp_path):
    path = tmp_path / "ok.pt"
    atomic_save({"w": torch.ones(3)}, path)
    return path


def test_sha256_and_verify(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"gan" * 1000)
    digest = hashlib.sha256(b"gan" * 1000).hexdigest()
    assert sha256(path, chunk=7) == digest
    files.verify_sha256(path, digest, fix="unused")
    with pytest.raises(DamagedFileError, match="does not match the recorded") as info:
        files.verify_sha256(path, "0" * 64, fix="Download it again.")
    assert info.value.path == path and str(info.value).endswith("Download it again.")


def test_free_bytes_of_a_directory_not_yet_made(tmp_path):
    free = files.free_bytes(tmp_path / "a" / "b")  # measured on the nearest existing parent
    assert isinstance(free, int) and free > 0
