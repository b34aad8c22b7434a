"""The few file-system moves that make a write crash-safe: fsync a file, fsync a directory
(so a create, rename or unlink inside it survives a power cut), publish a whole file
atomically through a temp name, and hold a data directory for one process only."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from triumvir.consensus.storage.interface import StorageError

TEMP_SUFFIX = ".tmp"
LOCK_FILE = "LOCK"


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


class DataDirInUse(StorageError):
    """Another process holds the data directory."""


class DirectoryLock:
    """Holds `<directory>/LOCK` exclusively while this process runs on the directory.

    Two replicas writing one WAL would interleave their records and corrupt it, so the second
    one must refuse to start. The kernel drops the lock when the holder exits in any way,
    kill -9 included, so a crash never leaves a stale lock behind.
    """

    def __init__(self, directory: Path) -> None:
        ensure_dir(directory)
        fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DataDirInUse(
                f"data directory {directory} is in use by another process (pid {holder}); "
                "stop that replica or give this one its own --data-dir"
            ) from None
        # The pid is only there to name the holder in the error above.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None
