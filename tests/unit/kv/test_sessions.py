"""Exactly-once writes: a tagged command is applied once and its result is remembered;
idle clients are forgotten at the same log position on every replica."""

from __future__ import annotations

from tests.unit.kv.helpers import Log, failed, ok
from triumvir.consensus.kv import CLIENT_IDLE_EXPIRY_MS, ApplyResult, KVStateMachine
from triumvir.v1.command_pb2 import Command
from triumvir.v1.kv_pb2 import PutRequest


def tagged_put(log: Log, key: bytes, client: int, sequence: int) -> ApplyResult:
    return log.apply(Command(put=PutRequest(key=key, value=b"v")), tag=(client, sequence))


def test_retried_tag_is_applied_once_and_returns_the_same_result() -> None:
    log = Log()
    first = tagged_put(log, b"k", client=7, sequence=1)
    retry = tagged_put(log, b"k", client=7, sequence=1)
    assert retry.result == first.result
    assert retry.events == []
    assert log.machine.revision == 1
    assert log.get(b"k").kvs[0].version == 1


def test_next_sequence_applies_and_untagged_writes_always_apply() -> None:
    log = Log()
    tagged_put(log, b"k", client=7, sequence=1)
    tagged_put(log, b"k", client=7, sequence=5)
    log.put(b"k", b"v")
    log.put(b"k", b"v")
    assert log.get(b"k").kvs[0].version == 4


def test_stale_sequence_is_failed_precondition() -> None:
    log = Log()
    tagged_put(log, b"k", client=7, sequence=2)
    error = failed(tagged_put(log, b"k", client=7, sequence=1))
    assert error.code == "FAILED_PRECONDITION"
    assert "stale sequence" in error.message
    assert log.machine.revision == 1


def test_error_results_are_remembered_too() -> None:
    log = Log()
    command = Command(put=PutRequest(key=b"k", lease=99))
    first = log.apply(command, tag=(3, 1))
    ok(log.grant(10, lease_id=99))
    retry = log.apply(Command(put=PutRequest(key=b"k", lease=99)), tag=(3, 1))
    assert failed(retry).code == "NOT_FOUND"
    assert retry.result == first.result
    assert log.get(b"k").count == 0


def test_idle_client_is_forgotten_after_the_expiry_in_leader_time() -> None:
    log = Log()
    tagged_put(log, b"k", client=7, sequence=1)
    log.advance(CLIENT_IDLE_EXPIRY_MS)
    assert tagged_put(log, b"k", client=7, sequence=1).events == []
    log.advance(CLIENT_IDLE_EXPIRY_MS + 1)
    log.put(b"other")  # any command moves leader time and forgets idle clients
    reapplied = tagged_put(log, b"k", client=7, sequence=1)
    assert len(reapplied.events) == 1
    assert log.get(b"k").kvs[0].version == 2


def encoded_put(key: bytes, client: int, sequence: int, time_ms: int) -> bytes:
    command = Command(put=PutRequest(key=key, value=b"v"), leader_time_ms=time_ms)
    command.tag.client_id = client
    command.tag.sequence = sequence
    return command.SerializeToString()


def test_session_expiry_is_the_same_on_replicas_and_after_restore() -> None:
    start_ms = 1_000_000
    head = [
        encoded_put(b"k1", 1, 1, start_ms),
        encoded_put(b"k2", 2, 1, start_ms + 1_000),
        encoded_put(b"k3", 3, 1, start_ms + 2_000),
        encoded_put(b"k1", 1, 2, start_ms + 3_000),
    ]
    # Clients 2 and 3 have now been idle for longer than the expiry; client 1 has not.
    later_ms = start_ms + 2_000 + CLIENT_IDLE_EXPIRY_MS + 1
    tail = [
        encoded_put(b"k3", 3, 1, later_ms),
        encoded_put(b"k2", 2, 1, later_ms),
        encoded_put(b"k1", 1, 2, later_ms),
    ]
    straight = KVStateMachine()
    for index, entry in enumerate(head, start=1):
        straight.apply(index, entry)
    restored = KVStateMachine()
    restored.restore(straight.snapshot())
    outcomes = []
    for machine in (straight, restored):
        applied = [machine.apply(index, e) for index, e in enumerate(tail, start=len(head) + 1)]
        outcomes.append(([a.events != [] for a in applied], machine.hash()))
    # The forgotten clients' writes apply again; client 1's retry is still deduplicated.
    assert outcomes[0][0] == [True, True, False]
    assert outcomes[0] == outcomes[1]
