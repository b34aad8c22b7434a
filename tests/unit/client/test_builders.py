"""Request builders and the `kv txn` spec language."""

from __future__ import annotations

import pytest

from triumvir.v1 import kv_pb2
from triumvir_client import builders, txnspec
from triumvir_client.tags import TagSequence


def test_prefix_end_is_the_first_key_past_the_prefix() -> None:
    assert builders.prefix_end("foo") == b"fop"
    assert builders.prefix_end(b"a\xff\xff") == b"b"
    assert builders.prefix_end(b"\xff") == b"\0"
    assert builders.prefix_end(b"") == b"\0"


def test_ranges_take_a_prefix_or_an_end_but_not_both() -> None:
    assert builders.key_range("k") == (b"k", b"")
    assert builders.key_range("k", prefix=True) == (b"k", b"l")
    request = builders.range_request("a", range_end="c", limit=2, serializable=True)
    assert (request.key, request.range_end, request.limit, request.serializable) == (
        b"a",
        b"c",
        2,
        True,
    )
    with pytest.raises(ValueError, match="not both"):
        builders.key_range("k", "z", prefix=True)


def test_compares_name_their_target_and_operator() -> None:
    compare = builders.compare_value("k", "!=", "v")
    assert compare.target == kv_pb2.Compare.VALUE
    assert compare.result == kv_pb2.Compare.NOT_EQUAL
    assert compare.value == b"v"
    assert builders.compare_mod("k", "<", 9).mod_revision == 9
    assert builders.compare_version("k", "=", 0).WhichOneof("target_union") == "version"
    with pytest.raises(ValueError, match="operator"):
        builders.compare_version("k", "~", 1)


def test_tags_grow_by_one_per_write_under_one_client_id() -> None:
    tags = TagSequence(client_id=5)
    assert [tags.next().sequence for _ in range(3)] == [1, 2, 3]
    assert tags.next().client_id == 5
    assert 0 < TagSequence().client_id < 2**63
    with pytest.raises(ValueError):
        TagSequence(client_id=0)


SPEC = """\
# claim the key if nobody holds it
version owner = 0
value "the key" != "some value"

put owner alice --lease 7
del stale --prefix

get owner
"""


def test_a_spec_has_compares_then_success_then_failure_ops() -> None:
    spec = txnspec.parse(SPEC)
    assert [c.key for c in spec.compare] == [b"owner", b"the key"]
    assert spec.compare[1].value == b"some value"
    assert spec.success[0].request_put.lease == 7
    assert spec.success[1].request_delete_range.range_end == b"stalf"
    assert spec.failure[0].request_range.key == b"owner"


def test_a_spec_may_leave_blocks_empty() -> None:
    spec = txnspec.parse("\nput k v\n")
    assert spec.compare == ()
    assert len(spec.success) == 1
    assert spec.failure == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version k == x", "line 1: 'x' is not an integer"),
        ("size k = 1", "unknown compare target"),
        ("value k = v\n\nfrob k", "line 3: unknown op"),
        ("\nput k", "put takes 2 argument"),
        ("\nget k --prefix --range-end z", "not both"),
        ("a\n\nb\n\nc\n\nd", "more than 3 blocks"),
        ('value "k = v', "line 1"),
    ],
)
def test_a_bad_spec_names_the_line_and_the_problem(text: str, message: str) -> None:
    with pytest.raises(txnspec.SpecError, match=message):
        txnspec.parse(text)
