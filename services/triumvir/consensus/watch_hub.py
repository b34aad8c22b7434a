"""Fan-out of applied events to live watchers, gap-free from any retained revision.

A watcher that starts in the past first reads history a page at a time, each page only
once it has taken the previous one, so catching up on a long history holds one page in
memory rather than all of it. Live events skip it meanwhile: they are history by the time
it reads that far. Reading the last page and switching to live events happen in one
synchronous step on the event loop (apply runs on that loop too), so no event can fall
between them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

WATCHER_QUEUE_EVENTS_MAX = 10_000
CATCH_UP_PAGE_EVENTS = 1_000


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
    prev_kv: bool = False  # history pages carry each event's previous version too
    # Bounded by publish(), not by the queue: one history page may hold a revision that
    # wrote more keys than the bound.
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    next_revision: int = 0  # the smallest revision not yet handed to the watcher
    catching_up: bool = False  # still reading history: call WatchHub.catch_up when drained


class WatchHub:
    def __init__(self, machine: Any) -> None:
        self._machine = machine
        self._subscriptions: set[Subscription] = set()

    def subscribe(
        self, key: bytes, range_end: bytes, start_revision: int, *, prev_kv: bool = False
    ) -> Subscription:
        """Raises the machine's Compacted error if start_revision was compacted away."""
        subscription = Subscription(key, range_end, prev_kv)
        current = self._machine.revision
        if 0 < start_revision <= current:
            subscription.next_revision = start_revision
            subscription.catching_up = True
            self.catch_up(subscription)  # the first page now: a compacted start fails here
        else:
            subscription.next_revision = max(start_revision, current + 1)
        self._subscriptions.add(subscription)
        return subscription

    def catch_up(self, subscription: Subscription) -> None:
        """Queue the watcher's next page of history; after the last page, live events follow.

        Raises the machine's Compacted error if the history it still needs was compacted
        while it read (it fell behind; it may resume from the compacted revision + 1).
        """
        events = self._machine.events_since(
            subscription.next_revision,
            subscription.key,
            subscription.range_end,
            prev_kv=subscription.prev_kv,
            max_events=CATCH_UP_PAGE_EVENTS,
        )
        for event in events:
            subscription.queue.put_nowait(event)
        if len(events) < CATCH_UP_PAGE_EVENTS:
            # A short page ends at the newest revision: from here on, live events.
            subscription.catching_up = False
            subscription.next_revision = self._machine.revision + 1
        else:
            subscription.next_revision = events[-1].kv.mod_revision + 1

    @property
    def watching(self) -> bool:
        """Whether anyone watches: applied writes become events only then."""
        return bool(self._subscriptions)

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    def publish(self, events: list[Any]) -> None:
        """Queue one applied revision's events for every live watcher of their keys.

        A watcher gets all of a revision's events or, when they do not fit in its queue,
        none of them and an overflow after the revisions it has: it resumes from the
        revision after its last event, so a revision cut in two would lose the rest.
        """
        for subscription in tuple(self._subscriptions):
            if subscription.catching_up:
                continue  # it reads these from history, in order, when it gets this far
            matching = [
                event
                for event in events
                if event.kv.mod_revision >= subscription.next_revision
                and key_matches(event.kv.key, subscription.key, subscription.range_end)
            ]
            if not matching:
                continue
            if subscription.queue.qsize() + len(matching) > WATCHER_QUEUE_EVENTS_MAX:
                self._subscriptions.discard(subscription)
                subscription.queue.put_nowait(WatcherOverflow())
                continue
            for event in matching:
                subscription.queue.put_nowait(event)

    def close(self) -> None:
        for subscription in self._subscriptions:
            subscription.queue.put_nowait(None)
        self._subscriptions.clear()
