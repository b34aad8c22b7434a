"""Leases: time-limited grants that keys attach to.

Time here is always *leader time* handed in by the caller (the state machine passes the
`leader_time_ms` carried by replicated commands), never a local clock, so every replica
agrees on every expiry. The table decides nothing by itself: the leader asks `expired` and
proposes the ids it gets back; apply then revokes those still expired.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, field

from triumvir.common.errors import AlreadyExists, InvalidArgument, NotFound, ResourceExhausted

MAX_LEASES = 1 << 20
"""Live leases a group holds at once; a grant beyond it is refused."""

MAX_LEASE_TTL_S = 10 * 365 * 24 * 3600
"""Longest TTL accepted, so expiry arithmetic stays far from int64 limits."""

MAX_LEASE_ID = (1 << 63) - 1

MAX_EXPIRED_PER_QUERY = 1_000
"""Default cap on the ids one `expired` call returns (one lease_expire command's worth)."""


@dataclass(slots=True)
class Lease:
    id: int
    ttl_s: int
    expiry_ms: int
    keys: set[bytes] = field(default_factory=set)

    def remaining_s(self, now_ms: int) -> int:
        return max(0, (self.expiry_ms - now_ms) // 1000)

    def whole_ttl_from(self, now_ms: int) -> int:
        """The expiry time of a lease given its whole TTL at `now_ms`."""
        return now_ms + self.ttl_s * 1000


@dataclass(frozen=True, slots=True)
class LeaseState:
    """What a snapshot keeps of a lease; attached keys are rebuilt from the store."""

    id: int
    ttl_s: int
    expiry_ms: int


class LeaseTable:
    def __init__(self) -> None:
        self._leases: dict[int, Lease] = {}
        # invariant: holds exactly (lease.expiry_ms, lease.id) for every lease, sorted.
        self._by_expiry: list[tuple[int, int]] = []

    def __len__(self) -> int:
        return len(self._leases)

    def __contains__(self, lease_id: int) -> bool:
        return lease_id in self._leases

    def get(self, lease_id: int) -> Lease | None:
        return self._leases.get(lease_id)

    def require(self, lease_id: int) -> Lease:
        lease = self._leases.get(lease_id)
        if lease is None:
            raise NotFound(f"lease {lease_id} not found")
        return lease

    def ids(self) -> list[int]:
        return sorted(self._leases)

    def free_id(self, hint: int) -> int:
        """The first unused id at or after `hint` (wrapping to 1), for grants that ask for 0."""
        candidate = min(max(hint, 1), MAX_LEASE_ID)
        # At most len(self._leases) ids are taken, so this finds one within that many steps.
        for _ in range(len(self._leases) + 1):
            if candidate not in self._leases:
                return candidate
            candidate = candidate + 1 if candidate < MAX_LEASE_ID else 1
        raise AssertionError("no free lease id despite the table not being full")

    def grant(self, lease_id: int, ttl_s: int, now_ms: int) -> Lease:
        if ttl_s <= 0:
            raise InvalidArgument(f"lease ttl must be positive, got {ttl_s}")
        if ttl_s > MAX_LEASE_TTL_S:
            raise InvalidArgument(f"lease ttl {ttl_s} exceeds the maximum {MAX_LEASE_TTL_S}")
        if lease_id <= 0:
            raise InvalidArgument(f"lease id must be positive, got {lease_id}")
        if lease_id in self._leases:
            raise AlreadyExists(f"lease {lease_id} already exists")
        if len(self._leases) >= MAX_LEASES:
            raise ResourceExhausted(f"too many leases (limit {MAX_LEASES})")
        lease = Lease(lease_id, ttl_s, 0)
        lease.expiry_ms = lease.whole_ttl_from(now_ms)
        self._leases[lease_id] = lease
        insort(self._by_expiry, (lease.expiry_ms, lease_id))
        return lease

    def revoke(self, lease_id: int) -> list[bytes]:
        """Remove the lease; returns its keys in key order, for the caller to delete."""
        lease = self.require(lease_id)
        del self._leases[lease_id]
        self._drop_expiry(lease)
        return sorted(lease.keys)

    def keep_alive(self, lease_id: int, now_ms: int) -> Lease | None:
        """Push the expiry to `now_ms` + TTL; None when the lease is gone."""
        lease = self._leases.get(lease_id)
        if lease is None:
            return None
        self._drop_expiry(lease)
        lease.expiry_ms = lease.whole_ttl_from(now_ms)
        insort(self._by_expiry, (lease.expiry_ms, lease_id))
        return lease

    def refresh(self, now_ms: int) -> None:
        """Give every lease its whole TTL again from `now_ms`; none is shortened."""
        for lease in self._leases.values():
            lease.expiry_ms = max(lease.expiry_ms, lease.whole_ttl_from(now_ms))
        self._by_expiry = sorted((lease.expiry_ms, lease.id) for lease in self._leases.values())

    def _drop_expiry(self, lease: Lease) -> None:
        i = bisect_left(self._by_expiry, (lease.expiry_ms, lease.id))
        assert self._by_expiry[i] == (lease.expiry_ms, lease.id), "expiry index out of step"
        del self._by_expiry[i]

    def is_expired(self, lease_id: int, now_ms: int) -> bool:
        lease = self._leases.get(lease_id)
        return lease is not None and lease.expiry_ms <= now_ms

    def expired(self, now_ms: int, limit: int = MAX_EXPIRED_PER_QUERY) -> list[int]:
        """Ids (ascending) of up to `limit` leases whose expiry is at or before `now_ms`,
        soonest-expired first when there are more."""
        assert limit > 0
        end = bisect_right(self._by_expiry, (now_ms, MAX_LEASE_ID))
        return sorted(lease_id for _, lease_id in self._by_expiry[: min(end, limit)])

    def attach(self, lease_id: int, key: bytes) -> None:
        self.require(lease_id).keys.add(key)

    def detach(self, lease_id: int, key: bytes) -> None:
        lease = self._leases.get(lease_id)
        if lease is not None:
            lease.keys.discard(key)

    def states(self) -> list[LeaseState]:
        return [
            LeaseState(lease_id, self._leases[lease_id].ttl_s, self._leases[lease_id].expiry_ms)
            for lease_id in sorted(self._leases)
        ]

    @classmethod
    def from_states(cls, states: list[LeaseState]) -> LeaseTable:
        table = cls()
        for state in states:
            table._leases[state.id] = Lease(state.id, state.ttl_s, state.expiry_ms)
            table._by_expiry.append((state.expiry_ms, state.id))
        table._by_expiry.sort()
        return table
