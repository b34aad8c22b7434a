"""The leader's view of each acceptor's progress under its ballot."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class PeerProgress:
    """The leader's view of one acceptor under the leader's current ballot.

    invariant: the acceptor holds values of this ballot in every slot of
    [max(first_unchosen, leader's first own slot), match] (slots below first_unchosen it
    knows chosen, and they are never counted toward choosing).
    """

    next: int  # next slot to send in an ACCEPT
    match: int = 0
    first_unchosen: int = 1
    inflight: int = 0  # ACCEPT batches sent and not yet answered
    active: bool = False  # answered since the last quorum check
    heartbeat_match: int = -1  # match when the previous heartbeat was answered
    told_chosen: int = 0  # highest chosen prefix end sent to this acceptor
    # After a refusal: one batch at a time until the run grows past probe_match, so
    # reordered or duplicated refusals cannot each trigger a whole pipeline of resends.
    probing: bool = False
    probe_match: int = -1

    def counts_for(self, slot: int) -> bool:
        return self.first_unchosen <= slot <= self.match

    def acknowledge(self, match: int, first_unchosen: int) -> None:
        self.match = max(self.match, match)
        self.first_unchosen = max(self.first_unchosen, first_unchosen)
        self.active = True
        if self.probing and self.match > self.probe_match:
            self.probing = False

    def window(self, inflight_max: int) -> int:
        return 1 if self.probing else inflight_max

    def stalled(self) -> bool:
        """Called per heartbeat answer: whether match did not move for a whole interval."""
        stalled = self.match == self.heartbeat_match
        self.heartbeat_match = self.match
        return stalled

    def rewind(self, floor: int) -> bool:
        """Probe again from just after what the acceptor holds (a batch was lost or
        refused). False when a probe from this point is already out."""
        if self.probing and self.match <= self.probe_match:
            return False
        self.probing = True
        self.probe_match = self.match
        self.next = max(self.match + 1, self.first_unchosen, floor)
        self.inflight = 0
        return True
