"""A tiny deterministic key-value state machine that the simulated replicas apply.

Commands are encoded with a one-byte tag and length-prefixed fields so that every replica
decodes exactly the same bytes the same way. Besides the data, the model keeps a running
digest of every applied log position (`chain`): two replicas whose chains agree at an index
applied the same sequence of entries, which lets the checkers compare replicas that caught
up through a snapshot with replicas that applied entry by entry.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

PUT_TAG = b"P"
CAS_TAG = b"C"
SNAPSHOT_VERSION = 1

_U16 = struct.Struct(">H")
_HEADER = struct.Struct(">BQI")  # version, applied index, key count
CHAIN_BYTES = 16


@dataclass(frozen=True, slots=True)
class Put:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Cas:
    key: str
    expected: str | None  # None: swap only if the key is absent
    new: str


Command = Put | Cas


def _field(text: str) -> bytes:
    raw = text.encode()
    return _U16.pack(len(raw)) + raw


def _read_field(data: bytes, offset: int) -> tuple[str, int]:
    (length,) = _U16.unpack_from(data, offset)
    start = offset + _U16.size
    end = start + length
    if end > len(data):
        raise ValueError(f"kv command truncated at offset {offset}")
    return data[start:end].decode(), end


def encode(command: Command) -> bytes:
    if isinstance(command, Put):
        return PUT_TAG + _field(command.key) + _field(command.value)
    has_expected = command.expected is not None
    expected = _field(command.expected) if command.expected is not None else b""
    return CAS_TAG + _field(command.key) + bytes([has_expected]) + expected + _field(command.new)


def decode(data: bytes) -> Command:
    tag = data[:1]
    key, offset = _read_field(data, 1)
    if tag == PUT_TAG:
        value, offset = _read_field(data, offset)
        if offset != len(data):
            raise ValueError("trailing bytes after put command")
        return Put(key, value)
    if tag == CAS_TAG:
        has_expected = data[offset]
        offset += 1
        expected: str | None = None
        if has_expected:
            expected, offset = _read_field(data, offset)
        new, offset = _read_field(data, offset)
        if offset != len(data):
            raise ValueError("trailing bytes after cas command")
        return Cas(key, expected, new)
    raise ValueError(f"unknown kv command tag {tag!r}")


def chain_digest(previous: bytes, index: int, term: int, data: bytes) -> bytes:
    """The running digest after applying the entry (index, term, data)."""
    h = hashlib.blake2b(previous, digest_size=CHAIN_BYTES)
    h.update(index.to_bytes(8, "big"))
    h.update(term.to_bytes(8, "big"))
    h.update(data)
    return h.digest()


class KvModel:
    """The replicated state: a str -> str map plus the applied index and chain digest."""

    __slots__ = ("_data", "applied_index", "chain")

    def __init__(self) -> None:
        self._data: dict[str, str] = {}
        self.applied_index = 0
        self.chain = bytes(CHAIN_BYTES)

    def apply(self, index: int, term: int, data: bytes, *, is_command: bool) -> bool | None:
        """Apply the log entry at `index`. Non-command entries (no-ops, membership changes)
        only advance the index and the chain. Returns True for a put, the swap outcome for a
        cas, None for a non-command."""
        if index != self.applied_index + 1:
            raise AssertionError(f"apply out of order: index {index} after {self.applied_index}")
        self.applied_index = index
        self.chain = chain_digest(self.chain, index, term, data)
        if not is_command:
            return None
        command = decode(data)
        if isinstance(command, Put):
            self._data[command.key] = command.value
            return True
        if self._data.get(command.key) != command.expected:
            return False
        self._data[command.key] = command.new
        return True

    def get(self, key: str) -> str | None:
        return self._data.get(key)

    def snapshot(self) -> bytes:
        # keys are written sorted so equal states give equal bytes on every replica
        parts = [_HEADER.pack(SNAPSHOT_VERSION, self.applied_index, len(self._data)), self.chain]
        for key in sorted(self._data):
            parts.append(_field(key))
            parts.append(_field(self._data[key]))
        return b"".join(parts)

    def restore(self, blob: bytes) -> None:
        version, applied_index, count = _HEADER.unpack_from(blob, 0)
        if version != SNAPSHOT_VERSION:
            raise ValueError(f"unknown kv snapshot version {version}")
        offset = _HEADER.size
        chain = blob[offset : offset + CHAIN_BYTES]
        offset += CHAIN_BYTES
        data: dict[str, str] = {}
        for _ in range(count):
            key, offset = _read_field(blob, offset)
            value, offset = _read_field(blob, offset)
            data[key] = value
        if offset != len(blob):
            raise ValueError("trailing bytes after kv snapshot")
        self._data = data
        self.applied_index = applied_index
        self.chain = chain
