"""Quorum arithmetic, stated once: n voters need n // 2 + 1 of them."""

from __future__ import annotations

from collections.abc import Collection, Mapping


def quorum_size(voter_count: int) -> int:
    return voter_count // 2 + 1


def has_quorum(voters: Collection[int], granted: Collection[int]) -> bool:
    """Whether the voters among `granted` form a majority of `voters`."""
    if not voters:
        return False
    count = sum(1 for voter in voters if voter in granted)
    return count >= quorum_size(len(voters))


def quorum_match_index(voters: Collection[int], match: Mapping[int, int]) -> int:
    """The highest index that a majority of voters hold (voters missing from `match` hold 0)."""
    if not voters:
        return 0
    indexes = sorted((match.get(voter, 0) for voter in voters), reverse=True)
    return indexes[quorum_size(len(indexes)) - 1]


def vote_outcome(voters: Collection[int], votes: Mapping[int, bool]) -> bool | None:
    """True once a majority granted, False once a majority can no longer grant, else None."""
    need = quorum_size(len(voters))
    granted = sum(1 for voter in voters if votes.get(voter) is True)
    rejected = sum(1 for voter in voters if votes.get(voter) is False)
    if granted >= need:
        return True
    if len(voters) - rejected < need:
        return False
    return None
