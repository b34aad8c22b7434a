"""Compaction drops history below a revision and refuses already-compacted or future ones."""

from __future__ import annotations

import pytest

from tests.unit.kv.helpers import Log, failed, keys_of, ok
from triumvir.common.errors import Compacted


def build() -> Log:
    log = Log()
    log.put(b"a", b"1")  # 1
    log.put(b"a", b"2")  # 2
    log.put(b"b", b"1")  # 3
    log.delete(b"b")  # 4
    log.put(b"a", b"3")  # 5
    return log


def test_compaction_keeps_the_compaction_revision_readable() -> None:
    log = build()
    ok(log.compact(3))
    assert log.machine.compact_revision == 3
    at_three = log.get(b"a", b"\0", revision=3)
    assert [(kv.key, kv.value) for kv in at_three.kvs] == [(b"a", b"2"), (b"b", b"1")]
    assert keys_of(log.get(b"a", b"\0", revision=4)) == [b"a"]
    assert log.get(b"a").kvs[0].value == b"3"


def test_compaction_past_a_delete_keeps_later_reads_and_replay_working() -> None:
    log = build()
    ok(log.compact(4))
    assert keys_of(log.get(b"a", b"\0", revision=4)) == [b"a"]
    with pytest.raises(Compacted):
        log.get(b"b", revision=3)
    assert log.machine.events_since(5, b"a", b"\0")[0].kv.value == b"3"


def test_compaction_does_not_change_revision_or_emit_events() -> None:
    log = build()
    applied = log.compact(2)
    assert (applied.revision, applied.events) == (5, [])


def test_compact_at_or_below_compact_revision_is_compacted_error() -> None:
    log = build()
    ok(log.compact(3))
    assert failed(log.compact(3)).code == "OUT_OF_RANGE"
    assert failed(log.compact(2)).code == "OUT_OF_RANGE"
    assert log.machine.compact_revision == 3


def test_compact_in_the_future_is_rejected() -> None:
    log = build()
    error = failed(log.compact(6))
    assert error.code == "OUT_OF_RANGE"
    assert "future" in error.message
    assert log.machine.compact_revision == 0


def test_compact_at_current_revision_keeps_latest_state() -> None:
    log = build()
    ok(log.compact(5))
    assert [(kv.key, kv.value, kv.version) for kv in log.get(b"a", b"\0").kvs] == [(b"a", b"3", 3)]
    log.put(b"a", b"4")
    assert log.get(b"a").kvs[0].version == 4
