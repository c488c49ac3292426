"""SHA-256 manifests of the files the course ships (course classifiers, pretrained generators).

Each folder of shipped weights holds a ``SHA256SUMS`` file in the format of ``sha256sum`` (so
``cd gan_course/metrics/weights && sha256sum -c SHA256SUMS`` checks it too)::

    <64 hex digits>  glyphs.pt

It is written by the code that writes the weights (``record`` after each export or training run) and read
by the code that loads them (``verify``), so a flipped byte or a truncated copy gives an error naming the file and
how to restore it instead of loading silently. ``tests/test_file_reliability.py`` recomputes every digest, so a
weights file changed without its manifest fails the tests.
"""

from __future__ import annotations

from pathlib import Path

from . import files, paths

MANIFEST = "SHA256SUMS"


def read_manifest(directory: Path | str) -> dict[str, str] | None:
    """``{file name: hex digest}`` from ``<directory>/SHA256SUMS``; None when the folder has no manifest."""
    path = Path(directory) / MANIFEST
    if not path.exists():
        return None
    entries = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            entries[name.lstrip("*")] = digest.lower()
    return entries


def _write(directory: Path, entries: dict[str, str]) -> Path:
    path = directory / MANIFEST
    tmp = path.with_name(f".{MANIFEST}.tmp")
    tmp.write_text("".join(f"{digest}  {name}\n" for name, digest in sorted(entries.items())))
    tmp.replace(path)
    return path


def record(path: Path | str) -> Path:
    """Record the SHA-256 of ``path`` in the ``SHA256SUMS`` beside it (created if needed); entries of files that
    no longer exist are dropped. Called by whatever writes a shipped file, right after writing it."""
    path = Path(path)
    entries = {name: digest for name, digest in (read_manifest(path.parent) or {}).items()
               if (path.parent / name).exists()}
    entries[path.name] = files.sha256(path)
    return _write(path.parent, entries)


def write_manifest(directory: Path | str, pattern: str = "*.pt") -> Path:
    """Rewrite ``<directory>/SHA256SUMS`` from scratch with the digest of every file matching ``pattern``."""
    directory = Path(directory)
    return _write(directory, {p.name: files.sha256(p) for p in directory.glob(pattern)})


def restore_hint(path: Path | str, recipe: str) -> str:
    """How to get an intact copy of shipped file ``path`` back: git (in a clone) or reinstalling, or ``recipe``."""
    path = Path(path).resolve()
    root = paths.project_root()
    if root is not None and path.is_relative_to(root.resolve()):
        restore = f"restore the shipped copy with `git checkout -- {path.relative_to(root.resolve())}`"
    else:
        restore = "reinstall the course package (pip install --force-reinstall gan_course)"
    return f"To fix it, {restore}, or make it again with `{recipe}`."


def verify(path: Path | str, recipe: str) -> None:
    """Check shipped file ``path`` against the ``SHA256SUMS`` beside it; ``files.DamagedFileError`` if it differs.

    A folder without a manifest (an installed copy that lacks it) is not checked. A file the manifest does not
    list is an error: whatever wrote it should have recorded its digest.
    """
    path = Path(path)
    manifest = read_manifest(path.parent)
    if manifest is None:
        return
    fix = restore_hint(path, recipe)
    if path.name not in manifest:
        raise files.DamagedFileError(path, f"{MANIFEST} beside it records no checksum for it (written by hand, or by "
                                     "a tool that did not update the manifest)", fix)
    files.verify_sha256(path, manifest[path.name], fix=fix)
