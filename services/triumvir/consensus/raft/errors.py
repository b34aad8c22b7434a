"""The Raft core's domain errors: what a caller of the core can be told "no" with."""

from __future__ import annotations

from triumvir.consensus.raft.types import NO_NODE


class RaftError(Exception):
    """Base of every error the Raft core raises to its caller."""


class NotLeader(RaftError):
    """This node cannot serve the request; `leader_id` says who might (NO_NODE if unknown)."""

    def __init__(self, leader_id: int = NO_NODE) -> None:
        super().__init__(f"not the leader (leader is {leader_id or 'unknown'})")
        self.leader_id = leader_id


class ProposalDropped(RaftError):
    """The leader refused the proposal for now (transfer in progress, too much in flight)."""


class ConfChangeRejected(RaftError):
    """A membership change that would be unsafe or meaningless right now."""


class TransferRejected(RaftError):
    """A leadership transfer to a node that cannot become leader (learner, non-member)."""
