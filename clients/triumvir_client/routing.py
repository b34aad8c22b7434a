"""Where a call goes and when it gives up: endpoints, leader hints and the retry policy.

Pure decisions shared by the sync and asyncio clients; they only differ in how they wait.
A call is planned by a `RetryPlan`: after each failed attempt the plan says which member
to try next and how long to back off, or raises the error the caller should see.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import grpc
from google.protobuf.message import DecodeError
from google.rpc import status_pb2

from triumvir.v1 import common_pb2
from triumvir_client import errors

RETRY_ATTEMPTS_MAX = 8
RETRY_BACKOFF_MS = 25
RETRY_BACKOFF_MS_MAX = 800
# A hinted leader address is added to the rotation; the cap keeps a misbehaving cluster
# from growing the list without bound.
ENDPOINTS_MAX = 32
DEFAULT_TIMEOUT_S = 5.0
# Above the server's request limit (2 MiB by default) so large ranges and snapshot chunks fit.
MESSAGE_BYTES_MAX = 16 * 1024 * 1024
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", MESSAGE_BYTES_MAX),
    ("grpc.max_send_message_length", MESSAGE_BYTES_MAX),
)
STATUS_DETAILS_KEY = "grpc-status-details-bin"
# gRPC reports "never reached the server" and "lost the connection mid-call" with the same
# code; only the first proves a write was not sent. Matching the text errs on the safe
# side: an unrecognised message counts as "may have been sent".
CONNECT_FAILURE_MARKERS = ("failed to connect", "connection refused")


class CallKind(enum.Enum):
    """How safe a call is to repeat."""

    READ = "read"  # no effect: always safe to repeat
    TAGGED_WRITE = "tagged_write"  # carries a RequestTag: the cluster applies it once
    UNTAGGED_WRITE = "untagged_write"  # repeat only when it surely did not arrive


@dataclass(frozen=True, slots=True)
class LeaderHint:
    leader_id: int
    leader_address: str


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounds on retrying one call; the overall client timeout bounds it too."""

    attempts_max: int = RETRY_ATTEMPTS_MAX
    backoff_ms: int = RETRY_BACKOFF_MS
    backoff_ms_max: int = RETRY_BACKOFF_MS_MAX

    def __post_init__(self) -> None:
        if self.attempts_max < 1:
            raise ValueError("attempts_max must be at least 1")
        if self.backoff_ms < 0 or self.backoff_ms_max < self.backoff_ms:
            raise ValueError("need 0 <= backoff_ms <= backoff_ms_max")

    def backoff_s(self, failures: int, rng: random.Random) -> float:
        """Exponential backoff with jitter, so clients that failed together spread out."""
        if self.backoff_ms == 0:
            return 0.0
        ceiling_ms = min(self.backoff_ms_max, self.backoff_ms * 2 ** min(failures - 1, 16))
        return rng.uniform(ceiling_ms / 2, ceiling_ms) / 1000.0


def normalize_endpoint(text: str) -> str:
    """`http://10.0.0.1:2379/` -> `10.0.0.1:2379`; member URLs and plain addresses both work."""
    address = text.strip()
    for scheme in ("http://", "https://", "grpc://"):
        if address.startswith(scheme):
            address = address[len(scheme) :]
    address = address.rstrip("/")
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"bad endpoint {text!r}: expected HOST:PORT, e.g. 127.0.0.1:7001")
    return address


def parse_endpoints(text: str) -> list[str]:
    """`a:1, b:2` -> ["a:1", "b:2"]."""
    return [normalize_endpoint(part) for part in text.split(",") if part.strip()]


class EndpointSet:
    """The members a client knows, and the one it currently talks to.

    The current member is sticky: once a call finds the leader, later calls go there first.
    """

    def __init__(self, endpoints: Iterable[str]) -> None:
        unique: list[str] = []
        for endpoint in endpoints:
            address = normalize_endpoint(endpoint)
            if address not in unique:
                unique.append(address)
        if not unique:
            raise ValueError("at least one endpoint is needed")
        if len(unique) > ENDPOINTS_MAX:
            raise ValueError(f"at most {ENDPOINTS_MAX} endpoints are supported")
        self._endpoints = unique
        self._index = 0
        # invariant: 0 <= _index < len(_endpoints)

    @property
    def current(self) -> str:
        return self._endpoints[self._index]

    @property
    def all(self) -> tuple[str, ...]:
        return tuple(self._endpoints)

    def rotate(self, away_from: str) -> str:
        """Moves to the member after `away_from` (if it is still current) and returns it."""
        if self.current == away_from:
            self._index = (self._index + 1) % len(self._endpoints)
        return self.current

    def follow(self, address: str) -> str:
        """Makes a hinted leader current, learning its address if it is new."""
        address = normalize_endpoint(address)
        if address not in self._endpoints:
            if len(self._endpoints) >= ENDPOINTS_MAX:
                # Forget the oldest learned address rather than refuse to follow the leader.
                self._endpoints.pop()
            self._endpoints.append(address)
        self._index = self._endpoints.index(address)
        return self.current


def leader_hint(metadata: Iterable[tuple[str, str | bytes]] | None) -> LeaderHint | None:
    """The LeaderHint inside an error's google.rpc.Status details, if the server sent one."""
    for key, value in metadata or ():
        if key != STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        status = status_pb2.Status()
        try:
            status.ParseFromString(value)
        except DecodeError:
            return None
        for detail in status.details:
            if detail.Is(common_pb2.LeaderHint.DESCRIPTOR):
                hint = common_pb2.LeaderHint()
                detail.Unpack(hint)
                return LeaderHint(hint.leader_id, hint.leader_address)
    return None


class RpcErrorLike(Protocol):
    """What both grpc.RpcError (sync calls) and grpc.aio.AioRpcError offer."""

    def code(self) -> grpc.StatusCode: ...

    def details(self) -> str | None: ...

    def trailing_metadata(self) -> object: ...


@dataclass(frozen=True, slots=True)
class FailedAttempt:
    code: grpc.StatusCode
    message: str
    hint: LeaderHint | None

    @classmethod
    def from_error(cls, error: RpcErrorLike) -> FailedAttempt:
        code = error.code()
        if not isinstance(code, grpc.StatusCode):
            code = grpc.StatusCode.UNKNOWN
        metadata = error.trailing_metadata()
        pairs = list(metadata) if isinstance(metadata, Iterable) else []
        return cls(code, error.details() or "", leader_hint(pairs))


@dataclass(frozen=True, slots=True)
class NextAttempt:
    target: str
    delay_s: float


class RetryPlan:
    """Steers one call through its attempts.

    Rules: UNAVAILABLE with a leader hint goes straight to the leader; other UNAVAILABLE
    moves to the next member after a backoff; DEADLINE_EXCEEDED retries the same member
    for reads and tagged writes (the tag makes the repeat safe) and ends an untagged write
    at once. A write that may have been applied and then runs out of attempts or time
    raises `OutcomeUnknown`; every other status is raised as is.
    """

    def __init__(
        self,
        endpoints: EndpointSet,
        *,
        kind: CallKind,
        timeout_s: float,
        policy: RetryPolicy,
        rng: random.Random,
        clock: Callable[[], float],
        pinned: str | None = None,
    ) -> None:
        self._endpoints = endpoints
        self._kind = kind
        self._policy = policy
        self._rng = rng
        self._clock = clock
        self._deadline = clock() + timeout_s
        self._pinned = normalize_endpoint(pinned) if pinned else None
        self.target = self._pinned or endpoints.current
        self.attempts = 0
        self._failures = 0
        self._maybe_applied = False

    def remaining_s(self) -> float:
        return max(0.0, self._deadline - self._clock())

    def begin_attempt(self) -> float:
        """Counts an attempt and returns its timeout."""
        self.attempts += 1
        return self.remaining_s()

    def after_error(self, failed: FailedAttempt) -> NextAttempt:
        """Where and when to try again; raises when the call should give up."""
        code = failed.code
        if code == grpc.StatusCode.UNAVAILABLE:
            next_attempt = self._after_unavailable(failed)
        elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
            if self._kind is not CallKind.READ:
                self._maybe_applied = True
            if self._kind is CallKind.UNTAGGED_WRITE:
                raise self._give_up(failed)
            self._failures += 1
            next_attempt = NextAttempt(self.target, self._backoff_s())
        else:
            raise self._give_up(failed)
        if self.attempts >= self._policy.attempts_max:
            raise self._give_up(failed)
        if self.remaining_s() <= next_attempt.delay_s:
            raise self._give_up(failed)
        self.target = next_attempt.target
        return next_attempt

    def _after_unavailable(self, failed: FailedAttempt) -> NextAttempt:
        hint = failed.hint
        if hint is None and not _never_connected(failed.message):
            self._maybe_applied = self._maybe_applied or self._kind is not CallKind.READ
        if self._pinned is not None:
            self._failures += 1
            return NextAttempt(self._pinned, self._backoff_s())
        if hint is not None and hint.leader_address:
            leader = normalize_endpoint(hint.leader_address)
            if leader != self.target:
                # The member told us who leads: one hop, no backoff.
                return NextAttempt(self._endpoints.follow(leader), 0.0)
        self._failures += 1
        return NextAttempt(self._endpoints.rotate(self.target), self._backoff_s())

    def _backoff_s(self) -> float:
        return self._policy.backoff_s(self._failures, self._rng)

    def _give_up(self, failed: FailedAttempt) -> errors.ClientError:
        if self._maybe_applied and failed.code in (
            grpc.StatusCode.DEADLINE_EXCEEDED,
            grpc.StatusCode.UNAVAILABLE,
        ):
            return errors.OutcomeUnknown(
                f"the write may or may not have been applied ({self.attempts} attempts, "
                f"last: {failed.code.name}: {failed.message})"
            )
        return errors.from_status(failed.code, failed.message)


def _never_connected(message: str) -> bool:
    lowered = message.lower()
    return any(marker in lowered for marker in CONNECT_FAILURE_MARKERS)


def reconnect_target(endpoints: EndpointSet, target: str, failed: FailedAttempt | None) -> str:
    """Where a broken stream reopens: the hinted leader if there is one, else the next member."""
    if failed is not None and failed.hint is not None and failed.hint.leader_address:
        leader = normalize_endpoint(failed.hint.leader_address)
        if leader != target:
            return endpoints.follow(leader)
    return endpoints.rotate(target)
