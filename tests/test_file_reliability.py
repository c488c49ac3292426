"""Files and inputs a learner relies on: each fault is injected and both the message and what survives are checked.

- the dataset cache: a damaged file is rebuilt (with a message), stale temporaries of a killed build are removed,
  a failed or refused write (full disk, read-only folder) keeps the old file and names GAN_COURSE_CACHE;
- real data: a truncated, garbled or empty MNIST file is named, with what was expected and how to fix it;
- inputs: ``data.load`` rejects wrong types by name; exercise checks say what to pass, and whose error it was;
- shipped weights: SHA256SUMS matches every file, a flipped byte is refused with how to restore it, and nothing
  loads a torch file without ``weights_only=True`` (the torch floor makes that the default too).
"""

from __future__ import annotations

import errno
import gzip
import inspect
import os
import re
import shutil
from pathlib import Path

import pytest
import tomllib
import torch
from torch import nn

from gan_course import checksums, files, pretrained
from gan_course.data import DatasetNotFoundError, load, real
from gan_course.data.base import cached
from gan_course.exercises import ExerciseError, call, ch01, ch03, ch07
from gan_course.files import DamagedFileError
from gan_course.metrics import classifier, train_classifier

ROOT = Path(__file__).resolve().parents[1]


# --- the dataset cache -----------------------------------------------------------------------------------------
def _tiny(n: int = 4) -> dict:
    return {"images": torch.arange(n * 4, dtype=torch.uint8).view(n, 1, 2, 2), "targets": torch.arange(n)}


class Builder:
    """A dataset builder that counts its calls."""

    def __init__(self, n: int = 4):
        self.n, self.calls = n, 0

    def __call__(self):
        self.calls += 1
        return _tiny(self.n)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_damaged_cache_file_is_rebuilt_with_a_message(tmp_path, capsys, damage):
    path = tmp_path / "cache" / "glyphs-train-28-v1.pt"
    build = Builder()
    cached(path, build)
    whole = path.read_bytes()
    path.write_bytes({"truncated": whole[: len(whole) // 2], "garbage": b"\x00garbage" * 50, "empty": b""}[damage])
    data = cached(path, build)
    assert build.calls == 2                                        # rebuilt, not a torch error
    assert torch.equal(data["images"], _tiny()["images"])
    err = capsys.readouterr().err
    assert str(path) in err and "damaged" in err and "Rebuilding" in err
    assert "please torch.save" not in err                          # not torch's misleading mmap advice
    assert torch.equal(cached(path, build)["images"], _tiny()["images"]) and build.calls == 2   # and saved again


def test_stale_temporaries_of_a_killed_build_are_removed_when_the_cache_is_next_opened(tmp_path):
    path = tmp_path / "shapes-train-64-v1.pt"
    cached(path, Builder())
    dead = path.with_name(f".{path.name}.tmp-999999999-0badf00d")            # no such process
    dead.write_bytes(b"x" * 1000)
    alive = path.with_name(f".{path.name}.tmp-{os.getppid()}-c0ffee00")      # a live writer: keep it
    alive.write_bytes(b"x")
    other = tmp_path / ".another.pt.tmp-999999999-0badf00d"                 # another file's temporary
    other.write_bytes(b"x")
    legacy = path.with_name(f".{path.name}.999999999.0badf00d.tmp")          # named as before files.atomic_save
    legacy.write_bytes(b"x" * 1000)
    cached(path, Builder())
    assert not dead.exists() and not legacy.exists() and alive.exists() and other.exists()


def test_a_failed_cache_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch, capsys):
    path = tmp_path / "glyphs-train-28-v1.pt"
    cached(path, Builder(4))
    old = path.read_bytes()[:300]                  # a damaged file, so the next open rebuilds and writes

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"half a file")
        raise OSError(errno.ENOSPC, "No space left on device")

    path.write_bytes(old)
    monkeypatch.setattr(torch, "save", full_disk)
    data = cached(path, Builder(6))
    assert len(data["images"]) == 6                # the learner still gets the dataset, built in memory
    err = capsys.readouterr().err
    assert str(path) in err and "GAN_COURSE_CACHE" in err and "disk is full" in err
    assert path.read_bytes() == old                # not replaced by half a file
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []


def test_a_read_only_cache_folder_names_gan_course_cache_and_still_gives_the_dataset(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "readonly"
    folder.mkdir()

    def refuse(obj, path, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(files, "atomic_save", refuse)                 # root ignores chmod: refuse as a read-only fs
    folder.chmod(0o555)
    try:
        data = cached(folder / "glyphs-train-28-v1.pt", Builder())
    finally:
        folder.chmod(0o755)
    assert torch.equal(data["images"], _tiny()["images"])
    err = capsys.readouterr().err
    assert "GAN_COURSE_CACHE" in err and str(folder) in err and "PermissionError" in err


# --- real data -------------------------------------------------------------------------------------------------
@pytest.fixture
def mnist_copy(shared_data, tmp_path):
    """A copy of MNIST's test files (to damage) beside links to its train files, in torchvision's layout."""
    raw_in, raw = Path(shared_data) / "MNIST" / "raw", tmp_path / "MNIST" / "raw"
    if not raw_in.is_dir():
        pytest.skip("no MNIST under GAN_COURSE_DATA")
    raw.mkdir(parents=True)
    for f in raw_in.iterdir():
        if f.name.startswith("t10k"):
            shutil.copyfile(f, raw / f.name)
        else:
            (raw / f.name).symlink_to(f)
    for f in raw.iterdir():
        real.check_idx_file(f)                                              # intact: passes
    return raw


@pytest.mark.realdata
def test_truncated_mnist_file_is_named_with_its_expected_size_and_the_fix(mnist_copy):
    images = mnist_copy / "t10k-images-idx3-ubyte"
    with open(images, "r+b") as f:
        f.truncate(1_000_000)
    with pytest.raises(DamagedFileError) as err:
        load("mnist", split="test", root=mnist_copy.parents[1])
    message = str(err.value)
    assert str(images) in message and "1,000,000 bytes" in message and "7,840,016" in message
    assert "Delete it" in message and "download=True" in message and "GAN_COURSE_DATA" in message
    assert "not found" not in message


@pytest.mark.realdata
def test_garbled_mnist_header_names_the_magic_number(mnist_copy):
    labels = mnist_copy / "t10k-labels-idx1-ubyte"
    with open(labels, "r+b") as f:
        f.write(b"<htm")                                              # an HTML error page saved as the file
    with pytest.raises(DamagedFileError, match="magic number 2049") as err:
        load("mnist", split="test", root=mnist_copy.parents[1])
    assert str(labels) in str(err.value)


@pytest.mark.realdata
def test_empty_mnist_file_and_a_lone_gz_are_explained(mnist_copy):
    images = mnist_copy / "t10k-images-idx3-ubyte"
    data = images.read_bytes()
    images.write_bytes(b"")
    with pytest.raises(DamagedFileError, match="empty") as err:
        load("mnist", split="test", root=mnist_copy.parents[1])
    assert str(images) in str(err.value) and "7,840,016 bytes" in str(err.value)
    images.unlink()
    with gzip.open(images.with_name(images.name + ".gz"), "wb") as f:
        f.write(data[:100])
    with pytest.raises(DatasetNotFoundError, match="gunzip"):
        load("mnist", split="test", root=mnist_copy.parents[1])


def test_damaged_pairs_and_images_are_named(tmp_path, monkeypatch):
    (tmp_path / "facades").mkdir()
    npz = tmp_path / "facades" / "facades_128.npz"
    npz.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DamagedFileError, match="photo_train") as err:
        load("facades", root=tmp_path)
    assert str(npz) in str(err.value) and "GAN_COURSE_DATA" in str(err.value)
    (tmp_path / "pairs" / "train").mkdir(parents=True)
    broken = tmp_path / "pairs" / "train" / "0001.jpg"
    broken.write_bytes(b"\xff\xd8\xff not a jpeg")
    with pytest.raises(DamagedFileError, match="0001.jpg"):
        load("pix2pix-folder", root=tmp_path / "pairs", image_size=32)


# --- inputs ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, named", [
    (dict(name="glyphs", image_size=28.0), "image_size 28.0"),
    (dict(name="glyphs", image_size=True), "image_size True"),
    (dict(name=["glyphs", "shapes"]), "must be a string"),
    (dict(name="glyphs", root=5), "root must be a folder path"),
    (dict(name="mnist", root=5), "GAN_COURSE_DATA"),
    (dict(name="glyphs", split=["train"]), "Unknown split"),
    (dict(name="glyphs", download="no"), "download must be True, False or None"),
    (dict(name="glyphs", target=["label"]), "target=['label']"),
])
def test_load_rejects_wrong_types_by_name_before_building_anything(kwargs, named, tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_COURSE_CACHE", str(tmp_path))
    with pytest.raises(ValueError) as err:
        load(**kwargs)
    assert named in str(err.value)
    assert list(tmp_path.iterdir()) == []                               # nothing was built


def _all_checks():
    from gan_course import exercises
    return [(m, name, fn) for m in (getattr(exercises, f"ch{i:02d}") for i in range(1, 11))
            for name, fn in vars(m).items() if name.startswith("check_") and callable(fn)]


def test_every_check_of_every_chapter_says_it_wants_the_function_not_its_result():
    checks = _all_checks()
    assert len(checks) >= 25
    for module, name, check in checks:
        n = len(inspect.signature(check).parameters)
        for wrong in (torch.zeros(3), None):
            with pytest.raises(ExerciseError) as err:
                check(*[wrong] * n)
            message = str(err.value)
            assert f"{name} expects your function itself" in message and "not its result" in message, module
            assert ("Tensor of shape (3,)" if wrong is not None else "you passed None") in message


def test_a_function_with_the_wrong_parameters_is_told_how_the_check_calls_it():
    def nonsaturating_loss(real_logits, fake_logits):           # one parameter too many
        return fake_logits.mean()

    with pytest.raises(ExerciseError) as err:
        ch01.check_nonsaturating_loss(nonsaturating_loss)
    message = str(err.value)
    assert "nonsaturating_loss(real_logits, fake_logits)" in message
    assert "calls it as nonsaturating_loss(fake_logits)" in message
    def d_loss(fake_logits):
        return fake_logits.mean()

    with pytest.raises(ExerciseError, match=r"calls it as d_loss\(real_logits, fake_logits\)"):   # a direct call
        ch07.check_hinge_losses(d_loss, lambda f: -f.mean())
    with pytest.raises(ExerciseError, match="5 positional arguments"):                  # through call()
        ch03.check_output_sizes(lambda n, k, s, p: (n + 2 * p - k) // s + 1, lambda n, k, s, p: n)
    with pytest.raises(ExerciseError, match=r"takes 2 functions: check_hinge_losses\(d_loss, g_loss\)"):
        ch07.check_hinge_losses(lambda r, f: r.mean())


def test_an_error_in_the_learners_own_code_is_said_to_come_from_it():
    def my_loss(fake_logits):
        return fake_logits.view(5, 7).mean()                    # a shape mistake of the learner's

    with pytest.raises(ExerciseError) as err:
        ch01.check_nonsaturating_loss(my_loss)
    message = str(err.value)
    assert "your function `my_loss` raised RuntimeError" in message and "your own code" in message
    assert "fake_logits.view(5, 7)" in message                  # their line, quoted
    assert isinstance(err.value.__cause__, RuntimeError)        # and their traceback kept above it

    def d_loss(real_logits, fake_logits):
        raise NotImplementedError

    with pytest.raises(ExerciseError, match="still raises NotImplementedError"):          # a direct call (ch07)
        ch07.check_hinge_losses(d_loss, lambda f: -f.mean())


def test_right_answers_still_pass_and_call_checks_its_arguments(capsys):
    assert ch01.check_nonsaturating_loss(lambda fake_logits: nn.functional.softplus(-fake_logits).mean())
    assert "all checks passed" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="cannot take the arguments"):
        call(lambda a, b: a, torch.zeros(1))


# --- shipped weights -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("directory", [classifier.WEIGHTS_DIR, pretrained.WEIGHTS_DIR], ids=["classifiers", "pretrained"])
def test_sha256sums_lists_every_shipped_file_with_its_current_digest(directory):
    manifest = checksums.read_manifest(directory)
    assert manifest is not None, f"{directory}/SHA256SUMS is missing"
    assert sorted(manifest) == sorted(p.name for p in directory.glob("*.pt"))
    for name, digest in manifest.items():
        assert files.sha256(directory / name) == digest, f"{name} changed without its SHA256SUMS entry"


def _flip_a_byte(path: Path) -> bytes:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    return bytes(data)


def test_a_flipped_byte_in_a_course_classifier_is_refused_with_how_to_restore_it(tmp_path, monkeypatch):
    for f in ("glyphs.pt", checksums.MANIFEST):
        shutil.copyfile(classifier.WEIGHTS_DIR / f, tmp_path / f)
    monkeypatch.setattr(classifier, "WEIGHTS_DIR", tmp_path)
    classifier._load.cache_clear()
    try:
        assert classifier.course_classifier("glyphs").meta["dataset"] == "glyphs"       # intact: loads
        classifier._load.cache_clear()
        flipped = _flip_a_byte(tmp_path / "glyphs.pt")
        with pytest.raises(DamagedFileError) as err:
            classifier.course_classifier("glyphs")
    finally:
        classifier._load.cache_clear()
    message = str(err.value)
    assert str(tmp_path / "glyphs.pt") in message and "SHA-256" in message
    assert "python -m gan_course.metrics.train_classifier --dataset glyphs" in message
    assert (tmp_path / "glyphs.pt").read_bytes() == flipped                              # left for the learner
    hint = checksums.restore_hint(ROOT / "gan_course/metrics/weights/glyphs.pt", classifier.recipe("glyphs"))
    assert "git checkout -- gan_course/metrics/weights/glyphs.pt" in hint                # in this clone


def test_a_damaged_pretrained_generator_is_refused_naming_the_file_and_recipe(tmp_path, monkeypatch):
    for f in ("07_sagan.pt", checksums.MANIFEST):
        shutil.copyfile(pretrained.WEIGHTS_DIR / f, tmp_path / f)
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    assert pretrained.meta("07_sagan")["name"] == "07_sagan"
    path = tmp_path / "07_sagan.pt"
    path.write_bytes(path.read_bytes()[:1000])                                          # truncated
    with pytest.raises(DamagedFileError, match="python -m gan_course.pretrained 07_sagan") as err:
        pretrained.meta("07_sagan")
    assert str(path) in str(err.value)
    (tmp_path / "extra.pt").write_bytes(b"x")                                           # not in the manifest
    with pytest.raises(DamagedFileError, match="records no checksum"):
        pretrained.meta("extra")


def test_the_writers_record_the_checksum_that_the_loaders_check(tmp_path):
    net = classifier.CourseClassifier(1, 3, 8, widths=(2, 2, 4))
    meta = {"dataset": "tiny", "classes": ["a", "b", "c"], "channels": 1, "image_size": 8, "widths": [2, 2, 4]}
    path = train_classifier.save(net, meta, tmp_path / "tiny.pt")
    checksums.verify(path, "retrain")                                                   # recorded: passes
    run = tmp_path / "build" / "runs" / "07_sagan"
    run.mkdir(parents=True)
    torch.save({"models": {"G": nn.Linear(2, 2).state_dict()}, "step": 3, "elapsed": 1.0,
                "config": {"dataset": "shapes"}}, run / "checkpoint.pt")
    exported = pretrained.export("07_sagan", tmp_path / "build", directory=tmp_path / "weights")
    checksums.verify(exported, "re-export")
    assert checksums.read_manifest(tmp_path) == {"tiny.pt": files.sha256(path)}
    _flip_a_byte(path)
    with pytest.raises(DamagedFileError, match="retrain"):
        checksums.verify(path, "retrain")


def _torch_load_calls(text: str):
    for match in re.finditer(r"torch\.load\(", text):
        depth, i = 1, match.end()
        while depth and i < len(text):
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        yield text[match.start(): i]


def test_nothing_loads_a_torch_file_without_weights_only_and_the_torch_floor_makes_it_the_default():
    sources = [*(ROOT / "gan_course").rglob("*.py"), *(ROOT / "notebooks").glob("*.ipynb")]
    unsafe = [(p.name, call) for p in sources if p.name != "files.py"      # files.load sets it for its callers
              for call in _torch_load_calls(p.read_text().replace('\\"', '"'))
              if "weights_only=True" not in call]
    assert unsafe == []
    floors = {re.match(r"[\w-]+", d).group(): d for d in
              tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}

    def version(text):
        return tuple(int(x) for x in re.findall(r"\d+", text)[:2])

    assert version(floors["torch"].split(">=")[1]) >= (2, 6)             # torch 2.6: weights_only=True by default
    assert version(floors["torchvision"].split(">=")[1]) >= (0, 21)      # the torchvision of torch 2.6
    assert version(torch.__version__) >= version(floors["torch"].split(">=")[1])
    assert inspect.signature(torch.load).parameters["weights_only"].default in (None, True)
