"""Writing a streamed snapshot to disk so that only a verified, complete file appears."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from triumvir.v1 import maintenance_pb2
from triumvir_client import errors

PARTIAL_SUFFIX = ".part"


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    path: str
    size_bytes: int
    sha256_hex: str
    revision: int  # store revision of the snapshot, from the first response's header
    member_id: int


class SnapshotFile:
    """Collects chunks in `<path>.part`, then checks the SHA-256 and renames into place."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._partial_path = path + PARTIAL_SUFFIX
        self._file = open(self._partial_path, "wb")  # noqa: SIM115 - closed in commit/discard
        self._digest = hashlib.sha256()
        self._size_bytes = 0
        self._expected_sha256 = b""
        self._revision = 0
        self._member_id = 0
        self._first = True

    def add(self, response: maintenance_pb2.SnapshotResponse) -> None:
        if self._first:
            self._revision = response.header.revision
            self._member_id = response.header.member_id
            self._first = False
        if self._expected_sha256:
            raise errors.SnapshotCorrupt("the snapshot stream continued after its checksum")
        self._file.write(response.blob)
        self._digest.update(response.blob)
        self._size_bytes += len(response.blob)
        if response.sha256:
            self._expected_sha256 = response.sha256

    def commit(self) -> SnapshotInfo:
        """Verifies the checksum, makes the file durable and gives it its final name."""
        if not self._expected_sha256:
            self.discard()
            raise errors.SnapshotCorrupt("the snapshot stream ended without its SHA-256")
        actual = self._digest.digest()
        if actual != self._expected_sha256:
            self.discard()
            raise errors.SnapshotCorrupt(
                f"snapshot SHA-256 mismatch: received {actual.hex()}, "
                f"server sent {self._expected_sha256.hex()}"
            )
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._partial_path, self.path)
        _fsync_directory(os.path.dirname(os.path.abspath(self.path)))
        return SnapshotInfo(
            path=self.path,
            size_bytes=self._size_bytes,
            sha256_hex=actual.hex(),
            revision=self._revision,
            member_id=self._member_id,
        )

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        if os.path.exists(self._partial_path):
            os.remove(self._partial_path)


def _fsync_directory(directory: str) -> None:
    # The rename is only durable once the directory entry is on disk.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
