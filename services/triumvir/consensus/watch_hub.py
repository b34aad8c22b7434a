"""Fan-out of applied events to live watchers, gap-free from any retained revision.

Catch-up from history and registration for live events happen in one synchronous step
on the event loop (apply runs on that loop too), so no event can fall between them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

WATCHER_QUEUE_EVENTS_MAX = 10_000


class WatcherOverflow(Exception):
    """A watcher fell too far behind; it is cancelled and may resume from a revision."""


def key_matches(key: bytes, start: bytes, range_end: bytes) -> bool:
    if not range_end:
        return key == start
    if range_end == b"\0":
        return key >= start
    return start <= key < range_end


@dataclass(eq=False, slots=True)
class Subscription:
    key: bytes
    range_end: bytes
    queue: asyncio.Queue[Any] = field(
        # one slot more than the bound, for the overflow marker
        default_factory=lambda: asyncio.Queue(maxsize=WATCHER_QUEUE_EVENTS_MAX + 1)
    )
    next_revision: int = 0  # the smallest revision not yet handed to the watcher
    overflowed: bool = False


class WatchHub:
    def __init__(self, machine: Any) -> None:
        self._machine = machine
        self._subscriptions: set[Subscription] = set()

    def subscribe(self, key: bytes, range_end: bytes, start_revision: int) -> Subscription:
        """Raises the machine's Compacted error if start_revision was compacted away."""
        subscription = Subscription(key, range_end)
        current = self._machine.revision
        if 0 < start_revision <= current:
            for event in self._machine.events_since(start_revision, key, range_end):
                subscription.queue.put_nowait(event)
            subscription.next_revision = current + 1
        else:
            subscription.next_revision = max(start_revision, current + 1)
        self._subscriptions.add(subscription)
        return subscription

    @property
    def watching(self) -> bool:
        """Whether anyone watches: applied writes become events only then."""
        return bool(self._subscriptions)

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    def publish(self, events: list[Any]) -> None:
        for subscription in tuple(self._subscriptions):
            for event in events:
                if event.kv.mod_revision < subscription.next_revision:
                    continue
                if not key_matches(event.kv.key, subscription.key, subscription.range_end):
                    continue
                if subscription.queue.qsize() >= WATCHER_QUEUE_EVENTS_MAX:
                    subscription.overflowed = True
                    self._subscriptions.discard(subscription)
                    subscription.queue.put_nowait(WatcherOverflow())
                    break
                subscription.queue.put_nowait(event)

    def close(self) -> None:
        for subscription in self._subscriptions:
            if not subscription.queue.full():
                subscription.queue.put_nowait(None)
        self._subscriptions.clear()
