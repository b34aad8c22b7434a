"""Where a call goes next and when it gives up, decided without any network."""

from __future__ import annotations

import random

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import status_pb2

from triumvir.v1 import common_pb2
from triumvir_client import errors
from triumvir_client.routing import (
    ENDPOINTS_MAX,
    STATUS_DETAILS_KEY,
    CallKind,
    EndpointSet,
    FailedAttempt,
    LeaderHint,
    RetryPlan,
    RetryPolicy,
    leader_hint,
    normalize_endpoint,
    parse_endpoints,
)

UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
DEADLINE = grpc.StatusCode.DEADLINE_EXCEEDED
REFUSED = "failed to connect to all addresses; Connection refused"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def plan(
    kind: CallKind,
    endpoints: EndpointSet | None = None,
    *,
    attempts_max: int = 4,
    timeout_s: float = 5.0,
    clock: FakeClock | None = None,
    pinned: str | None = None,
) -> RetryPlan:
    return RetryPlan(
        endpoints or EndpointSet(["a:1", "b:2", "c:3"]),
        kind=kind,
        timeout_s=timeout_s,
        policy=RetryPolicy(attempts_max=attempts_max, backoff_ms=10, backoff_ms_max=40),
        rng=random.Random(1),
        clock=clock or FakeClock(),
        pinned=pinned,
    )


def hint_metadata(leader_id: int, address: str) -> list[tuple[str, bytes]]:
    detail = any_pb2.Any()
    detail.Pack(common_pb2.LeaderHint(leader_id=leader_id, leader_address=address))
    status = status_pb2.Status(code=14, message="not the leader", details=[detail])
    return [("other", b"x"), (STATUS_DETAILS_KEY, status.SerializeToString())]


def test_endpoints_accept_member_urls_and_reject_garbage() -> None:
    assert normalize_endpoint(" http://10.0.0.1:2379/ ") == "10.0.0.1:2379"
    assert parse_endpoints("a:1, b:2,,") == ["a:1", "b:2"]
    with pytest.raises(ValueError, match="HOST:PORT"):
        normalize_endpoint("localhost")
    with pytest.raises(ValueError):
        EndpointSet([])


def test_rotation_wraps_and_a_followed_leader_becomes_current() -> None:
    endpoints = EndpointSet(["a:1", "b:2", "a:1"])
    assert endpoints.all == ("a:1", "b:2")
    assert endpoints.rotate("a:1") == "b:2"
    assert endpoints.rotate("b:2") == "a:1"
    # Rotating away from a member that is no longer current changes nothing.
    assert endpoints.rotate("b:2") == "a:1"
    assert endpoints.follow("http://z:9") == "z:9"
    assert endpoints.current == "z:9"
    assert endpoints.all == ("a:1", "b:2", "z:9")


def test_learned_addresses_stay_bounded() -> None:
    endpoints = EndpointSet([f"h:{port}" for port in range(1, ENDPOINTS_MAX + 1)])
    endpoints.follow("new:1")
    assert len(endpoints.all) == ENDPOINTS_MAX
    assert endpoints.current == "new:1"


def test_leader_hint_is_read_from_the_status_details() -> None:
    assert leader_hint(hint_metadata(3, "c:3")) == LeaderHint(3, "c:3")
    assert leader_hint([(STATUS_DETAILS_KEY, b"\xff\xff not a status")]) is None
    assert leader_hint([("grpc-message", "hello")]) is None
    assert leader_hint(None) is None


def test_a_hint_goes_to_the_leader_at_once_and_is_remembered() -> None:
    endpoints = EndpointSet(["a:1", "b:2", "c:3"])
    steer = plan(CallKind.TAGGED_WRITE, endpoints)
    steer.begin_attempt()
    step = steer.after_error(FailedAttempt(UNAVAILABLE, "not leader", LeaderHint(3, "c:3")))
    assert step.target == "c:3"
    assert step.delay_s == 0.0
    assert endpoints.current == "c:3"


def test_unavailable_without_a_hint_backs_off_and_tries_the_next_member() -> None:
    steer = plan(CallKind.READ)
    steer.begin_attempt()
    step = steer.after_error(FailedAttempt(UNAVAILABLE, REFUSED, None))
    assert step.target == "b:2"
    assert 0.005 <= step.delay_s <= 0.010
    steer.begin_attempt()
    later = steer.after_error(FailedAttempt(UNAVAILABLE, REFUSED, None))
    assert later.target == "c:3"
    assert 0.010 <= later.delay_s <= 0.020


def test_a_pinned_call_never_leaves_its_member() -> None:
    steer = plan(CallKind.READ, pinned="b:2")
    assert steer.target == "b:2"
    steer.begin_attempt()
    step = steer.after_error(FailedAttempt(UNAVAILABLE, "x", LeaderHint(1, "a:1")))
    assert step.target == "b:2"


def test_a_tagged_write_retries_deadlines_then_reports_an_unknown_outcome() -> None:
    steer = plan(CallKind.TAGGED_WRITE, attempts_max=3)
    for _ in range(2):
        steer.begin_attempt()
        assert steer.after_error(FailedAttempt(DEADLINE, "slow", None)).target == "a:1"
    steer.begin_attempt()
    with pytest.raises(errors.OutcomeUnknown, match="3 attempts"):
        steer.after_error(FailedAttempt(DEADLINE, "slow", None))


def test_an_untagged_write_is_not_repeated_after_a_deadline() -> None:
    steer = plan(CallKind.UNTAGGED_WRITE)
    steer.begin_attempt()
    with pytest.raises(errors.OutcomeUnknown):
        steer.after_error(FailedAttempt(DEADLINE, "slow", None))


def test_a_read_that_runs_out_of_time_is_a_plain_deadline_error() -> None:
    clock = FakeClock()
    steer = plan(CallKind.READ, timeout_s=1.0, clock=clock)
    steer.begin_attempt()
    clock.now += 1.0
    with pytest.raises(errors.DeadlineExceeded) as raised:
        steer.after_error(FailedAttempt(DEADLINE, "Deadline Exceeded", None))
    assert not isinstance(raised.value, errors.OutcomeUnknown)


def test_a_write_that_never_reached_a_member_is_unavailable_not_unknown() -> None:
    steer = plan(CallKind.TAGGED_WRITE, attempts_max=2)
    steer.begin_attempt()
    steer.after_error(FailedAttempt(UNAVAILABLE, REFUSED, None))
    steer.begin_attempt()
    with pytest.raises(errors.Unavailable) as raised:
        steer.after_error(FailedAttempt(UNAVAILABLE, REFUSED, None))
    assert not isinstance(raised.value, errors.OutcomeUnknown)


def test_a_write_whose_connection_broke_mid_call_may_have_been_applied() -> None:
    steer = plan(CallKind.TAGGED_WRITE, attempts_max=1)
    steer.begin_attempt()
    with pytest.raises(errors.OutcomeUnknown):
        steer.after_error(FailedAttempt(UNAVAILABLE, "Socket closed", None))


def test_definite_errors_are_raised_without_retrying() -> None:
    steer = plan(CallKind.TAGGED_WRITE)
    steer.begin_attempt()
    with pytest.raises(errors.FailedPrecondition) as raised:
        steer.after_error(FailedAttempt(grpc.StatusCode.FAILED_PRECONDITION, "stale tag", None))
    assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert raised.value.message == "stale tag"


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(attempts_max=8, backoff_ms=10, backoff_ms_max=40)
    rng = random.Random(7)
    delays = [policy.backoff_s(failures, rng) for failures in range(1, 8)]
    assert all(0.005 <= delay <= 0.040 for delay in delays)
    assert max(delays[3:]) > 0.020
    with pytest.raises(ValueError):
        RetryPolicy(attempts_max=0)
