"""ReadIndex bookkeeping on the leader: reads wait for a heartbeat round a quorum answered.

Reads queued before a round starts share it. A round is named by a sequence number carried
in the heartbeat `context`; an acknowledgement of a round also vouches for every earlier
round, because it answers a heartbeat sent after they all started.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection
from dataclasses import dataclass

MAX_PENDING_READS = 10_000  # reads queued or in a round; beyond this reads are refused
ROUND_TAG_BYTES = 8


@dataclass(frozen=True, slots=True)
class PendingRead:
    context: bytes
    requester: int  # the node that asked (the leader itself for a local read)


@dataclass(frozen=True, slots=True)
class _Round:
    seq: int
    index: int  # the leader's commit index when the round started
    reads: tuple[PendingRead, ...]


def encode_round_tag(seq: int) -> bytes:
    return seq.to_bytes(ROUND_TAG_BYTES, "big")


def decode_round_tag(context: bytes) -> int:
    """The round a heartbeat answer acknowledges, 0 if it carries none."""
    if len(context) != ROUND_TAG_BYTES:
        return 0
    return int.from_bytes(context, "big")


class ReadIndexTracker:
    __slots__ = ("_acked_seq", "_next_seq", "_pending_count", "_rounds", "_unsent")

    def __init__(self) -> None:
        self._unsent: list[PendingRead] = []  # waiting for the next round to start
        self._rounds: deque[_Round] = deque()  # started, oldest first
        self._acked_seq: dict[int, int] = {}  # node -> highest round it answered
        self._next_seq = 1  # never reused, so a late answer cannot confirm a newer round
        self._pending_count = 0  # invariant: == len(_unsent) + reads in _rounds

    @property
    def has_unsent(self) -> bool:
        return bool(self._unsent)

    def queue(self, read: PendingRead) -> bool:
        if self._pending_count >= MAX_PENDING_READS:
            return False
        self._unsent.append(read)
        self._pending_count += 1
        return True

    def take_unsent(self) -> list[PendingRead]:
        reads, self._unsent = self._unsent, []
        self._pending_count -= len(reads)
        return reads

    def start_round(self, index: int) -> bytes:
        """Move every queued read into a new round at `index`; returns the round's tag."""
        seq = self._next_seq
        self._next_seq += 1
        self._rounds.append(_Round(seq, index, tuple(self._unsent)))
        self._unsent = []
        return encode_round_tag(seq)

    def latest_tag(self) -> bytes:
        """Tag of the newest unconfirmed round, b"" if none (plain heartbeats then)."""
        return encode_round_tag(self._rounds[-1].seq) if self._rounds else b""

    def acknowledge(self, node: int, context: bytes) -> None:
        seq = decode_round_tag(context)
        if seq and seq > self._acked_seq.get(node, 0):
            self._acked_seq[node] = seq

    def confirmed(self, voters: Collection[int], leader: int) -> list[tuple[PendingRead, int]]:
        """Pop every round a quorum of voters confirmed; returns (read, index) pairs."""
        done: list[tuple[PendingRead, int]] = []
        quorum = len(voters) // 2 + 1
        while self._rounds:
            seq = self._rounds[0].seq
            acks = sum(
                1 for voter in voters if voter == leader or self._acked_seq.get(voter, 0) >= seq
            )
            if acks < quorum:
                break
            finished = self._rounds.popleft()
            self._pending_count -= len(finished.reads)
            done.extend((read, finished.index) for read in finished.reads)
        return done

    def clear(self) -> None:
        """Leadership is lost: pending reads are dropped (their callers time out)."""
        self._unsent = []
        self._rounds.clear()
        self._acked_seq.clear()
        self._pending_count = 0
