"""A state machine for driver tests: it answers each entry with its log index and keeps no
state, so a test sees only what the driver does."""

from __future__ import annotations

from collections.abc import Callable


class IndexMachine:
    def apply(self, index: int, data: bytes) -> int:
        return index

    def skip(self, index: int) -> None:
        pass

    def snapshot_later(self) -> Callable[[], bytes]:
        return lambda: b""

    def restore(self, data: bytes) -> None:
        pass
