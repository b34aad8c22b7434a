"""Membership arithmetic: what a ConfChange does to a ConfState, and whether it may be made.

Applying is total and deterministic (every replica applies the same committed changes in the
same order and must reach the same configuration, even for a change that turned out to be
meaningless); validating is the leader's stricter check before a change enters the log.
"""

from __future__ import annotations

from collections.abc import Mapping

from triumvir.consensus.raft.types import ConfChange, ConfChangeKind, ConfState


def founding_conf(addresses: Mapping[int, str]) -> ConfState:
    """The membership a group starts with: every member a voter, its address its context."""
    return ConfState(
        voters=frozenset(addresses),
        contexts=tuple((member, address.encode()) for member, address in sorted(addresses.items())),
    )


def apply_conf_change(conf: ConfState, change: ConfChange) -> ConfState:
    node = change.node_id
    contexts = dict(conf.contexts)
    if change.kind is ConfChangeKind.ADD_LEARNER:
        if node <= 0 or node in conf.members() or node in conf.retired:
            return conf
        contexts[node] = change.context
        return _conf(conf.voters, conf.learners | {node}, contexts, conf.retired)
    if change.kind is ConfChangeKind.PROMOTE:
        if node not in conf.learners:
            return conf
        return _conf(conf.voters | {node}, conf.learners - {node}, contexts, conf.retired)
    if node not in conf.members() or conf.voters == frozenset({node}):
        return conf  # removing the last voter would leave a group that can never decide
    contexts.pop(node, None)
    return _conf(conf.voters - {node}, conf.learners - {node}, contexts, conf.retired | {node})


def conf_change_problem(conf: ConfState, change: ConfChange) -> str | None:
    """Why the change should not be proposed against `conf`, or None if it is fine.
    (Whether a learner is caught up is the leader's call, not this function's.)"""
    node = change.node_id
    if node <= 0:
        return f"invalid node id {node}"
    if change.kind is ConfChangeKind.ADD_LEARNER:
        if node in conf.members():
            return f"node {node} is already a member"
        if node in conf.retired:
            return (
                f"node {node} was removed from the group and its id is never reused; "
                "start the new replica with an id no member has had"
            )
        return None
    if change.kind is ConfChangeKind.PROMOTE:
        if node in conf.voters:
            return f"node {node} is already a voter"
        if node not in conf.learners:
            return f"node {node} is not a learner"
        return None
    if node not in conf.members():
        return f"node {node} is not a member"
    if conf.voters == frozenset({node}):
        return f"removing node {node} would leave no voters"
    return None


def _conf(
    voters: frozenset[int],
    learners: frozenset[int],
    contexts: dict[int, bytes],
    retired: frozenset[int],
) -> ConfState:
    return ConfState(
        voters=frozenset(voters),
        learners=frozenset(learners),
        contexts=tuple(sorted(contexts.items())),
        retired=frozenset(retired),
    )
