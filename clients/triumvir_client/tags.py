"""Exactly-once tags: one client id, and a sequence that grows with every new write."""

from __future__ import annotations

import secrets
import threading

from triumvir.v1 import common_pb2

# 63 bits keeps the id positive in every language that reads it as a signed integer.
CLIENT_ID_BITS = 63


def random_client_id() -> int:
    """A non-zero random id; collisions between live clients are vanishingly unlikely."""
    while True:
        candidate = secrets.randbits(CLIENT_ID_BITS)
        if candidate != 0:
            return candidate


class TagSequence:
    """Hands out RequestTags for one client.

    A retry must reuse the tag of the attempt it repeats; only a new write takes `next()`.
    The server keeps one result per client, so callers keep one tagged write in flight.
    """

    def __init__(self, client_id: int | None = None) -> None:
        if client_id is not None and not 0 < client_id < 2**64:
            raise ValueError("client_id must be in [1, 2**64)")
        self.client_id = client_id if client_id is not None else random_client_id()
        self._sequence = 0
        self._lock = threading.Lock()

    def next(self) -> common_pb2.RequestTag:
        with self._lock:
            self._sequence += 1
            return common_pb2.RequestTag(client_id=self.client_id, sequence=self._sequence)
