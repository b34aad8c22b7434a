"""One version of one key, as the store keeps it, and its conversions to the wire types."""

from __future__ import annotations

from typing import NamedTuple

from triumvir.v1.common_pb2 import Event, KeyValue


class KeyRecord(NamedTuple):
    """A key as written at `mod_revision`; a delete is a record with `version == 0`.

    A named tuple rather than a frozen dataclass: every write makes one, and a snapshot
    restore makes one per retained version, and a tuple is built in a third of the time.
    """

    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int
    # Position among the writes that share `mod_revision` (a txn writes several keys at
    # one revision); (mod_revision, sub) orders every write ever made.
    sub: int

    @property
    def is_tombstone(self) -> bool:
        return self.version == 0

    def to_proto(self, keys_only: bool = False) -> KeyValue:
        return KeyValue(
            key=self.key,
            create_revision=self.create_revision,
            mod_revision=self.mod_revision,
            version=self.version,
            value=b"" if keys_only else self.value,
            lease=self.lease,
        )


def tombstone(key: bytes, revision: int, sub: int) -> KeyRecord:
    return KeyRecord(key, b"", 0, revision, 0, 0, sub)


# A write and the live version it replaced, if any: what a watch event is made from.
Change = tuple[KeyRecord, KeyRecord | None]


def to_event(record: KeyRecord, prev: KeyRecord | None) -> Event:
    """The watch event for a write; `prev` is the live version it replaced, if any."""
    event = Event(prev_kv=prev.to_proto()) if prev is not None else Event()
    if record.is_tombstone:
        event.type = Event.DELETE
        event.kv.key = record.key
        event.kv.mod_revision = record.mod_revision
    else:
        event.type = Event.PUT
        event.kv.CopyFrom(record.to_proto())
    return event
