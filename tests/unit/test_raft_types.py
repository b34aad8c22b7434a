import pytest

from triumvir.consensus.raft.types import ConfChange, ConfChangeKind, ReadState, Ready


def test_conf_change_round_trips_with_context():
    change = ConfChange(ConfChangeKind.PROMOTE, 7, b"127.0.0.1:7004")
    assert ConfChange.decode(change.encode()) == change


def test_conf_change_decode_rejects_truncated_record():
    with pytest.raises(ValueError, match="too short"):
        ConfChange.decode(b"\x00\x01")


def test_ready_is_empty_only_without_work():
    assert Ready().is_empty()
    assert not Ready(reads=(ReadState(b"r", 3),)).is_empty()
    assert not Ready(snapshot_wanted=True).is_empty()
