"""Exactly-once writes: the last (sequence, result) of every client that tags its writes.

A retried write carries the same RequestTag as the original; apply finds the sequence
already recorded and hands back the stored result instead of applying the write again.

Records are kept in the order they were last touched. Because "now" only moves forward in
the state machine, that order is also last-seen order, so forgetting idle clients is a scan
from the front that stops at the first client still active: cheap, and the same on every
replica (the order survives snapshots, which store records in it).
"""

from __future__ import annotations

from dataclasses import dataclass

from triumvir.common.errors import FailedPrecondition, InvalidArgument
from triumvir.v1.command_pb2 import CommandResult

CLIENT_IDLE_EXPIRY_MS = 10 * 60 * 1000
"""A client not seen for this long (leader time) is forgotten; its next tag starts afresh."""

MAX_CLIENT_SESSIONS = 100_000
"""Clients remembered at once; the least recently seen is forgotten to make room."""

MAX_SESSION_EXPIRIES_PER_APPLY = 1_000
"""Idle clients forgotten per applied command, so one apply never stalls on a backlog."""


@dataclass(frozen=True, slots=True)
class ClientSession:
    sequence: int
    result: CommandResult
    last_seen_ms: int


class ClientSessions:
    def __init__(self) -> None:
        # invariant: insertion order is last_seen_ms order (non-decreasing).
        self._sessions: dict[int, ClientSession] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, client_id: int) -> ClientSession | None:
        return self._sessions.get(client_id)

    def expire_idle(self, now_ms: int, limit: int = MAX_SESSION_EXPIRIES_PER_APPLY) -> int:
        """Forget clients idle for longer than CLIENT_IDLE_EXPIRY_MS; returns how many."""
        cutoff_ms = now_ms - CLIENT_IDLE_EXPIRY_MS
        expired: list[int] = []
        for client_id, session in self._sessions.items():
            if len(expired) >= limit or session.last_seen_ms >= cutoff_ms:
                break
            expired.append(client_id)
        for client_id in expired:
            del self._sessions[client_id]
        return len(expired)

    def lookup(self, client_id: int, sequence: int, now_ms: int) -> CommandResult | None:
        """The stored result when (client_id, sequence) was already applied, else None.

        Raises FailedPrecondition for a sequence older than the last one applied: its
        result is gone, so the write can neither be applied nor answered truthfully.
        """
        if sequence <= 0:
            raise InvalidArgument(f"request tag sequence must be positive, got {sequence}")
        session = self._sessions.get(client_id)
        if session is None or sequence > session.sequence:
            return None
        if sequence < session.sequence:
            raise FailedPrecondition(
                f"stale sequence {sequence} for client {client_id} "
                f"(last applied {session.sequence})"
            )
        self._touch(client_id, ClientSession(session.sequence, session.result, now_ms))
        return session.result

    def record(self, client_id: int, sequence: int, result: CommandResult, now_ms: int) -> None:
        self._touch(client_id, ClientSession(sequence, result, now_ms))
        if len(self._sessions) > MAX_CLIENT_SESSIONS:
            del self._sessions[next(iter(self._sessions))]

    def _touch(self, client_id: int, session: ClientSession) -> None:
        # Re-inserting moves the client to the end, keeping the dict in last-seen order.
        self._sessions.pop(client_id, None)
        self._sessions[client_id] = session

    def items(self) -> list[tuple[int, ClientSession]]:
        """Every record in last-seen order (the order a snapshot must preserve)."""
        return list(self._sessions.items())

    @classmethod
    def from_items(cls, items: list[tuple[int, ClientSession]]) -> ClientSessions:
        sessions = cls()
        last_seen_ms = 0
        for client_id, session in items:
            if session.last_seen_ms < last_seen_ms:
                raise ValueError("client sessions are not in last-seen order")
            last_seen_ms = session.last_seen_ms
            sessions._sessions[client_id] = session
        return sessions
