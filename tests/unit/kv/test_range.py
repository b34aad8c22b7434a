"""Range in every form: single key, prefix, [a, b), all keys, limits, counts, past
revisions and the errors for compacted and future revisions."""

from __future__ import annotations

import pytest

from tests.unit.kv.helpers import Log, keys_of
from triumvir.common.errors import Compacted, FutureRevision, InvalidArgument
from triumvir.v1.kv_pb2 import RangeRequest

KEYS = [b"a", b"ab", b"abc", b"b", b"ba", b"c"]


@pytest.fixture
def log() -> Log:
    log = Log()
    for i, key in enumerate(KEYS):
        log.put(key, b"value-%d" % i)
    return log


def test_single_key(log: Log) -> None:
    response = log.get(b"ab")
    assert keys_of(response) == [b"ab"]
    assert response.count == 1
    assert response.header.revision == len(KEYS)
    assert keys_of(log.get(b"zz")) == []


def test_prefix_range(log: Log) -> None:
    assert keys_of(log.get(b"a", b"b")) == [b"a", b"ab", b"abc"]


def test_half_open_interval(log: Log) -> None:
    assert keys_of(log.get(b"ab", b"ba")) == [b"ab", b"abc", b"b"]


def test_range_end_before_key_is_empty(log: Log) -> None:
    assert log.get(b"c", b"a").count == 0


def test_zero_range_end_means_every_key_from_key(log: Log) -> None:
    assert keys_of(log.get(b"b", b"\0")) == [b"b", b"ba", b"c"]
    assert keys_of(log.get(b"\0", b"\0")) == KEYS


def test_limit_sets_more_and_count_covers_all(log: Log) -> None:
    response = log.get(b"a", b"\0", limit=2)
    assert keys_of(response) == [b"a", b"ab"]
    assert response.more
    assert response.count == len(KEYS)
    exact = log.get(b"a", b"\0", limit=len(KEYS))
    assert not exact.more


def test_count_only_returns_no_kvs(log: Log) -> None:
    response = log.get(b"a", b"b", count_only=True)
    assert response.count == 3
    assert len(response.kvs) == 0


def test_keys_only_drops_values(log: Log) -> None:
    response = log.get(b"a", b"b", keys_only=True)
    assert keys_of(response) == [b"a", b"ab", b"abc"]
    assert all(kv.value == b"" and kv.version == 1 for kv in response.kvs)


def test_descending_key_order_with_limit(log: Log) -> None:
    response = log.get(b"a", b"\0", sort_order=RangeRequest.DESCEND, limit=2)
    assert keys_of(response) == [b"c", b"ba"]
    assert response.more


def test_sort_by_value_descending(log: Log) -> None:
    log.put(b"ab", b"zzz")
    response = log.get(b"a", b"b", sort_target=RangeRequest.VALUE, sort_order=RangeRequest.DESCEND)
    assert [kv.value for kv in response.kvs] == [b"zzz", b"value-2", b"value-0"]


def test_sort_target_other_than_key_defaults_to_ascending(log: Log) -> None:
    log.put(b"a", b"new")
    response = log.get(b"a", b"b", sort_target=RangeRequest.MOD)
    assert keys_of(response) == [b"ab", b"abc", b"a"]


def test_mod_and_create_revision_filters(log: Log) -> None:
    log.put(b"a", b"again")  # revision 7
    response = log.get(b"a", b"\0", min_mod_revision=3, max_create_revision=5)
    # "a" was rewritten at 7 but created at 1; "c" (created at 6) is filtered out.
    assert keys_of(response) == [b"a", b"abc", b"b", b"ba"]
    assert response.count == 4
    assert keys_of(log.get(b"a", b"\0", min_mod_revision=7)) == [b"a"]


def test_past_revision_sees_old_values_and_deleted_keys(log: Log) -> None:
    log.put(b"a", b"changed")
    log.delete(b"b")
    past = log.get(b"a", b"\0", revision=len(KEYS))
    assert keys_of(past) == KEYS
    assert past.kvs[0].value == b"value-0"
    assert past.count == len(KEYS)
    early = log.get(b"a", b"\0", revision=2)
    assert keys_of(early) == [b"a", b"ab"]
    assert keys_of(log.get(b"a", b"\0")) == [b"a", b"ab", b"abc", b"ba", b"c"]


def test_future_revision_is_rejected(log: Log) -> None:
    with pytest.raises(FutureRevision):
        log.get(b"a", revision=len(KEYS) + 1)


def test_compacted_revision_is_rejected_and_compact_revision_still_readable(log: Log) -> None:
    log.put(b"a", b"changed")
    log.compact(4)
    with pytest.raises(Compacted):
        log.get(b"a", revision=3)
    assert log.get(b"a", revision=4).kvs[0].value == b"value-0"


@pytest.mark.parametrize(
    "request_fields",
    [{"key": b""}, {"key": b"a", "limit": -1}, {"key": b"a", "sort_order": 9}],
)
def test_malformed_range_is_invalid_argument(log: Log, request_fields: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument):
        log.machine.range(RangeRequest(**request_fields))
