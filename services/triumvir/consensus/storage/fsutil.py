"""The few file-system moves that make a write crash-safe: fsync a file, fsync a directory
(so a create, rename or unlink inside it survives a power cut), and publish a whole file
atomically through a temp name."""

from __future__ import annotations

import os
from pathlib import Path

TEMP_SUFFIX = ".tmp"


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that after a crash the file either holds all of it or does
    not exist: temp file, fsync, rename, fsync the directory."""
    temp = path.with_name(path.name + TEMP_SUFFIX)
    with open(temp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, path)
    fsync_dir(path.parent)


def ensure_dir(directory: Path) -> None:
    """Create `directory` (and parents) durably if missing."""
    if directory.is_dir():
        return
    ensure_dir(directory.parent)
    directory.mkdir(exist_ok=True)
    fsync_dir(directory.parent)


def remove_temp_files(directory: Path) -> None:
    """A temp file is a write that never got published; it holds nothing acknowledged."""
    for temp in directory.glob("*" + TEMP_SUFFIX):
        temp.unlink()
