"""The simulator's key-value state machine: encoding, apply semantics, snapshots."""

from __future__ import annotations

import pytest

from tests.sim.kvmodel import Cas, KvModel, Put, chain_digest, decode, encode


def test_commands_round_trip() -> None:
    for command in (
        Put("k", "v"),
        Put("", ""),
        Put("ключ", "значение"),
        Cas("k", None, "new"),
        Cas("k", "", "new"),
        Cas("k", "old", "new"),
    ):
        assert decode(encode(command)) == command


def test_decode_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        decode(b"Z\x00\x01k")
    with pytest.raises(ValueError):
        decode(encode(Put("k", "v")) + b"trailing")
    with pytest.raises(ValueError):
        decode(b"P\x00\x09k")


def test_apply_put_and_cas() -> None:
    kv = KvModel()
    assert kv.apply(1, 1, b"", is_command=False) is None
    assert kv.apply(2, 1, encode(Cas("a", "x", "y")), is_command=True) is False
    assert kv.get("a") is None
    assert kv.apply(3, 1, encode(Cas("a", None, "y")), is_command=True) is True
    assert kv.apply(4, 2, encode(Put("a", "z")), is_command=True) is True
    assert kv.apply(5, 2, encode(Cas("a", "y", "w")), is_command=True) is False
    assert kv.apply(6, 2, encode(Cas("a", "z", "w")), is_command=True) is True
    assert kv.get("a") == "w"
    assert kv.applied_index == 6


def test_apply_out_of_order_is_refused() -> None:
    kv = KvModel()
    with pytest.raises(AssertionError, match="out of order"):
        kv.apply(2, 1, b"", is_command=False)


def test_snapshot_bytes_do_not_depend_on_insertion_order() -> None:
    forward, backward = KvModel(), KvModel()
    keys = ["b", "a", "c"]
    for index, key in enumerate(keys, start=1):
        forward.apply(index, 1, encode(Put(key, key.upper())), is_command=True)
    # same entries give the same chain; the map is filled in another order afterwards
    for index, key in enumerate(keys, start=1):
        backward.apply(index, 1, encode(Put(key, key.upper())), is_command=True)
    backward._data = dict(reversed(list(backward._data.items())))
    assert forward.snapshot() == backward.snapshot()


def test_restore_round_trips_state_index_and_chain() -> None:
    kv = KvModel()
    kv.apply(1, 1, encode(Put("x", "1")), is_command=True)
    kv.apply(2, 3, encode(Put("y", "2")), is_command=True)
    copy = KvModel()
    copy.restore(kv.snapshot())
    assert (copy.get("x"), copy.get("y"), copy.applied_index) == ("1", "2", 2)
    assert copy.chain == kv.chain
    # both continue identically from the restored point
    kv.apply(3, 3, b"", is_command=False)
    copy.apply(3, 3, b"", is_command=False)
    assert copy.chain == kv.chain


def test_chain_distinguishes_term_and_data() -> None:
    base = bytes(16)
    digests = {
        chain_digest(base, 1, 1, b"a"),
        chain_digest(base, 1, 2, b"a"),
        chain_digest(base, 1, 1, b"b"),
        chain_digest(base, 2, 1, b"a"),
    }
    assert len(digests) == 4
