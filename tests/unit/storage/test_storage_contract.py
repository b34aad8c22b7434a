"""The RaftStorage contract, checked against both implementations.

`restart()` is a clean process restart for the file storage and crash() + load for the
memory one: after a sync the two must be indistinguishable.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from triumvir.consensus.raft.types import Entry, HardState
from triumvir.consensus.storage.file_storage import FileStorage
from triumvir.consensus.storage.interface import (
    RaftStorage,
    RecoveredState,
    StaleSnapshot,
    StorageError,
)
from triumvir.consensus.storage.memory import MemoryStorage

from .helpers import entries, snapshot


class Harness:
    def __init__(self, make: Callable[[], RaftStorage], restart: Callable[[], None]) -> None:
        self._make = make
        self._restart = restart
        self.storage = make()

    def restart(self) -> RecoveredState:
        self._restart()
        return self.storage.load()


def _file_harness(directory: Path) -> Harness:
    harness: Harness

    def restart() -> None:
        harness.storage.close()
        harness.storage = FileStorage(directory, segment_bytes_max=300)

    harness = Harness(lambda: FileStorage(directory, segment_bytes_max=300), restart)
    return harness


def _memory_harness() -> Harness:
    harness: Harness

    def restart() -> None:
        assert isinstance(harness.storage, MemoryStorage)
        harness.storage.crash()

    harness = Harness(MemoryStorage, restart)
    return harness


@pytest.fixture(params=["file", "memory"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    made = _file_harness(tmp_path / "data") if request.param == "file" else _memory_harness()
    yield made
    made.storage.close()


def test_fresh_storage_is_empty(harness: Harness) -> None:
    assert harness.storage.load() == RecoveredState()
    assert harness.restart() == RecoveredState()


def test_synced_entries_and_hard_state_survive_restart(harness: Harness) -> None:
    s = harness.storage
    s.append(entries(1, 5))
    s.set_hard_state(HardState(term=1, vote=3, commit=2))
    s.sync()
    state = harness.restart()
    assert state.entries == tuple(entries(1, 5))
    assert state.hard_state == HardState(term=1, vote=3, commit=2)
    assert state.snapshot is None


def test_load_returns_only_what_was_synced(harness: Harness) -> None:
    s = harness.storage
    s.append(entries(1, 3))
    s.sync()
    s.append(entries(4, 6))
    s.set_hard_state(HardState(term=9))
    state = s.load()
    assert state.entries == tuple(entries(1, 3))
    assert state.hard_state == HardState()


def test_overwrite_drops_the_suffix_across_restart(harness: Harness) -> None:
    s = harness.storage
    s.append(entries(1, 4))
    s.append(entries(5, 10, term=1))
    s.sync()
    s.append(entries(7, 7, term=2))
    s.sync()
    expected = tuple(entries(1, 6, term=1) + entries(7, 7, term=2))
    assert s.load().entries == expected
    assert harness.restart().entries == expected


def test_append_that_leaves_a_gap_is_refused(harness: Harness) -> None:
    s = harness.storage
    s.append(entries(1, 3))
    with pytest.raises(ValueError, match="gap"):
        s.append(entries(5, 6))
    with pytest.raises(ValueError, match="contiguous"):
        s.append([Entry(term=1, index=4), Entry(term=1, index=6)])


def test_snapshot_drops_covered_entries_and_is_durable_without_sync(harness: Harness) -> None:
    s = harness.storage
    s.append(entries(1, 10))
    s.set_hard_state(HardState(term=1, commit=8))
    s.save_snapshot(snapshot(6, 1))
    state = harness.restart()
    assert state.snapshot == snapshot(6, 1)
    assert state.entries == tuple(entries(7, 10))
    assert state.hard_state == HardState(term=1, commit=8)


def test_snapshot_from_another_history_discards_the_log(harness: Harness) -> None:
    s = harness.storage
    s.append(entries(1, 10, term=1))
    s.sync()
    s.save_snapshot(snapshot(6, 4))  # the leader's entry 6 has term 4, ours has term 1
    s.append(entries(7, 8, term=4))
    s.sync()
    state = harness.restart()
    assert state.snapshot == snapshot(6, 4)
    assert state.entries == tuple(entries(7, 8, term=4))


def test_snapshot_beyond_the_log_empties_it(harness: Harness) -> None:
    s = harness.storage
    s.append(entries(1, 3))
    s.sync()
    s.save_snapshot(snapshot(50, 2))
    state = harness.restart()
    assert state.entries == ()
    assert state.snapshot == snapshot(50, 2)
    harness.storage.append(entries(51, 52, term=2))
    harness.storage.sync()
    assert harness.restart().entries == tuple(entries(51, 52, term=2))


def test_append_below_the_snapshot_is_refused(harness: Harness) -> None:
    s = harness.storage
    s.append(entries(1, 5))
    s.save_snapshot(snapshot(4, 1))
    with pytest.raises(ValueError, match="snapshot"):
        s.append(entries(3, 6))


def test_stale_snapshot_is_refused(harness: Harness) -> None:
    s = harness.storage
    s.append(entries(1, 5))
    s.save_snapshot(snapshot(4, 1))
    with pytest.raises(StaleSnapshot):
        s.save_snapshot(snapshot(4, 1))
    with pytest.raises(StaleSnapshot):
        s.save_snapshot(snapshot(2, 1))
    assert harness.restart().snapshot == snapshot(4, 1)


def test_closed_storage_refuses_writes(harness: Harness) -> None:
    harness.storage.close()
    with pytest.raises(StorageError, match="closed"):
        harness.storage.append(entries(1, 1))


class _Model:
    """The contract, as plain lists: what a restart must give back."""

    def __init__(self) -> None:
        self.log: dict[int, Entry] = {}
        self.hard_state = HardState()
        self.snapshot_index = 0
        self.snapshot_term = 0

    def apply_snapshot(self, index: int, term: int) -> None:
        own = self.log.get(index)
        keep = own is not None and own.term == term
        self.log = {i: e for i, e in self.log.items() if keep and i > index}
        self.snapshot_index, self.snapshot_term = index, term

    def last_index(self) -> int:
        return max(self.log, default=self.snapshot_index)


OPS_PER_RUN = 80


@pytest.mark.parametrize("seed", range(4))
def test_random_histories_restart_to_the_model(harness: Harness, seed: int) -> None:
    rng = random.Random(seed)
    model = _Model()
    term = 1
    for _ in range(OPS_PER_RUN):
        op = rng.random()
        s = harness.storage
        if op < 0.45:
            first = rng.randint(
                max(model.snapshot_index + 1, model.last_index() - 3), model.last_index() + 1
            )
            term += rng.random() < 0.3
            batch = entries(first, first + rng.randint(0, 6), term=term)
            s.append(batch)
            model.log = {i: e for i, e in model.log.items() if i < first}
            model.log.update({e.index: e for e in batch})
        elif op < 0.6:
            model.hard_state = HardState(
                term=term, vote=rng.randint(0, 3), commit=rng.randint(0, 9)
            )
            s.set_hard_state(model.hard_state)
        elif op < 0.8:
            s.sync()
        elif op < 0.9 and model.last_index() > model.snapshot_index:
            index = rng.randint(model.snapshot_index + 1, model.last_index())
            snap_term = model.log[index].term if rng.random() < 0.8 else term + 1
            s.save_snapshot(snapshot(index, snap_term))
            model.apply_snapshot(index, snap_term)
        else:
            s.sync()
            _assert_restarts_to(harness, model)
    harness.storage.sync()
    _assert_restarts_to(harness, model)


def _assert_restarts_to(harness: Harness, model: _Model) -> None:
    state = harness.restart()
    assert state.entries == tuple(model.log[i] for i in sorted(model.log))
    assert state.hard_state == model.hard_state
    assert (state.snapshot.meta.index if state.snapshot else 0) == model.snapshot_index
    assert (state.snapshot.meta.term if state.snapshot else 0) == model.snapshot_term
