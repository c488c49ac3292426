"""Files a learner must never lose: atomic writes, damaged-file detection, free space and checksums.

Everything the course writes (checkpoints, dataset caches, exported weights) goes through ``atomic_save``, and
everything it reads back through ``load`` or ``verify_sha256``, so that a killed kernel, a full disk or a flipped
byte gives a message naming the file and the fix instead of a bare ``EOFError`` or a half-written file.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import os
import shutil
import uuid
from pathlib import Path

import torch


class DamagedFileError(RuntimeError):
    """A file the course wrote (or ships) cannot be read back: truncated, empty, garbage or a wrong checksum."""

    def __init__(self, path: Path | str, reason: str, fix: str):
        self.path, self.reason, self.fix = Path(path), reason, fix
        super().__init__(f"{self.path} is damaged ({reason}). {fix}")


class DiskFullError(OSError):
    """Writing a file failed because the disk (or quota) is full; the previous copy of the file is intact."""


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def free_bytes(directory: Path | str) -> int:
    """Free space on the file system holding ``directory`` (or its nearest existing parent), in bytes."""
    d = Path(directory)
    while not d.exists() and d != d.parent:
        d = d.parent
    return shutil.disk_usage(d).free


def atomic_save(obj, path: Path | str, *, fsync: bool = True) -> Path:
    """``torch.save`` to a temporary file beside ``path``, flush it to disk, then rename it over ``path``.

    A crash or an interrupted kernel at any moment leaves either the old file or the new one, never half of one;
    on any failure the temporary file is removed. A full disk raises ``DiskFullError`` naming the path and the
    free space, and saying that the previous file is intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path)
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if _is_disk_full(e):
            kept = "The previous copy is intact." if path.exists() else "No earlier copy existed."
            raise DiskFullError(
                errno.ENOSPC,
                f"Could not write {path}: the disk is full ({free_bytes(path.parent) / 2**20:.0f} MiB free). "
                f"{kept} Free some space (e.g. delete old runs under {path.parent.parent}) and run the cell again.",
            ) from e
        raise
    return path


def _is_disk_full(e: BaseException) -> bool:
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(e)  # torch's zip writer reports a full disk as a RuntimeError ("... inline_container.cc ...")
    return isinstance(e, RuntimeError) and ("inline_container" in text or "No space left" in text)


def remove_stale_temps(directory: Path | str, name: str | None = None) -> list[Path]:
    """Delete temporary files left by ``atomic_save`` calls that died (killed process, power loss).

    Only temporary files whose writing process is gone are removed (a file being written right now by another
    live process is kept). ``name`` limits the clean-up to the temporaries of one file. Returns what was removed.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    for tmp in directory.glob(f".{glob.escape(name) if name else '*'}.tmp-*"):
        pid = tmp.name.rsplit(".tmp-", 1)[1].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            continue
        try:
            tmp.unlink()
            removed.append(tmp)
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def load(path: Path | str, *, fix: str, **kwargs):
    """``torch.load(path, weights_only=True, **kwargs)``, raising ``DamagedFileError`` (with ``fix``) when the file
    is empty, truncated or not a torch file, instead of torch's ``EOFError`` / zip / unpickling messages."""
    path = Path(path)
    kwargs.setdefault("weights_only", True)
    if path.exists() and path.stat().st_size == 0:
        raise DamagedFileError(path, "the file is empty", fix)
    try:
        return torch.load(path, **kwargs)
    except FileNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001 - torch raises many types for a damaged file
        if isinstance(e, MemoryError) or _refused_by_weights_only(e):
            raise
        raise DamagedFileError(path, f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else 'unreadable'}",
                               fix) from e


def _refused_by_weights_only(e: Exception) -> bool:
    """A readable file holding an object that ``weights_only=True`` does not allow: not damage, so not hidden."""
    text = str(e)
    return "Unsupported global" in text or "This file can still be loaded" in text


def sha256(path: Path | str, chunk: int = 1 << 20) -> str:
    """The SHA-256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_sha256(path: Path | str, expected: str, *, fix: str) -> None:
    """Raise ``DamagedFileError`` (with ``fix``) unless the file's SHA-256 is ``expected``."""
    actual = sha256(path)
    if actual != expected:
        raise DamagedFileError(path, f"SHA-256 {actual[:12]}... does not match the recorded {expected[:12]}...", fix)
