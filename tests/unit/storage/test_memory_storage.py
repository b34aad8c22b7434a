from __future__ import annotations

from triumvir.consensus.raft.types import HardState
from triumvir.consensus.storage.memory import MemoryStorage

from .helpers import entries, snapshot


def test_crash_loses_unsynced_entries_and_hard_state_but_keeps_synced() -> None:
    s = MemoryStorage()
    s.append(entries(1, 5))
    s.set_hard_state(HardState(term=1, vote=1, commit=3))
    s.sync()
    s.append(entries(6, 9))
    s.set_hard_state(HardState(term=2, vote=2, commit=7))
    s.crash()
    state = s.load()
    assert state.entries == tuple(entries(1, 5))
    assert state.hard_state == HardState(term=1, vote=1, commit=3)
    assert s.last_index() == 5


def test_crash_undoes_an_unsynced_overwrite() -> None:
    s = MemoryStorage()
    s.append(entries(1, 10, term=1))
    s.sync()
    s.append(entries(4, 5, term=2))  # would cut 6..10 once synced
    assert s.last_index() == 5
    s.crash()
    assert s.load().entries == tuple(entries(1, 10, term=1))
    assert s.last_index() == 10


def test_writes_after_a_crash_continue_from_the_synced_log() -> None:
    s = MemoryStorage()
    s.append(entries(1, 3))
    s.sync()
    s.append(entries(4, 6))
    s.crash()
    s.append(entries(4, 4, term=2))
    s.sync()
    assert s.load().entries == tuple(entries(1, 3) + entries(4, 4, term=2))


def test_many_staged_appends_collapse_into_one_overlay() -> None:
    s = MemoryStorage()
    s.append(entries(1, 100))
    s.sync()
    for first in range(50, 60):
        s.append(entries(first, first + 5, term=2))
    s.append(entries(30, 31, term=3))
    s.sync()
    assert s.load().entries == tuple(entries(1, 29) + entries(30, 31, term=3))
    assert s.sync_count == 2


def test_snapshot_survives_crash_and_makes_earlier_writes_durable() -> None:
    s = MemoryStorage()
    s.append(entries(1, 8))
    s.set_hard_state(HardState(term=1, commit=8))
    s.save_snapshot(snapshot(5, 1))
    s.append(entries(9, 9))
    s.crash()
    state = s.load()
    assert state.snapshot == snapshot(5, 1)
    assert state.entries == tuple(entries(6, 8))
    assert state.hard_state == HardState(term=1, commit=8)


def test_loaded_entries_are_the_objects_appended() -> None:
    s = MemoryStorage()
    batch = entries(1, 3)
    s.append(batch)
    s.sync()
    assert all(a is b for a, b in zip(s.load().entries, batch, strict=True))
