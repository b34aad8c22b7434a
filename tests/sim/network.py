"""A seeded, lossy, reordering message network between simulated replicas.

Each message sent is, independently: dropped (loss), copied (duplication), and given a
random delivery tick (delay, which also reorders messages on one link). A blocked link
drops at delivery time, so messages already in flight when a partition starts are lost
too, as on a real cut cable. Links are directed: blocking A->B leaves B->A working.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

MAX_IN_FLIGHT_MESSAGES = 100_000  # a runaway sender is a bug: fail loudly, not slowly
MAX_DELAY_TICKS = 20

M = TypeVar("M")


@dataclass(frozen=True, slots=True)
class NetworkFaults:
    loss: float = 0.0  # probability a message is dropped
    duplication: float = 0.0  # probability a message is delivered twice
    delay_ticks_max: int = 1  # delivery happens 1..delay_ticks_max ticks after sending

    def __post_init__(self) -> None:
        assert 0.0 <= self.loss < 1.0 and 0.0 <= self.duplication < 1.0
        assert 1 <= self.delay_ticks_max <= MAX_DELAY_TICKS


RELIABLE = NetworkFaults()


class Network(Generic[M]):
    """Holds messages in flight; `deliverable(now)` hands back those due by `now`.

    `on_drop` is told about every dropped message (reason, src, dst, message) so the
    trace covers drops as well as deliveries.
    """

    def __init__(
        self,
        rng: random.Random,
        faults: NetworkFaults,
        on_drop: Callable[[str, int, int, M], None],
    ) -> None:
        self._rng = rng
        self.faults = faults
        self._on_drop = on_drop
        self._queue: list[tuple[int, int, int, int, M]] = []  # (tick, seq, src, dst, msg)
        self._seq = 0
        self._blocked: set[tuple[int, int]] = set()

    # -- sending and delivering ----------------------------------------------------------

    def send(self, src: int, dst: int, msg: M, now: int) -> None:
        faults = self.faults
        draw = self._rng.random
        if faults.loss and draw() < faults.loss:
            self._on_drop("loss", src, dst, msg)
            return
        copies = 2 if faults.duplication and draw() < faults.duplication else 1
        spread = faults.delay_ticks_max
        queue = self._queue
        for _ in range(copies):
            delay = 1 if spread == 1 else 1 + int(draw() * spread)
            self._seq += 1
            heapq.heappush(queue, (now + delay, self._seq, src, dst, msg))
        if len(queue) > MAX_IN_FLIGHT_MESSAGES:
            raise AssertionError(f"{len(queue)} messages in flight: runaway sender")

    def deliverable(self, now: int) -> list[tuple[int, int, M]]:
        """Pop every message due at or before `now`, in (due tick, send order) order,
        dropping those whose link is blocked."""
        out: list[tuple[int, int, M]] = []
        queue = self._queue
        while queue and queue[0][0] <= now:
            _, _, src, dst, msg = heapq.heappop(queue)
            if (src, dst) in self._blocked:
                self._on_drop("partition", src, dst, msg)
                continue
            out.append((src, dst, msg))
        return out

    def in_flight(self) -> int:
        return len(self._queue)

    # -- partitions -----------------------------------------------------------------------

    def is_blocked(self, src: int, dst: int) -> bool:
        return (src, dst) in self._blocked

    def block(self, src: int, dst: int) -> None:
        self._blocked.add((src, dst))

    def split(self, side_a: Iterable[int], side_b: Iterable[int]) -> None:
        """Cut every link between the two sides, both ways."""
        b_nodes = sorted(side_b)
        for a in sorted(side_a):
            for b in b_nodes:
                self._blocked.add((a, b))
                self._blocked.add((b, a))

    def heal(self) -> None:
        self._blocked.clear()

    def partitioned(self) -> bool:
        return bool(self._blocked)
